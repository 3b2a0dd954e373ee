"""Checks of an experiment config and a workdir before a run does anything: every problem one
line naming the field as `--config.<field>=<value>` and what it must be, all of them listed.

`train`, `evaluate` and `demo` run these right after their flags are parsed: before a dataset is
opened, a model traced or compiled, or anything written (no workdir, no config.json). Without
them a negative num_steps trained nothing and evaluated a random model, log_every_steps=0 died
of a ZeroDivisionError after compiling, and a batch of 7 on 2 devices in a sharding error after
half a minute.

Fields a config written before them lacks are passed over (`evaluate` reads old config.json
files), so only the values present are checked.
"""

import difflib
import math
import numbers
import os
import pathlib

import jax

# Every choice a field takes comes from the module that applies it. These import JAX (the models,
# losses, train step, input pipeline): whoever checks a config is about to run it with JAX, and
# the one JAX-free importer, commands/exit_codes.py, imports this module only when it checks.
from pyramid_fas_jax import models, protocols
from pyramid_fas_jax.data import pipeline, splits
from pyramid_fas_jax.evaluation import acquisition, metrics, report, scorefile
from pyramid_fas_jax.files import provenance
from pyramid_fas_jax.models import conv_ops, heads
from pyramid_fas_jax.training import checkpoint, losses, optim, train_step


class ConfigError(ValueError):
  """A config that cannot run; the message has one line per problem."""


_MISSING = object()


def _get(config, path: str):
  node = config
  for part in path.split("."):
    if not hasattr(node, "keys") or part not in node:
      return _MISSING
    node = node[part]
  return node


