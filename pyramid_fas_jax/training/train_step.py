"""The jitted train step: forward, loss, gradients, optimizer update, in one XLA program.

The step is a pure function of (state, batch) over the split NNX graph, so it can be jitted with
explicit shardings and the state donated; the graphdef (which also fixes train/eval mode of
BatchNorm) is closed over.

Mixed precision (`config.dtype`): the model computes in that dtype (the images are cast to it,
and every convolution and linear layer casts its float32 parameters to its input's dtype),
while parameters, gradients, optimizer state and BatchNorm statistics stay float32 and the
outputs are cast to float32 before the loss.

The batch arrives as the input pipeline sends it (uint8 maps and the colour jitter's and Cutout's
parameters) and becomes float inside the step (data/normalize.py), fused with the first layers.
"""

import jax
import jax.numpy as jnp
import optax
from absl import logging
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.data import normalize
from pyramid_fas_jax.models import conv_ops
from pyramid_fas_jax.training import checkpoint, losses, optim
from pyramid_fas_jax.weights import pretrained

DTYPES = ("float32", "bfloat16")


def create_model_and_optimizer(config, steps_per_epoch: int = 1, *, initialise: bool = True):
  """The model in train mode and an nnx.Optimizer over its Params. With `initialise` (False when
  a run resumes, its checkpoint replacing everything) the model starts from config.init_from and
  the log says from what: 'imagenet', the backbone's torchvision ImageNet weights (fetched
  before the model is built, so a failed download costs nothing); a model checkpoint directory;
  or '', the seeded random initialisation."""
  init_from = config.init_from if initialise else ""
  weights = pretrained.fetch(config.model.backbone) if init_from == pretrained.IMAGENET else None
  model = models.build_model(config.model, nnx.Rngs(config.seed))
  if weights is not None:
    message = pretrained.load_backbone(model, config.model.backbone, weights)
  elif init_from:
    checkpoint.restore_into(model, init_from)
    message = f"initialised the model from the checkpoint {init_from}"
  else:
    message = "initialised the model from scratch"
  if initialise:
    logging.info("%s", message)
  model.train()
  optimizer = nnx.Optimizer(model, optim.make_optimizer(config.optim, steps_per_epoch),
                            wrt=nnx.Param)
  return model, optimizer


def create_train_state(config, steps_per_epoch: int = 1):
  """(graphdef, state) of create_model_and_optimizer's pair."""
  return nnx.split(create_model_and_optimizer(config, steps_per_epoch))


def compute_dtype(name: str):
  """config.dtype -> the jnp dtype the model computes in."""
  if name not in DTYPES:
    raise ValueError(f"unknown config.dtype {name!r}; choose from {list(DTYPES)}")
  return jnp.dtype(name)


def loss_and_grads(model, batch, model_cfg, dtype="float32", input_cfg=None):
  """((loss, terms), grads) of the model in train mode on `batch`, computed in `dtype`; the loss,
  its terms and the gradients are float32. A batch with uint8 maps is made float first, its
  images normalised with `input_cfg` (config.input: normalize.device_batch)."""
  dtype = compute_dtype(dtype)
  batch = normalize.device_batch(batch, input_cfg)

  def loss_fn(model):
    outputs = model(batch["image"].astype(dtype))
    outputs = jax.tree.map(lambda a: a.astype(jnp.float32), outputs)
    return losses.total_loss(outputs, batch, model_cfg)

  return nnx.value_and_grad(loss_fn, has_aux=True)(model)


def train_step(graphdef, state, batch, *, model_cfg, dtype="float32", input_cfg=None):
  model, optimizer = nnx.merge(graphdef, state)
  (loss, terms), grads = loss_and_grads(model, batch, model_cfg, dtype, input_cfg)
  optimizer.update(model, grads)
  metrics = {"loss": loss, **terms, "grad_norm": optax.tree.norm(grads)}
  return nnx.state((model, optimizer)), metrics


def jit_train_step(graphdef, model_cfg, state_sharding=None, batch_sharding=None,
                   dtype="float32", input_cfg=None):
  """jax.jit of train_step with the state donated (updated in place on device), compiled with
  the convolution options of `model_cfg.conv_impl` (models/conv_ops.py); `input_cfg`
  (config.input) normalises the pipeline's uint8 images."""
  compute_dtype(dtype)  # a bad name fails here, not at the first step

  def step(state, batch):
    return train_step(graphdef, state, batch, model_cfg=model_cfg, dtype=dtype,
                      input_cfg=input_cfg)

  options = conv_ops.compiler_options(model_cfg.conv_impl)
  if state_sharding is None:
    return jax.jit(step, donate_argnums=0, compiler_options=options)
  return jax.jit(step, donate_argnums=0, in_shardings=(state_sharding, batch_sharding),
                 out_shardings=(state_sharding, None), compiler_options=options)
