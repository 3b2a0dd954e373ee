"""Label pyramids on hand-made maps, and every loss against hand-computed values and a numpy
re-implementation of the reference code."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from pyramid_fas_jax.training import labels, losses

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
  return ml_collections.ConfigDict({"head": head, "scales": scales, "loss_reduction": "mean"})


def test_pyramid_mask_loss_by_hand():
  # Every logit is ln 3 (sigmoid 3/4): a live position costs ln(4/3), an attack one ln 4. The
  # 4x4 mask has one attack pixel at (0, 0), so the 2x2 label has one attack position of four
  # and the 1x1 label is attack; the final logit -ln 3 on an attack costs ln(4/3).
  mask = np.ones((1, 4, 4), np.float32)
  mask[0, 0, 0] = 0
  z = np.log(3.0)
  outputs = {"mask_logit_2": jnp.full((1, 2, 2), z), "mask_logit_1": jnp.full((1, 1, 1), z),
             "logit": jnp.array([-z])}
  batch = {"mask": jnp.asarray(mask), "label": np.array([0])}
  loss, terms = losses.total_loss(outputs, batch, _model_cfg("pyramid_mask", (2, 1)))
  live, attack = np.log(4 / 3), np.log(4.0)
  np.testing.assert_allclose(terms["bce_2"], (attack + 3 * live) / 4, rtol=1e-6)
  np.testing.assert_allclose(terms["bce_1"], attack, rtol=1e-6)
  np.testing.assert_allclose(loss, (attack + 3 * live) / 4 + attack + live, rtol=1e-6)


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


def _np_depth_terms(pred, depth, scales):
  """{term: value} of the pyramid depth loss in float64 numpy: MSE at every scale, CDL where the
  map is at least 3x3."""
  n, size = depth.shape[:2]
  terms = {}
  for s in scales:
    k = size // s
    y = depth.reshape(n, s, k, s, k).mean(axis=(2, 4)).astype(np.float64)
    d = pred[s].astype(np.float64)
    terms[f"mse_{s}"] = np.mean((d - y) ** 2)
    if s >= 3:
      terms[f"cdl_{s}"] = np.mean((np_contrast(d) - np_contrast(y)) ** 2)
  return terms


def _depth_case(n=3, scales=(8, 4, 2, 1), seed=4):
  rng = np.random.default_rng(seed)
  depth = rng.uniform(size=(n, 16, 16)).astype(np.float32)
  pred = {s: rng.uniform(size=(n, s, s)).astype(np.float32) for s in scales}
  return depth, pred


def _depth_loss(pred, batch, scales):
  outputs = {f"depth_{s}": jnp.asarray(v) for s, v in pred.items()}
  return losses.total_loss(outputs, batch, _model_cfg("pyramid_depth", scales))


def test_cdl_is_absent_below_3x3_and_mse_stays():
  # The README's resnet50_depth scales (8,4,2) and the 1x1 map: CDL has no 3x3 window on 2x2 or
  # 1x1 (it was the mean of an empty array: NaN), so those scales log only their MSE.
  scales = (8, 4, 2, 1)
  depth, pred = _depth_case(scales=scales)
  loss, terms = _depth_loss(pred, {"depth": jnp.asarray(depth), "label": np.ones(3)}, scales)
  assert set(terms) == {"mse_8", "cdl_8", "mse_4", "cdl_4", "mse_2", "mse_1"}
  want = _np_depth_terms(pred, depth, scales)
  for k, v in want.items():
    np.testing.assert_allclose(terms[k], v, rtol=1e-5)
  np.testing.assert_allclose(loss, sum(want.values()), rtol=1e-5)

  def f(p):
    return _depth_loss(p, {"depth": jnp.asarray(depth), "label": np.ones(3)}, scales)[0]

  grads = jax.grad(f)({s: jnp.asarray(v) for s, v in pred.items()})
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads.values())
  # d(MSE_1)/d(pred_1) = 2 (pred - target) / N: the 1x1 scale still learns.
  y1 = depth.mean(axis=(1, 2))
  np.testing.assert_allclose(grads[1][:, 0, 0], 2 * (pred[1][:, 0, 0] - y1) / 3, rtol=1e-5)
  with pytest.raises(ValueError, match="no 3x3 window"):
    losses.contrastive_depth_loss(jnp.zeros((1, 2, 2)), jnp.zeros((1, 2, 2)))


def test_loss_reduction_hand_case():
  # One sample, a 2x2 map, every cell live: logits ln 3, 0, 0, -ln 3 give p = 3/4, 1/2, 1/2, 1/4,
  # so the four BCEs are ln(4/3), ln 2, ln 2, ln 4; their sum is ln(64/3). The 1x1 cell is
  # live too (min pooling), its logit 0: BCE ln 2 under either reduction.
  mask = jnp.ones((1, 4, 4))
  outputs = {"mask_logit_2": jnp.array([[[np.log(3.0), 0.0], [0.0, -np.log(3.0)]]]),
             "mask_logit_1": jnp.zeros((1, 1, 1))}
  batch = {"mask": mask, "label": np.ones(1)}
  cfg = _model_cfg("dense_mask", (2, 1))
  _, mean_terms = losses.total_loss(outputs, batch, cfg)
  cfg.loss_reduction = "sum"
  loss, sum_terms = losses.total_loss(outputs, batch, cfg)
  np.testing.assert_allclose(mean_terms["bce_2"], np.log(64 / 3) / 4, rtol=1e-6)
  np.testing.assert_allclose(sum_terms["bce_2"], np.log(64 / 3), rtol=1e-6)
  np.testing.assert_allclose(mean_terms["bce_1"], np.log(2), rtol=1e-6)
  np.testing.assert_allclose(sum_terms["bce_1"], np.log(2), rtol=1e-6)
  np.testing.assert_allclose(loss, np.log(64 / 3) + np.log(2), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_pyramid_mask_loss_reductions_against_numpy(reduction):
  # 'sum': each scale's BCE summed over its s*s positions, then the mean over the batch, i.e.
  # s*s times the 'mean' term; L_binary is a single position, the same under both.
  rng = np.random.default_rng(5)
  n, scales = 3, (8, 4, 2, 1)
  mask = (rng.uniform(size=(n, 16, 16)) > 0.1).astype(np.float32)
  logits = {s: rng.normal(size=(n, s, s)).astype(np.float32) for s in scales}
  final = rng.normal(size=(n,)).astype(np.float32)
  label = np.array([1, 0, 1])
  outputs = {f"mask_logit_{s}": jnp.asarray(v) for s, v in logits.items()}
  outputs["logit"] = jnp.asarray(final)
  cfg = _model_cfg("pyramid_mask", scales)
  cfg.loss_reduction = reduction
  loss, terms = losses.total_loss(outputs, {"mask": jnp.asarray(mask), "label": label}, cfg)
  want = 0.0
  for s, z in logits.items():
    k = 16 // s
    y = mask.reshape(n, s, k, s, k).min(axis=(2, 4))
    p = sigmoid(z.astype(np.float64))
    per_position = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    term = (per_position.sum(axis=(1, 2)).mean() if reduction == "sum" else per_position.mean())
    np.testing.assert_allclose(terms[f"bce_{s}"], term, rtol=1e-5)
    want += term
  binary = np_bce(sigmoid(final.astype(np.float64)), label)
  np.testing.assert_allclose(terms["bce_binary"], binary, rtol=1e-5)
  np.testing.assert_allclose(loss, want + binary, rtol=1e-5)


def test_loss_reduction_is_checked():
  outputs = {"depth_4": jnp.zeros((1, 4, 4))}
  batch = {"depth": jnp.zeros((1, 4, 4)), "label": np.ones(1)}
  cfg = _model_cfg("pyramid_depth", (4,))
  cfg.loss_reduction = "sum"
  with pytest.raises(ValueError, match="'pyramid_depth' reduces by the mean"):
    losses.total_loss(outputs, batch, cfg)
  cfg.loss_reduction = "total"
  with pytest.raises(ValueError, match="loss_reduction must be one of"):
    losses.total_loss(outputs, batch, cfg)


def test_depth_valid_all_ones_is_todays_loss_exactly():
  scales = (8, 4, 2)
  depth, pred = _depth_case(n=4, scales=scales)
  batch = {"depth": jnp.asarray(depth), "label": np.ones(4)}
  valid = dict(batch, depth_valid=jnp.ones(4, jnp.float32))
  for run in (lambda f: f, jax.jit):
    want_loss, want_terms = run(lambda b: _depth_loss(pred, b, scales))(batch)
    got_loss, got_terms = run(lambda b: _depth_loss(pred, b, scales))(valid)
    np.testing.assert_array_equal(got_loss, want_loss)
    assert set(got_terms) == set(want_terms)
    for k in want_terms:
      np.testing.assert_array_equal(got_terms[k], want_terms[k], err_msg=k)


def test_depth_valid_zero_removes_a_sample_from_depth_loss_and_gradient():
  scales = (8, 4, 2)
  depth, pred = _depth_case(n=4, scales=scales, seed=6)
  depth[2] = np.nan  # a live frame whose pseudo depth failed
  depth[2, :3] = 1e30
  flags = np.array([1, 1, 0, 1], np.float32)
  keep = flags > 0

  def loss_fn(p, batch):
    return _depth_loss(p, batch, scales)

  jpred = {s: jnp.asarray(v) for s, v in pred.items()}
  batch = {"depth": jnp.asarray(depth), "label": np.ones(4), "depth_valid": jnp.asarray(flags)}
  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(jpred, batch)
  # The same loss on the three valid samples alone, without the key: by numpy and by the loss.
  sub_pred = {s: v[keep] for s, v in pred.items()}
  want = _np_depth_terms(sub_pred, depth[keep], scales)
  for k, v in want.items():
    np.testing.assert_allclose(terms[k], v, rtol=1e-5)
  np.testing.assert_allclose(loss, sum(want.values()), rtol=1e-5)
  sub_batch = {"depth": jnp.asarray(depth[keep]), "label": np.ones(3)}
  sub_grads = jax.grad(lambda p: loss_fn(p, sub_batch)[0])(
      {s: jnp.asarray(v) for s, v in sub_pred.items()})
  for s in scales:
    g = np.asarray(grads[s])
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g[2], 0)
    np.testing.assert_allclose(g[keep], sub_grads[s], rtol=1e-5, atol=1e-9)
  # No valid sample: every depth term is 0 and so is the gradient, not NaN.
  none = dict(batch, depth_valid=jnp.zeros(4, jnp.float32))
  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(jpred, none)
  assert float(loss) == 0 and all(float(v) == 0 for v in terms.values())
  assert all(np.all(np.asarray(g) == 0) for g in grads.values())


def test_depth_valid_does_not_weight_mask_losses():
  rng = np.random.default_rng(7)
  outputs = {"mask_logit_2": jnp.asarray(rng.normal(size=(2, 2, 2)), jnp.float32),
             "logit": jnp.asarray(rng.normal(size=(2,)), jnp.float32)}
  batch = {"mask": jnp.asarray(rng.uniform(size=(2, 4, 4)) > 0.3), "label": np.array([1, 0])}
  cfg = _model_cfg("pyramid_mask", (2,))
  want, _ = losses.total_loss(outputs, batch, cfg)
  got, _ = losses.total_loss(outputs, dict(batch, depth_valid=jnp.zeros(2)), cfg)
  np.testing.assert_array_equal(got, want)
