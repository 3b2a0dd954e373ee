"""Flags shared by the commands that run models (train, evaluate)."""

from absl import flags
from ml_collections import config_flags

from pyramid_fas_jax import distributed


def define_config_flag():
  return config_flags.DEFINE_config_file(
      "config", None, "experiment config: configs/X.py[:dataset/protocol[,runlocal]]; override "
      "fields with --config.a.b=value", lock_config=True)


def define_distributed_flags():
  flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process runs "
                      "outside TPU pods and SLURM)")
  flags.DEFINE_integer("num_processes", None, "number of JAX processes")
  flags.DEFINE_integer("process_id", None, "this process's index")


def start_jax():
  f = flags.FLAGS
  distributed.initialize(f.coordinator_address, f.num_processes, f.process_id)
