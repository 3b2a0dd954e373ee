"""pyramid-fas predict --checkpoint=DIR | --model=DIR --input=PATH --output=OUT.npz [--config=...]

--checkpoint runs the model in JAX; --model runs an ONNX export of it (`pyramid-fas export`) on
onnxruntime, without JAX (pyramid_fas_jax.deploy.runtime), reading the normalisation and threshold
from its model.json. Both write the same file.

Writes every named output of the model (score, logit, mask_<s>, depth_<s>, features, ...) to an
.npz, one row per image. --input is one of:
  a .npy           float32 NHWC array (or one HWC image) fed to the network exactly as given,
                   i.e. already normalised ((pixel / 255 - config.input.mean) / .std); an
                   integer array (pixels), values far outside what normalising gives, or a
                   NaN/inf is refused;
  an image or a video (.png, .jpg, .jpeg, .bmp, ...; .avi, .mov, .mp4, ...), or a directory of
                   them: every sampled frame (--frame_step, --max_frames) gets the dataset
                   builders' face crop (MTCNN box smoothed over frames, 1.5 x context) and then
                   evaluation's crop and normalisation (data.augment.eval_image), so it is
                   scored as evaluation scores a stored example (deploy/media.py).
                   --face_detector=blazeface finds faces ~10x faster, its boxes calibrated
                   onto MTCNN's (faces/blazeface.py); with --model the default is the detector
                   the export's model.json names (MTCNN unless it names another).
For images and videos the .npz also holds, per row, `source` (the file) and `frame` (its frame
index, 0 for an image); per file with at least one face, `video_source` and `video_score` (the
mean of its frame scores, or the median where config.eval.video_agg is 'median'); and
`no_face_source` / `no_face_frame`: the sampled frames in which no face was found, which have no
row. A line per file (frames scored, frames without a face, its score) is printed, and the
frames without a face in a warning, as is a video that ends before its header's frame count. A
truncated or corrupt image is refused, naming it. So is, before it is decoded, a file over the
limits of faces/limits.py (--max_pixels per image or frame, --max_decoded_mb for the whole
input; frames per video by $PYRAMID_FAS_MAX_VIDEO_FRAMES).

--batch_size=auto (the default) runs the largest power of two up to 32 (8 on CPU, where a larger
batch is no faster) whose memory, XLA's account of the compiled forward, fits what the device
has free (models/memory.py); a given --batch_size that does not fit is refused before anything
runs, naming both figures, unless --allow_batch_over_memory. The batch and its estimate are
printed before it runs.

The .npz's `provenance` entry (JSON, files/provenance.py) names the model (fingerprint,
checkpoint or export), its scoring config and the input. --config with fields that change what
the model computes (model.*, input.*, eval.video_agg) other than the checkpoint's stored config
is refused, naming them, unless --allow_config_change (the provenance then lists them). An
--output holding another model's or input's predictions, or a file predict did not write, is
refused unless --overwrite.
"""

import pathlib
import sys

import numpy as np
from absl import flags
from ml_collections import config_flags

# JAX (checkpoint, inference, compile_cache) is imported for --checkpoint only: --model runs on a
# deployment's runtime extra, which has no JAX.
from pyramid_fas_jax.commands import common, exit_codes
from pyramid_fas_jax.deploy import media as media_lib
from pyramid_fas_jax.faces import limits as limits_lib
from pyramid_fas_jax.faces import preprocess
from pyramid_fas_jax.files import atomic, provenance

# This run's flags: define_flags binds them.
_CONFIG = _CHECKPOINT = _MODEL = _INPUT = _OUTPUT = _BATCH = _STEP = _MAX = None
_MAX_PIXELS = _MAX_DECODED = _ALLOW = _OVERWRITE = _DETECTOR = _ALLOW_MEMORY = None
# --model with --batch_size=auto: onnxruntime gives no memory account, so the CPU cap of 'auto'
# in models/memory.py (CPU_CAP, measured there; not imported: --model runs without JAX).
_RUNTIME_BATCH = 8


