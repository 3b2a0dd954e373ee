"""Scores images, videos and folders with an exported ONNX model, without JAX.

`pyramid-fas export --format=onnx` writes model.onnx and model.json; this module reads both and
runs the model on onnxruntime. What it feeds the network is what `predict` feeds it: the
builders' face crop (deploy/media.py, faces/preprocess.py: MTCNN, median-smoothed boxes,
context crop), then evaluation's crop of it (input.eval_scale x the box) and the normalisation
model.json states. It imports neither jax, flax nor tensorflow-datasets (tests/test_export.py
checks), so a deployment installs the `runtime` extra and not the training stack.

  model = runtime.Model("exported/")
  outputs = model.score("face.jpg")   # what `predict` writes: score, maps, source, video_score...
"""

import json
import math
import pathlib
import types

import numpy as np

from pyramid_fas_jax.deploy import media as media_lib
from pyramid_fas_jax.faces import preprocess

MODEL_JSON = "model.json"   # export.MODEL_JSON; export.py imports JAX, this module must not


def pixels(params, images: np.ndarray) -> np.ndarray:
  """Normalised network inputs back to uint8 RGB (what the network saw, for display)."""
  unit = images * np.asarray(params.std, np.float32) + np.asarray(params.mean, np.float32)
  return np.clip(np.round(unit * 255.0), 0, 255).astype(np.uint8)


class Model:
  """An exported ONNX model and its model.json."""

  def __init__(self, directory, threads: int = 0):
    try:
      import onnxruntime as ort
    except ModuleNotFoundError as e:
      raise ModuleNotFoundError("onnxruntime is not installed: pip install "
                                "'pyramid-fas-jax[runtime]'") from e

    directory = pathlib.Path(directory)
    path = directory / MODEL_JSON
    if not path.is_file():
      raise FileNotFoundError(f"--model={directory}: no {MODEL_JSON}; write one with "
                              "`pyramid-fas export --format=onnx --output=DIR`")
    self.meta = json.loads(path.read_text())
    if self.meta.get("format") != "onnx":
      raise ValueError(f"--model={directory}: a {self.meta.get('format')!r} export; the runtime "
                       "runs ONNX exports (pyramid-fas export --format=onnx)")
    try:
      self._read_meta()
    except (KeyError, TypeError, ValueError, IndexError) as e:
      raise ValueError(f"--model={directory}: {MODEL_JSON} has a missing or invalid field "
                       f"({type(e).__name__}: {e}); export it again (pyramid-fas export)") from e
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    self.session = ort.InferenceSession(str(directory / self.meta["file"]), options,
                                        providers=["CPUExecutionProvider"])
    self.output_names = [o.name for o in self.session.get_outputs()]

  def _read_meta(self) -> None:
    meta_in = self.meta["input"]
    self.input_name = meta_in["name"]
    self.input_params = types.SimpleNamespace(
        size=int(meta_in["shape"][1]), mean=tuple(meta_in["mean"]), std=tuple(meta_in["std"]),
        eval_scale=float(self.meta["face_crop"]["eval_scale"]))
    self.threshold = float(self.meta["threshold"]["value"])
    self.threshold_source = self.meta["threshold"]["source"]
    self.video_aggregation = self.meta["video_aggregation"]
    # json reads NaN and Infinity; a NaN threshold would call every face an attack.
    numbers = [self.threshold, self.input_params.eval_scale, *self.input_params.mean,
               *self.input_params.std]
    if not all(math.isfinite(v) for v in numbers):
      raise ValueError(f"threshold.value, input.mean, input.std and face_crop.eval_scale must "
                       f"be finite numbers, got {numbers}")
    if len(self.input_params.mean) != 3 or len(self.input_params.std) != 3 or min(
        self.input_params.std) <= 0 or self.input_params.size < 1:
      raise ValueError("input.mean and input.std need 3 values each, std > 0, a size >= 1")

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

  def load(self, path, settings: preprocess.Settings = preprocess.Settings()) -> media_lib.Media:
    """The network inputs of every sampled frame with a face of the files `path` names."""
    return media_lib.load(path, self.input_params, settings)

  def score(self, path, settings: preprocess.Settings = preprocess.Settings(),
            batch_size: int = 32) -> dict[str, np.ndarray]:
    """What `pyramid-fas predict` writes for `path`: every output per frame, and per file."""
    media = self.load(path, settings)
    outputs = self(media.images, batch_size)
    return outputs | media_lib.outputs(media, outputs["score"], self.video_aggregation)
