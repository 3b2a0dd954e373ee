"""Model checkpoints: the model's state (params and BN statistics) as an Orbax item, with the
config that builds the model stored beside it as JSON.

Every checkpoint is self-describing: `predict`, `evaluate` and `--config.init_from` take any of
  an import-weights output     DIR/model/ and DIR/config.json (`save_model`);
  a training step              workdir/checkpoints/<N>/ and workdir/best/<N>/: the `model` item
                               beside optimizer/data/meta, and the run's config as the Orbax
                               JSON item `config` (`TrainCheckpointer`), written atomically with
                               the step by Orbax (process 0 writes JSON items);
and `load_config` also reads step directories written before steps held their config, from the
run's config.json two levels up.
"""

import datetime
import json
import pathlib
import re
import shutil

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils

from pyramid_fas_jax.training import distributed
from pyramid_fas_jax import models

MODEL_ITEM = "model"
CONFIG_ITEM = "config"
CONFIG_FILE = "config.json"
# The step directories of a run's two Orbax managers, under its workdir.
STEP_ROOTS = ("checkpoints", "best")
# Where a resumed run moves the unreadable steps it skipped (never deleted: the user's to look at).
UNREADABLE_DIR = "unreadable_checkpoints"


class CheckpointError(ValueError):
  """A checkpoint that cannot be used: none readable, or no config to rebuild its model."""


class ModelMismatchError(CheckpointError):
  """A readable checkpoint of another model (every step of a run would fail alike)."""


def config_json(config) -> dict:
  """The config as the JSON tree stored with checkpoints (tuples become lists)."""
  return json.loads(config.to_json_best_effort())


def flat_state(model) -> dict[str, nnx.Variable]:
  """{'backbone/layer1/0/conv1/kernel': variable, ...} of every variable in the model."""
  return {"/".join(map(str, path)): var for path, var in nnx.to_flat_state(nnx.state(model))}


def _training_contents(directory: pathlib.Path) -> str | None:
  """What of a training run `directory` is, if anything: the workdir or one of its steps."""
  if any((directory / d).is_dir() for d in STEP_ROOTS) or (directory / "metrics.jsonl").exists():
    return "a training run's workdir"
  if ((directory.parent.name in STEP_ROOTS and directory.name.isdigit())
      or (directory / "_CHECKPOINT_METADATA").exists()
      or any((directory / item).exists() for item in ("optimizer", "meta", "data"))):
    return "a training checkpoint step"
  return None


def check_model_output(directory, overwrite: bool = False) -> bool:
  """Raise CheckpointError unless `save_model` may write into `directory`: it must not exist,
  be empty, or, with `overwrite`, be a directory that is no part of a training run (then its
  model/ and config.json are replaced, anything else in it is left alone). A training run's
  workdir or step is refused even with `overwrite`: writing there would replace the run's
  config.json or mix the new model into its checkpoint, and deleting a run's checkpoints to
  make room is never what an import means. Returns whether something will be replaced."""
  directory = pathlib.Path(directory)
  if not directory.exists():
    return False
  if not directory.is_dir():
    raise CheckpointError(f"--output={directory} is a file; choose a directory for the checkpoint")
  entries = sorted(p.name for p in directory.iterdir())
  if not entries:
    return False
  kind = _training_contents(directory)
  if kind is not None:
    raise CheckpointError(
        f"--output={directory} is {kind}; a model checkpoint is never written into one, even "
        "with --overwrite (it would replace the run's config.json or checkpoint): choose "
        "another --output")
  if not overwrite:
    shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
    raise CheckpointError(
        f"--output={directory} exists and is not empty ({shown}); choose a new directory, or "
        "pass --overwrite to replace its model/ and config.json")
  return True


def save_model(directory, model, config) -> pathlib.Path:
  """Write `model`'s state and `config` into `directory` (created; its model/ and config.json
  are replaced if present: `import-weights` refuses an existing output unless --overwrite)."""
  directory = pathlib.Path(directory).absolute()
  directory.mkdir(parents=True, exist_ok=True)
  state = nnx.to_pure_dict(nnx.state(model))
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(directory / MODEL_ITEM, state, force=True)
  checkpointer.wait_until_finished()
  (directory / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2) + "\n")
  return directory


