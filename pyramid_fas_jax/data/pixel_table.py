"""uint8 pixels -> the float32 the network reads, by 256-entry tables: numpy only, so the JAX-free
runtime (runtime.py) and the jitted steps (normalize.py) share one definition, bit for bit.

A table entry is computed with the float32 operations the host once applied to every pixel,
(value / 255 - mean) / std; a lookup leaves a compiler no arithmetic to reorder or contract.
"""

import functools

import numpy as np


@functools.cache
def unit_table() -> np.ndarray:
  """float32 (256,), read-only: uint8 value -> value / 255, as numpy computes it in float32."""
  table = np.arange(256, dtype=np.float32) / 255.0
  table.setflags(write=False)
  return table


def image_table(mean, std) -> np.ndarray:
  """float32 (256, 3), read-only: uint8 value, channel -> (value / 255 - mean) / std."""
  return _image_table(tuple(float(m) for m in mean), tuple(float(s) for s in std))


@functools.lru_cache(maxsize=16)
def _image_table(mean: tuple, std: tuple) -> np.ndarray:
  m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
  table = ((unit_table()[:, None] - m) / s).astype(np.float32)
  table.setflags(write=False)
  return table


def normalise(images: np.ndarray, mean, std) -> np.ndarray:
  """uint8 RGB (..., 3) -> float32 (pixel / 255 - mean) / std."""
  if images.dtype != np.uint8:
    raise TypeError(f"normalise takes uint8 images, got {images.dtype}")
  return image_table(mean, std)[images, np.arange(3)]
