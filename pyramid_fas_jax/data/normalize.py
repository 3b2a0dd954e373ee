"""A batch as it crosses to the device -> what the network and the losses read, computed inside
the jitted train step and the eval-mode forward pass (train_step.py, models/inference.py).

The host sends the maps as uint8, a quarter of their float32 bytes:
  image  uint8 (B, H, W, 3)  RGB after the crop, flip and resize (augment.warp)
  depth  uint8 (B, H, W)     the depth label * 255, as stored
  mask   uint8 (B, H, W)     0/1
and, in training batches whose config asks for them (AUGMENT_KEYS), the random parameters of
the colour jitter and Cutout, drawn on the host from the example's grain generator (augment.py),
so the stream stays a function of (seed, position) and resumes exactly:
  jitter        float32 (B, 3)  brightness, contrast, saturation factors
  jitter_order  int32 (B, 3)    the order they apply in, indices into JITTER_OPS, -1 = none
  cutout        int32 (B, 4)    the square (y0, y1, x0, x1) set to 0 after normalising; empty
                                (all 0) where the example draws none

`device_batch` turns these into float32: image (pixel / 255 - input.mean) / input.std, depth in
[0, 1], mask 0/1. Exactness: a uint8 maps through a 256-entry table that numpy computes with the
same float32 operations the host used to apply to every pixel, so without colour jitter
(evaluation, predict, and training with aug.brightness = contrast = saturation = 0) the batch
is bitwise the one the host used to normalise, on every backend: a lookup leaves the compiler
no arithmetic to reorder or contract. Colour jitter makes non-integer pixels, so it runs here,
in float32 after the table's [0, 1]; it and the normalisation after it agree with the host's
numpy computation to float rounding (the contrast's image mean sums in another order, the
compiler may fuse a multiply-add and divide by a reciprocal): within 1e-5 of the normalised
values (tests/test_normalize.py). Cutout's square is exactly 0, as the host's mean-filled square
became after normalising. Float images (batches made by hand, already normalised) pass through.
"""

import jax.numpy as jnp
import numpy as np

from pyramid_fas_jax.data import pixel_table

AUGMENT_KEYS = ("jitter", "jitter_order", "cutout")
JITTER_OPS = ("brightness", "contrast", "saturation")
# ITU-R 601 luma, the grey that saturation blends towards.
GREY = (0.299, 0.587, 0.114)


def normalise(images, mean, std):
  """uint8 RGB (..., 3) -> float32 (pixel / 255 - mean) / std: numpy in, numpy out (the host's
  eval_image); a jax array in, a jax array out (inside jit). Both read pixel_table's table."""
  if isinstance(images, np.ndarray):
    return pixel_table.normalise(images, mean, std)
  if images.dtype != np.uint8:
    raise TypeError(f"normalise takes uint8 images, got {images.dtype}")
  return jnp.asarray(pixel_table.image_table(mean, std))[images.astype(jnp.int32), jnp.arange(3)]


def model_images(images, params):
  """What a forward pass feeds the network: uint8 images normalised with `params` (.mean, .std
  of config.input); float images, already normalised, unchanged."""
  if images.dtype != jnp.uint8:
    return images
  _require(params)
  return normalise(images, tuple(params.mean), tuple(params.std))


def _require(params) -> None:
  if params is None:
    raise ValueError("uint8 images need the config's input.mean and input.std to be normalised; "
                     "pass config.input")


def device_batch(batch: dict, params) -> dict:
  """The float32 batch the train step reads, from one as the host sends it (module docstring):
  image normalised (jittered and cut out where the batch carries those parameters), depth in
  [0, 1], mask 0/1; the augmentation parameters are consumed. `params` has .mean and .std."""
  out = {k: v for k, v in batch.items() if k not in AUGMENT_KEYS}
  image = batch["image"]
  if image.dtype == jnp.uint8 and "jitter" in batch:
    _require(params)
    unit = jnp.asarray(pixel_table.unit_table())[image.astype(jnp.int32)]
    x = _jitter(unit, batch["jitter"], batch["jitter_order"])
    out["image"] = ((x - jnp.asarray(params.mean, jnp.float32))
                    / jnp.asarray(params.std, jnp.float32))
  else:
    out["image"] = model_images(image, params)
  if "cutout" in batch:
    out["image"] = _cutout(out["image"], batch["cutout"])
  if "depth" in batch and batch["depth"].dtype == jnp.uint8:
    out["depth"] = jnp.asarray(pixel_table.unit_table())[batch["depth"].astype(jnp.int32)]
  if "mask" in batch and batch["mask"].dtype == jnp.uint8:
    out["mask"] = batch["mask"].astype(jnp.float32)
  return out


def _jitter(x, factors, order):
  """Brightness, contrast and saturation on float RGB in [0, 1], each example's factors applied
  in its order, each op clipped to [0, 1] (augment.jitter_params draws them)."""
  factors = factors.astype(jnp.float32)[:, :, None, None, None]
  grey = jnp.asarray(GREY, jnp.float32)
  for k in range(len(JITTER_OPS)):
    op = order[:, k][:, None, None, None]
    bright = x * factors[:, 0]
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    contrast = (x - mean) * factors[:, 1] + mean
    g = (x[..., 0:1] * grey[0] + x[..., 1:2] * grey[1]) + x[..., 2:3] * grey[2]
    saturated = (x - g) * factors[:, 2] + g
    y = jnp.where(op == 0, bright, jnp.where(op == 1, contrast, saturated))
    x = jnp.where(op >= 0, jnp.clip(y, 0.0, 1.0), x)
  return x


def _cutout(image, boxes):
  """0 inside each example's (y0, y1, x0, x1) square."""
  rows = jnp.arange(image.shape[1])[None, :, None]
  cols = jnp.arange(image.shape[2])[None, None, :]
  y0, y1, x0, x1 = (boxes[:, i][:, None, None] for i in range(4))
  inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
  return jnp.where(inside[..., None], jnp.zeros((), image.dtype), image)
