"""One process writes a run's workdir at a time: `hold(workdir, command)` takes its run lock
(filelock's OS lock on WORKDIR/.pyramid-fas.lock) for the duration of a `train`, `demo` or
`evaluate`, and refuses a second one while another process holds it, naming the holder.

Who holds it is kept beside the lock in WORKDIR/.pyramid-fas.lock.json (pid, host, command,
since when), written through the atomic write path and removed when the lock is released. The
OS releases the lock itself when its process dies, however it dies; the identity file of a
process killed outright (SIGKILL, a lost machine) stays, and the next command takes the lock
over with a warning naming the dead holder. A future provenance record of the run belongs with
what the workdir holds, not here: this file only says who writes the workdir now.
"""

import contextlib
import datetime
import json
import os
import pathlib
import socket
import sys

import filelock

from pyramid_fas_jax import errors
from pyramid_fas_jax.files import atomic

LOCK_FILE = ".pyramid-fas.lock"
HOLDER_FILE = ".pyramid-fas.lock.json"

# Workdirs this process holds, with how many `hold`s are open on each: a demo holds its workdir
# and calls train_and_evaluate, which takes the same lock (a second OS lock of the same file in
# the same process would refuse it).
_HELD: dict[pathlib.Path, int] = {}


class LockedError(errors.InputError):
  """The workdir's run lock is held by another process; the message names it (exit code 2)."""


def _describe(holder: dict) -> str:
  return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
          f"({holder.get('command', '?')}, since {holder.get('since', '?')})")


def _read_holder(workdir: pathlib.Path) -> dict | None:
  try:
    holder = json.loads((workdir / HOLDER_FILE).read_text())
  except (OSError, ValueError):
    return None
  return holder if isinstance(holder, dict) else None


def holder(workdir) -> dict | None:
  """The identity the current (or a dead) holder of `workdir`'s lock recorded, if any."""
  return _read_holder(pathlib.Path(workdir).absolute())


@contextlib.contextmanager
def hold(workdir, command: str, prog: str | None = None):
  """Holds `workdir`'s run lock for the block (re-entrant within a process). Raises LockedError
  at once, having written nothing, if another process holds it. `prog` prefixes the warning a
  stale holder gets (default: `command`).

  In a multi-process run only process 0 calls this (the callers say so): the processes of one
  run are one writer, and they may not share a filesystem that carries OS locks."""
  workdir = pathlib.Path(workdir).absolute()
  if _HELD.get(workdir):
    _HELD[workdir] += 1
    try:
      yield
    finally:
      _HELD[workdir] -= 1
    return
  created = not workdir.exists()
  workdir.mkdir(parents=True, exist_ok=True)
  lock = filelock.FileLock(workdir / LOCK_FILE, timeout=0)
  try:
    lock.acquire()
  except filelock.Timeout:
    found = _read_holder(workdir)
    who = _describe(found) if found else "another process (which has not yet said who it is)"
    raise LockedError(
        f"{workdir} is in use by {who}: wait for it to finish or stop it, or use another "
        "directory") from None
  try:
    stale = _read_holder(workdir)
    if stale:
      print(f"{prog or command}: warning: taking over the run lock of {workdir} from "
            f"{_describe(stale)}, which is no longer running", file=sys.stderr)
    since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    atomic.write_json(workdir / HOLDER_FILE, {"pid": os.getpid(), "host": socket.gethostname(),
                                              "command": command, "since": since}, indent=1)
    _HELD[workdir] = 1
    try:
      yield
    finally:
      del _HELD[workdir]
      (workdir / HOLDER_FILE).unlink(missing_ok=True)
  finally:
    lock.release()
    # A command refused before it wrote anything leaves no workdir behind for its lock.
    if created and [p.name for p in workdir.iterdir()] == [LOCK_FILE]:
      (workdir / LOCK_FILE).unlink(missing_ok=True)
      with contextlib.suppress(OSError):
        workdir.rmdir()
