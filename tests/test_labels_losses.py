"""Label pyramids on hand-made maps, and every loss against hand-computed values and a numpy
re-implementation of the reference code."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pyramid_fas_jax import labels, losses

# The official CDCN contrast kernels, written out as in its code (not derived from ours).
CDCN_KERNELS = np.array([
    [[1, 0, 0], [0, -1, 0], [0, 0, 0]], [[0, 1, 0], [0, -1, 0], [0, 0, 0]],
    [[0, 0, 1], [0, -1, 0], [0, 0, 0]], [[0, 0, 0], [1, -1, 0], [0, 0, 0]],
    [[0, 0, 0], [0, -1, 1], [0, 0, 0]], [[0, 0, 0], [0, -1, 0], [1, 0, 0]],
    [[0, 0, 0], [0, -1, 0], [0, 1, 0]], [[0, 0, 0], [0, -1, 0], [0, 0, 1]]], np.float64)


def np_contrast(x):
  n, h, w = x.shape
  out = np.zeros((n, 8, h - 2, w - 2))
  for k in range(8):
    for i in range(h - 2):
      for j in range(w - 2):
        out[:, k, i, j] = (x[:, i:i + 3, j:j + 3] * CDCN_KERNELS[k]).sum(axis=(1, 2))
  return out


def np_bce(p, y):
  return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()


def sigmoid(z):
  return 1 / (1 + np.exp(-z))


def test_mask_pyramid_hand_case():
  mask = np.ones((1, 8, 8), np.float32)
  mask[0, 5, 2] = 0  # one attack pixel
  p = labels.mask_pyramid(jnp.asarray(mask), (8, 4, 2, 1))
  np.testing.assert_array_equal(p[8], mask)
  want4 = np.ones((4, 4))
  want4[2, 1] = 0
  np.testing.assert_array_equal(p[4][0], want4)
  np.testing.assert_array_equal(p[2][0], [[1, 1], [0, 1]])
  np.testing.assert_array_equal(p[1][0], [[0]])
  live = labels.mask_pyramid(jnp.ones((2, 8, 8)), (2, 1))
  assert float(live[2].min()) == 1.0 and float(live[1].min()) == 1.0


def test_depth_pyramid_is_block_mean():
  depth = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
  p = labels.depth_pyramid(jnp.asarray(depth), (2, 1))
  np.testing.assert_allclose(p[2][0], [[2.5, 4.5], [10.5, 12.5]])
  np.testing.assert_allclose(p[1][0], [[7.5]])
  with pytest.raises(ValueError, match="cannot be pooled"):
    labels.depth_pyramid(jnp.asarray(depth), (3,))


def test_class_map():
  mask = np.ones((2, 4, 4), np.float32)
  mask[1, :2, :] = 0  # top half of sample 1 is an attack of species 2
  got = labels.class_map(jnp.asarray(mask), jnp.array([0, 2]), 2)
  np.testing.assert_array_equal(got, [[[0, 0], [0, 0]], [[2, 2], [0, 0]]])


def test_contrast_depth_matches_official_kernels():
  x = np.random.default_rng(0).normal(size=(3, 7, 6))
  np.testing.assert_allclose(losses.contrast_depth(jnp.asarray(x, jnp.float32)), np_contrast(x),
                             atol=1e-5)


def test_cdl_hand_case():
  # Label flat (all contrasts 0); prediction 0 except a 1 at the centre of a 3x3 map: the single
  # valid position has 8 contrasts of -1, so CDL = mean((-1)^2) = 1. A 1 in a corner: only
  # kernel 0 sees it (+1), CDL = 1/8.
  pred = np.zeros((1, 3, 3), np.float32)
  pred[0, 1, 1] = 1
  assert float(losses.contrastive_depth_loss(jnp.asarray(pred), jnp.zeros((1, 3, 3)))) == 1.0
  pred = np.zeros((1, 3, 3), np.float32)
  pred[0, 0, 0] = 1
  assert float(losses.contrastive_depth_loss(jnp.asarray(pred), jnp.zeros((1, 3, 3)))) == 0.125


def test_bce_hand_case():
  # sigmoid(0) = 0.5 -> BCE = ln 2 for either target; logit ln(3) -> p = 0.75.
  np.testing.assert_allclose(losses.bce_with_logits(jnp.zeros(4), jnp.array([0, 1, 1, 0])),
                             np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.bce_with_logits(jnp.array([np.log(3.0)]), jnp.array([1.0])),
                             -np.log(0.75), rtol=1e-6)


def _model_cfg(head, scales):
  return ml_collections.ConfigDict({"head": head, "scales": scales})


def test_pyramid_mask_loss_against_numpy():
  rng = np.random.default_rng(1)
  n = 3
  mask = (rng.uniform(size=(n, 16, 16)) > 0.1).astype(np.float32)
  logits = {s: rng.normal(size=(n, s, s)).astype(np.float32) for s in (8, 4, 2, 1)}
  final = rng.normal(size=(n,)).astype(np.float32)
  label = np.array([1, 0, 1])
  outputs = {f"mask_logit_{s}": jnp.asarray(v) for s, v in logits.items()}
  outputs["logit"] = jnp.asarray(final)
  loss, terms = losses.total_loss(outputs, {"mask": jnp.asarray(mask), "label": label},
                                  _model_cfg("pyramid_mask", (8, 4, 2, 1)))
  want = 0.0
  for s, z in logits.items():
    k = 16 // s
    y = mask.reshape(n, s, k, s, k).min(axis=(2, 4))
    want += np_bce(sigmoid(z.astype(np.float64)), y)
    np.testing.assert_allclose(terms[f"bce_{s}"], np_bce(sigmoid(z.astype(np.float64)), y),
                               rtol=1e-5)
  want += np_bce(sigmoid(final.astype(np.float64)), label)
  np.testing.assert_allclose(loss, want, rtol=1e-5)


def test_pyramid_depth_loss_against_numpy():
  rng = np.random.default_rng(2)
  n = 2
  depth = rng.uniform(size=(n, 64, 64)).astype(np.float32)
  pred = {32: rng.uniform(size=(n, 32, 32)).astype(np.float32)}
  pred[16] = pred[32].reshape(n, 16, 2, 16, 2).mean(axis=(2, 4))
  outputs = {f"depth_{s}": jnp.asarray(v) for s, v in pred.items()}
  loss, terms = losses.total_loss(outputs, {"depth": jnp.asarray(depth), "label": np.ones(n)},
                                  _model_cfg("pyramid_depth", (32, 16)))
  want = 0.0
  for s, d in pred.items():
    k = 64 // s
    y = depth.reshape(n, s, k, s, k).mean(axis=(2, 4)).astype(np.float64)
    d = d.astype(np.float64)
    want += np.mean((d - y) ** 2) + np.mean((np_contrast(d) - np_contrast(y)) ** 2)
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  assert set(terms) == {"mse_32", "cdl_32", "mse_16", "cdl_16"}


def test_binary_and_multiclass_losses_against_numpy():
  rng = np.random.default_rng(3)
  z = rng.normal(size=(4,)).astype(np.float32)
  label = np.array([1, 0, 0, 1])
  loss, _ = losses.total_loss({"logit": jnp.asarray(z)}, {"label": label},
                              _model_cfg("binary", (1,)))
  np.testing.assert_allclose(loss, np_bce(sigmoid(z.astype(np.float64)), label), rtol=1e-5)

  logits = rng.normal(size=(2, 2, 2, 3)).astype(np.float32)
  mask = np.ones((2, 4, 4), np.float32)
  mask[1] = 0
  species = np.array([0, 2])
  loss, _ = losses.total_loss({"class_logits_2": jnp.asarray(logits)},
                              {"mask": jnp.asarray(mask), "species": jnp.asarray(species),
                               "label": np.array([1, 0])}, _model_cfg("multiclass_mask", (2,)))
  target = np.array([[[0, 0], [0, 0]], [[2, 2], [2, 2]]])
  lg = logits.astype(np.float64)
  logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
  want = -np.take_along_axis(logp, target[..., None], -1).mean()
  np.testing.assert_allclose(loss, want, rtol=1e-5)
