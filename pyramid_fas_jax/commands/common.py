"""Flags shared by the commands: those that run models in JAX (train, evaluate: --config, the
distributed flags, JAX's start-up) and those that crop faces (predict, preprocess, export,
serve: --face_detector). Importing it imports neither JAX nor the face detectors, so the
commands that run without JAX (predict --model, serve) can use it; each helper imports what it
needs."""

import logging

from absl import flags
from absl import logging as absl_logging


def define_config_flag(flag_values: flags.FlagValues) -> flags.FlagHolder:
  from ml_collections import config_flags

  return config_flags.DEFINE_config_file(
      "config", None, "experiment config: configs/X.py[:dataset/protocol[,runlocal]]; override "
      "fields with --config.a.b=value", flag_values=flag_values, lock_config=True)


def define_distributed_flags(flag_values: flags.FlagValues) -> tuple[flags.FlagHolder, ...]:
  """--coordinator_address, --num_processes, --process_id, in the order start_jax takes them."""
  return (
      flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process "
                          "runs outside TPU pods and SLURM)", flag_values=flag_values),
      flags.DEFINE_integer("num_processes", None, "number of JAX processes",
                           flag_values=flag_values),
      flags.DEFINE_integer("process_id", None, "this process's index", flag_values=flag_values))


def define_face_detector_flag(flag_values: flags.FlagValues, *, default: str | None = "mtcnn",
                              what: str = "the face detector",
                              default_is: str | None = None) -> flags.FlagHolder:
  """--face_detector, one of faces.face.DETECTORS. `what` says what the command does with it;
  a `default` of None leaves the choice to the command at run time (predict and serve: the one
  an export's model.json names), and `default_is` says what it is."""
  from pyramid_fas_jax.faces import face  # cv2: only for the commands that crop faces

  return flags.DEFINE_enum(
      "face_detector", default, list(face.DETECTORS),
      f"{what} (mtcnn: the paper's and the builders'; blazeface: ~10x faster, its boxes "
      "calibrated onto MTCNN's)" + (f"; default: {default_is}" if default_is else ""),
      flag_values=flag_values)


def _not_orbax_info(record) -> bool:
  # Orbax narrates every save at INFO through absl; keep its warnings, drop the narration so the
  # progress lines stay readable.
  return record.levelno >= logging.WARNING or "orbax" not in record.pathname


def start_jax(distributed_flags: tuple[flags.FlagHolder, ...] = ()):
  """Quiet Orbax's INFO logs, turn on the persistent compilation cache, start jax.distributed
  where needed (with define_flags' distributed flags, if the command has them). Logs nothing
  yet: a config or dataset refused next is its one line alone on stderr; `log_start` turns
  the INFO log on once the checks pass."""
  global _cache_dir
  from pyramid_fas_jax.training import compile_cache, distributed

  absl_logging.get_absl_handler().addFilter(_not_orbax_info)
  # The start-up's INFO lines (the cache, JAX's backend probing, the processes) would come
  # before a refusal's one line.
  absl_logging.set_verbosity(absl_logging.WARNING)
  _cache_dir = compile_cache.enable()
  distributed.initialize(*(f.value for f in distributed_flags))


_cache_dir = None


def log_start():
  """The INFO log on, beginning with what start_jax started: the compilation cache, the
  processes and devices."""
  from pyramid_fas_jax.training import compile_cache, distributed

  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logging.info("compilation cache: %s", _cache_dir or f"off ({compile_cache.ENV_SWITCH})")
  distributed.log_devices()
