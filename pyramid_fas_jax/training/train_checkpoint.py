"""A run's training checkpoints: `TrainCheckpointer` saves and restores the whole training state
(model, optimizer, the grain iterator of every process, meta, the run's config) under
workdir/checkpoints/<step>/, and the best-on-dev model under workdir/best/<step>/.

Each step directory is also a model checkpoint (checkpoint.py: `predict --checkpoint`,
`evaluate --checkpoint`, `init_from`). A resume picks its step with checkpoint.restore_newest,
as `evaluate` does, and moves the newer unreadable steps aside (never deleted).
"""

import datetime
import pathlib
import re
import shutil

import jax
import orbax.checkpoint as ocp
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils

from pyramid_fas_jax.training import checkpoint, distributed

# Where a resumed run moves the unreadable steps it skipped (never deleted: the user's to look at).
UNREADABLE_DIR = "unreadable_checkpoints"


def remove_partial_saves(workdir) -> list[pathlib.Path]:
  """Removes the temporary directories of saves that a killed run left behind (Orbax writes a
  step into <step>.orbax-checkpoint-tmp-<time> and renames it once complete), each with a
  one-line note; returns them. Call it only while holding the run lock (files.lock): the lock
  proves that no other process is saving into this workdir now."""
  workdir = pathlib.Path(workdir)
  removed = sorted(p for root in (workdir / "checkpoints", workdir / "best") if root.is_dir()
                   for p in root.glob("*.orbax-checkpoint-tmp*"))
  for path in removed:
    shutil.rmtree(path, ignore_errors=True)
    logging.warning("removed %s, an incomplete checkpoint save of a run that was stopped "
                    "mid-save", path)
  return removed


class TrainCheckpointer:
  """Training checkpoints under `workdir/checkpoints/<step>/`: items `model`, `optimizer`, `data`
  (the grain iterator of every process), `meta` (JSON) and `config` (JSON: the run's config).
  Saves are asynchronous; `close()` waits for them. `workdir/best/<step>/` keeps the model with
  the best dev metric, with `meta` and `config`.

  Each step directory is a model checkpoint (`predict --checkpoint`, `evaluate --checkpoint`,
  `init_from`): checkpoint.restore_into reads its `model` item, load_config its `config` item.
  """

  def __init__(self, workdir, *, config=None, keep: int = 3, best_mode: str = "min"):
    workdir = pathlib.Path(workdir).absolute()
    self.workdir = workdir
    self._config = None if config is None else checkpoint.config_json(config)
    self.manager = ocp.CheckpointManager(
        workdir / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=True),
        item_names=("model", "optimizer", "data", "meta", checkpoint.CONFIG_ITEM))
    self.best = ocp.CheckpointManager(
        workdir / "best",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m["dev_metric"], best_mode=best_mode,
            enable_async_checkpointing=True),
        item_names=("model", "meta", checkpoint.CONFIG_ITEM))

  def latest_step(self):
    return self.manager.latest_step()

  def _config_item(self) -> dict:
    if self._config is None:
      return {}
    return {checkpoint.CONFIG_ITEM: ocp.args.JsonSave(self._config)}

  def save(self, step: int, model, optimizer, data_iterator, meta: dict, *, force=False) -> bool:
    import grain
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
    import grain

    def abstract(module):
      return jax.tree.map(lambda x: checkpoint.restore_target(x, sharding),
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

    The step is checkpoint.restore_newest's, as `evaluate`'s is: an unreadable one is skipped
    with a warning naming it and why, and the next older one is tried; a step written by another
    number of processes is refused (`_check_process_count`). Once one restores, the newer
    unreadable steps are moved to workdir/unreadable_checkpoints/ (never deleted: they are the
    user's to inspect) so that the run can write those step numbers again. If none is readable,
    CheckpointError lists every step tried and why, and nothing is moved. Model and optimizer
    are only updated by a step that restored completely.
    """
    distributed.barrier("restore_latest")

    def restore(step):
      self._check_process_count(step)
      return self.restore(step, model, optimizer, data_iterator, sharding)

    chosen = checkpoint.restore_newest(
        self.manager.directory, restore, self.manager.all_steps(),
        remedy=". Move them away to start afresh, or fix the files")
    if chosen is None:
      return None, {}
    step, meta, skipped = chosen
    self._move_aside(skipped)
    return step, meta

  def _check_process_count(self, step: int) -> None:
    """Refuse, in one line, a step written by another number of processes: each process saved
    its own data iterator position (data/process_<i>-of-<n>.json), so only n processes can
    resume it. Its model can still start a new run."""
    path = self.manager.directory / str(step)
    written = {int(m.group(1)) for f in (path / "data").glob("process_*-of-*.json")
               if (m := re.fullmatch(r"process_\d+-of-(\d+)\.json", f.name))}
    if len(written) == 1 and (n := written.pop()) != jax.process_count():
      raise checkpoint.MismatchError(
          f"checkpoint step {step} ({path}) was written by {n} JAX process(es), this run has "
          f"{jax.process_count()}: its data iterator position is saved per process. Resume with "
          f"--num_processes={n}, or start a new run from its model with "
          f"--config.init_from={path}")

  def _move_aside(self, steps) -> None:
    if not steps:
      return
    if jax.process_index() == 0:
      stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
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
