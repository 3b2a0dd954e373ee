"""Where a number came from: the provenance record every artefact carries, and the checks of the
readers that combine artefacts.

Every file a command writes that holds numbers of a model (results.json, eval/step_<N>.json,
score files, report.md, model.json and the ONNX model, predict's .npz, score's JSON) carries a
`record`:

  package  the pyramid-fas-jax version that wrote it
  model    fingerprint: a digest of the model's weights (names, dtypes, shapes and bytes of
           every parameter and batch statistic, models.fingerprint), so two copies of one
           checkpoint agree and two steps of one run do not; checkpoint: where it was loaded
           from; step
  config   fields: the config fields that change scores (SCORING_FIELDS, less IGNORED), and
           their digest
  data     the dataset, its builder config and build version, and the protocol (evaluation)
  ...      what a command adds (predict: its input; score: its score files' records)

Readers check what they combine: export takes a threshold only from results of the same model
fingerprint and scoring config (`require_same_model`); score refuses dev and test scores of two
models; the runtime refuses a model.json that is not the one sealed into its model.onnx; and
a command refuses to write over a file of another producer unless --overwrite (`check_replace`).
Plain JSON, no JAX: the runtime reads it too.
"""

import hashlib
import json
import os
import pathlib

import numpy as np

from pyramid_fas_jax import __version__, errors

KEY = "provenance"
# The config sections whose fields change what a model outputs or how its scores are rated.
SCORING_FIELDS = ("model", "input", "eval")
# Fields of those sections that change neither: how a convolution is computed, the training
# loss, the bootstrap's resamples (intervals only) and which checkpoint training keeps as best.
IGNORED = ("model.conv_impl", "model.loss_reduction", "eval.bootstrap", "eval.best_metric")


class ProvenanceError(errors.InputError, ValueError):
  """Artefacts of different models (or settings) combined, or an artefact of another producer
  about to be replaced."""


def _flat(tree, prefix="") -> dict:
  if isinstance(tree, dict):
    out = {}
    for key in sorted(tree):
      out.update(_flat(tree[key], f"{prefix}{key}."))
    return out
  return {prefix[:-1]: list(tree) if isinstance(tree, tuple) else tree}


def scoring_fields(config) -> dict:
  """{dotted field: value} of the config (a ConfigDict or its JSON tree) that change scores."""
  tree = json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else (
      config)
  fields = _flat({k: tree.get(k, {}) for k in SCORING_FIELDS})
  return {k: v for k, v in fields.items() if k not in IGNORED}


def digest(obj) -> str:
  """16 hex digits of the sha256 of `obj` as canonical JSON."""
  text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def record(*, fingerprint: str | None, checkpoint=None, step=None, config=None, data=None,
           **extra) -> dict:
  """The provenance of an artefact of the model `fingerprint` (see the module docstring); of
  no model where None (preprocess's crops)."""
  out = {"package": __version__}
  if fingerprint is not None:
    out["model"] = {"fingerprint": fingerprint, "step": step,
                    "checkpoint": None if checkpoint is None else os.fspath(checkpoint)}
  if config is not None:
    fields = scoring_fields(config)
    out["config"] = {"digest": digest(fields), "fields": fields}
  if data is not None:
    out["data"] = data
  out.update(extra)
  return out


def fingerprint_of(prov) -> str | None:
  model = prov.get("model") if isinstance(prov, dict) else None
  return model.get("fingerprint") if isinstance(model, dict) else None


def describe(prov) -> str:
  """One phrase naming what produced an artefact: its checkpoint and step, or its fingerprint."""
  if not isinstance(prov, dict):
    return "no recorded model"
  model = prov.get("model") or {}
  where = model.get("checkpoint")
  step = f" (step {model['step']})" if model.get("step") is not None else ""
  return (f"the model of {where}{step}" if where else "a model") + (
      f", fingerprint {model.get('fingerprint')}")


