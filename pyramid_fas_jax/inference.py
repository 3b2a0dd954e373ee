"""Batched, jitted forward passes in eval mode (running BN statistics)."""

import functools

import jax
import numpy as np
from flax import nnx


@functools.partial(jax.jit, static_argnums=0)
def _forward(graphdef, state, images):
  return nnx.merge(graphdef, state)(images)


def predict(model, images: np.ndarray, batch_size: int = 32) -> dict[str, np.ndarray]:
  """Every named output of `model` on float32 NHWC `images` (already normalised), as numpy.

  The last partial batch is padded to `batch_size` so that one compiled program serves all.
  """
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"expected float32 images of shape (N, H, W, 3), got {images.shape}")
  model.eval()
  graphdef, state = nnx.split(model)
  chunks = []
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    n = len(batch)
    if n < batch_size:
      batch = np.concatenate([batch, np.zeros((batch_size - n,) + batch.shape[1:], np.float32)])
    out = jax.device_get(_forward(graphdef, state, batch))
    chunks.append({k: v[:n] for k, v in out.items()})
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
