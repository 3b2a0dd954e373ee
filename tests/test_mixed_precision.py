"""config.dtype='bfloat16': the model computes in bfloat16 while parameters, gradients,
optimizer state, BatchNorm statistics and the loss stay float32; loss and gradients agree with
float32 to bfloat16 precision, and the tiny models still learn."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from test_train_step import _fixed_batch, _tiny_config

from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.training import train_step

CASES = [("resnet_tiny", "pyramid_mask", (4, 2, 1), fas.sgd_config(lr=0.05)),
         ("cdcn_tiny", "pyramid_depth", (8, 4), fas.adam_config(lr=0.01))]
# The layers between the last BatchNorm and the loss.
LAST = {"resnet_tiny": lambda g: g["head"], "cdcn_tiny": lambda g: g["head"]["predictor"]["out"]}


def _flat(tree):
  return jnp.concatenate([jnp.ravel(a) for a in jax.tree.leaves(tree)])


@pytest.mark.parametrize("backbone,head,scales,opt", CASES)
def test_bf16_loss_and_gradients_match_float32(backbone, head, scales, opt):
  cfg = _tiny_config(backbone, head, scales, opt)
  batch = _fixed_batch(32)
  model, _ = train_step.create_model_and_optimizer(cfg)
  graphdef, state = nnx.split(model)

  run = jax.jit(lambda s, b, d: train_step.loss_and_grads(nnx.merge(graphdef, s), b, cfg.model, d),
                static_argnums=2)
  (loss32, _), grads32 = run(state, batch, "float32")
  (loss16, terms16), grads16 = run(state, batch, "bfloat16")
  assert loss16.dtype == jnp.float32 and all(t.dtype == jnp.float32 for t in terms16.values())
  assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads16))
  # bfloat16 keeps 8 significant bits (relative spacing 2^-8 = 0.4%): the loss moves by about
  # that, and so do the gradients of the layers after the last BatchNorm.
  assert abs(float(loss16) - float(loss32)) < 1e-2 * abs(float(loss32))
  last32, last16 = _flat(LAST[backbone](grads32)), _flat(LAST[backbone](grads16))
  assert float(jnp.linalg.norm(last16 - last32) / jnp.linalg.norm(last32)) < 5e-2
  # Deeper in, train-mode BatchNorm's backward subtracts batch means from the bfloat16 output
  # gradient; where they nearly cancel (a random model, a batch of 4) the rounding grows into a
  # larger relative error (10-40% here), but the gradient keeps its direction.
  g32, g16 = _flat(grads32), _flat(grads16)
  cosine = float(g16 @ g32 / (jnp.linalg.norm(g16) * jnp.linalg.norm(g32)))
  assert cosine > 0.9, cosine
  # ... and it did compute in bfloat16: the convolutions take bfloat16 operands.
  jaxpr = str(jax.make_jaxpr(lambda s: train_step.loss_and_grads(
      nnx.merge(graphdef, s), batch, cfg.model, "bfloat16"))(state))
  assert "bf16[" in jaxpr


@pytest.mark.parametrize("backbone,head,scales,opt", CASES)
def test_bf16_train_step_learns_and_keeps_float32_state(backbone, head, scales, opt):
  cfg = _tiny_config(backbone, head, scales, opt)
  graphdef, state = train_step.create_train_state(cfg)
  step = train_step.jit_train_step(graphdef, cfg.model, dtype="bfloat16")
  batch = _fixed_batch(32)
  losses = []
  for _ in range(8):
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  assert all(np.isfinite(losses))
  assert losses[-1] < 0.7 * losses[0], losses
  # Parameters, Adam/SGD moments and BatchNorm running statistics all stayed float32.
  floats = [a for a in jax.tree.leaves(state) if jnp.issubdtype(a.dtype, jnp.floating)]
  assert floats and all(a.dtype == jnp.float32 for a in floats)


def test_unknown_dtype_is_named():
  cfg = _tiny_config(*CASES[0])
  graphdef, _ = train_step.create_train_state(cfg)
  with pytest.raises(ValueError, match="config.dtype 'float16'"):
    train_step.jit_train_step(graphdef, cfg.model, dtype="float16")
