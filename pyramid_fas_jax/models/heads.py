"""Heads: backbone features (N, h, w, C) -> a dict of named outputs (see DESIGN.md "Names").

Every head returns `score` (N,), higher = more live. Mask maps are live-probabilities, and each
comes with its logit (`mask_logit_<s>`) so the loss is a numerically stable BCE-with-logits.

`HEADS` (name -> `HeadSpec`) is the one place a `model.head` is declared: what it builds and
outputs, its loss and reductions, and what it asks of the config. build_model, the losses, the
configs and the config checks read it; none tests a head's name.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from pyramid_fas_jax.models.cdc import CDConv
from pyramid_fas_jax.models.layers import BatchNorm, avg_pool, conv, linear


def spp_max_pool(x, size: int):
  """He et al.'s SPP level: an NHWC map max-pooled to size x size bins, window ceil(h / size) and
  stride floor(h / size) per axis (exact blocks where size divides h). Where that rule does not
  give `size` bins (e.g. 4 bins of a 6x6 map: windows of 2 at stride 1 make 5) it refuses."""
  windows, strides = [], []
  for a in x.shape[1:3]:
    win, stride = -(-a // size), a // size
    if stride == 0 or (a - win) // stride + 1 != size:
      raise ValueError(f"SPP cannot max-pool a {x.shape[1]}x{x.shape[2]} map to {size}x{size} "
                       f"bins by He et al.'s rule (window ceil, stride floor): choose scales "
                       f"that divide the map, or another input size")
    windows.append(win)
    strides.append(stride)
  # Keywords: jax2onnx's max_pool (export.py) takes the window and strides only by name.
  return nnx.max_pool(x, window_shape=tuple(windows), strides=tuple(strides), padding="VALID")


def _pool_to(x, size: int):
  """Average-pool an NHWC (or NHW) map to size x size (kernel = stride = h / size)."""
  h = x.shape[1]
  if h % size:
    raise ValueError(f"a {h}x{h} map cannot be pooled to {size}x{size}: {size} must divide {h}")
  return avg_pool(x, h // size)


class PyramidMaskHead(nnx.Module):
  """Paper eq. (1): M_s = sigmoid(conv1x1_s(AvgPool_s(F))), unshared per scale; the flattened masks
  are concatenated into a linear layer that gives the final binary logit (Fig. 2).

  With scales=(8,) this is the single-scale binary-mask baseline (PixBiS-like, 'ResNet50_8x8').
  """

  def __init__(self, in_features: int, scales=(8, 4, 2, 1), *, rngs: nnx.Rngs):
    self.scales = tuple(int(s) for s in scales)
    self.mask_convs = nnx.List([conv(in_features, 1, 1, use_bias=True, rngs=rngs)
                                for _ in self.scales])
    self.classifier = linear(sum(s * s for s in self.scales), 1, rngs=rngs)

  def __call__(self, features):
    out, flat = {}, []
    for s, mask_conv in zip(self.scales, self.mask_convs):
      logit = mask_conv(_pool_to(features, s))[..., 0]
      out[f"mask_logit_{s}"] = logit
      out[f"mask_{s}"] = jax.nn.sigmoid(logit)
      flat.append(out[f"mask_{s}"].reshape(logit.shape[0], -1))
    out["logit"] = self.classifier(jnp.concatenate(flat, axis=-1))[:, 0]
    out["score"] = jax.nn.sigmoid(out["logit"])
    return out


class CDCMapPredictor(nnx.Module):
  """CDCN's lastconv1..3: CDC+BN+ReLU per hidden width, then a CDC conv to one channel."""

  def __init__(self, in_features: int, hidden=(128, 64), *, theta: float, rngs: nnx.Rngs):
    layers, norms = [], []
    for w in hidden:
      layers.append(CDConv(in_features, w, 3, theta=theta, rngs=rngs))
      norms.append(BatchNorm(w))
      in_features = w
    self.convs = nnx.List(layers)
    self.norms = nnx.List(norms)
    self.out = CDConv(in_features, 1, 3, theta=theta, rngs=rngs)

  def __call__(self, x):
    for c, n in zip(self.convs, self.norms):
      x = jax.nn.relu(n(c(x)))
    return self.out(x)[..., 0]


class Conv1x1MapPredictor(nnx.Module):
  """One 1x1 convolution to one channel: the map predictor for classification backbones."""

  def __init__(self, in_features: int, *, rngs: nnx.Rngs):
    self.conv = conv(in_features, 1, 1, use_bias=True, rngs=rngs)

  def __call__(self, x):
    return self.conv(x)[..., 0]


_DEPTH_ACTIVATIONS = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid}


