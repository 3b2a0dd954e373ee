"""pyramid-fas evaluate --workdir=DIR [--config=...] [--step=N | --best]

Scores the protocol's dev and test splits with a checkpoint of DIR (the latest unless --step or
--best) and writes results.json, the score files and the ROC/DET/histogram plots into DIR. The
config defaults to the run's own (DIR/config.json); --config (with overrides) replaces it, e.g.
to score the same model on another protocol.
"""

import sys

from absl import flags

from pyramid_fas_jax.commands import common, exit_codes

_CONFIG = common.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "training directory")
_STEP = flags.DEFINE_integer("step", None, "checkpoint step (default: the latest)")
_BEST = flags.DEFINE_bool("best", False, "use the checkpoint with the best dev metric")
flags.mark_flags_as_required(["workdir"])
common.define_distributed_flags()


def main(argv):
  if len(argv) > 1:
    exit_codes.usage_error("pyramid-fas evaluate", f"unexpected arguments {argv[1:]}")
  common.start_jax()
  # pylint: disable-next=g-import-not-at-top
  from pyramid_fas_jax import checkpoint, config_checks, evaluate, evaluation
  prog = "pyramid-fas evaluate"
  problem = config_checks.workdir_problem(_WORKDIR.value, must_exist=True)
  if problem:
    exit_codes.usage_error(prog, problem)
  try:
    config = _CONFIG.value or checkpoint.load_config(_WORKDIR.value)
  except FileNotFoundError as e:
    exit_codes.usage_error(prog, e)
  config_checks.exit_if_bad(prog, config, training=False)
  try:
    results = evaluate.evaluate_checkpoint(config, _WORKDIR.value, step=_STEP.value,
                                          best=_BEST.value)
  except (ValueError, FileNotFoundError) as e:
    print(f"pyramid-fas evaluate: {e}", file=sys.stderr)
    sys.exit(1)
  print(evaluation.format_report(results))
