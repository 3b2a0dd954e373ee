"""Scores images, videos and folders with an exported ONNX model, without JAX.

`pyramid-fas export --format=onnx` writes model.onnx and model.json; this module reads both and
runs the model on onnxruntime. What it feeds the network is what `predict` feeds it: the
builders' face crop (deploy/media.py, faces/preprocess.py: median-smoothed boxes, context crop)
with the face detector model.json names (face_crop.face_detector; MTCNN where it names none, as
exports before the field did; `Model(face_detector=...)` overrides it), then evaluation's crop
of it (input.eval_scale x the box) and the normalisation model.json states. It imports neither
jax, flax nor tensorflow-datasets (tests/test_export.py checks), so a deployment installs the
`runtime` extra and not the training stack.

  model = runtime.Model("exported/")
  outputs = model.score("face.jpg")   # what `predict` writes: score, maps, source, video_score...

An export is checked once, when it is loaded: a model.json that is not JSON, lacks a field or
holds one of the wrong type or value (a NaN threshold, a std of 0), and a model.onnx that
onnxruntime cannot load (truncated, not ONNX) or whose input is not the one model.json names,
are ModelFileError, naming the file and field and saying to export again. So is a model.json
that is not the one the export sealed into its model.onnx (`_check_sealed`): its `file_digest`
is not model.onnx's sha256 (the ONNX file was swapped), or a field differs from the copy in the
ONNX's metadata (model.json was edited: a mean, a threshold), named.
"""

import dataclasses
import json
import math
import pathlib
import types

import numpy as np

from pyramid_fas_jax import errors
from pyramid_fas_jax.deploy import media as media_lib
from pyramid_fas_jax.evaluation import scorefile
from pyramid_fas_jax.faces import face, preprocess
from pyramid_fas_jax.files import cache

MODEL_JSON = "model.json"   # export.MODEL_JSON; export.py imports JAX, this module must not
SEALED_KEY = "pyramid_fas.model_json"  # the ONNX metadata key export seals model.json under


def pixels(params, images: np.ndarray) -> np.ndarray:
  """Normalised network inputs back to uint8 RGB (what the network saw, for display)."""
  unit = images * np.asarray(params.std, np.float32) + np.asarray(params.mean, np.float32)
  return np.clip(np.round(unit * 255.0), 0, 255).astype(np.uint8)


class ModelFileError(errors.InputError, ValueError):
  """An export's model.json or model file that cannot be used as it is."""


def _number(value, low=-math.inf, above=None) -> bool:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
    return False
  return value >= low and (above is None or value > above)


# model.json field -> (what it must be, the check); a dotted path into the JSON.
_FIELDS = {
    "format": ("'onnx' (the runtime runs ONNX exports)", lambda v: v == "onnx"),
    "file": ("the model file's name", lambda v: isinstance(v, str) and v and "/" not in v),
    "input.name": ("a string", lambda v: isinstance(v, str) and v),
    "input.shape": ("['batch', size, size, 3] with size >= 1",
                    lambda v: isinstance(v, list) and len(v) == 4 and _number(v[1], 1)
                    and isinstance(v[1], int) and v[2] == v[1] and v[3] == 3),
    "input.mean": ("3 finite numbers", lambda v: isinstance(v, list) and len(v) == 3
                   and all(map(_number, v))),
    "input.std": ("3 finite numbers > 0", lambda v: isinstance(v, list) and len(v) == 3
                  and all(_number(x, above=0) for x in v)),
    "face_crop.eval_scale": ("a finite number > 0", lambda v: _number(v, above=0)),
    "outputs.score": ("the score output's entry", lambda v: isinstance(v, dict)),
    "threshold.value": ("a finite number", _number),
    "threshold.source": ("a string", lambda v: isinstance(v, str)),
    "provenance.model.fingerprint": ("the exported model's fingerprint",
                                     lambda v: isinstance(v, str) and v),
    "video_aggregation": (f"one of {', '.join(scorefile.VIDEO_AGGREGATIONS)}",
                          lambda v: v in scorefile.VIDEO_AGGREGATIONS),
}
_MISSING = object()


