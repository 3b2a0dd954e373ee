"""Model checkpoints: the model's state (params and BN statistics) as an Orbax item, with the
config that builds the model stored beside it as JSON; which step of a run to restore.

Every checkpoint is self-describing: `predict`, `evaluate` and `--config.init_from` take any of
  an import-weights output     DIR/model/ and DIR/config.json (`save_model`);
  a training step              workdir/checkpoints/<N>/ and workdir/best/<N>/: the `model` item
                               beside optimizer/data/meta, and the run's config as the Orbax
                               JSON item `config` (train_checkpoint.TrainCheckpointer), written
                               atomically with the step by Orbax (process 0 writes JSON items);
and `load_config` also reads step directories written before steps held their config, from the
run's config.json two levels up. Every stored config is read through `migrate`, which fills in
the fields added to the config since it was written (MIGRATED), so the rest of the code reads
every field directly.

A run's step is chosen by `restore_newest` wherever one is restored without a step number:
`evaluate` (`restore_checkpoint`) and a resumed run (TrainCheckpointer.restore_latest) alike
skip an unreadable step with the same warning and try the next older one.
"""

import contextlib
import copy
import json
import logging as std_logging
import os
import pathlib
import shutil
import tempfile

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from flax import nnx
from jax.experimental import multihost_utils

from pyramid_fas_jax import models
from pyramid_fas_jax.files import atomic
from pyramid_fas_jax.training import distributed

MODEL_ITEM = "model"
CONFIG_ITEM = "config"
CONFIG_FILE = "config.json"
# The step directories of a run's two Orbax managers, under its workdir.
STEP_ROOTS = ("checkpoints", "best")
RUN_WORKDIR = "a training run's workdir"  # run_part's answer for a run's workdir
# Fields added to the config after runs and imports were stored, with the value that keeps such
# a stored config's behaviour (what the code did before the field existed); `migrate` fills them.
MIGRATED = (
    ("model.spp_pool", "avg"),              # SPP heads average-pooled before 'max' was offered
    ("model.conv_impl", "auto"),            # the default: how convolutions compute, not what
    ("model.loss_reduction", "mean"),       # the mask BCE was a mean before 'sum' was offered
    ("dtype", "float32"),                   # the step computed in float32 before bfloat16
    ("init_from", ""),                      # nothing to load (a resume loads its checkpoint)
    ("eval.video_agg", "mean"),             # predict and export scored a video by its mean
    ("eval.failure_to_acquire", "reject"),  # the default rule since failures were counted
    ("eval.test_while_training", True),     # every evaluation scored test before it was optional
)


class CheckpointError(ValueError):
  """A checkpoint that cannot be used: none readable, or no config to rebuild its model."""


class MismatchError(CheckpointError):
  """A readable checkpoint that does not fit here (another model, another number of processes):
  every step of the run would fail alike, so `restore_newest` tries no older one."""


class ModelMismatchError(MismatchError):
  """A readable checkpoint of another model."""


def config_json(config) -> dict:
  """The config as the JSON tree stored with checkpoints (tuples become lists)."""
  return json.loads(config.to_json_best_effort())


def run_part(directory) -> str | None:
  """What of a training run `directory` is, if anything: the workdir or one of its steps."""
  directory = pathlib.Path(directory)
  if any((directory / d).is_dir() for d in STEP_ROOTS) or (directory / "metrics.jsonl").exists():
    return RUN_WORKDIR
  if ((directory.parent.name in STEP_ROOTS and directory.name.isdigit())
      or (directory / "_CHECKPOINT_METADATA").exists()
      or any((directory / item).exists() for item in ("optimizer", "meta", "data"))):
    return "a training checkpoint step"
  return None


def check_model_output(directory, overwrite: bool = False) -> bool:
  """Raise CheckpointError unless import-weights may write its model checkpoint (save_model)
  into `directory`: it must not exist, be empty, or, with `overwrite`, be a directory that is no
  part of a training run (then its model/ and config.json are replaced, anything else in it is
  left alone). A training run's workdir or step is refused even with `overwrite`: writing there
  would replace the run's config.json or mix the new model into its checkpoint, and deleting a
  run's checkpoints to make room is never what an import means. Returns whether something will
  be replaced."""
  directory = pathlib.Path(directory)
  if not directory.exists():
    return False
  if not directory.is_dir():
    raise CheckpointError(f"--output={directory} is a file; choose a directory for the checkpoint")
  entries = sorted(p.name for p in directory.iterdir())
  if not entries:
    return False
  kind = run_part(directory)
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
  are replaced if present: `import-weights` refuses an existing output unless --overwrite,
  check_model_output)."""
  directory = pathlib.Path(directory).absolute()
  directory.mkdir(parents=True, exist_ok=True)
  state = nnx.to_pure_dict(nnx.state(model))
  # The new item and config are written whole into a temporary sibling and renamed into place,
  # so a kill leaves the old model/ or the new one (Orbax's own force=True deletes the old first).
  staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{MODEL_ITEM}.", suffix=".tmp", dir=directory))
  try:
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(staging / MODEL_ITEM, state)
    checkpointer.wait_until_finished()
    atomic.write_text(staging / CONFIG_FILE, config.to_json_best_effort(indent=2) + "\n")
    target = directory / MODEL_ITEM
    if target.exists():
      # Directories cannot be swapped in one rename: the old one steps aside into staging
      # (removed with it below) for the instant between the renames.
      target.rename(staging / "old")
    (staging / MODEL_ITEM).rename(target)
    os.replace(staging / CONFIG_FILE, directory / CONFIG_FILE)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
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
  return ml_collections.ConfigDict(_tuples(migrate(tree)))


def migrate(tree: dict) -> dict:
  """A copy of the stored config `tree` (JSON) with every MIGRATED field it lacks filled in,
  sections included; a current config comes back equal. Applied wherever a stored config is
  read: `load_config`, and the run's config a resume is compared with (changes.stored_config)."""
  tree = copy.deepcopy(tree)
  for field, value in MIGRATED:
    *sections, name = field.split(".")
    node = tree
    for section in sections:
      node = node.setdefault(section, {})
    node.setdefault(name, value)
  return tree