def config_sources(directory) -> list[pathlib.Path]:
  """Where `load_config` looks, in order: DIR/config.json (import-weights output, a workdir),
  the step directory's `config` item, and for a step written before steps held their config,
  workdir/config.json of the run holding checkpoints/<N> or best/<N>."""
  directory = pathlib.Path(directory).absolute()
  # JsonCheckpointHandler's file inside an item directory.
  sources = [directory / CONFIG_FILE, directory / CONFIG_ITEM / "metadata"]
  if directory.parent.name in STEP_ROOTS:
    sources.append(directory.parent.parent / CONFIG_FILE)
  return sources


def load_config(directory) -> ml_collections.ConfigDict:
  """The config that builds the model of the checkpoint `directory` (see `config_sources`)."""
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    raise CheckpointError(f"checkpoint directory {directory} does not exist")
  path = next((p for p in config_sources(directory) if p.is_file()), None)
  if path is None:
    raise CheckpointError(
        f"{directory} holds no config.json and no config item: not a model checkpoint written by "
        "pyramid-fas (an import-weights output, or a run's checkpoints/<step> or best/<step>); "
        "pass --config")
  try:
    tree = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CheckpointError(f"the config {path} is not valid JSON ({e}); pass --config") from e
  return ml_collections.ConfigDict(_tuples(tree))


def _tuples(tree):
  # JSON has no tuples; configs use them for scales and statistics.
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


