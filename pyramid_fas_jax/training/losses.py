"""Losses of the paper, and how each term is reduced.

- Pyramid mask (eq. 2): BCE at every position of every scale, SUMMED over scales; plus L_binary,
  the BCE of the final logit, mean over the batch. `model.loss_reduction` says how each scale's
  BCE is reduced over its s*s positions:
    'mean' (default): the mean over positions and batch, so every scale weighs the same whatever
                      its size (a 1x1 cell counts as much as the 64 cells of the 8x8 map);
    'sum':            the sum over the s*s positions, mean over the batch: eq. 2 read literally
                      ("accumulating the BCE from each position within each scale"), which
                      weighs scale s by s*s against 'mean' (the 8x8 map 64 times the 1x1).
  `dense_mask` (CDCN's mask pyramid) reduces the same way. L_binary has one position per sample,
  so it is the same under both.
- Pyramid depth (eq. 3): per scale MSE + contrastive depth loss (CDL), each a MEAN over all its
  elements (as nn.MSELoss: eq. 3 names L_MSE, a mean, and CDL is an MSE of contrasts), SUMMED
  over scales; `loss_reduction='sum'` is refused for it (and for the multi-class mask's
  cross-entropy, which is not eq. 2 either). CDL compares the 8 neighbour-minus-centre contrasts
  of each 3x3 window (valid padding, as the official conv2d), so it exists only on maps of at
  least 3x3: a 2x2 or 1x1 scale has no CDL term at all (no `cdl_2` among the logged terms,
  rather than a 0 that would read as a perfect fit), and its MSE still applies.
- `batch["depth_valid"]` (N,) float, where present, flags each sample for every depth term (MSE
  and CDL, every scale): 1 = use its depth, 0 = ignore it (a live frame without usable pseudo
  depth). A flag, not a soft weight: any value > 0 counts as 1. Each term is then the mean over
  the elements of the valid samples: with every flag 1 exactly (bit for bit) the unweighted
  mean, an invalid sample changes neither the loss nor any gradient whatever its depth holds
  (NaN included), and a batch without a valid sample gives 0. Mask and binary terms are not
  weighted.
BCE is computed from logits (mathematically the sigmoid + nn.BCELoss of the reference, without its
log clamp at -100, which only matters for saturated predictions).
"""

import jax.numpy as jnp
import optax

from pyramid_fas_jax import models
from pyramid_fas_jax.training import labels

# CDCN's contrast_depth_conv: kernel k is +1 at neighbour (r, c) and -1 at the centre; applied
# with valid padding, out[i, j] = x[i + r, j + c] - x[i + 1, j + 1]. Order as in the reference.
CONTRAST_NEIGHBOURS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))
# The smallest map with a contrast: one full 3x3 window.
CDL_MIN_SIZE = 3
LOSS_REDUCTIONS = ("mean", "sum")


def bce_with_logits(logits, targets, reduction: str = "mean"):
  """BCE of sigmoid(logits) against targets in [0, 1], (N, ...) arrays: 'mean' over every
  element, or 'sum' over each sample's positions and then the mean over the batch."""
  bce = optax.sigmoid_binary_cross_entropy(logits, targets.astype(logits.dtype))
  if reduction == "sum":
    return bce.reshape(bce.shape[0], -1).sum(axis=1).mean()
  return bce.mean()


