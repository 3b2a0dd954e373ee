"""Flags shared by the commands that run models (train, evaluate)."""

import logging

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from pyramid_fas_jax.training import compile_cache, distributed


def define_config_flag(flag_values: flags.FlagValues) -> flags.FlagHolder:
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
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logging.info("compilation cache: %s", _cache_dir or f"off ({compile_cache.ENV_SWITCH})")
  distributed.log_devices()