def _again(directory, meta) -> str:
  checkpoint = meta.get("checkpoint") if isinstance(meta, dict) else None
  return (f"export it again: pyramid-fas export --checkpoint={checkpoint or 'CHECKPOINT'} "
          f"--format=onnx --output={directory}")


def read_meta(directory: pathlib.Path) -> dict:
  """The model.json of export `directory`, every field the runtime reads checked."""
  path = directory / MODEL_JSON
  if not path.is_file():
    raise FileNotFoundError(f"--model={directory}: no {MODEL_JSON}; write one with "
                            "`pyramid-fas export --format=onnx --output=DIR`")
  try:
    meta = json.loads(path.read_text())
  except (UnicodeDecodeError, ValueError) as e:
    raise ModelFileError(f"{path}: not valid JSON ({e}); {_again(directory, None)}") from e
  if not isinstance(meta, dict):
    raise ModelFileError(f"{path}: not a JSON object; {_again(directory, None)}")
  for field, (what, ok) in _FIELDS.items():
    value = meta
    for key in field.split("."):
      value = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
    if value is _MISSING:
      raise ModelFileError(f"{path}: no field {field} ({what}); {_again(directory, meta)}")
    if not ok(value):
      if field == "format":  # another kind of export, not a broken one
        raise ModelFileError(f"--model={directory}: a {value!r} export; the runtime runs ONNX "
                             "exports (pyramid-fas export --format=onnx)")
      raise ModelFileError(f"{path}: {field} is {json.dumps(value)}, not {what}; "
                           f"{_again(directory, meta)}")
  detector = recorded_detector(meta)
  if detector not in face.DETECTORS:
    raise ModelFileError(f"{path}: face_crop.face_detector is {json.dumps(detector)}, not one "
                         f"of {', '.join(face.DETECTORS)}; {_again(directory, meta)}")
  return meta


def recorded_detector(meta: dict):
  """The face detector model.json names; exports made before it named one used MTCNN."""
  return meta["face_crop"].get("face_detector", "mtcnn")


def _differences(a, b, prefix="") -> list[str]:
  """Dotted paths at which two JSON trees differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    return [d for k in sorted(set(a) | set(b))
            for d in _differences(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{prefix}{k}.")]
  return [] if a == b else [prefix[:-1]]


def _check_sealed(directory: pathlib.Path, meta: dict, file: pathlib.Path, sealed) -> None:
  """Raise ModelFileError unless model.json is the one sealed into `file` (see the module
  docstring); `sealed` is the ONNX metadata's copy (a JSON string) or None."""
  path = directory / MODEL_JSON
  digest = meta.get("file_digest")
  if not isinstance(digest, str):
    raise ModelFileError(f"{path}: no field file_digest, so it cannot be tied to {file.name} "
                         f"(an export of an older version, or written by hand); "
                         f"{_again(directory, meta)}")
  if cache.sha256(file) != digest:
    raise ModelFileError(f"{file}: not the file {MODEL_JSON} was exported with (its sha256 "
                         f"differs from file_digest): the model was replaced; "
                         f"{_again(directory, meta)}")
  try:
    original = json.loads(sealed) if sealed is not None else None
  except ValueError:
    original = None
  if not isinstance(original, dict):
    raise ModelFileError(f"{file}: holds no sealed {MODEL_JSON} in its metadata ({SEALED_KEY}); "
                         f"{_again(directory, meta)}")
  edited = _differences({k: v for k, v in meta.items() if k != "file_digest"}, original)
  if edited:
    more = f" and {len(edited) - 5} more" if len(edited) > 5 else ""
    raise ModelFileError(f"{path}: {', '.join(edited[:5])}{more} differ from what the export "
                         f"wrote (sealed in {file.name}): edited after the export; "
                         f"{_again(directory, meta)}")


