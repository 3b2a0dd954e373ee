"""The one eval-mode forward pass (running BatchNorm statistics): evaluation's scores, `predict`,
the demo's figures and the exported graphs all run the model through `apply`.

uint8 RGB images (the evaluation pipeline's) are normalised inside the pass with config.input's
mean and std (data/normalize.py: a table lookup, bitwise the host's normalisation); float images
are taken as already normalised. `forward` is `apply` jitted, the model's graph and the
normalisation (`norm_of` config.input) static; `predict` runs it over host arrays in padded
batches, and evaluation over global batches on the mesh (evaluation/evaluator.py), the state
replicated there by `eval_state`. Both compile it once for a batch that fits the memory there
(models/memory.py) and run that compiled program.
"""

import typing

import jax
import numpy as np
from flax import nnx

from pyramid_fas_jax.data import normalize
from pyramid_fas_jax.models import memory


class Norm(typing.NamedTuple):
  """config.input's normalisation as a hashable static argument."""
  mean: tuple
  std: tuple


def norm_of(input_params) -> Norm | None:
  """The Norm of `input_params` (config.input: .mean, .std), None for None (float images only)."""
  if input_params is None:
    return None
  return Norm(tuple(map(float, input_params.mean)), tuple(map(float, input_params.std)))


def eval_state(model, mesh=None):
  """(graphdef, state) of `model` in eval mode; with `mesh`, the state replicated on it beside
  the sharded images, wherever the model was restored to."""
  model.eval()
  graphdef, state = nnx.split(model)
  if mesh is not None:
    state = jax.device_put(state, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  return graphdef, state


def apply(graphdef, state, images, norm=None, keys=None):
  """The named outputs of the model (graphdef, state) on NHWC `images`, uint8 ones normalised
  with `norm` (a Norm), float ones as given; only those named in `keys` where given."""
  outputs = nnx.merge(graphdef, state)(normalize.model_images(images, norm))
  return outputs if keys is None else {k: outputs[k] for k in keys}


forward = jax.jit(apply, static_argnames=("graphdef", "norm", "keys"))


_REMEDY = ("pass a smaller --batch_size, or --batch_size=auto for the largest that fits, or "
           "--allow_batch_over_memory to run it anyway")


def fit_predict(graphdef, state, images: np.ndarray, norm: Norm | None, batch_size: int | None,
                room: memory.Budget | None = None, allow_over: bool = False) -> memory.Fitted:
  """The batch `predict` runs `images` in and its compiled forward: `batch_size`, refused
  (memory.BatchTooLarge) where its estimate does not fit `room` unless `allow_over`; None
  ('auto'): the largest power of two up to memory.cap_of the device that fits. `room` defaults
  to memory.budget of the default device."""
  device = jax.devices()[0]
  room = memory.budget([device]) if room is None else room

  def compile_at(batch):
    spec = jax.ShapeDtypeStruct((batch,) + images.shape[1:], images.dtype)
    return forward.lower(graphdef, state, spec, norm).compile()

  explicit = batch_size is not None
  batches = [batch_size] if explicit else memory.auto_batches(memory.cap_of(device), len(images))
  return memory.fit(compile_at, batches, room, resident=memory.tree_bytes(state),
                    explicit=explicit, allow_over=allow_over, remedy=_REMEDY,
                    how="as given" if explicit else "auto")


def predict(model, images: np.ndarray, batch_size: int | None = None, input_params=None, *,
            room: memory.Budget | None = None, allow_over_memory: bool = False,
            report=None) -> dict[str, np.ndarray]:
  """Every named output of `model` on NHWC `images`, as numpy: float32 ones already normalised,
  or uint8 RGB ones (the evaluation pipeline's) normalised on the device with `input_params`
  (config.input: .mean, .std; normalize.py), as evaluation does.

  `batch_size` images per forward; None: the largest that fits (`fit_predict`, which also
  refuses a given one that does not, before anything runs). The last partial batch is padded
  to it so that one compiled program serves all. `report` gets the line saying the batch and
  its estimate (it is logged at INFO too).
  """
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = images.astype(np.float32)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
  graphdef, state = eval_state(model)
  fitted = fit_predict(graphdef, state, images, norm_of(input_params), batch_size, room,
                       allow_over_memory)
  if report is not None:
    report(fitted.line)
  batch_size = fitted.batch
  chunks = []
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    n = len(batch)
    if n < batch_size:
      batch = np.concatenate([batch, np.zeros((batch_size - n,) + batch.shape[1:], batch.dtype)])
    out = jax.device_get(fitted.compiled(state, batch))
    chunks.append({k: v[:n] for k, v in out.items()})
  return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
