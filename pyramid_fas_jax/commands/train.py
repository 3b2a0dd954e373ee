"""pyramid-fas train --config=configs/X.py[:dataset/protocol[,runlocal]] --workdir=DIR
    [--config.key=value ...] [--coordinator_address=HOST:PORT --num_processes=N --process_id=I]

Trains and periodically evaluates; rerun with the same workdir to resume from its checkpoints.
On TPU pods and under SLURM the processes find each other by themselves.
"""

import sys

from absl import flags, logging

from pyramid_fas_jax.commands import common, exit_codes

_CONFIG = common.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, logs and results")
flags.mark_flags_as_required(["config", "workdir"])
common.define_distributed_flags()


def main(argv):
  if len(argv) > 1:
    exit_codes.usage_error("pyramid-fas train", f"unexpected arguments {argv[1:]}")
  common.start_jax()
  # pylint: disable-next=g-import-not-at-top
  from pyramid_fas_jax import config_checks, pretrained, train
  # Before any data, model or file: a config that cannot run is refused with every problem.
  config_checks.exit_if_bad("pyramid-fas train", _CONFIG.value, _WORKDIR.value)
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except pretrained.WeightsUnavailableError as e:  # an input we could not get: what to do instead
    logging.error("%s", e)
    print(f"pyramid-fas train: {e}", file=sys.stderr)
    sys.exit(2)
  except (ValueError, FileNotFoundError, train.NonFiniteLossError) as e:
    logging.error("%s", e)
    print(f"pyramid-fas train: {e}", file=sys.stderr)
    sys.exit(1)
