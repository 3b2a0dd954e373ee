"""pyramid-fas export --checkpoint=DIR --format=onnx|stablehlo --output=DIR [--results=JSON]

Writes the model of a checkpoint (a run's checkpoints/<step> or best/<step>, or an import-weights
output) as OUTPUT/model.onnx (jax2onnx, ONNX opset 21, dynamic batch) or OUTPUT/model.stablehlo
(jax.export, dynamic batch; jax.export.deserialize runs it without the model code), and beside it
OUTPUT/model.json: input size, RGB order, mean/std, the builders' face crop (MTCNN, context
factor, crop size) and the face detector runtimes crop with (--face_detector: mtcnn, the
builders', or blazeface, ~10x faster, boxes calibrated onto MTCNN's), every output's name and
shape, score semantics (higher = live) and the decision threshold with its source. The
threshold is --threshold if given, else the test threshold of --results (an evaluate
results.json or eval/step_<N>.json: dev EER by default), else that of the run's own
eval/step_<N>.json of this checkpoint, else 0.5, model.json saying which. A threshold is taken
only from results of this checkpoint's model and scoring config (their provenance says so);
results of another model, step or setting are refused. An OUTPUT holding an export of another
model is refused unless --overwrite. `pyramid-fas predict --model=OUTPUT` and `pyramid-fas
serve --model=OUTPUT` run the ONNX export without JAX, and refuse a model.json edited after the
export or a model.onnx swapped for another.
"""

import os

from absl import flags

from pyramid_fas_jax.commands import common, exit_codes
from pyramid_fas_jax.deploy import export as export_lib
from pyramid_fas_jax.training import checkpoint

# This run's flags: define_flags binds them.
_CHECKPOINT = _FORMAT = _OUTPUT = _RESULTS = _THRESHOLD = _OVERWRITE = _DETECTOR = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _CHECKPOINT, _FORMAT, _OUTPUT, _RESULTS, _THRESHOLD, _OVERWRITE, _DETECTOR
  _CHECKPOINT = flags.DEFINE_string(
      "checkpoint", None, "model checkpoint directory: an import-weights output, or a run's "
      "checkpoints/<step> or best/<step>", flag_values=flag_values)
  _FORMAT = flags.DEFINE_enum("format", "onnx", list(export_lib.FORMATS), "artefact to write",
                              flag_values=flag_values)
  _OUTPUT = flags.DEFINE_string("output", None, "directory for the model and model.json",
                                flag_values=flag_values)
  _RESULTS = flags.DEFINE_string(
      "results", None, "evaluate's results.json (or eval/step_<N>.json) to take the decision "
      "threshold from", flag_values=flag_values)
  _THRESHOLD = flags.DEFINE_float("threshold", None, "a fixed decision threshold (overrides "
                                  "--results)", flag_values=flag_values)
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace an export of another model in "
                                 "--output", flag_values=flag_values)
  _DETECTOR = common.define_face_detector_flag(
      flag_values, what="the face detector model.json names for `predict --model` and `serve` "
      "to crop faces with")
  flags.mark_flags_as_required(["checkpoint", "output"], flag_values=flag_values)


def main(argv):
  del argv
  inputs = {"checkpoint": _CHECKPOINT.value, "results": _RESULTS.value}
  # The directory and the files it writes there: --results=DIR/model.json with --output=DIR
  # would be replaced.
  for output in ("", export_lib.MODEL_JSON, export_lib.FILES[_FORMAT.value]):
    exit_codes.exit_if_outputs_clash("pyramid-fas export", inputs,
                                     {"output": os.path.join(_OUTPUT.value, output) if output
                                                else _OUTPUT.value})
  try:
    meta = export_lib.export(_CHECKPOINT.value, _FORMAT.value, _OUTPUT.value,
                             results=_RESULTS.value, threshold=_THRESHOLD.value,
                             overwrite=_OVERWRITE.value, face_detector=_DETECTOR.value)
  except (ValueError, OSError, checkpoint.CheckpointError) as e:
    exit_codes.usage_error("pyramid-fas export", e)
  outputs = ", ".join(f"{k} {tuple(v['shape'])}" for k, v in meta["outputs"].items())
  print(f"wrote {_OUTPUT.value}/{meta['file']} and {export_lib.MODEL_JSON}: input "
        f"{tuple(meta['input']['shape'])}, outputs {outputs}; threshold "
        f"{meta['threshold']['value']:.6g} ({meta['threshold']['source']})")
