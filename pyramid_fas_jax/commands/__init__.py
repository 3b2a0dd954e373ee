"""One module per `pyramid-fas` sub-command; each defines its absl flags and `main(argv)`.

Modules are imported only when their command runs, so their flag definitions never meet.
"""