class _BatchParser(flags.ArgumentParser):
  """--batch_size: 'auto' (None) or a positive integer."""
  syntactic_help = "'auto' or a positive integer"

  def parse(self, argument):
    if argument is None or str(argument).strip().lower() == "auto":
      return None
    try:
      value = int(argument)
    except (TypeError, ValueError):
      raise ValueError(f"{argument!r} is neither 'auto' nor an integer") from None
    if value < 1:
      raise ValueError("must be 'auto' or a positive integer")
    return value

  def flag_type(self):
    return "'auto' or int"


def define_flags(flag_values: flags.FlagValues) -> None:
  global _CONFIG, _CHECKPOINT, _MODEL, _INPUT, _OUTPUT, _BATCH, _STEP, _MAX
  global _MAX_PIXELS, _MAX_DECODED, _ALLOW, _OVERWRITE, _DETECTOR, _ALLOW_MEMORY
  fv = flag_values
  _CONFIG = config_flags.DEFINE_config_file(
      "config", None, "model config; defaults to the one stored in the checkpoint",
      flag_values=fv, lock_config=True)
  _CHECKPOINT = flags.DEFINE_string(
      "checkpoint", None, "model checkpoint directory: an import-weights output, or a run's "
      "checkpoints/<step> or best/<step>", flag_values=fv)
  _MODEL = flags.DEFINE_string("model", None, "instead of --checkpoint: an ONNX export's "
                               "directory (pyramid-fas export --format=onnx), run without JAX",
                               flag_values=fv)
  _INPUT = flags.DEFINE_string(
      "input", None, "a .npy (float32 NHWC, normalised), an image, a video, or a directory of "
      "images and videos", flag_values=fv)
  _OUTPUT = flags.DEFINE_string("output", None, "output .npz", flag_values=fv)
  _BATCH = flags.DEFINE(
      _BatchParser(), "batch_size", "auto", "images per forward pass; auto: --checkpoint, the "
      f"largest power of two up to 32 (on CPU {_RUNTIME_BATCH}) whose estimated memory fits; "
      f"--model, {_RUNTIME_BATCH}. A given batch whose estimate does not fit is refused",
      flag_values=fv)
  _ALLOW_MEMORY = flags.DEFINE_bool(
      "allow_batch_over_memory", False, "--checkpoint: run a --batch_size whose estimated "
      "memory exceeds what is available, rather than refusing it", flag_values=fv)
  # The defaults are the 'default' build's sampling: a video is scored on the frames a build of
  # it would store.
  _STEP = flags.DEFINE_integer("frame_step", 5, "videos: keep every k-th frame", lower_bound=1,
                               flag_values=fv)
  _MAX = flags.DEFINE_integer("max_frames", 30,
                              "videos: at most this many frames, spread evenly (0 = all)",
                              lower_bound=0, flag_values=fv)
  _MAX_PIXELS = flags.DEFINE_integer(
      "max_pixels", None, "images and videos: refuse an image or frame of more pixels, before "
      f"decoding it (default ${limits_lib.ENV['max_pixels']}, else {limits_lib.MAX_PIXELS:,})",
      lower_bound=1, flag_values=fv)
  _MAX_DECODED = flags.DEFINE_float(
      "max_decoded_mb", None, "images and videos: refuse an input whose decoded frames come to "
      f"more MiB (default ${limits_lib.ENV['max_decoded_bytes']}, else "
      f"{limits_lib.MAX_DECODED_MB})", lower_bound=1, flag_values=fv)
  _ALLOW = flags.DEFINE_bool(
      "allow_config_change", False, "--checkpoint: run with a --config whose model, input or "
      "video aggregation differs from the checkpoint's stored config (recorded in the output)",
      flag_values=fv)
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace an --output that holds another "
                                 "model's or input's predictions", flag_values=fv)
  _DETECTOR = common.define_face_detector_flag(
      fv, default=None, what="images and videos: the face detector",
      default_is="mtcnn; with --model, the one its model.json names")
  flags.mark_flags_as_required(["input", "output"], flag_values=fv)
  flags.mark_flags_as_mutual_exclusive(["checkpoint", "model"], required=True, flag_values=fv)


