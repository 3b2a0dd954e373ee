"""pyramid-fas predict --checkpoint=DIR --input=PATH --output=OUT.npz [--config=...]

Writes every named output of the model (score, logit, mask_<s>, depth_<s>, features, ...) to an
.npz. A .npy input is a float32 NHWC array (or one HWC image) fed to the network exactly as given,
i.e. already normalised.
"""

import pathlib
import sys

import numpy as np
from absl import flags
from ml_collections import config_flags

from pyramid_fas_jax import checkpoint, inference

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "model config; defaults to the one stored in the checkpoint", lock_config=True)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "model checkpoint directory")
_INPUT = flags.DEFINE_string("input", None, "input .npy (float32, NHWC, normalised)")
_OUTPUT = flags.DEFINE_string("output", None, "output .npz")
_BATCH = flags.DEFINE_integer("batch_size", 32, "images per forward pass")
flags.mark_flags_as_required(["checkpoint", "input", "output"])


def _load_input(path: pathlib.Path, size: int) -> np.ndarray:
  if not path.exists():
    raise FileNotFoundError(f"input {path} does not exist")
  if path.suffix.lower() != ".npy":
    raise ValueError(f"input {path}: only .npy arrays are supported so far (float32 NHWC, "
                     "normalised); images and videos come with the face-crop preprocessing")
  images = np.load(path)
  if images.ndim == 3:
    images = images[None]
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"input {path}: expected (N, H, W, 3) or (H, W, 3), got {images.shape}")
  if images.shape[1:3] != (size, size):
    raise ValueError(f"input {path}: images are {images.shape[1]}x{images.shape[2]} but the model "
                     f"is configured for {size}x{size} (config.input.size)")
  return images.astype(np.float32)


def main(argv):
  del argv
  try:
    model, config = checkpoint.load_model(_CHECKPOINT.value, _CONFIG.value)
    images = _load_input(pathlib.Path(_INPUT.value), config.input.size)
  except (ValueError, FileNotFoundError) as e:
    print(f"predict: {e}", file=sys.stderr)
    sys.exit(2)
  outputs = inference.predict(model, images, _BATCH.value)
  out = pathlib.Path(_OUTPUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  np.savez(out, **outputs)
  print(f"wrote {out}: " + ", ".join(f"{k} {v.shape}" for k, v in outputs.items()))
