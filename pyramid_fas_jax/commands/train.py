"""pyramid-fas train --config=configs/X.py[:dataset/protocol[,runlocal]] --workdir=DIR
    [--config.key=value ...] [--allow_config_change=FIELD[,FIELD...]]
    [--coordinator_address=HOST:PORT --num_processes=N --process_id=I]

Trains and periodically evaluates; rerun with the same workdir to resume from its newest
readable checkpoint. On TPU pods and under SLURM the processes find each other by themselves.

Resuming compares the config with the run's stored config.json first: a change to anything but
the harmless fields (eval.*, log/eval/checkpoint cadence, keep_checkpoints, num_steps,
num_epochs, init_from, data.data_dir; training/changes.py) is refused with every
changed field listed (exit 2) unless --allow_config_change names it. SIGTERM and SIGINT
(Ctrl-C) save a checkpoint and exit 75 (exit_codes.PREEMPTED): not finished, run the same
command again to resume.
"""

import sys

from absl import flags, logging

from pyramid_fas_jax import errors
from pyramid_fas_jax.commands import common, exit_codes

# This run's flags: define_flags binds them.
_CONFIG = _WORKDIR = _ALLOW = _DISTRIBUTED = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _CONFIG, _WORKDIR, _ALLOW, _DISTRIBUTED
  _CONFIG = common.define_config_flag(flag_values)
  _WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, logs and results",
                                 flag_values=flag_values)
  _ALLOW = flags.DEFINE_list(
      "allow_config_change", [], "resuming: config fields (fnmatch patterns over dotted names, "
      "e.g. optim.lr,'model.*') allowed to differ from the run's stored config beyond the "
      "harmless ones; at your own risk", flag_values=flag_values)
  flags.mark_flags_as_required(["config", "workdir"], flag_values=flag_values)
  _DISTRIBUTED = common.define_distributed_flags(flag_values)


def main(argv):
  if len(argv) > 1:
    exit_codes.usage_error("pyramid-fas train", f"unexpected arguments {argv[1:]}")
  common.start_jax(_DISTRIBUTED)
  from pyramid_fas_jax.training import changes, checkpoint, train
  from pyramid_fas_jax.weights import pretrained
  # Before any data, model or file: a config that cannot run is refused with every problem.
  exit_codes.exit_if_bad_config("pyramid-fas train", _CONFIG.value, _WORKDIR.value, data=True)
  common.log_start()
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW.value,
                             command="pyramid-fas train")
  except errors.InputError:
    raise  # cli.py reports it (one line, exit 2)
  except (pretrained.WeightsUnavailableError, changes.ConfigChangedError,
          checkpoint.CheckpointError) as e:
    exit_codes.usage_error("pyramid-fas train", e)
  except (ValueError, FileNotFoundError, train.NonFiniteLossError) as e:
    logging.error("%s", e)
    print(f"pyramid-fas train: {e}", file=sys.stderr)
    sys.exit(1)