_WARNING = "pyramid-fas predict: warning:"
_AS_IMAGES = ("the .npy path feeds the network as given, so it holds normalised float32 images, "
              "(pixel / 255 - config.input.mean) / config.input.std; pass the images themselves "
              "(.png, .jpg, a video, or a directory of them) to have them face-cropped and "
              "normalised as evaluation does")


def _load_npy(path: pathlib.Path, input_params) -> np.ndarray:
  """The array of a .npy input, refused where it cannot be what the network expects: pixels
  (an integer array, or values beyond what normalising any pixel gives) or NaN/inf."""
  size = input_params.size
  images = np.load(path)
  if images.ndim == 3:
    images = images[None]
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"input {path}: expected (N, H, W, 3) or (H, W, 3), got {images.shape}")
  if images.shape[1:3] != (size, size):
    raise ValueError(f"input {path}: images are {images.shape[1]}x{images.shape[2]} but the model "
                     f"is configured for {size}x{size} (config.input.size)")
  if not np.issubdtype(images.dtype, np.floating):
    raise ValueError(f"input {path}: a {images.dtype} array, i.e. pixels, not network inputs; "
                     + _AS_IMAGES)
  bad = np.argwhere(~np.isfinite(images))
  if bad.size:
    raise ValueError(f"input {path}: the element at index {tuple(bad[0].tolist())} is "
                     f"{images[tuple(bad[0])]}; every element must be finite")
  # Normalising pixels in [0, 1] gives [(0 - mean) / std, (1 - mean) / std] per channel; allow
  # a whole pixel range of slack either side (resampling overshoot, other crops), no more.
  mean, std = np.asarray(input_params.mean), np.asarray(input_params.std)
  low, high = (-1 - mean) / std, (2 - mean) / std
  outside = (images < low) | (images > high)
  if outside.any():
    i = tuple(np.argwhere(outside)[0].tolist())
    raise ValueError(f"input {path}: {images[i]:.4g} at index {i} is far outside the normalised "
                     f"range of channel {i[-1]} ([{(0 - mean[i[-1]]) / std[i[-1]]:.3g}, "
                     f"{(1 - mean[i[-1]]) / std[i[-1]]:.3g}]; 0-255 pixels?); " + _AS_IMAGES)
  if images.min() >= 0 and images.max() <= 1 and (mean > 0).any():
    print(f"{_WARNING} {path} lies in [0, 1], as unnormalised pixels do; the network sees it"
          " as given (normalised inputs have negative values)", file=sys.stderr)
  return images.astype(np.float32)


def _summarise(media: media_lib.Media, outputs: dict, how: str) -> None:
  scores = dict(zip(outputs["video_source"].tolist(), outputs["video_score"].tolist()))
  for file in media.files:
    scored = int((media.sources == file).sum())
    score = f"{how} score {scores[file]:.4f}" if file in scores else "no score"
    print(f"{file}: {scored} frames scored, {len(media.missing(file))} without a face, {score}")
  for truncation in media.truncated:
    print(f"{_WARNING} {truncation}", file=sys.stderr)
  if media.no_face:
    listed = "; ".join(f"{file} frames {media.missing(file)}" for file in media.files
                       if media.missing(file))
    print(f"{_WARNING} no face found in {len(media.no_face)} frames (no rows): {listed}",
          file=sys.stderr)


# Fields that change what predict computes from the same weights and input.
_PREDICT_FIELDS = ("model.", "input.", "eval.video_agg")


def _config_change(checkpoint_dir, config) -> list[str]:
  """The fields of `config` that change predictions and differ from the checkpoint's stored
  config (none where the checkpoint stores none)."""
  from pyramid_fas_jax.training import checkpoint
  try:
    stored = checkpoint.load_config(checkpoint_dir)
  except checkpoint.CheckpointError:
    return []
  changed = provenance.differing(provenance.scoring_fields(stored),
                                 provenance.scoring_fields(config))
  return [k for k in changed if k.startswith(_PREDICT_FIELDS)]