def _tuples(tree):
  # JSON has no tuples; configs use them for scales and statistics.
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


def restore_target(x, sharding=None):
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
  target = jax.tree.map(lambda x: restore_target(x, sharding), nnx.to_pure_dict(state))
  # The handler's tree metadata, not the checkpointer's: that one also reads the step metadata
  # file, which a training step keeps beside its items (<step>/_CHECKPOINT_METADATA), not in
  # model/, and warns "Metadata file does not exist" on every load of checkpoints/ and best/.
  handler = ocp.StandardCheckpointHandler()
  try:
    saved_tree = handler.metadata(path)
  finally:
    handler.close()
  _check_same_structure(target, saved_tree, path)
  checkpointer = ocp.StandardCheckpointer()
  distributed.barrier("restore_into")  # the restore's first cross-process transfer comes next
  with _no_asyncio_shutdown_log():
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
  # Built abstractly, then filled from the checkpoint: initialising it for real would draw every
  # parameter just to overwrite it, and XLA:CPU compiles each initialiser's shape apart (15-18 s
  # of a fresh process's start on 2 cores, before `evaluate` or `predict` scores anything).
  model = nnx.eval_shape(lambda: models.build_model(config.model, nnx.Rngs(0)))
  restore_into(model, directory)
  unfilled = [path for path, leaf in _flatten_leaves(nnx.state(model))
              if isinstance(leaf, jax.ShapeDtypeStruct)]
  if unfilled:
    raise CheckpointError(f"{directory}: the checkpoint left {', '.join(unfilled)} of the model "
                          "unset")
  model.train() if train else model.eval()
  return model, config


def _flatten_leaves(state):
  return [("/".join(str(getattr(k, "key", k)) for k in path), leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(
              nnx.to_pure_dict(state), is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))]


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



def steps(root) -> list[int]:
  """The step numbers under `root` (a run's checkpoints/ or best/), oldest first."""
  root = pathlib.Path(root)
  return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []


def checkpoint_dir(workdir, step: int | None = None, best: bool = False) -> pathlib.Path:
  """workdir/checkpoints/<step> (latest by default) or workdir/best/<step>."""
  root = pathlib.Path(workdir).absolute() / ("best" if best else "checkpoints")
  found = steps(root)
  if not found:
    raise FileNotFoundError(f"no checkpoints in {root}")
  if step is None:
    return root / str(found[-1])
  if step not in found:
    raise FileNotFoundError(f"no checkpoint for step {step} in {root}; there are {found}")
  return root / str(step)


@contextlib.contextmanager
def _no_asyncio_shutdown_log():
  """Orbax reads arrays in asyncio tasks. When one fails, asyncio.run's shutdown logs every
  sibling task's failure with its traceback ("unhandled exception during asyncio.run()
  shutdown"), depending on timing; the failure itself reaches the caller, which reports it in
  one line (describe_failure), so that log is noise on stderr."""
  log = std_logging.getLogger("asyncio")
  level = log.level
  log.setLevel(std_logging.CRITICAL)
  try:
    yield
  finally:
    log.setLevel(level)


def restore_newest(root, restore, candidates=None, *, remedy: str = ""):
  """(step, restore(step), the newer steps skipped) for the newest step of `root` (or of
  `candidates`) that `restore` reads on every process; None where there is no step.

  A step that cannot be read (a truncated array file, an empty or garbled JSON item, a missing
  item) is skipped with a warning naming it and why, and the next older one is tried; a
  MismatchError (another model, another process count) stops the search, since every step
  would fail alike. If none is readable, CheckpointError lists every step tried and why, then
  `remedy`. Every process agrees on the step, so `restore` must leave nothing changed when it
  fails.
  """
  root = pathlib.Path(root)
  skipped = []
  for step in sorted(steps(root) if candidates is None else candidates, reverse=True):
    try:
      with _no_asyncio_shutdown_log():
        value, reason = restore(step), None
    except MismatchError:
      raise
    except Exception as e:
      # Orbax and TensorStore raise bare Exceptions for unreadable files; whatever the
      # failure, an older step may still be intact.
      value, reason = None, describe_failure(e)
    if not _all_processes(reason is None):
      reason = reason or "unreadable on another process"
      logging.warning("skipping checkpoint step %d (%s): %s", step, root / str(step), reason)
      skipped.append((step, reason))
      continue
    return step, value, [s for s, _ in skipped]
  if skipped:
    raise CheckpointError(f"no readable checkpoint in {root}: "
                          + "; ".join(f"step {s}: {r}" for s, r in skipped) + remedy)
  return None


def restore_checkpoint(config, workdir, step: int | None = None, best: bool = False):
  """(model of `config`, step) of a training checkpoint of `workdir` (see `checkpoint_dir`):
  without `step`, the newest readable one (`restore_newest`; nothing is moved: evaluating leaves
  the run as it is)."""
  if step is not None:
    return load_model(checkpoint_dir(workdir, step, best), config)[0], step
  root = checkpoint_dir(workdir, best=best).parent
  step, model, _ = restore_newest(root, lambda s: load_model(root / str(s), config)[0])
  return model, step
