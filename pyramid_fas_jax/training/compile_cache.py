"""JAX's persistent compilation cache, on by default for the commands that compile models.

CDCN's train step takes about 40 s to compile on a 2-core CPU, and a ResNet50 step over a
minute; without the cache that is paid at every start and every resume. `enable()` points JAX at
`<cache root>/jax_cache` (the root is $PYRAMID_FAS_CACHE, else $XDG_CACHE_HOME/pyramid_fas_jax,
else ~/.cache/pyramid_fas_jax, where the face-mesh model is cached too) unless the user chose
a directory with JAX's own $JAX_COMPILATION_CACHE_DIR. Set PYRAMID_FAS_COMPILE_CACHE=0 to turn
it off.

Only programs that took at least `MIN_COMPILE_SECONDS` to compile are written (the steps and
the evaluation forward, not the many small helpers), and the least recently used entries are
evicted beyond `MAX_BYTES`; JAX's own variables (JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS,
JAX_COMPILATION_CACHE_MAX_SIZE) take precedence over both.
"""

import os
import pathlib

import jax
from absl import logging

ENV_SWITCH = "PYRAMID_FAS_COMPILE_CACHE"
MIN_COMPILE_SECONDS = 2.0
MAX_BYTES = 4 * 2**30


def cache_root() -> pathlib.Path:
  """$PYRAMID_FAS_CACHE, else $XDG_CACHE_HOME/pyramid_fas_jax, else ~/.cache/pyramid_fas_jax."""
  if os.environ.get("PYRAMID_FAS_CACHE"):
    return pathlib.Path(os.environ["PYRAMID_FAS_CACHE"])
  base = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
  return base / "pyramid_fas_jax"


def enable() -> pathlib.Path | None:
  """Turn the persistent cache on (before the first compilation); returns its directory, or None
  when PYRAMID_FAS_COMPILE_CACHE is 0/false/off."""
  if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "off", "no"):
    logging.info("compilation cache off (%s=%s)", ENV_SWITCH, os.environ[ENV_SWITCH])
    return None
  directory = jax.config.jax_compilation_cache_dir or str(cache_root() / "jax_cache")
  jax.config.update("jax_compilation_cache_dir", directory)
  for name, value in (("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS),
                      ("jax_compilation_cache_max_size", MAX_BYTES)):
    if name.upper() not in os.environ:
      jax.config.update(name, value)
  logging.info("compilation cache: %s", directory)
  return pathlib.Path(directory)
