"""Losses of the paper, and how each term is reduced.

- Pyramid mask (eq. 2): BCE at every position of every scale, MEAN over positions and batch per
  scale, SUMMED over scales; plus L_binary, the BCE of the final logit, mean over the batch.
- Pyramid depth (eq. 3): per scale MSE + contrastive depth loss (CDL), each a MEAN over all its
  elements (as nn.MSELoss), SUMMED over scales.
BCE is computed from logits (mathematically the sigmoid + nn.BCELoss of the reference, without its
log clamp at -100, which only matters for saturated predictions).
"""

import jax.numpy as jnp
import optax

from pyramid_fas_jax import labels

# CDCN's contrast_depth_conv: kernel k is +1 at neighbour (r, c) and -1 at the centre; applied
# with valid padding, out[i, j] = x[i + r, j + c] - x[i + 1, j + 1]. Order as in the reference.
CONTRAST_NEIGHBOURS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))


def bce_with_logits(logits, targets):
  """Mean binary cross-entropy of sigmoid(logits) against targets in [0, 1]."""
  return optax.sigmoid_binary_cross_entropy(logits, targets.astype(logits.dtype)).mean()


def contrast_depth(x):
  """(N, h, w) -> (N, 8, h - 2, w - 2): the 8 neighbour-minus-centre contrasts, valid padding."""
  _, h, w = x.shape
  centre = x[:, 1:h - 1, 1:w - 1]
  return jnp.stack([x[:, r:r + h - 2, c:c + w - 2] - centre for r, c in CONTRAST_NEIGHBOURS],
                   axis=1)


def contrastive_depth_loss(pred, target):
  """CDL (Wang et al. 2020): MSE between the contrasts of prediction and label."""
  return jnp.mean(jnp.square(contrast_depth(pred) - contrast_depth(target)))


def mse(pred, target):
  return jnp.mean(jnp.square(pred - target))


def pyramid_mask_loss(outputs, mask, scales):
  """Sum over scales of the mean BCE between mask_logit_<s> and the min-pooled label."""
  targets = labels.mask_pyramid(mask, scales)
  terms = {f"bce_{s}": bce_with_logits(outputs[f"mask_logit_{s}"], targets[s]) for s in scales}
  return sum(terms.values()), terms


def pyramid_depth_loss(outputs, depth, scales):
  """Sum over scales of MSE + CDL between depth_<s> and the average-pooled label."""
  targets = labels.depth_pyramid(depth, scales)
  terms = {}
  for s in scales:
    terms[f"mse_{s}"] = mse(outputs[f"depth_{s}"], targets[s])
    terms[f"cdl_{s}"] = contrastive_depth_loss(outputs[f"depth_{s}"], targets[s])
  return sum(terms.values()), terms


def multiclass_mask_loss(outputs, mask, species, scale):
  """Mean softmax cross-entropy over positions and batch."""
  logits = outputs[f"class_logits_{scale}"]
  target = labels.class_map(mask, species, scale)
  return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()


def total_loss(outputs, batch, model_cfg):
  """(loss, {term: value}) for the configured head. `batch` holds full-resolution `mask` and
  `depth` (N, H, W), `label` (N,) with 1 = live, and `species` (N,) with 0 = live."""
  head, scales = model_cfg.head, tuple(model_cfg.scales)
  label = batch["label"].astype(jnp.float32)
  if head == "pyramid_mask":
    pyramid, terms = pyramid_mask_loss(outputs, batch["mask"], scales)
    terms["bce_binary"] = bce_with_logits(outputs["logit"], label)
    loss = pyramid + terms["bce_binary"]
  elif head == "dense_mask":
    loss, terms = pyramid_mask_loss(outputs, batch["mask"], scales)
  elif head == "pyramid_depth":
    loss, terms = pyramid_depth_loss(outputs, batch["depth"], scales)
  elif head in ("binary", "spp"):
    loss = bce_with_logits(outputs["logit"], label)
    terms = {"bce_binary": loss}
  elif head == "multiclass_mask":
    loss = multiclass_mask_loss(outputs, batch["mask"], batch["species"], scales[0])
    terms = {"ce": loss}
  else:
    raise ValueError(f"no loss for model.head {head!r}")
  return loss, terms