class DenseMapHead(nnx.Module):
  """A dense map at the feature resolution, and coarser scales by average pooling (sec. III-B).

  kind='depth': D = activation(map), D_s = AvgPool(D); the score is the mean of the predicted
  maps over all scales (the paper's test-time rule). CDCN's predictor ends in a ReLU (the official
  code, so imported weights match). A bare 1x1 conv on a classification backbone's features must
  not: those features are non-negative and shared across positions, so its output often starts
  negative everywhere, and attacks (zero targets, most of the data) push it there; a ReLU then
  passes no gradient and the score stays constant (the runlocal ResNet dies within a dozen Adam
  steps; tests/test_models.py). A sigmoid keeps D in the labels' [0, 1] and always passes
  gradient.
  kind='mask': the map is a logit; coarser logits are average-pooled, masks are their sigmoids;
  the score is the mean live-probability over all scales.
  The first scale must be the predictor's resolution.
  """

  def __init__(self, predictor: nnx.Module, kind: str, scales=(32, 16),
               depth_activation: str = "relu"):
    if kind not in ("depth", "mask"):
      raise ValueError(f"DenseMapHead kind must be 'depth' or 'mask', got {kind!r}")
    if depth_activation not in _DEPTH_ACTIVATIONS:
      raise ValueError(f"depth_activation must be one of {sorted(_DEPTH_ACTIVATIONS)}, got "
                       f"{depth_activation!r}")
    self.predictor, self.kind = predictor, kind
    self.depth_activation = depth_activation
    self.scales = tuple(int(s) for s in scales)

  def __call__(self, features):
    full = self.predictor(features)
    if full.shape[1] != self.scales[0]:
      raise ValueError(f"the predicted map is {full.shape[1]}x{full.shape[2]} but the first scale "
                       f"is {self.scales[0]}: list the map's own size first in model.scales")
    out, means = {}, []
    for s in self.scales:
      if self.kind == "depth":
        out[f"depth_{s}"] = _pool_to(_DEPTH_ACTIVATIONS[self.depth_activation](full), s)
        means.append(out[f"depth_{s}"].mean(axis=(1, 2)))
      else:
        out[f"mask_logit_{s}"] = _pool_to(full, s)
        out[f"mask_{s}"] = jax.nn.sigmoid(out[f"mask_logit_{s}"])
        means.append(out[f"mask_{s}"].mean(axis=(1, 2)))
    out["score"] = jnp.stack(means).mean(axis=0)
    return out


class BinaryHead(nnx.Module):
  """Global average pooling + linear: the binary-score baseline."""

  def __init__(self, in_features: int, *, rngs: nnx.Rngs):
    self.fc = linear(in_features, 1, rngs=rngs)

  def __call__(self, features):
    logit = self.fc(features.mean(axis=(1, 2)))[:, 0]
    return {"logit": logit, "score": jax.nn.sigmoid(logit)}


SPP_POOLS = ("max", "avg")


class SPPHead(nnx.Module):
  """Spatial pyramid pooling (He et al.): features pooled to each scale's s x s bins, flattened,
  concatenated into one linear layer; supervised by the binary label only (Table II).

  pool='max' is He et al.'s SPP (`spp_max_pool`); pool='avg' average-pools non-overlapping blocks
  (the scale must divide the map), as the pyramid mask head does. The parameters are the same for
  both, so a checkpoint does not say which it was trained with: its config does.
  """

  def __init__(self, in_features: int, scales=(2, 1), pool: str = "avg", *, rngs: nnx.Rngs):
    if pool not in SPP_POOLS:
      raise ValueError(f"SPP pool must be one of {SPP_POOLS}, got {pool!r}")
    self.scales = tuple(int(s) for s in scales)
    self.pool = pool
    self.fc = linear(in_features * sum(s * s for s in self.scales), 1, rngs=rngs)

  def __call__(self, features):
    n = features.shape[0]
    pool_to = spp_max_pool if self.pool == "max" else _pool_to
    pooled = [pool_to(features, s).reshape(n, -1) for s in self.scales]
    logit = self.fc(jnp.concatenate(pooled, axis=-1))[:, 0]
    return {"logit": logit, "score": jax.nn.sigmoid(logit)}


class MultiClassMaskHead(nnx.Module):
  """Per-position classes (class 0 = live; then the attack species, e.g. print, replay) at one
  scale; the score is the mean live-probability."""

  def __init__(self, in_features: int, num_classes: int, scale: int = 8, *, rngs: nnx.Rngs):
    if num_classes < 2:
      raise ValueError(f"a multi-class mask needs at least 2 classes, got {num_classes}")
    self.scale = int(scale)
    self.conv = conv(in_features, num_classes, 1, use_bias=True, rngs=rngs)

  def __call__(self, features):
    logits = self.conv(_pool_to(features, self.scale))
    live = jax.nn.softmax(logits, axis=-1)[..., 0]
    return {f"class_logits_{self.scale}": logits, f"mask_{self.scale}": live,
            "score": live.mean(axis=(1, 2))}


