"""What a resumed run may change in its config, and the stored config's history.

A workdir with checkpoints belongs to the config in its config.json. `train` on it compares the
new config with the stored one field by field (dotted names: `optim.lr`, `eval.threshold`)
before anything is built or written:

  harmless fields (HARMLESS)   pass, and the log lists them: eval.* (how dev/test are scored),
                               eval_every_steps, eval_batch_size, log_every_steps,
                               checkpoint_every_steps, keep_checkpoints; num_steps and
                               num_epochs (to extend or shorten a run: the lr schedules count
                               epochs, not the total); init_from (a resumed run loads nothing
                               from it); data.data_dir (the same build, moved or mounted
                               elsewhere); model.conv_impl (the same convolutions computed
                               another way, equal to float rounding)
  any other field              refused: ConfigChangedError names every changed field, old ->
                               new. It changes what is trained (model.*, optim.*, batch_size,
                               data.name/protocol/builder_config, input.*, augmentation, seed)
                               or the data iterator's saved state (data.num_workers: grain
                               restores a state with the worker count that saved it; -1, the
                               default, is resolved once and stored, and on a resume means the
                               stored count).
                               `train --allow_config_change=PATTERN[,PATTERN]` (fnmatch over
                               the dotted names, e.g. optim.lr or 'optim.*') lets the named
                               fields through, at the user's risk (e.g. a second stage at a
                               lower lr).
  a field only one side has    logged, not refused: a field added to the code since the run
                               started (or removed from it). The stored config is read through
                               checkpoint.migrate first, which fills the fields added since
                               with the values the run had (checkpoint.MIGRATED), so those are
                               compared like any other.

When the config does change, the stored config.json is kept as config.<UTC time>.json before the
new one is written: every config the run trained under stays in the workdir.
"""

import datetime
import fnmatch
import json
import pathlib

import jax
from absl import logging

from pyramid_fas_jax.files import atomic
from pyramid_fas_jax.training import checkpoint

HARMLESS = ("eval.*", "eval_every_steps", "eval_batch_size", "log_every_steps",
            "checkpoint_every_steps", "keep_checkpoints", "num_steps", "num_epochs", "init_from",
            "data.data_dir", "model.conv_impl")


class ConfigChangedError(ValueError):
  """A resume whose config differs from the run's stored one in fields that are not allowed."""


def flatten(tree, prefix: str = "") -> dict:
  """{'optim.lr': 0.001, 'model.scales': [8, 4], ...} of a JSON config tree."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict) and value:
      out.update(flatten(value, name + "."))
    else:
      out[name] = value
  return out


def diff(old: dict, new: dict):
  """(changed {field: (old, new)}, only_old {field: old}, only_new {field: new}) of two flat
  configs."""
  changed = {k: (old[k], new[k]) for k in sorted(old.keys() & new.keys()) if old[k] != new[k]}
  only_old = {k: old[k] for k in sorted(old.keys() - new.keys())}
  only_new = {k: new[k] for k in sorted(new.keys() - old.keys())}
  return changed, only_old, only_new


def _matches(field: str, patterns) -> bool:
  return any(fnmatch.fnmatchcase(field, p) for p in patterns)


def _show(value) -> str:
  return json.dumps(value)


def _has_checkpoints(workdir: pathlib.Path) -> bool:
  root = workdir / "checkpoints"
  return root.is_dir() and any(p.name.isdigit() for p in root.iterdir())


def _stored(workdir: pathlib.Path) -> dict | None:
  """The run's stored config: config.json, else the newest step's config item."""
  sources = [workdir / checkpoint.CONFIG_FILE]
  root = workdir / "checkpoints"
  if root.is_dir():
    steps = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    sources += [p / checkpoint.CONFIG_ITEM / "metadata" for p in reversed(steps)]
  for path in sources:
    try:
      tree = json.loads(path.read_text())
    except (OSError, ValueError):
      continue
    return checkpoint.migrate(tree)
  return None


def stored_config(workdir) -> dict | None:
  """The config (a JSON tree, migrated: checkpoint.migrate) of the run in `workdir`: config.json,
  else the newest step's; None where there is none."""
  return _stored(pathlib.Path(workdir))


def check_resume(config, workdir, allow=()) -> None:
  """Raise ConfigChangedError if `workdir` holds checkpoints of a config that differs from
  `config` in a field neither HARMLESS nor matched by a pattern of `allow`; log the changes that
  pass. Reads only: nothing in the workdir is written."""
  workdir = pathlib.Path(workdir)
  if not _has_checkpoints(workdir):
    return
  stored = _stored(workdir)
  if stored is None:
    logging.warning("%s has checkpoints but no readable config.json: the config cannot be "
                    "compared with the one that wrote them", workdir)
    return
  from pyramid_fas_jax.data import pipeline
  # data.num_workers / prefetch -1 (auto) mean the run's own stored values on a resume.
  config = pipeline.resolve_auto(config, stored)
  changed, only_old, only_new = diff(flatten(stored), flatten(checkpoint.config_json(config)))
  refused = [k for k in changed if not _matches(k, HARMLESS) and not _matches(k, allow)]
  if refused:
    lines = [f"--workdir={workdir} holds checkpoints of another config: {len(refused)} field(s) "
             f"changed ({', '.join(refused)}); train in a new --workdir, or rerun with the run's "
             f"own config ({workdir / checkpoint.CONFIG_FILE}), or pass "
             f"--allow_config_change={','.join(refused)} to resume with the change anyway"]
    lines += [f"  {k}: {_show(changed[k][0])} -> {_show(changed[k][1])}" for k in refused]
    raise ConfigChangedError("\n".join(lines))
  for k, (old, new) in changed.items():
    logging.warning("resuming with a changed config field %s: %s -> %s", k, _show(old), _show(new))
  for k, value in only_new.items():
    logging.warning("config field %s is not in the run's stored config (added since the run "
                    "started); resuming with %s", k, _show(value))
  for k, value in only_old.items():
    logging.warning("the run's stored config has a field %s = %s that this code no longer has",
                    k, _show(value))


def write_config(config, workdir) -> None:
  """Write workdir/config.json (process 0), first keeping a different stored one as
  config.<UTC time>.json."""
  if jax.process_index() != 0:
    return
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / checkpoint.CONFIG_FILE
  text = config.to_json_best_effort(indent=2) + "\n"
  if path.is_file():
    old = path.read_text()
    try:
      same = json.loads(old) == json.loads(text)
    except ValueError:  # an unreadable config.json is kept too
      same = False
    if same:
      return
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    kept = workdir / f"config.{stamp}.json"
    atomic.write_text(kept, old)
    logging.info("the run's previous config.json is kept as %s", kept)
  atomic.write_text(path, text)
