"""Scoring the protocol's dev and test splits with a model, and the metrics of those scores.

Frame scores come from the one eval-mode forward (models/inference.py), compiled over the mesh
for config.eval_batch_size, or for the largest halving of it whose memory fits where that one
does not (`fit_forward`, models/memory.py: a warning says so; the scores do not depend on the
batch, tests/test_batch_memory.py); every process scores its share and the scores are gathered
by their position in the split, so metadata never crosses processes. The metrics are
pyramid_fas_jax.evaluation's: threshold from dev (never from test unless the config asks for
`test_eer`), video-level scores where the protocol is video-based. Videos of a split without
any stored frame (no face found) are counted as failures to acquire by the rule
config.eval.failure_to_acquire (evaluation/acquisition.py).

Where the results go (`results_dir`): a run's own data (data.name, data.protocol and
data.builder_config of its stored config.json) writes results.json, eval/step_<N>.json, scores/
and plots/ at the top of the workdir, as training does; any other data (the same model scored
on another protocol or dataset) writes results.json, step_<N>.json, scores/ and plots/ into
workdir/eval/<dataset>/<protocol>/ (eval/<dataset>@<builder_config>/<protocol>/ when the build
differs), so a run's own results are never replaced. A directory without a config.json belongs
to no run: results go straight into it.

Every file written carries the provenance of its numbers (files/provenance.py: the model's
fingerprint, checkpoint and step, the scoring config fields, the dataset build and protocol).
A workdir's results belong to their model (`claim`): a training run's only to checkpoints of
that run, any other directory's to the model whose results it holds, unless overwrite clears
them first.
"""

import json
import pathlib
import shutil

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from pyramid_fas_jax import evaluation, models
from pyramid_fas_jax.data import pipeline, splits
from pyramid_fas_jax.evaluation import report
from pyramid_fas_jax.files import provenance
from pyramid_fas_jax.models import inference, memory
from pyramid_fas_jax.training import checkpoint, distributed

SPLITS = ("dev", "test")


def fit_forward(config, model, mesh, room: memory.Budget | None = None):
  """(the eval state on `mesh`, memory.Fitted): the score forward compiled for the global batch
  config.eval_batch_size, or where its estimate does not fit `room` (default: memory.budget of
  this process's devices) for the largest halving of it, still split evenly over the mesh, that
  does (the smallest, with a warning, where none does). Every process takes the smallest batch
  any process chose."""
  graphdef, state = inference.eval_state(model, mesh)
  norm = inference.norm_of(config.input)
  size = config.input.size
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))

  def compile_at(batch):
    spec = jax.ShapeDtypeStruct((batch, size, size, 3), np.uint8, sharding=sharding)
    return inference.forward.lower(graphdef, state, spec, norm, ("score",)).compile()

  configured, shards = int(config.eval_batch_size), mesh.shape["data"]
  batches = [configured >> k for k in range(configured.bit_length())
             if (configured >> k) << k == configured and (configured >> k) % shards == 0]
  if room is None:
    room = memory.budget([d for d in mesh.devices.flat if d.process_index == jax.process_index()])
  fitted = memory.fit(compile_at, batches or [configured], room,
                      resident=memory.tree_bytes(state), refuse=False,
                      what="config.eval_batch_size",
                      how=f"config.eval_batch_size={configured} or the largest halving that fits")
  if jax.process_count() > 1:
    agreed = int(multihost_utils.process_allgather(np.int32(fitted.batch)).min())
    if agreed != fitted.batch:
      fitted = memory.fit(compile_at, [agreed], room, resident=fitted.resident, explicit=True,
                          allow_over=True, how="the smallest batch of the processes")
  if fitted.batch != configured:
    logging.warning("config.eval_batch_size=%d does not fit the memory available: evaluating "
                    "in batches of %d instead (the scores are the same); %s", configured,
                    fitted.batch, fitted.line)
  return state, fitted


def score_split(config, model, split: str, mesh, forward=None) -> evaluation.ScoreSet:
  """Frame-level ScoreSet of protocol split `split` (every example exactly once), with
  `forward` (fit_forward's; by default fitted here)."""
  state, fitted = forward or fit_forward(config, model, mesh)
  scores, index, valid = [], [], []
  for batch in pipeline.make_eval_iterator(config, split, batch_size=fitted.batch):
    images = pipeline.to_global_batch(batch, mesh, keys=("image",))["image"]
    score = fitted.compiled(state, images)["score"]
    scores.append(multihost_utils.process_allgather(score, tiled=True))
    index.append(multihost_utils.process_allgather(batch["index"], tiled=True))
    valid.append(multihost_utils.process_allgather(batch["valid"], tiled=True))
  keep = np.concatenate(valid)
  score = np.concatenate(scores)[keep]
  index = np.concatenate(index)[keep]
  examples = splits.of(config.data, split).examples
  if sorted(index.tolist()) != list(range(len(examples))):
    raise RuntimeError(f"{split}: scored {len(index)} examples but the split has "
                       f"{len(examples)}; every example must be scored exactly once")
  meta = [examples[i] for i in index]
  return evaluation.ScoreSet.from_arrays(
      score, [m["label"] for m in meta], [m["species"] for m in meta],
      [m["video_id"] for m in meta], source=f"{config.data.name}/{config.data.protocol}/{split}")