def _is_int(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
  return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


class _Checker:
  """Collects one line per problem of `config`."""

  def __init__(self, config):
    self.config, self.lines = config, []

  def value(self, path):
    return _get(self.config, path)

  def problem(self, path, value, text):
    self.lines.append(f"--config.{path}={_shown(value)}: {text}")

  def int_at_least(self, path, low, why=""):
    v = self.value(path)
    if v is not _MISSING and not (_is_int(v) and v >= low):
      self.problem(path, v, f"must be an integer >= {low}{why}")

  def number_in(self, path, low, high, why=""):
    v = self.value(path)
    if v is not _MISSING and not (_is_number(v) and low <= v <= high):
      self.problem(path, v, f"must be a number in [{low}, {high}]{why}")

  def one_of(self, path, choices, why=""):
    v = self.value(path)
    if v is not _MISSING and v not in choices:
      self.problem(path, v, f"must be one of {', '.join(map(repr, choices))}{why}")


def _shown(value) -> str:
  if isinstance(value, tuple):
    return "'(" + ",".join(map(str, value)) + ")'"
  return "''" if value == "" else str(value)


def problems(config, *, device_count: int = 1, process_count: int = 1,
             training: bool = True) -> list[str]:
  """One line per problem of `config` for a run on `device_count` devices in `process_count`
  processes; `training` False checks only what evaluation reads."""
  c = _Checker(config)
  _data_problems(c)
  _input_problems(c)
  _model_problems(c)
  _eval_problems(c)
  batches = (("batch_size",) if training else ()) + ("eval_batch_size",)
  for path in batches:
    c.int_at_least(path, 1)
    v = c.value(path)
    if _is_int(v) and v >= 1:
      for count, what in ((device_count, "devices"), (process_count, "processes")):
        if v % count:
          c.problem(path, v, f"must divide by the {count} {what} it is split over; use a "
                    f"multiple of {count}")
          break
  if training:
    _training_problems(c)
  return c.lines


def _data_problems(c: _Checker) -> None:
  name, protocol = c.value("data.name"), c.value("data.protocol")
  if name is not _MISSING:
    try:
      module = protocols.for_dataset(name)
    except ValueError as e:
      c.problem("data.name", name, str(e))
      module = None
    known = getattr(module, "PROTOCOLS", None)
    if known is not None and protocol is not _MISSING and protocol not in known:
      close = difflib.get_close_matches(str(protocol), known, n=3)
      hint = (f"did you mean {' or '.join(close)}?" if close else
              f"its protocols: {', '.join(known)}")
      c.problem("data.protocol", protocol, f"not a protocol of {name}; {hint}")
  c.one_of("data.epoch_unit", splits.EPOCH_UNITS)
  for path, low, why in (("data.num_workers", 0, "0 reads in-process"), ("data.prefetch", 1, "")):
    v = c.value(path)
    if v is not _MISSING and not (_is_int(v) and (v >= low or v == pipeline.AUTO)):
      c.problem(path, v, f"must be an integer >= {low} ({why + ', ' if why else ''}"
                f"{pipeline.AUTO} chooses from the cores)")
  builder = c.value("data.builder_config")
  if builder is not _MISSING and not (isinstance(builder, str) and builder):
    c.problem("data.builder_config", builder, "must name a build ('tiny', 'small', 'default')")


def _input_problems(c: _Checker) -> None:
  c.int_at_least("input.size", 1)
  for path in ("input.mean", "input.std"):
    v = c.value(path)
    if v is _MISSING:
      continue
    if not (isinstance(v, (tuple, list)) and len(v) == 3 and all(map(_is_number, v))):
      c.problem(path, v, "must be 3 numbers, one per RGB channel")
    elif path == "input.std" and min(v) <= 0:
      c.problem(path, v, "must be positive (images are divided by it)")
  v = c.value("input.eval_scale")
  if v is not _MISSING and not (_is_number(v) and v > 0):
    c.problem("input.eval_scale", v, "must be a positive number (the face box's scale)")


def _model_problems(c: _Checker) -> None:
  c.one_of("model.backbone", sorted(models.BACKBONES))
  c.one_of("model.head", models.HEADS)
  c.one_of("model.loss_reduction", losses.LOSS_REDUCTIONS)
  c.one_of("model.spp_pool", heads.SPP_POOLS)
  c.one_of("model.conv_impl", conv_ops.IMPLS)
  c.number_in("model.theta", 0, 1, " (CDC's theta; 0 = plain convolution)")
  c.int_at_least("model.map_size", 1)
  head, backbone = c.value("model.head"), c.value("model.backbone")
  spec = models.HEADS.get(head) if isinstance(head, str) else None
  if spec is not None and spec.num_classes:
    c.int_at_least("model.num_classes", 2, " (live and at least one attack species)")
  reduction = c.value("model.loss_reduction")
  if spec is not None and reduction in losses.LOSS_REDUCTIONS and reduction not in spec.reductions:
    c.problem("model.loss_reduction", reduction, f"applies to mask BCE only; model.head "
              f"{head!r} reduces by the {' or '.join(spec.reductions)}: use {spec.reductions[0]}")
  scales = c.value("model.scales")
  if scales is _MISSING:
    return
  if not (isinstance(scales, (tuple, list)) and scales and all(
      _is_int(s) and s >= 1 for s in scales)):
    c.problem("model.scales", scales, "must be positive integers, largest first, e.g. '(8,4,2,1)'")
    return
  if spec is None:
    return
  # What the heads would refuse only when traced, after the data is loaded: the cheap part.
  family = models.BACKBONES[backbone][1] if backbone in models.BACKBONES else None
  map_size, size = c.value("model.map_size"), c.value("input.size")
  if family == "fcn" and spec.dense_map and scales[0] != map_size:
    c.problem("model.scales", scales, f"the first scale must be the predicted map's size, "
              f"model.map_size={map_size}")
  if spec.dense_map and any(scales[0] % s for s in scales):
    c.problem("model.scales", scales, f"every scale must divide the first, {scales[0]} (the "
              "coarser maps are average-pooled from it)")
  pooled = spec.pools(c.value("model.spp_pool")) not in (None, "max")
  if family == "classification" and pooled and _is_int(size) and size >= 1:
    side = _feature_map_size(backbone, size)
    if side is not None and any(side % s for s in scales):
      c.problem("input.size", size, f"gives {backbone} a {side}x{side} feature map, which "
                f"model.scales={_shown(scales)} cannot average-pool: every scale must divide the "
                f"map's side{_sizes_that_fit(backbone, size, scales)}")


def _feature_map_size(backbone, size):
  try:
    return models.feature_map_size(backbone, size)
  except (TypeError, ValueError):
    return None  # an input too small for the backbone: the trace says so itself


def _sizes_that_fit(backbone, size, scales) -> str:
  """', e.g. input.size=64 or 128': the nearest input sizes whose map every scale divides."""
  step = 256 // max(models.feature_map_size(backbone, 256), 1) * math.lcm(*scales)
  below, above = size // step * step, (size // step + 1) * step
  fits = [n for n in (below, above) if n >= step and not any(
      models.feature_map_size(backbone, n) % s for s in scales)]
  return f", e.g. input.size={' or '.join(map(str, fits))}" if fits else ""


def _eval_problems(c: _Checker) -> None:
  threshold = c.value("eval.threshold")
  if threshold is not _MISSING:
    value = report.threshold_value(threshold)
    if not (value in report.THRESHOLD_RULES or _is_number(value)):
      c.problem("eval.threshold", threshold, "must be dev_eer, test_eer or a finite number")
    elif value == "dev_eer":
      name, protocol = c.value("data.name"), c.value("data.protocol")
      try:
        no_dev = not protocols.has_dev(name, protocol)
      except Exception:
        no_dev = False  # a bad dataset or protocol is reported as such
      if no_dev:
        c.problem("eval.threshold", threshold, f"{name}/{protocol} has no dev set to take it "
                  "from: use test_eer (the paper's cross-dataset HTER, reported as chosen on "
                  "test) or a fixed number")
  c.one_of("eval.mode", report.MODES)
  if c.value("eval.mode") == "cdcn" and threshold not in (_MISSING, "dev_eer"):
    c.problem("eval.threshold", threshold, "mode cdcn fixes its own thresholds: use dev_eer")
  v = c.value("eval.video_agg")
  if v is not _MISSING and report.video_agg_value(v) not in (None, *scorefile.VIDEO_AGGREGATIONS):
    c.problem("eval.video_agg", v, "must be mean, median or none (frame level)")
  c.int_at_least("eval.bootstrap", 0, " (0: no confidence intervals)")
  c.one_of("eval.best_metric", metrics.BEST_METRICS, " (a dev metric, lower is better)")
  c.one_of("eval.failure_to_acquire", acquisition.RULES)
  during = c.value("eval.test_while_training")
  if during is not _MISSING:
    if not isinstance(during, bool):
      c.problem("eval.test_while_training", during, "must be True or False")


def _training_problems(c: _Checker) -> None:
  c.int_at_least("num_steps", 0, " (0: train num_epochs epochs)")
  steps, epochs = c.value("num_steps"), c.value("num_epochs")
  if (steps == 0 or steps is _MISSING) and epochs is not _MISSING and not (
      _is_number(epochs) and epochs > 0):
    c.problem("num_epochs", epochs, "must be positive (or set num_steps > 0)")
  c.int_at_least("log_every_steps", 1)
  c.int_at_least("checkpoint_every_steps", 1, " (a checkpoint is also saved at the end)")
  c.int_at_least("eval_every_steps", 0, " (0: evaluate only at the end)")
  c.int_at_least("keep_checkpoints", 1)
  c.int_at_least("seed", 0)
  c.one_of("dtype", train_step.DTYPES, " (the train step's compute dtype)")
  c.one_of("optim.name", optim.OPTIMIZERS)
  c.one_of("optim.schedule", optim.SCHEDULES)
  lr = c.value("optim.lr")
  if lr is not _MISSING and not (_is_number(lr) and lr >= 0):
    c.problem("optim.lr", lr, "must be a number >= 0")
  c.number_in("optim.momentum", 0, 1)
  for path in ("optim.weight_decay", "optim.lr_decay"):
    v = c.value(path)
    if v is not _MISSING and not (_is_number(v) and v >= 0):
      c.problem(path, v, "must be a number >= 0")
  c.int_at_least("optim.lr_step_epochs", 1)
  scale = c.value("aug.scale_range")
  if scale is not _MISSING and not (
      isinstance(scale, (tuple, list)) and len(scale) == 2 and all(map(_is_number, scale))
      and 0 < scale[0] <= scale[1]):
    c.problem("aug.scale_range", scale, "must be '(low,high)' with 0 < low <= high (the crop "
              "side over the face box's, e.g. '(0.8,1.3)')")
  for path in ("aug.brightness", "aug.contrast", "aug.saturation", "aug.cutout"):
    c.number_in(path, 0, 1)
  c.number_in("aug.cutout_size", 0.1, 1, " (the square's side over input.size)")
  v = c.value("aug.flip")
  if v is not _MISSING and not isinstance(v, bool):
    c.problem("aug.flip", v, "must be True or False")


def workdir_problem(workdir, *, must_exist: bool = False) -> str | None:
  """Why `workdir` cannot be written to (a file, read-only, under a file), or None."""
  path = pathlib.Path(workdir)
  if path.exists():
    if not path.is_dir():
      return f"--workdir={workdir}: is a file, not a directory; name a directory"
    if not os.access(path, os.W_OK | os.X_OK):
      return f"--workdir={workdir}: the directory is not writable; choose another or fix its " \
             "permissions"
    return None
  if must_exist:
    return f"--workdir={workdir}: does not exist; name a training run's directory"
  parent = path.absolute().parent
  while not parent.exists():
    parent = parent.parent
  if not parent.is_dir():
    return f"--workdir={workdir}: cannot be created: {parent} is a file"
  if not os.access(parent, os.W_OK | os.X_OK):
    return f"--workdir={workdir}: cannot be created: {parent} is not writable"
  return None


def foreign_results_problem(workdir) -> str | None:
  """Why `train` may not run in `workdir`: it holds the results of an evaluation of another
  model (a results.json that no run of its own wrote: `evaluate --checkpoint=X --workdir=DIR`
  of a checkpoint from elsewhere), which training would replace. None otherwise."""
  path = pathlib.Path(workdir)
  results = path / "results.json"
  if not results.is_file() or checkpoint.run_part(path) == checkpoint.RUN_WORKDIR:
    return None
  theirs = provenance.read(results)
  return (f"--workdir={workdir}: holds the evaluation of {provenance.describe(theirs)} "
          f"({results}), not a training run; train into another --workdir")


def check(config, workdir=None, *, training: bool = True, must_exist: bool = False,
          data: bool = False) -> None:
  """Raise ConfigError listing every problem of `config` (and of `workdir`, if given) for this
  JAX process set-up; then, with `data`, splits.DatasetNotBuiltError if its dataset is not
  built."""
  lines = problems(config, device_count=jax.device_count(), process_count=jax.process_count(),
                   training=training)
  if workdir is not None:
    found = [workdir_problem(workdir, must_exist=must_exist)]
    found += [foreign_results_problem(workdir)] if training else []
    lines = [line for line in found if line] + lines
  if lines:
    raise ConfigError("\n".join(lines))
  if data:
    splits.require_built(config.data)

