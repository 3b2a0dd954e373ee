"""The one write path: every file the package writes goes through `replacing` (or the helpers
built on it), so a kill, Ctrl-C or a full disk leaves the old file or the new one, never a
truncated or empty one, and no temporary file behind.

The new content goes to a temporary file in the same directory (same filesystem, so the rename
is atomic), is flushed to disk, and then replaces the target with os.replace; the directory is
synced so the rename itself survives a power loss. A disk that fills up (ENOSPC), a quota
(EDQUOT) or a file-size limit (EFBIG) raises WriteError naming the file that was to be written.

Append-only logs (training/metric_writers.py's metrics.jsonl) are the one exception: they grow
a line at a time, and their readers skip a truncated last line instead.
"""

import contextlib
import errno
import json
import os
import pathlib
import stat
import uuid

import numpy as np

# The errnos that mean "no room": the remedy is the same for all three.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class WriteError(OSError):
  """A file could not be written for lack of room (disk full, quota, file-size limit). Keeps
  the errno; `filename` is the file that was to be written (not the temporary one)."""

  def __init__(self, code: int, path):
    why = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
           errno.EFBIG: "the file-size limit was reached"}.get(code, os.strerror(code))
    super().__init__(code, f"cannot write {path}: {why} (its previous content, if any, is "
                     "unchanged); free space there or choose another output", str(path))

  def __str__(self) -> str:
    return self.strerror


def _temporary_name(path: pathlib.Path) -> pathlib.Path:
  # Hidden, unique per writer, and ending in the target's suffix: cv2, matplotlib and numpy
  # choose the format (or append an extension) by it. Created by os.open with mode 0o666, so
  # the umask applies as for any new file (mkstemp's 0600 would keep a shared cache private).
  return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def _fsync(path, flags: int = os.O_RDONLY) -> None:
  fd = os.open(path, flags)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


@contextlib.contextmanager
def replacing(path):
  """Yields a temporary path beside `path` for a writer that needs a file name (np.save,
  savefig, an Orbax-free tool); when the block ends, that file replaces `path`. If the block
  raises (anything, KeyboardInterrupt too), the temporary file is removed and `path` keeps its
  old content; an OSError for lack of room becomes WriteError. The parent directory is
  created if missing."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = _temporary_name(path)
  os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
  try:
    with contextlib.suppress(FileNotFoundError):  # a replaced file keeps its permissions
      os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    yield tmp
    _fsync(tmp)
    os.replace(tmp, path)
  except OSError as e:
    if e.errno in NO_ROOM and not isinstance(e, WriteError):
      raise WriteError(e.errno, path) from e
    raise
  finally:
    # Gone after os.replace; still there after any failure (KeyboardInterrupt included).
    tmp.unlink(missing_ok=True)
  # Not every filesystem can sync a directory (some network ones refuse): the rename is done.
  with contextlib.suppress(OSError):
    _fsync(path.parent, os.O_RDONLY | os.O_DIRECTORY)


def write_bytes(path, data: bytes) -> None:
  with replacing(path) as tmp, open(tmp, "wb") as f:
    f.write(data)


def write_text(path, text: str) -> None:
  with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
    f.write(text)


def write_json(path, obj, **json_kw) -> None:
  """`obj` as JSON (json.dumps' keywords, e.g. indent) with a final newline."""
  write_text(path, json.dumps(obj, **json_kw) + "\n")


def save_npz(path, **arrays) -> None:
  """np.savez of `arrays` to exactly `path` (given a name, numpy would append .npz to one
  without it)."""
  with replacing(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, **arrays)