def summary(prov) -> str:
  """One line for a report: model fingerprint, checkpoint, config digest, data, package."""
  model, config, data = prov.get("model", {}), prov.get("config", {}), prov.get("data") or {}
  parts = [f"model {model.get('fingerprint')}"]
  if model.get("checkpoint"):
    parts.append(f"checkpoint {model['checkpoint']} step {model.get('step')}")
  if config:
    parts.append(f"scoring config {config.get('digest')}")
  if data:
    parts.append(f"data {data.get('dataset')} {data.get('version')} protocol "
                 f"{data.get('protocol')}")
  parts.append(f"pyramid-fas-jax {prov.get('package')}")
  return ", ".join(parts)


def differing(a: dict, b: dict) -> list[str]:
  """The dotted fields in which two scoring-field dicts differ, sorted."""
  return sorted(k for k in set(a) | set(b) if a.get(k, "<unset>") != b.get(k, "<unset>"))


def _shown(fields: list[str], a: dict, b: dict, limit: int = 4) -> str:
  shown = "; ".join(f"{k}: {json.dumps(a.get(k))} vs {json.dumps(b.get(k))}"
                    for k in fields[:limit])
  return shown + (f"; and {len(fields) - limit} more" if len(fields) > limit else "")


def require_same_model(theirs, ours, what: str, remedy: str) -> None:
  """Raise ProvenanceError unless `theirs` (an artefact's record, `what` names it) comes from
  the model and scoring config of `ours`. An artefact without a record cannot be tied to a model
  and is refused too."""
  if not isinstance(theirs, dict) or fingerprint_of(theirs) is None:
    raise ProvenanceError(f"{what} records no model provenance, so it cannot be tied to "
                          f"{describe(ours)}; {remedy}")
  if fingerprint_of(theirs) != fingerprint_of(ours):
    raise ProvenanceError(f"{what} comes from {describe(theirs)}, not {describe(ours)}; "
                          f"{remedy}")
  a = (theirs.get("config") or {}).get("fields")
  b = (ours.get("config") or {}).get("fields")
  if a is not None and b is not None and differing(a, b):
    fields = differing(a, b)
    raise ProvenanceError(f"{what} was produced with other settings than {describe(ours)} "
                          f"({_shown(fields, a, b)}); {remedy}")


def read(path) -> dict | None:
  """The record a file written by this package carries (JSON: its 'provenance' key; .npz: its
  'provenance' entry; a score file or report: its '# provenance {json}' line), None if none."""
  path = pathlib.Path(path)
  try:
    if path.suffix == ".npz":
      with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz[KEY])) if KEY in npz.files else None
    if path.suffix == ".json":
      obj = json.loads(path.read_bytes())
      return obj.get(KEY) if isinstance(obj, dict) else None
    with open(path, "rb") as f:
      head = f.read(1 << 20)
    for line in head.decode("utf-8", "replace").splitlines()[:40]:
      marker = f"# {KEY} "
      if line.startswith(marker):
        return json.loads(line[len(marker):])
  except (OSError, ValueError, KeyError, EOFError):
    return None
  return None


def header_line(prov: dict) -> str:
  """The line a text artefact (score file, report) carries its record in."""
  return f"# {KEY} {json.dumps(prov, sort_keys=True, default=str)}"


def as_npz_entry(prov: dict) -> np.ndarray:
  """The record as an .npz entry (a 0-d unicode array: loads without pickle)."""
  return np.asarray(json.dumps(prov, sort_keys=True, default=str))


def owner(prov) -> str | None:
  """The producer key of a record: what makes two artefacts replaceable by each other."""
  return prov.get("owner") if isinstance(prov, dict) else None


def check_replace(path, prov: dict, flag: str, overwrite: bool) -> bool:
  """Raise ProvenanceError if `path` exists and was not written by the same producer (its
  record's `owner` differs from `prov`'s, or it has no record: a file this package did not
  write there) unless `overwrite`. Returns whether an existing file will be replaced."""
  path = pathlib.Path(path)
  if not path.exists():
    return False
  if path.is_dir():
    raise ProvenanceError(f"--{flag}={path} is a directory; name the file to write")
  theirs = read(path)
  if overwrite or (theirs is not None and owner(theirs) == owner(prov)):
    return True
  what = ("was not written by pyramid-fas" if theirs is None
          else f"holds the output of {owner(theirs) or describe(theirs)}")
  raise ProvenanceError(f"--{flag}={path} exists and {what}, not of this {owner(prov)}; "
                        "choose another path, or pass --overwrite to replace it")
