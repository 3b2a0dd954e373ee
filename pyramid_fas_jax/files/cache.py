"""Where pyramid-fas keeps what it downloads (the face-mesh model, ImageNet weights), and the
sha256 that checks each file there."""

import hashlib
import os
import pathlib


def root() -> pathlib.Path:
  """$PYRAMID_FAS_CACHE, else $XDG_CACHE_HOME/pyramid_fas_jax, else ~/.cache/pyramid_fas_jax."""
  if os.environ.get("PYRAMID_FAS_CACHE"):
    return pathlib.Path(os.environ["PYRAMID_FAS_CACHE"])
  base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
  return base / "pyramid_fas_jax"


def sha256(path) -> str:
  """Hex sha256 of a file, read in 1 MiB chunks (weights files are ~100 MB)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()
