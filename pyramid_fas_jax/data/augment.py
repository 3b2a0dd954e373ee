"""Joint augmentation of image, depth and liveness mask on the host: crop, flip and resize, and
the random draws of the colour jitter and Cutout that the device applies (normalize.py).

Geometry (face-scale crop, flip, resize) is one affine warp applied to all three maps, so
labels stay aligned to the pixel; colour jitter and Cutout touch the image only. The mask is
resampled with nearest neighbour so it stays exactly 0/1. The maps stay uint8 on the host.
"""

import dataclasses

import cv2
import numpy as np

from pyramid_fas_jax.data import pixel_table


@dataclasses.dataclass(frozen=True)
class AugmentParams:
  """Plain copy of the config's aug.* fields (picklable for grain worker processes)."""
  scale_range: tuple[float, float] = (0.8, 1.3)
  flip: bool = True
  brightness: float = 0.0
  contrast: float = 0.0
  saturation: float = 0.0
  cutout: float = 0.0
  cutout_size: float = 0.4


def crop_matrix(face_box, shape: tuple[int, int], scale: float, size: int,
                flip: bool) -> np.ndarray:
  """2x3 affine (source pixel index -> output pixel index) of a square crop.

  The crop is centred on the face box; its side is `scale` times the box's longer side; it
  is resized to `size` and mirrored left-right if `flip`.
  """
  h, w = shape
  y0, x0, y1, x1 = (float(face_box[0]) * h, float(face_box[1]) * w, float(face_box[2]) * h,
                    float(face_box[3]) * w)
  side = scale * max(y1 - y0, x1 - x0)
  if side <= 0:
    raise ValueError(f"degenerate face box {tuple(face_box)} in an image of shape {shape}")
  k = size / side
  ox, oy = 0.5 * (x0 + x1) - side / 2, 0.5 * (y0 + y1) - side / 2
  # Continuous coordinates: pixel i spans [i, i + 1), so index = coordinate - 0.5.
  sx = -k if flip else k
  tx = (size - k * (0.5 - ox)) - 0.5 if flip else k * (0.5 - ox) - 0.5
  ty = k * (0.5 - oy) - 0.5
  return np.array([[sx, 0, tx], [0, k, ty]], np.float64)


def warp(example: dict, matrix: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
  """Applies the affine to image (bilinear), depth (bilinear) and mask (nearest).

  Returns uint8 maps: image (size, size, 3), depth (size, size) (the label * 255), mask
  (size, size) in {0, 1}; the device makes them float (normalize.py).
  Pixels beyond the stored crop repeat its border, which keeps a live mask all-live.
  """
  depth, mask = warp_labels(example, matrix, size)
  return warp_image(example["image"], matrix, size), depth, mask


def warp_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
  """The image part of `warp`: uint8 (size, size, 3), bilinear, border repeated."""
  return _warp_map(image, matrix, size, cv2.INTER_AREA, cv2.INTER_LINEAR)


def warp_labels(example: dict, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
  """The depth and mask part of `warp`; checks they are aligned with the image."""
  image = example["image"]
  depth = example["depth"][..., 0] if example["depth"].ndim == 3 else example["depth"]
  mask = example["mask"][..., 0] if example["mask"].ndim == 3 else example["mask"]
  if not image.shape[:2] == depth.shape == mask.shape:
    raise ValueError(f"image {image.shape}, depth {depth.shape} and mask {mask.shape} of "
                     f"{example.get('video_id', '?')} are not aligned")
  depth = _warp_map(depth, matrix, size, cv2.INTER_AREA, cv2.INTER_LINEAR)
  mask = _warp_map(mask, matrix, size, cv2.INTER_NEAREST, cv2.INTER_NEAREST)
  return depth, (mask >= 128).astype(np.uint8)


def _warp_map(x: np.ndarray, matrix: np.ndarray, size: int, shrink_interp: int,
              interp: int) -> np.ndarray:
  """One map through the affine. Each map is warped on its own, but maps of one shape take the
  same pre-shrink and the same adjusted matrix, so image, depth and mask stay aligned."""
  k = abs(matrix[0, 0])
  if k < 0.6:  # shrinking a lot: area-average first, bilinear alone would alias
    h, w = x.shape[:2]
    pre = max(k * 1.25, size / max(h, w))
    x = cv2.resize(x, None, fx=pre, fy=pre, interpolation=shrink_interp)
    fy, fx = x.shape[0] / h, x.shape[1] / w
    # Index i' of the smaller map sits at original index (i' + 0.5) / f - 0.5.
    small_to_src = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
    matrix = (np.vstack([matrix, [0, 0, 1]]) @ small_to_src)[:2]
  return cv2.warpAffine(x, matrix, dsize=(size, size), flags=interp,
                        borderMode=cv2.BORDER_REPLICATE)


def jitter_params(rng: np.random.Generator, p: AugmentParams) -> tuple[np.ndarray, ...]:
  """The colour jitter of one example, applied on device (normalize.py): factors float32 (3,)
  for brightness, contrast and saturation, each U(1 - s, 1 + s) where its strength s > 0 (1
  where off), and order int32 (3,): the enabled ops in a random order, then -1."""
  factors, enabled = np.ones(3, np.float32), []
  for i, strength in enumerate((p.brightness, p.contrast, p.saturation)):
    if strength > 0:
      factors[i] = rng.uniform(1 - strength, 1 + strength)
      enabled.append(i)
  order = np.full(3, -1, np.int32)
  order[:len(enabled)] = np.asarray(enabled, np.int32)[rng.permutation(len(enabled))]
  return factors, order


def cutout_box(rng: np.random.Generator, p: AugmentParams, size: int) -> np.ndarray:
  """With probability p.cutout, one square of side U(0.1, cutout_size) x `size`, centred on a
  random pixel and clipped to the image, as int32 (y0, y1, x0, x1); else the empty (0, 0, 0, 0).
  The device sets it to 0 after normalising: the normalisation mean's colour."""
  if p.cutout <= 0 or rng.random() >= p.cutout:
    return np.zeros(4, np.int32)
  side = int(round(rng.uniform(0.1, max(p.cutout_size, 0.1)) * size))
  cy, cx = rng.integers(0, size, 2)
  y0, x0 = max(cy - side // 2, 0), max(cx - side // 2, 0)
  return np.array([y0, min(y0 + side, size), x0, min(x0 + side, size)], np.int32)


def eval_matrix(params, shape, face_box) -> np.ndarray:
  """crop_matrix of evaluation's crop: input.eval_scale x the box, input.size, unflipped."""
  return crop_matrix(face_box, shape, float(params.eval_scale), int(params.size), flip=False)


def eval_image(params, image: np.ndarray, face_box) -> np.ndarray:
  """What evaluation feeds the network for a stored crop: float32 (size, size, 3).

  `params` has the fields of config.input (size, mean, std, eval_scale); `image` is a uint8 RGB
  crop and `face_box` its (ymin, xmin, ymax, xmax) in [0, 1], as builders store them. The crop is
  input.eval_scale x the box's longer side, centred on it, unflipped. `pyramid-fas predict` and
  the JAX-free runtime call this on their own face crops, so what they score cannot drift from
  what evaluation scores: the evaluation batch's uint8 image, normalised by the table the device
  applies (pixel_table).
  """
  matrix = eval_matrix(params, image.shape[:2], face_box)
  return pixel_table.normalise(warp_image(image, matrix, int(params.size)), params.mean,
                               params.std)
