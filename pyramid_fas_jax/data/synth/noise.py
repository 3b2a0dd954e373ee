"""Procedural noise: the source of every texture in SynthFAS (skin, hair, paper, walls)."""

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float,
                octaves: int = 1, persistence: float = 0.5) -> np.ndarray:
  """Smooth fractal noise of unit standard deviation, float32 of `shape` (H, W).

  Each octave is Gaussian white noise on a coarse grid of about `cells` cells across the
  longer side, upsampled bicubically; later octaves double the frequency and scale the
  amplitude by `persistence`.
  """
  h, w = shape
  out = np.zeros(shape, np.float32)
  amp, total = 1.0, 0.0
  for _ in range(octaves):
    gy = max(2, int(round(cells * h / max(h, w))) + 2)
    gx = max(2, int(round(cells * w / max(h, w))) + 2)
    grid = rng.standard_normal((gy, gx)).astype(np.float32)
    out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    total += amp * amp
    amp *= persistence
    cells *= 2
  return out / np.float32(np.sqrt(total) * 0.8)


def streak_noise(rng: np.random.Generator, shape: tuple[int, int], length: float,
                 angle_deg: float = 90.0) -> np.ndarray:
  """Anisotropic noise (hair strands, brushed fibres): white noise smeared along `angle_deg`.

  `length` is the smear length in pixels; returns float32 of unit-ish standard deviation.
  """
  h, w = shape
  white = rng.standard_normal(shape).astype(np.float32)
  k = max(3, int(length) | 1)
  kernel = np.zeros((k, k), np.float32)
  kernel[k // 2, :] = 1.0
  rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), angle_deg, 1.0)
  kernel = cv2.warpAffine(kernel, rot, (k, k))
  kernel /= np.sqrt((kernel ** 2).sum())
  out = cv2.filter2D(white, -1, kernel, borderType=cv2.BORDER_REFLECT)
  return out.reshape(h, w)


def sparse_dots(rng: np.random.Generator, shape: tuple[int, int], density: float,
                sigma: float) -> np.ndarray:
  """Randomly placed soft dots (pores, paper specks): float32 in [0, 1] of `shape`."""
  dots = (rng.random(shape) < density).astype(np.float32)
  if sigma > 0:
    dots = cv2.GaussianBlur(dots, (0, 0), sigma)
    dots /= max(float(dots.max()), 1e-6)
  return dots
