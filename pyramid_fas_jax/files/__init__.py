"""The ground floor of every file the package writes: atomic.py (the one write path), lock.py
(one process writes a run's workdir at a time), outputs.py (a command's outputs never replace
its inputs), cache.py (where downloads are kept). It imports nothing else of the package."""