def _data_identity(data) -> tuple:
  return (data.get("name"), data.get("protocol"), data.get("builder_config"))


def results_dir(config, workdir) -> pathlib.Path:
  """Where evaluate_model writes the results of `config`'s data for the run in `workdir`: the
  workdir itself for the run's own data (its config.json's), else workdir/eval/<dataset>/
  <protocol>/ (see the module docstring)."""
  workdir = pathlib.Path(workdir)
  stored = workdir / checkpoint.CONFIG_FILE
  if not stored.is_file():
    return workdir
  try:
    home = json.loads(stored.read_text()).get("data", {})
  except ValueError as e:
    raise checkpoint.CheckpointError(
        f"{stored} is not valid JSON ({e}): the run's own protocol is unknown, so evaluating "
        "into it could replace its results; fix the file or pass another --workdir") from e
  data = config.data
  if _data_identity(home) == _data_identity(data):
    return workdir
  name = data.name if data.get("builder_config") == home.get("builder_config") else (
      f"{data.name}@{data.builder_config}")
  return workdir / "eval" / name / data.protocol


def provenance_of(config, model, checkpoint_path, step) -> dict:
  """The provenance record of `model`'s scores of `config`'s data (files/provenance.py)."""
  return provenance.record(
      fingerprint=models.fingerprint(model), step=step, config=config,
      checkpoint=None if checkpoint_path is None else pathlib.Path(checkpoint_path).absolute(),
      data={k: v for k, v in splits.of(config.data, "test").provenance.items() if k != "split"})


# What an evaluation writes into a directory: what `claim` clears with overwrite.
WRITTEN = ("results.json", "scores", "plots", "eval", checkpoint.CONFIG_FILE)


def _results_files(home: pathlib.Path) -> list[pathlib.Path]:
  return [p for p in [home / "results.json", *sorted((home / "eval").glob("**/results.json"))]
          if p.is_file()]


def claim(workdir, checkpoint_path, prov: dict, overwrite: bool = False) -> None:
  """Raise ProvenanceError unless the model of `prov` (loaded from `checkpoint_path`) may write
  its results into `workdir`: a training run's workdir takes only results of its own
  checkpoints (never overridden: choose another directory); any other directory holding
  results of another model is refused unless `overwrite`, which first removes what an
  evaluation wrote there (WRITTEN), so the results of two models are never mixed."""
  home = pathlib.Path(workdir).absolute()
  if checkpoint.run_part(home) == checkpoint.RUN_WORKDIR:
    ckpt = pathlib.Path(checkpoint_path or "").absolute()
    if not (ckpt.parent.name in checkpoint.STEP_ROOTS
            and ckpt.parent.parent.resolve() == home.resolve()):
      raise provenance.ProvenanceError(
          f"--workdir={home} is a training run: its results belong to its own checkpoints, "
          f"and {checkpoint_path} is not one of them; pass another --workdir for this "
          "evaluation")
    return
  for path in _results_files(home):
    theirs = provenance.read(path)
    if provenance.fingerprint_of(theirs) == provenance.fingerprint_of(prov):
      continue
    if not overwrite:
      raise provenance.ProvenanceError(
          f"--workdir={home} holds the results of {provenance.describe(theirs)} ({path}), "
          f"not of {provenance.describe(prov)}; pass another --workdir, or --overwrite to "
          "replace them")
    clear_results(home)
    return


def clear_results(home) -> None:
  """Remove what an evaluation writes into `home` (WRITTEN, and the step_<N>.json files)."""
  home = pathlib.Path(home)
  for name in WRITTEN:
    path = home / name
    if path.is_dir():
      shutil.rmtree(path)
    elif path.exists():
      path.unlink()
  for path in home.glob("step_*.json"):
    path.unlink()


def tests_while_training(config) -> bool:
  """Whether training's evaluations score the test set. eval.test_while_training=False leaves
  test to the checkpoint dev chose, but only where an evaluation can do without it: a threshold
  chosen on test (test_eer, also the default of a protocol without dev) and mode cdcn read it,
  so those still score it; an override of the threshold never has to know the config's choice."""
  return (bool(config.eval.test_while_training) or config.eval.mode == "cdcn"
          or report.threshold_value(config.eval.threshold) == "test_eer")