class Model:
  """An exported ONNX model and its model.json; faces are found with the detector model.json
  names unless `face_detector` (face.DETECTORS) overrides it."""

  def __init__(self, directory, threads: int = 0, face_detector: str | None = None):
    try:
      import onnxruntime as ort
    except ModuleNotFoundError as e:
      raise ModuleNotFoundError("onnxruntime is not installed: pip install "
                                "'pyramid-fas-jax[runtime]'") from e

    directory = pathlib.Path(directory)
    self.meta = read_meta(directory)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    file = directory / self.meta["file"]
    if not file.is_file():
      raise ModelFileError(f"{file}: missing (model.json's file); {_again(directory, self.meta)}")
    try:
      self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own types (InvalidProtobuf, Fail, ...)
      raise ModelFileError(f"{file}: onnxruntime cannot load it ({str(e).splitlines()[0][:100]}"
                           f"): truncated or not ONNX; {_again(directory, self.meta)}") from e
    _check_sealed(directory, self.meta, file,
                  self.session.get_modelmeta().custom_metadata_map.get(SEALED_KEY))
    inputs = [i.name for i in self.session.get_inputs()]
    if inputs != [self.meta["input"]["name"]]:
      raise ModelFileError(f"{file}: its inputs are {inputs} but {MODEL_JSON} says "
                           f"{self.meta['input']['name']!r}: not the model of that "
                           f"{MODEL_JSON}; {_again(directory, self.meta)}")
    self.output_names = [o.name for o in self.session.get_outputs()]
    if "score" not in self.output_names:
      raise ModelFileError(f"{file}: has no output 'score' (its outputs: {self.output_names}); "
                           f"{_again(directory, self.meta)}")
    meta_in = self.meta["input"]
    self.input_name = meta_in["name"]
    self.input_params = types.SimpleNamespace(
        size=int(meta_in["shape"][1]), mean=tuple(meta_in["mean"]), std=tuple(meta_in["std"]),
        eval_scale=float(self.meta["face_crop"]["eval_scale"]))
    self.threshold = float(self.meta["threshold"]["value"])
    self.threshold_source = self.meta["threshold"]["source"]
    self.video_aggregation = self.meta["video_aggregation"]
    self.face_detector = face.check_detector(face_detector or recorded_detector(self.meta))

  def __call__(self, images: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Every named output on float32 NHWC normalised `images`, `batch_size` at a time."""
    images = np.asarray(images, np.float32)
    size = self.input_params.size
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
      raise ValueError(f"expected float32 images of shape (N, {size}, {size}, 3), got "
                       f"{images.shape}")
    chunks = [self.session.run(None, {self.input_name: images[i:i + batch_size]})
              for i in range(0, len(images), batch_size)]
    return {name: np.concatenate([c[k] for c in chunks])
            for k, name in enumerate(self.output_names)}

  def settings(self, settings: preprocess.Settings = preprocess.Settings()
               ) -> preprocess.Settings:
    """`settings` with this model's face detector."""
    return dataclasses.replace(settings, face_detector=self.face_detector)

  def load(self, path, settings: preprocess.Settings = preprocess.Settings()) -> media_lib.Media:
    """The network inputs of every sampled frame with a face of the files `path` names (faces
    found by this model's detector, whatever `settings` names)."""
    return media_lib.load(path, self.input_params, self.settings(settings))

  def score(self, path, settings: preprocess.Settings = preprocess.Settings(),
            batch_size: int = 32) -> dict[str, np.ndarray]:
    """What `pyramid-fas predict` writes for `path`: every output per frame, and per file."""
    media = self.load(path, settings)
    outputs = self(media.images, batch_size)
    return outputs | media_lib.outputs(media, outputs["score"], self.video_aggregation)
