"""The jitted train step: it learns a fixed batch, compiles once, and its optimisers follow
PyTorch's SGD/Adam update rules (L2 weight decay added to the gradient)."""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.training import optim, train_step


def _tiny_config(backbone, head, scales, optim_cfg):
  cfg = ml_collections.ConfigDict()
  cfg.seed = 0
  cfg.init_from = ""
  cfg.model = fas.model_config(backbone=backbone, head=head, scales=scales, map_size=8,
                               predictor_widths=(16, 8))
  cfg.optim = optim_cfg
  return cfg


def _fixed_batch(size, n=4):
  rng = np.random.default_rng(0)
  label = np.array([1, 0, 1, 0][:n], np.int32)
  image = rng.normal(size=(n, size, size, 3)).astype(np.float32)
  mask = np.repeat(label[:, None, None], size, 1).repeat(size, 2).astype(np.float32)
  depth = mask * rng.uniform(size=(n, size, size)).astype(np.float32)
  return {"image": image, "mask": mask, "depth": depth, "label": label,
          "species": (1 - label).astype(np.int32)}


@pytest.mark.parametrize("backbone,head,scales,size,lr", [
    ("resnet_tiny", "pyramid_mask", (4, 2, 1), 32, 0.05),
    ("cdcn_tiny", "pyramid_depth", (8, 4), 32, 0.01),
])
def test_train_step_lowers_loss_and_compiles_once(backbone, head, scales, size, lr):
  opt_name = "sgd" if backbone.startswith("resnet") else "adam"
  opt = (fas.sgd_config(lr=lr) if opt_name == "sgd" else fas.adam_config(lr=lr))
  cfg = _tiny_config(backbone, head, scales, opt)
  graphdef, state = train_step.create_train_state(cfg)
  chex.clear_trace_counter()

  @chex.assert_max_traces(n=1)
  def step(state, batch):
    return train_step.train_step(graphdef, state, batch, model_cfg=cfg.model)

  jstep = jax.jit(step, donate_argnums=0)
  batch = _fixed_batch(size)
  losses = []
  for _ in range(8):
    state, metrics = jstep(state, batch)
    losses.append(float(metrics["loss"]))
  assert all(np.isfinite(losses))
  assert losses[-1] < 0.7 * losses[0], losses


def _torch_sgd(p, grads, lr, momentum, wd):
  buf = None
  for g in grads:
    d = g + wd * p
    buf = d if buf is None else momentum * buf + d
    p = p - lr * buf
  return p


def _torch_adam(p, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
  m = v = 0.0
  for t, g in enumerate(grads, start=1):
    g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
  return p


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_optimizer_matches_pytorch_update_rule(name):
  rng = np.random.default_rng(0)
  p0 = rng.normal(size=(5,))
  grads = [rng.normal(size=(5,)) for _ in range(4)]
  if name == "sgd":
    cfg = fas.sgd_config(lr=0.1, weight_decay=0.01)
    want = _torch_sgd(p0, grads, 0.1, 0.9, 0.01)
  else:
    cfg = fas.adam_config(lr=0.1, weight_decay=0.01, schedule="constant")
    want = _torch_adam(p0, grads, 0.1, 0.01)
  tx = optim.make_optimizer(cfg)
  p = jnp.asarray(p0)
  opt_state = tx.init(p)
  for g in grads:
    updates, opt_state = tx.update(jnp.asarray(g), opt_state, p)
    p = optax.apply_updates(p, updates)
  np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6)


def test_step_schedule_halves_at_epoch_500():
  # The official loop steps StepLR(step_size=500, gamma=0.5) before each epoch: PyTorch's lr in
  # epoch e (0-based) is 1e-4 * 0.5 ** ((e + 1) // 500), so epoch 499, the 500th, is halved.
  sched = optim.make_schedule(fas.adam_config(), steps_per_epoch=10)
  assert float(sched(0)) == pytest.approx(1e-4)
  assert float(sched(4989)) == pytest.approx(1e-4)   # last step of epoch 498
  assert float(sched(4990)) == pytest.approx(5e-5)   # first step of epoch 499
  assert float(sched(7999)) == pytest.approx(5e-5)
  assert float(sched(9990)) == pytest.approx(2.5e-5)  # epoch 999: (999 + 1) // 500 = 2
  every_epoch = optim.make_schedule(fas.adam_config(lr_step_epochs=1), steps_per_epoch=10)
  assert [float(every_epoch(s)) for s in (0, 9, 10)] == pytest.approx([5e-5, 5e-5, 2.5e-5])


def test_depth_valid_zero_keeps_a_samples_depth_out_of_the_step():
  # A live frame whose pseudo depth failed (NaN, huge values) with depth_valid 0 trains exactly
  # as the same frame with any other depth: loss, gradient norm and updated parameters are
  # bit-identical, and finite. With every flag 1 the step is the step without the key.
  cfg = _tiny_config("resnet_tiny", "pyramid_depth", (4, 2), fas.adam_config(lr=1e-3))
  graphdef, _ = train_step.create_train_state(cfg)
  step = train_step.jit_train_step(graphdef, cfg.model)
  clean = _fixed_batch(32)
  garbage = dict(clean, depth=clean["depth"].copy())
  garbage["depth"][0] = np.nan
  garbage["depth"][0, :4] = 1e30
  flags = np.array([0, 1, 1, 1], np.float32)
  results = []
  for batch in (dict(clean, depth_valid=flags), dict(garbage, depth_valid=flags),
                clean, dict(clean, depth_valid=np.ones(4, np.float32))):
    state, metrics = step(train_step.create_train_state(cfg)[1], batch)
    results.append((jax.device_get(metrics), jax.tree.leaves(jax.device_get(state))))
  for (m_a, p_a), (m_b, p_b) in (results[:2], results[2:]):
    assert set(m_a) == set(m_b) == {"loss", "mse_4", "cdl_4", "mse_2", "grad_norm"}
    for k in m_a:
      assert np.isfinite(m_a[k]) and m_a[k] == m_b[k], k
    for a, b in zip(p_a, p_b):
      np.testing.assert_array_equal(a, b)
  assert results[0][0]["loss"] != results[2][0]["loss"]  # the flag did drop a sample
