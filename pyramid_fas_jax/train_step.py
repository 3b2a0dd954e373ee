"""The jitted train step: forward, loss, gradients, optimizer update, in one XLA program.

The step is a pure function of (state, batch) over the split NNX graph, so it can be jitted with
explicit shardings and the state donated; the graphdef (which also fixes train/eval mode of
BatchNorm) is closed over.
"""

import jax
import optax
from absl import logging
from flax import nnx

from pyramid_fas_jax import checkpoint, losses, models, optim, pretrained

# The arrays of a batch that the step reads; metadata (video ids, ...) stays on the host.
BATCH_KEYS = ("image", "mask", "depth", "label", "species", "depth_valid")


def create_model_and_optimizer(config, steps_per_epoch: int = 1, *, initialise: bool = True):
  """The model in train mode and an nnx.Optimizer over its Params. With `initialise` (False when
  a run resumes, its checkpoint replacing everything) the model starts from config.init_from and
  the log says from what: 'imagenet', the backbone's torchvision ImageNet weights (fetched
  before the model is built, so a failed download costs nothing); a model checkpoint directory;
  or '', the seeded random initialisation."""
  init_from = config.get("init_from", "") if initialise else ""
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


def train_step(graphdef, state, batch, *, model_cfg):
  model, optimizer = nnx.merge(graphdef, state)

  def loss_fn(model):
    outputs = model(batch["image"])
    loss, terms = losses.total_loss(outputs, batch, model_cfg)
    return loss, terms

  (loss, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
  optimizer.update(model, grads)
  metrics = {"loss": loss, **terms, "grad_norm": optax.tree.norm(grads)}
  return nnx.state((model, optimizer)), metrics


def jit_train_step(graphdef, model_cfg, state_sharding=None, batch_sharding=None):
  """jax.jit of train_step with the state donated (updated in place on device)."""
  def step(state, batch):
    return train_step(graphdef, state, batch, model_cfg=model_cfg)

  if state_sharding is None:
    return jax.jit(step, donate_argnums=0)
  return jax.jit(step, donate_argnums=0, in_shardings=(state_sharding, batch_sharding),
                 out_shardings=(state_sharding, None))