def evaluate_model(config, model, workdir, step: int, mesh, *, checkpoint_path,
                   plots: bool = False, extra: dict | None = None,
                   overwrite: bool = False, test: bool = True) -> dict:
  """Score dev/test, write the score files and results into `results_dir(config, workdir)`,
  return the results dict; `extra` adds fields to it (training: the run's wall time).
  `checkpoint_path` is where `model` was loaded from (or will be saved), for its provenance;
  the results must belong in `workdir` (`claim`). `test` False scores dev alone (training's
  evaluations under config.eval.test_while_training=False)."""
  home = pathlib.Path(workdir)
  prov = provenance_of(config, model, checkpoint_path, step)
  if jax.process_index() == 0:
    claim(home, checkpoint_path, prov, overwrite)
  workdir = results_dir(config, home)
  # The run's own step_<N>.json files sit in its eval/; another protocol's in its own folder.
  per_step = home / "eval" if workdir == home else workdir
  present = [s for s in SPLITS if splits.of(config.data, s).exists and (test or s != "test")]
  needed = "test" if test else "dev"
  if needed not in present:
    raise ValueError(f"protocol {config.data.protocol!r} of {config.data.name} has no "
                     f"{needed} split")
  forward = fit_forward(config, model, mesh)
  sets = {s: score_split(config, model, s, mesh, forward) for s in present}
  dev = sets.get("dev")
  # From the command line a number and "none" are strings: '0.5', 'none'.
  threshold = report.threshold_value(config.eval.threshold)
  video_agg = report.video_agg_value(config.eval.video_agg)
  if dev is None and threshold == "dev_eer":
    raise ValueError(f"protocol {config.data.protocol!r} has no dev split, so the default "
                     "threshold 'dev_eer' cannot be used; set --config.eval.threshold=test_eer "
                     "(reported as chosen on the test set) or a fixed value")
  unacquired = {s: evaluation.Unacquired.from_videos(splits.of(config.data, s).unacquired)
                for s in sets}
  results = evaluation.evaluate_scores(
      dev, sets.get("test"), threshold=threshold, mode=config.eval.mode,
      video_agg=video_agg,
      n_bootstrap=config.eval.bootstrap, seed=config.seed,
      plots_dir=(workdir / "plots") if plots and jax.process_index() == 0 else None,
      unacquired=unacquired,
      failure_to_acquire=config.eval.failure_to_acquire)
  results["step"] = step
  results.update(extra or {})
  results[provenance.KEY] = prov
  if jax.process_index() == 0:
    out = workdir / "scores"
    out.mkdir(parents=True, exist_ok=True)
    # Score files hold scored presentations only: a failure to acquire has no score, so it is
    # no row; results.json lists those videos under each set's "failure_to_acquire".
    for split, frames in sets.items():
      of_split = dict(prov, data=dict(prov["data"], split=split))
      evaluation.write_scores(out / f"{split}_frames_step{step}.txt", frames, of_split)
      if frames.video_ids is not None:
        evaluation.write_scores(out / f"{split}_videos_step{step}.txt",
                                evaluation.aggregate_videos(frames, video_agg or "mean"),
                                dict(of_split, video_agg=video_agg or "mean"))
    evaluation.write_json(results, workdir / "results.json")
    per_step.mkdir(exist_ok=True)
    evaluation.write_json(results, per_step / f"step_{step}.json")
    logging.info("step %d evaluation\n%s", step, evaluation.format_report(results))
  return results


def scalars(results: dict) -> dict[str, float]:
  """Numeric metrics of dev/test for the metric writers ('test/ACER', ...)."""
  if results.get("mode") == "cdcn":
    return {f"cdcn/{k}": float(v) for k, v in results.items()
            if isinstance(v, (int, float)) and np.isfinite(v)}
  out = {}
  for split in SPLITS:
    for key, value in results.get(split, {}).items():
      if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        out[f"{split}/{key}"] = float(value)
  return out


def dev_metric(results: dict, config) -> float | None:
  """The dev metric that picks the best checkpoint (lower is better), or None without dev."""
  if results.get("mode") == "cdcn":
    return float(results["dev_acer"])
  dev = results.get("dev")
  return None if dev is None else float(dev[config.eval.best_metric])


def evaluate_checkpoint(config, workdir, step: int | None = None, best: bool = False,
                        extra: dict | None = None) -> dict:
  """Evaluate a training checkpoint of `workdir` with plots (results: see `results_dir`): step
  `step`, or the newest readable one (checkpoint.restore_checkpoint)."""
  model, step = checkpoint.restore_checkpoint(config, workdir, step, best)
  return evaluate_model(config, model, workdir, step, distributed.make_mesh(), plots=True,
                        extra=extra, checkpoint_path=checkpoint.checkpoint_dir(workdir, step, best))


def evaluate_chosen(config, workdir, extra: dict | None = None) -> dict:
  """Evaluate the checkpoint dev chose (best/), or the newest where no evaluation chose one,
  with plots: what a run that scored dev alone while training reports (tests_while_training)."""
  best = bool(checkpoint.steps(pathlib.Path(workdir) / "best"))
  return evaluate_checkpoint(config, workdir, best=best, extra=extra)
