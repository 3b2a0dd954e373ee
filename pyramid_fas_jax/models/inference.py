"""Batched, jitted forward passes in eval mode (running BN statistics)."""

import functools
import typing

import jax
import numpy as np
from flax import nnx

from pyramid_fas_jax.data import normalize


class _Norm(typing.NamedTuple):
  """config.input's normalisation as a hashable static argument."""
  mean: tuple
  std: tuple


@functools.partial(jax.jit, static_argnums=(0, 3))
def _forward(graphdef, state, images, input_params):
  return nnx.merge(graphdef, state)(normalize.model_images(images, input_params))


def predict(model, images: np.ndarray, batch_size: int = 32,
            input_params=None) -> dict[str, np.ndarray]:
  """Every named output of `model` on NHWC `images`, as numpy: float32 ones already normalised,
  or uint8 RGB ones (the evaluation pipeline's) normalised on the device with `input_params`
  (config.input: .mean, .std; normalize.py), as evaluation does.

  The last partial batch is padded to `batch_size` so that one compiled program serves all.
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = images.astype(np.float32)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
  if input_params is not None:
    input_params = _Norm(tuple(map(float, input_params.mean)),
                         tuple(map(float, input_params.std)))
  model.eval()
  graphdef, state = nnx.split(model)
  chunks = []
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    n = len(batch)
    if n < batch_size:
      batch = np.concatenate([batch, np.zeros((batch_size - n,) + batch.shape[1:], batch.dtype)])
    out = jax.device_get(_forward(graphdef, state, batch, input_params))
    chunks.append({k: v[:n] for k, v in out.items()})
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