def _restore_target(x, sharding=None):
  # The arrays land where the model's live now (or on `sharding`): a checkpoint written by
  # another topology (two processes, eight GPUs) restores onto this one. Leaves without a
  # sharding (host scalars) go to this process's first device.
  sharding = (sharding or getattr(x, "sharding", None)
              or jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
  return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


def restore_into(model, directory) -> None:
  """Load the model state saved in `directory` (its `model` item: an import-weights output or a
  training step directory) into `model`, which must have the same structure; a mismatch names
  every differing variable."""
  path = pathlib.Path(directory).absolute() / MODEL_ITEM
  if not path.exists():
    raise CheckpointError(f"no model state at {path}: not a model checkpoint (an import-weights "
                          "output, or a run's checkpoints/<step> or best/<step>)")
  state = nnx.state(model)
  # With several processes the state goes straight onto the mesh, replicated, where evaluation
  # and training put it: arrays committed to one device cannot be moved across hosts.
  sharding = None
  if jax.process_count() > 1:
    sharding = jax.sharding.NamedSharding(distributed.make_mesh(), jax.sharding.PartitionSpec())
  target = jax.tree.map(lambda x: _restore_target(x, sharding), nnx.to_pure_dict(state))
  checkpointer = ocp.StandardCheckpointer()
  saved = checkpointer.metadata(path)
  saved_tree = getattr(saved, "item_metadata", saved)
  _check_same_structure(target, saved_tree, path)
  distributed.barrier("restore_into")  # the restore's first cross-process transfer comes next
  restored = checkpointer.restore(path, target)
  nnx.replace_by_pure_dict(state, restored)
  nnx.update(model, state)


def _flatten(tree, prefix=()):
  if isinstance(tree, dict) or hasattr(tree, "items"):
    out = {}
    for k, v in tree.items():
      out.update(_flatten(v, prefix + (str(k),)))
    return out
  return {"/".join(prefix): tuple(getattr(tree, "shape", ()))}


def _check_same_structure(target, saved, path):
  want, have = _flatten(target), _flatten(saved)
  missing = sorted(set(want) - set(have))
  extra = sorted(set(have) - set(want))
  shapes = sorted(f"{k}: checkpoint {have[k]} vs model {want[k]}"
                  for k in set(want) & set(have) if tuple(have[k]) != tuple(want[k]))
  if missing or extra or shapes:
    lines = [f"the checkpoint at {path} does not fit this model:"]
    lines += [f"  missing from checkpoint: {k}" for k in missing]
    lines += [f"  not in model: {k}" for k in extra]
    lines += [f"  shape mismatch {s}" for s in shapes]
    raise ModelMismatchError("\n".join(lines))


def load_model(directory, config=None, *, train: bool = False):
  """(model, config) from a checkpoint directory; `config` defaults to the one stored there."""
  config = load_config(directory) if config is None else config
  model = models.build_model(config.model, nnx.Rngs(0))
  restore_into(model, directory)
  model.train() if train else model.eval()
  return model, config


def describe_failure(error: BaseException) -> str:
  """One line on why a checkpoint could not be read: the innermost explicit cause (TensorStore's
  error is raised from the file's, e.g. 'OUT_OF_RANGE: ... is not valid for value of size ...');
  implicit contexts are internals (json's StopIteration) and are not followed."""
  while error.__cause__ is not None:
    error = error.__cause__
  text = (str(error).strip().splitlines() or [""])[0].split(" See full TensorStore details")[0]
  text = text if len(text) <= 300 else text[:297] + "..."
  return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _all_processes(ok: bool) -> bool:
  """True iff `ok` on every process: every process must restore the same step."""
  if jax.process_count() == 1:
    return ok
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


class TrainCheckpointer:
  """Training checkpoints under `workdir/checkpoints/<step>/`: items `model`, `optimizer`, `data`
  (the grain iterator of every process), `meta` (JSON) and `config` (JSON: the run's config).
  Saves are asynchronous; `close()` waits for them. `workdir/best/<step>/` keeps the model with
  the best dev metric, with `meta` and `config`.

  Each step directory is a model checkpoint (`predict --checkpoint`, `evaluate --checkpoint`,
  `init_from`): restore_into reads its `model` item, load_config its `config` item.
  """

  def __init__(self, workdir, *, config=None, keep: int = 3, best_mode: str = "min"):
    workdir = pathlib.Path(workdir).absolute()
    self.workdir = workdir
    self._config = None if config is None else config_json(config)
    self.manager = ocp.CheckpointManager(
        workdir / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=True),
        item_names=("model", "optimizer", "data", "meta", CONFIG_ITEM))
    self.best = ocp.CheckpointManager(
        workdir / "best",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m["dev_metric"], best_mode=best_mode,
            enable_async_checkpointing=True),
        item_names=("model", "meta", CONFIG_ITEM))

  def latest_step(self):
    return self.manager.latest_step()

  def _config_item(self) -> dict:
    if self._config is None:
      return {}
    return {CONFIG_ITEM: ocp.args.JsonSave(self._config)}

  def save(self, step: int, model, optimizer, data_iterator, meta: dict, *, force=False) -> bool:
    import grain  # pylint: disable=g-import-not-at-top
    return self.manager.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model))),
        optimizer=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(optimizer))),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        meta=ocp.args.JsonSave(meta), **self._config_item()), force=force)

  def save_best(self, step: int, model, dev_metric: float, meta: dict) -> None:
    if step in self.best.all_steps():
      # A resumed run replaying steps its last checkpoint did not reach (a kill between the
      # best save and the checkpoint save, or an unreadable latest step skipped): this step's
      # model is being written again, so the older copy of the same step gives way.
      logging.info("best/%d was written before the run resumed from an earlier step; "
                   "replacing it with this run's step %d", step, step)
      self.best.delete(step)
    self.best.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model))),
        meta=ocp.args.JsonSave(meta), **self._config_item()),
                   metrics={"dev_metric": float(dev_metric)}, force=True)

  def restore(self, step: int, model, optimizer, data_iterator, sharding=None) -> dict:
    """Restore `step` into model, optimizer and data iterator in place; return its meta. With
    `sharding` (the run's replicated NamedSharding) the arrays are restored straight onto it:
    with several processes, arrays restored onto one device could not be moved there
    (device_put of committed arrays across hosts)."""
    import grain  # pylint: disable=g-import-not-at-top

    def abstract(module):
      return jax.tree.map(lambda x: _restore_target(x, sharding),
                          nnx.to_pure_dict(nnx.state(module)))

    restored = self.manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(abstract(model)),
        optimizer=ocp.args.StandardRestore(abstract(optimizer)),
        data=grain.checkpoint.CheckpointRestore(data_iterator),
        meta=ocp.args.JsonRestore()))
    if not isinstance(restored.meta, dict) or "step" not in restored.meta:
      raise ValueError(f"the meta item holds {restored.meta!r}, not the step's meta")
    for module, item in ((model, restored.model), (optimizer, restored.optimizer)):
      state = nnx.state(module)
      nnx.replace_by_pure_dict(state, item)
      nnx.update(module, state)
    return restored.meta

  def restore_latest(self, model, optimizer, data_iterator,
                     sharding=None) -> tuple[int | None, dict]:
    """Restore the newest readable step in place; return (step, its meta), or (None, {}) when
    there is no checkpoint (`sharding`: as for `restore`).

    A step that cannot be read (a truncated array file, an empty or garbled JSON item, a missing
    item) is skipped with a warning naming it and why, and the next older one is tried. Once one
    restores, the newer unreadable steps are moved to workdir/unreadable_checkpoints/ (never
    deleted: they are the user's to inspect) so that the run can write those step numbers again.
    If none is readable, CheckpointError lists every step tried and why, and nothing is moved.
    Model and optimizer are only updated by a step that restored completely; every process
    agrees on which step that is.
    """
    skipped = []
    distributed.barrier("restore_latest")
    for step in sorted(self.manager.all_steps(), reverse=True):
      self._check_process_count(step)
      try:
        meta, reason = self.restore(step, model, optimizer, data_iterator, sharding), None
      except Exception as e:  # pylint: disable=broad-except
        # Orbax and TensorStore raise bare Exceptions for unreadable files; whatever the
        # failure, an older step may still be intact.
        meta, reason = None, describe_failure(e)
      if not _all_processes(reason is None):
        reason = reason or "unreadable on another process"
        logging.warning("skipping checkpoint step %d (%s): %s", step,
                        self.manager.directory / str(step), reason)
        skipped.append((step, reason))
        continue
      self._move_aside([s for s, _ in skipped])
      return step, meta
    if skipped:
      raise CheckpointError(
          f"no readable checkpoint in {self.manager.directory}: "
          + "; ".join(f"step {s}: {r}" for s, r in skipped)
          + ". Move them away to start afresh, or fix the files")
    return None, {}

  def _check_process_count(self, step: int) -> None:
    """Refuse, in one line, a step written by another number of processes: each process saved
    its own data iterator position (data/process_<i>-of-<n>.json), so only n processes can
    resume it. Its model can still start a new run."""
    path = self.manager.directory / str(step)
    written = {int(m.group(1)) for f in (path / "data").glob("process_*-of-*.json")
               if (m := re.fullmatch(r"process_\d+-of-(\d+)\.json", f.name))}
    if len(written) == 1 and (n := written.pop()) != jax.process_count():
      raise CheckpointError(
          f"checkpoint step {step} ({path}) was written by {n} JAX process(es), this run has "
          f"{jax.process_count()}: its data iterator position is saved per process. Resume with "
          f"--num_processes={n}, or start a new run from its model with "
          f"--config.init_from={path}")

  def _move_aside(self, steps) -> None:
    if not steps:
      return
    if jax.process_index() == 0:
      stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
      for step in steps:
        target = self.workdir / UNREADABLE_DIR / str(step)
        if target.exists():
          target = target.with_name(f"{step}.{stamp}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(self.manager.directory / str(step)), str(target))
        logging.warning("moved the unreadable checkpoint step %d to %s; the run continues from "
                        "an earlier step and writes step %d again", step, target, step)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("pyramid_fas_unreadable_moved")
    self.manager.reload()

  def wait(self):
    self.manager.wait_until_finished()
    self.best.wait_until_finished()

  def close(self):
    self.manager.close()
    self.best.close()
