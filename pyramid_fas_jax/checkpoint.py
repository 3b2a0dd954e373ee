"""Model checkpoints: the model's state (params and BN statistics) as an Orbax item, with the
config that builds the model stored beside it as JSON.

This is the format `import-weights` writes and `predict` reads, and what `--config.init_from`
points to. Training checkpoints (optimizer, step, data iterator) hold the same `model` item.
"""

import json
import pathlib

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from pyramid_fas_jax import models

MODEL_ITEM = "model"
CONFIG_FILE = "config.json"


def flat_state(model) -> dict[str, nnx.Variable]:
  """{'backbone/layer1/0/conv1/kernel': variable, ...} of every variable in the model."""
  return {"/".join(map(str, path)): var for path, var in nnx.to_flat_state(nnx.state(model))}


def save_model(directory, model, config) -> pathlib.Path:
  """Write `model`'s state and `config` into `directory` (created; overwritten if present)."""
  directory = pathlib.Path(directory).absolute()
  directory.mkdir(parents=True, exist_ok=True)
  state = nnx.to_pure_dict(nnx.state(model))
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(directory / MODEL_ITEM, state, force=True)
  checkpointer.wait_until_finished()
  (directory / CONFIG_FILE).write_text(config.to_json_best_effort(indent=2) + "\n")
  return directory


def load_config(directory) -> ml_collections.ConfigDict:
  path = pathlib.Path(directory) / CONFIG_FILE
  if not path.exists():
    raise FileNotFoundError(f"{path} not found: {directory} is not a model checkpoint written by "
                            "pyramid-fas (import-weights, or a training run)")
  return ml_collections.ConfigDict(_tuples(json.loads(path.read_text())))


def _tuples(tree):
  # JSON has no tuples; configs use them for scales and statistics.
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


def _restore_target(x):
  # The arrays land where the model's live now: a checkpoint written by another topology (two
  # processes, eight GPUs) restores onto this one.
  sharding = getattr(x, "sharding", None) or jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding)


def restore_into(model, directory) -> None:
  """Load the model state saved in `directory` into `model`, which must have the same structure;
  a mismatch names every differing variable."""
  path = pathlib.Path(directory).absolute() / MODEL_ITEM
  if not path.exists():
    raise FileNotFoundError(f"no model state at {path}")
  state = nnx.state(model)
  target = jax.tree.map(_restore_target, nnx.to_pure_dict(state))
  checkpointer = ocp.StandardCheckpointer()
  saved = checkpointer.metadata(path)
  saved_tree = getattr(saved, "item_metadata", saved)
  _check_same_structure(target, saved_tree, path)
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
    raise ValueError("\n".join(lines))


def load_model(directory, config=None, *, train: bool = False):
  """(model, config) from a checkpoint directory; `config` defaults to the one stored there."""
  config = load_config(directory) if config is None else config
  model = models.build_model(config.model, nnx.Rngs(0))
  restore_into(model, directory)
  model.train() if train else model.eval()
  return model, config


class TrainCheckpointer:
  """Training checkpoints under `workdir/checkpoints/<step>/`: items `model`, `optimizer`, `data`
  (the grain iterator of every process) and `meta` (JSON). Saves are asynchronous; `close()`
  waits for them. `workdir/best/<step>/` keeps the model with the best dev metric.

  A step directory is usable as a model checkpoint (`predict --checkpoint`, `init_from`): it holds
  the `model` item; the config sits in the workdir, one level up.
  """

  def __init__(self, workdir, *, keep: int = 3, best_mode: str = "min"):
    workdir = pathlib.Path(workdir).absolute()
    self.manager = ocp.CheckpointManager(
        workdir / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=True),
        item_names=("model", "optimizer", "data", "meta"))
    self.best = ocp.CheckpointManager(
        workdir / "best",
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, create=True, best_fn=lambda m: m["dev_metric"], best_mode=best_mode,
            enable_async_checkpointing=True),
        item_names=("model", "meta"))

  def latest_step(self):
    return self.manager.latest_step()

  def save(self, step: int, model, optimizer, data_iterator, meta: dict, *, force=False) -> bool:
    import grain  # pylint: disable=g-import-not-at-top
    return self.manager.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model))),
        optimizer=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(optimizer))),
        data=grain.checkpoint.CheckpointSave(data_iterator),
        meta=ocp.args.JsonSave(meta)), force=force)

  def save_best(self, step: int, model, dev_metric: float, meta: dict) -> None:
    self.best.save(step, args=ocp.args.Composite(
        model=ocp.args.StandardSave(nnx.to_pure_dict(nnx.state(model))),
        meta=ocp.args.JsonSave(meta)), metrics={"dev_metric": float(dev_metric)}, force=True)

  def restore(self, step: int, model, optimizer, data_iterator) -> dict:
    """Restore `step` into model, optimizer and data iterator in place; return its meta."""
    import grain  # pylint: disable=g-import-not-at-top

    def abstract(module):
      return jax.tree.map(_restore_target, nnx.to_pure_dict(nnx.state(module)))

    restored = self.manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(abstract(model)),
        optimizer=ocp.args.StandardRestore(abstract(optimizer)),
        data=grain.checkpoint.CheckpointRestore(data_iterator),
        meta=ocp.args.JsonRestore()))
    for module, item in ((model, restored.model), (optimizer, restored.optimizer)):
      state = nnx.state(module)
      nnx.replace_by_pure_dict(state, item)
      nnx.update(module, state)
    return restored.meta

  def wait(self):
    self.manager.wait_until_finished()
    self.best.wait_until_finished()

  def close(self):
    self.manager.close()
    self.best.close()