def _checkpoint_forward(path: pathlib.Path):
  """(forward, input params, video aggregation, provenance) of --checkpoint (JAX)."""
  from pyramid_fas_jax import models
  from pyramid_fas_jax.models import inference
  from pyramid_fas_jax.training import checkpoint, compile_cache
  compile_cache.enable()
  changed = _config_change(_CHECKPOINT.value, _CONFIG.value) if _CONFIG.value else []
  if changed and not _ALLOW.value:
    raise provenance.ProvenanceError(
        f"--config differs from the config stored in --checkpoint={_CHECKPOINT.value} in "
        f"{', '.join(changed)}, so the model would score differently from how it was trained "
        "and evaluated; drop those overrides, or pass --allow_config_change (the output then "
        "records them)")
  model, config = checkpoint.load_model(_CHECKPOINT.value, _CONFIG.value)
  ckpt = pathlib.Path(_CHECKPOINT.value).absolute()
  fingerprint = models.fingerprint(model)
  prov = provenance.record(
      fingerprint=fingerprint, checkpoint=ckpt, config=config,
      step=int(ckpt.name) if ckpt.name.isdigit() else None,
      owner=f"predict of model {fingerprint} on {path.absolute()}",
      **({"config_changed_from_checkpoint": changed} if changed else {}))
  # The batch's line (its estimate against the memory available) is printed before it runs.
  forward = lambda images, batch_size: inference.predict(
      model, images, batch_size, allow_over_memory=_ALLOW_MEMORY.value, report=print)
  return forward, config.input, media_lib.video_aggregation(config), prov


def main(argv):
  del argv
  exit_codes.exit_if_outputs_clash(
      "pyramid-fas predict", {"input": _INPUT.value, "checkpoint": _CHECKPOINT.value,
                              "model": _MODEL.value}, {"output": _OUTPUT.value})
  path = pathlib.Path(_INPUT.value)
  media = None
  try:
    if _MODEL.value is not None:
      if _CONFIG.value is not None:
        raise ValueError("--config applies to --checkpoint; an export's model.json fixes its "
                         "preprocessing (export again to change it)")
      from pyramid_fas_jax.deploy import runtime
      forward = runtime.Model(_MODEL.value, face_detector=_DETECTOR.value)
      detector = forward.face_detector
      input_params, how = forward.input_params, forward.video_aggregation
      of_model = forward.meta[provenance.KEY]
      prov = dict(of_model, export=str(pathlib.Path(_MODEL.value).absolute()),
                  owner=f"predict of model {provenance.fingerprint_of(of_model)} on "
                        f"{path.absolute()}")
    else:
      forward, input_params, how, prov = _checkpoint_forward(path)
      detector = _DETECTOR.value or "mtcnn"
    prov["input"] = str(path.absolute())
    provenance.check_replace(_OUTPUT.value, prov, "output", _OVERWRITE.value)
    if not path.exists():
      raise FileNotFoundError(f"input {path} does not exist")
    if path.is_file() and path.suffix.lower() == ".npy":
      images = _load_npy(path, input_params)
    else:
      prov["face_detector"] = detector
      settings = preprocess.Settings(
          frame_step=_STEP.value, max_frames=_MAX.value, face_detector=detector,
          limits=limits_lib.Limits.from_env(_MAX_PIXELS.value, _MAX_DECODED.value))
      media = media_lib.load(path, input_params, settings)
      images = media.images
  # OSError: missing files, unreadable images and videos; ModuleNotFoundError: --model without
  # onnxruntime.
  except (ValueError, OSError, ModuleNotFoundError) as e:
    exit_codes.usage_error("pyramid-fas predict", e)
  outputs = forward(images, _BATCH.value or (_RUNTIME_BATCH if _MODEL.value else None))
  if media is not None:
    outputs |= media_lib.outputs(media, outputs["score"], how)
    _summarise(media, outputs, how)
  out = pathlib.Path(_OUTPUT.value)
  atomic.save_npz(out, **outputs, **{provenance.KEY: provenance.as_npz_entry(prov)})
  print(f"wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))