def _map_predictor(cfg, backbone, family, rngs):
  # FCN backbones predict maps with CDCN's own lastconv stack (CDC, or plain convs for DepthNet);
  # classification backbones with a 1x1 conv on their last feature map.
  if family == "fcn":
    theta = 0.0 if cfg.backbone == "depthnet" else cfg.theta
    return CDCMapPredictor(backbone.num_features, tuple(cfg.predictor_widths), theta=theta,
                           rngs=rngs)
  return Conv1x1MapPredictor(backbone.num_features, rngs=rngs)


def _dense_map_head(kind: str):
  def build(cfg, backbone, family, rngs):
    return DenseMapHead(_map_predictor(cfg, backbone, family, rngs), kind, cfg.scales,
                        depth_activation="relu" if family == "fcn" else "sigmoid")
  return build


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  """What a `model.head` is, for everything that reads the config.

  Attributes:
    build: (config.model, backbone, family 'classification' | 'fcn', rngs) -> the head module.
    outputs: names of its outputs besides the model's `features`: '{s}' stands for every scale
      of model.scales, '{s0}' for the first alone.
    loss: the loss kind, a key of training/losses.py's HEAD_LOSSES.
    reductions: the model.loss_reduction values its loss takes ('sum' is eq. 2's reading of the
      mask BCE; a head without mask BCE reduces by the mean only).
    num_classes: it reads model.num_classes (live + attack species).
    dense_map: it predicts one map at the first scale and average-pools the others from it.
    pooling: how the backbone's map is pooled to each scale: 'avg', 'spp_pool' (as
      model.spp_pool says: 'max' or 'avg'), or None (not pooled to the scales).
  """
  build: Callable
  outputs: tuple[str, ...]
  loss: str
  reductions: tuple[str, ...] = ("mean",)
  num_classes: bool = False
  dense_map: bool = False
  pooling: str | None = None

  def output_names(self, scales) -> set[str]:
    """Its outputs' names for `scales`."""
    scales = tuple(int(s) for s in scales)
    names = set()
    for name in self.outputs:
      if "{s}" in name:
        names.update(name.format(s=s) for s in scales)
      else:
        names.add(name.format(s0=scales[0]))
    return names

  def pools(self, spp_pool="avg"):
    """'avg', 'max' or None: how the backbone's map is pooled to the scales, with
    model.spp_pool = `spp_pool`."""
    return spp_pool if self.pooling == "spp_pool" else self.pooling


_MASKS = ("mask_logit_{s}", "mask_{s}")
_MASK_REDUCTIONS = ("mean", "sum")

HEADS = {
    "pyramid_mask": HeadSpec(
        build=lambda cfg, backbone, family, rngs: PyramidMaskHead(
            backbone.num_features, cfg.scales, rngs=rngs),
        outputs=(*_MASKS, "logit", "score"), loss="pyramid_mask_binary",
        reductions=_MASK_REDUCTIONS, pooling="avg"),
    "pyramid_depth": HeadSpec(
        build=_dense_map_head("depth"), outputs=("depth_{s}", "score"), loss="pyramid_depth",
        dense_map=True),
    "dense_mask": HeadSpec(
        build=_dense_map_head("mask"), outputs=(*_MASKS, "score"), loss="pyramid_mask",
        reductions=_MASK_REDUCTIONS, dense_map=True),
    # One logit: its BCE is the same under either reduction.
    "binary": HeadSpec(
        build=lambda cfg, backbone, family, rngs: BinaryHead(backbone.num_features, rngs=rngs),
        outputs=("logit", "score"), loss="binary", reductions=_MASK_REDUCTIONS),
    "spp": HeadSpec(
        build=lambda cfg, backbone, family, rngs: SPPHead(
            backbone.num_features, cfg.scales, cfg.spp_pool, rngs=rngs),
        outputs=("logit", "score"), loss="binary", reductions=_MASK_REDUCTIONS,
        pooling="spp_pool"),
    "multiclass_mask": HeadSpec(
        build=lambda cfg, backbone, family, rngs: MultiClassMaskHead(
            backbone.num_features, cfg.num_classes, cfg.scales[0], rngs=rngs),
        outputs=("class_logits_{s0}", "mask_{s0}", "score"), loss="multiclass_mask",
        num_classes=True, pooling="avg"),
}
