"""pyramid-fas evaluate --workdir=DIR [--config=...] [--step=N | --best]
pyramid-fas evaluate --checkpoint=CKPT [--workdir=OUT] [--config=...]

Scores the protocol's dev and test splits with a checkpoint of the run in DIR (the newest
readable one unless --step or --best; an unreadable one is skipped with a warning saying why)
and writes results.json, eval/step_<N>.json, the score files and the ROC/DET/histogram plots.
The config defaults to the run's own (DIR/config.json); --config (with overrides) replaces it,
e.g. to score the same model on another protocol. The run's own protocol writes into DIR; any
other dataset or protocol into DIR/eval/<dataset>/<protocol>/, so the run's own results are
never replaced (evaluator.results_dir). The last line printed says where the results went.

--checkpoint takes any model checkpoint: a run's checkpoints/<N> or best/<N>, or an
import-weights output, with the config stored in it. Its results go to OUT, by default the run
holding the step; an OUT without a config.json gets the evaluated config as its own.

Results belong to their model (evaluator.claim): a training run's workdir takes only the
results of its own checkpoints, and a directory holding the results of another model is refused
unless --overwrite, which first removes them (results.json, step_<N>.json, scores/, plots/,
eval/, config.json), so two models' numbers are never mixed.
"""

import contextlib
import pathlib

from absl import flags

from pyramid_fas_jax.commands import common, exit_codes
from pyramid_fas_jax.files import atomic

# This run's flags: define_flags binds them.
_CONFIG = _WORKDIR = _CHECKPOINT = _STEP = _BEST = _DISTRIBUTED = _OVERWRITE = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _CONFIG, _WORKDIR, _CHECKPOINT, _STEP, _BEST, _DISTRIBUTED, _OVERWRITE
  _CONFIG = common.define_config_flag(flag_values)
  _WORKDIR = flags.DEFINE_string("workdir", None, "training directory (with --checkpoint: where "
                                 "the results go)", flag_values=flag_values)
  _CHECKPOINT = flags.DEFINE_string("checkpoint", None, "a model checkpoint directory instead of "
                                    "a run's latest: RUN/checkpoints/<N>, RUN/best/<N>, or an "
                                    "import-weights output", flag_values=flag_values)
  _STEP = flags.DEFINE_integer("step", None, "checkpoint step (default: the latest readable)",
                               flag_values=flag_values)
  _BEST = flags.DEFINE_bool("best", False, "use the checkpoint with the best dev metric",
                            flag_values=flag_values)
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "with --checkpoint: replace the results "
                                 "of another model in --workdir (never a training run's)",
                                 flag_values=flag_values)
  _DISTRIBUTED = common.define_distributed_flags(flag_values)


_PROG = "pyramid-fas evaluate"


def _evaluate_checkpoint(config):
  import jax

  from pyramid_fas_jax.evaluation import evaluator
  from pyramid_fas_jax.training import checkpoint, distributed
  path = pathlib.Path(_CHECKPOINT.value).absolute()
  if _STEP.value is not None or _BEST.value:
    exit_codes.usage_error(_PROG, "--step and --best choose a checkpoint of --workdir; "
                           "--checkpoint names one already: pass one or the other")
  in_run = path.parent.name in checkpoint.STEP_ROOTS and path.name.isdigit()
  if _WORKDIR.value is None and not in_run:
    exit_codes.usage_error(_PROG, f"--checkpoint={path} is not a step of a run "
                           "(RUN/checkpoints/<N> or RUN/best/<N>): pass --workdir=DIR for the "
                           "results")
  out = pathlib.Path(_WORKDIR.value).absolute() if _WORKDIR.value else path.parent.parent
  model, config = checkpoint.load_model(path, config)
  exit_codes.exit_if_bad_config(_PROG, config, training=False, data=True)
  step = int(path.name) if path.name.isdigit() else 0
  with _locked(out):
    if jax.process_index() == 0:
      evaluator.claim(out, path, evaluator.provenance_of(config, model, path, step),
                      _OVERWRITE.value)
    common.log_start()
    if jax.process_index() == 0 and not (out / checkpoint.CONFIG_FILE).exists():
      # OUT becomes the home of this evaluation's protocol: another one lands in eval/.
      atomic.write_text(out / checkpoint.CONFIG_FILE,
                        config.to_json_best_effort(indent=2) + "\n")
    results = evaluator.evaluate_model(config, model, out, step, distributed.make_mesh(),
                                      plots=True, checkpoint_path=path)
  return results, evaluator.results_dir(config, out)


@contextlib.contextmanager
def _locked(workdir):
  """The run lock of the workdir the results go into: evaluate writes results.json and
  eval/step_<N>.json there, which a `train` of it (or another evaluate) writes too, so it is
  refused while one runs, naming it."""
  from pyramid_fas_jax.training import train
  with train.run_lock(workdir, _PROG):
    yield


def main(argv):
  if len(argv) > 1:
    exit_codes.usage_error(_PROG, f"unexpected arguments {argv[1:]}")
  if not (_WORKDIR.value or _CHECKPOINT.value):
    exit_codes.usage_error(_PROG, "--workdir=RUN (a training run) or --checkpoint=DIR (a model "
                           "checkpoint) is required")
  exit_codes.exit_if_outputs_clash(_PROG, {"checkpoint": _CHECKPOINT.value},
                                   {"workdir": _WORKDIR.value})
  common.start_jax(_DISTRIBUTED)
  from pyramid_fas_jax import evaluation
  from pyramid_fas_jax.evaluation import evaluator
  from pyramid_fas_jax.experiment import checks
  from pyramid_fas_jax.training import checkpoint
  try:
    if _CHECKPOINT.value:
      problem = _WORKDIR.value and checks.workdir_problem(_WORKDIR.value)
      if problem:
        exit_codes.usage_error(_PROG, problem)
      results, out = _evaluate_checkpoint(_CONFIG.value)
    else:
      problem = checks.workdir_problem(_WORKDIR.value, must_exist=True)
      if problem:
        exit_codes.usage_error(_PROG, problem)
      config = _CONFIG.value or checkpoint.load_config(_WORKDIR.value)
      exit_codes.exit_if_bad_config(_PROG, config, training=False, data=True)
      common.log_start()
      with _locked(_WORKDIR.value):
        results = evaluator.evaluate_checkpoint(config, _WORKDIR.value, step=_STEP.value,
                                              best=_BEST.value)
      out = evaluator.results_dir(config, _WORKDIR.value)
  except (ValueError, FileNotFoundError) as e:
    exit_codes.usage_error(_PROG, e)
  print(evaluation.format_report(results))
  print(f"\nwrote the results of step {results['step']} (results.json, step_{results['step']}"
        f".json, scores/, plots/) into {out}")