def masked_mean(x, valid=None):
  """Mean of x (N, ...) over the elements of the samples where `valid` (N,) is true; jnp.mean(x)
  when valid is None, 0 when no sample is valid."""
  if valid is None:
    return jnp.mean(x)
  keep = valid.reshape((-1,) + (1,) * (x.ndim - 1))
  count = jnp.sum(valid.astype(x.dtype)) * (x.size // x.shape[0])
  # A select, not x * weight: XLA reassociates a reduce of a broadcast product (per-sample sums
  # first), which would move an all-valid batch off jnp.mean(x) by an ulp.
  total = jnp.sum(jnp.where(keep, x, 0))
  return jnp.where(count > 0, total / jnp.maximum(count, 1), 0)


def contrast_depth(x):
  """(N, h, w) -> (N, 8, h - 2, w - 2): the 8 neighbour-minus-centre contrasts, valid padding."""
  _, h, w = x.shape
  if min(h, w) < CDL_MIN_SIZE:
    raise ValueError(f"a {h}x{w} map has no 3x3 window to contrast: CDL needs at least "
                     f"{CDL_MIN_SIZE}x{CDL_MIN_SIZE}")
  centre = x[:, 1:h - 1, 1:w - 1]
  return jnp.stack([x[:, r:r + h - 2, c:c + w - 2] - centre for r, c in CONTRAST_NEIGHBOURS],
                   axis=1)


def contrastive_depth_loss(pred, target, valid=None):
  """CDL (Wang et al. 2020): MSE between the contrasts of prediction and label (maps >= 3x3)."""
  return masked_mean(jnp.square(contrast_depth(pred) - contrast_depth(target)), valid)


def mse(pred, target, valid=None):
  return masked_mean(jnp.square(pred - target), valid)


def pyramid_mask_loss(outputs, mask, scales, reduction: str = "mean"):
  """Sum over scales of the BCE between mask_logit_<s> and the min-pooled label."""
  targets = labels.mask_pyramid(mask, scales)
  terms = {f"bce_{s}": bce_with_logits(outputs[f"mask_logit_{s}"], targets[s], reduction)
           for s in scales}
  return sum(terms.values()), terms


def pyramid_depth_loss(outputs, depth, scales, depth_valid=None):
  """Sum over scales of MSE + CDL (where the map is at least 3x3) between depth_<s> and the
  average-pooled label, over the samples whose `depth_valid` (N,) is > 0 (all where None)."""
  valid = None
  if depth_valid is not None:
    valid = depth_valid > 0
    # An invalid sample's depth may be anything: zeroed, a NaN there cannot reach the gradient
    # (the masked select passes a zero cotangent, but 0 * NaN is NaN).
    depth = jnp.where(valid[:, None, None], depth, 0)
  targets = labels.depth_pyramid(depth, scales)
  terms = {}
  for s in scales:
    terms[f"mse_{s}"] = mse(outputs[f"depth_{s}"], targets[s], valid)
    if s >= CDL_MIN_SIZE:
      terms[f"cdl_{s}"] = contrastive_depth_loss(outputs[f"depth_{s}"], targets[s], valid)
  return sum(terms.values()), terms


def multiclass_mask_loss(outputs, mask, species, scale):
  """Mean softmax cross-entropy over positions and batch."""
  logits = outputs[f"class_logits_{scale}"]
  target = labels.class_map(mask, species, scale)
  return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()


def _pyramid_mask_and_binary(outputs, batch, scales, reduction):
  pyramid, terms = pyramid_mask_loss(outputs, batch["mask"], scales, reduction)
  terms["bce_binary"] = bce_with_logits(outputs["logit"], batch["label"].astype(jnp.float32))
  return pyramid + terms["bce_binary"], terms


def _pyramid_mask(outputs, batch, scales, reduction):
  return pyramid_mask_loss(outputs, batch["mask"], scales, reduction)


def _pyramid_depth(outputs, batch, scales, reduction):
  del reduction  # means only: HeadSpec.reductions refuses 'sum'
  return pyramid_depth_loss(outputs, batch["depth"], scales, batch.get("depth_valid"))


def _binary(outputs, batch, scales, reduction):
  del scales, reduction  # one logit per sample: the same under either reduction
  loss = bce_with_logits(outputs["logit"], batch["label"].astype(jnp.float32))
  return loss, {"bce_binary": loss}


def _multiclass_mask(outputs, batch, scales, reduction):
  del reduction  # means only: HeadSpec.reductions refuses 'sum'
  loss = multiclass_mask_loss(outputs, batch["mask"], batch["species"], scales[0])
  return loss, {"ce": loss}


# A HeadSpec's loss kind -> (outputs, batch, scales, reduction) -> (loss, {term: value}).
HEAD_LOSSES = {
    "pyramid_mask_binary": _pyramid_mask_and_binary,
    "pyramid_mask": _pyramid_mask,
    "pyramid_depth": _pyramid_depth,
    "binary": _binary,
    "multiclass_mask": _multiclass_mask,
}


def total_loss(outputs, batch, model_cfg):
  """(loss, {term: value}) for the configured head: the loss its models.HEADS spec names.
  `batch` holds full-resolution `mask` and `depth` (N, H, W), `label` (N,) with 1 = live,
  `species` (N,) with 0 = live, and optionally `depth_valid` (N,), the depth terms' per-sample
  flags.

  `model_cfg.loss_reduction` applies to the mask BCE terms; a head's spec lists the reductions
  its loss takes."""
  head, scales = model_cfg.head, tuple(model_cfg.scales)
  reduction = model_cfg.loss_reduction
  if reduction not in LOSS_REDUCTIONS:
    raise ValueError(f"model.loss_reduction must be one of {LOSS_REDUCTIONS}, got {reduction!r}")
  spec = models.HEADS.get(head)
  if spec is None:
    raise ValueError(f"no loss for model.head {head!r}")
  if reduction not in spec.reductions:
    raise ValueError(f"model.loss_reduction={reduction!r} is eq. 2's reading for mask BCE; "
                     f"model.head {head!r} reduces by the {' or '.join(spec.reductions)} (MSE, "
                     f"CDL, cross-entropy): set it to {spec.reductions[0]!r}")
  return HEAD_LOSSES[spec.loss](outputs, batch, scales, reduction)
