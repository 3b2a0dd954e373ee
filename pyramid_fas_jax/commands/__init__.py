"""One module per `pyramid-fas` sub-command, each with `define_flags(flag_values)` and `main(argv)`.

Importing a command module defines no flag: cli.py gives each run of a command a new
absl.flags.FlagValues, on which the module's `define_flags` defines its flags and binds the
module's flag holders (`_WORKDIR`, ...), which `main` reads. So the modules can all be imported
together, and a command run after another in one process starts from its own defaults.
"""
