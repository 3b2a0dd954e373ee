"""Face anti-spoofing models: a backbone and a head, built from `config.model`.

`build_model(config.model, rngs)` is the one way to make a model; `FASModel(images)` returns the
head's named outputs plus `features`, the backbone's last feature map.
"""

import functools
import hashlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from pyramid_fas_jax.models import (
  cdcn,
  conv_ops,
  densenet,
  heads,
  mobilenet,
  resnet,
  shufflenet,
  vgg,
)


def _classification(make):
  return (lambda c, rngs: make(rngs=rngs)), "classification"


def _fcn(make):
  return (lambda c, rngs: make(theta=c.theta, map_size=c.map_size, rngs=rngs)), "fcn"


# name -> (constructor(model_cfg, rngs), "classification" | "fcn"). Classification backbones end
# at their stride-32 map (8x8 at 256x256); the *_tiny ones are CPU-sized, stride 8.
BACKBONES = {
    "resnet50": _classification(resnet.ResNet50),
    "resnet_tiny": _classification(resnet.ResNetTiny),
    "vgg16": _classification(vgg.VGG16),
    "vgg_tiny": _classification(vgg.VGGTiny),
    "densenet121": _classification(densenet.DenseNet121),
    "densenet_tiny": _classification(densenet.DenseNetTiny),
    "shufflenet_v2_x1_0": _classification(shufflenet.ShuffleNetV2X10),
    "shufflenet_v2_tiny": _classification(shufflenet.ShuffleNetV2Tiny),
    "mobilenet_v2": _classification(mobilenet.MobileNetV2X10),
    "mobilenet_v2_tiny": _classification(mobilenet.MobileNetV2Tiny),
    "cdcn": _fcn(cdcn.CDCN),
    "cdcn_tiny": _fcn(cdcn.CDCNTiny),
    "cdcnpp": _fcn(cdcn.CDCNpp),
    "cdcnpp_tiny": _fcn(cdcn.CDCNppTiny),
    "depthnet": (lambda c, rngs: cdcn.DepthNet(map_size=c.map_size, rngs=rngs), "fcn"),
}

# name -> heads.HeadSpec: what each model.head builds, outputs and is trained with.
HEADS = heads.HEADS


class FASModel(nnx.Module):

  def __init__(self, backbone: nnx.Module, head: nnx.Module):
    self.backbone = backbone
    self.head = head

  def __call__(self, images):
    features = self.backbone(images)
    return {**self.head(features), "features": features}


def build_model(cfg, rngs: nnx.Rngs) -> FASModel:
  """Model from a `config.model` ConfigDict (fields: backbone, head, scales, theta, map_size,
  predictor_widths, num_classes, spp_pool, conv_impl)."""
  if cfg.backbone not in BACKBONES:
    raise ValueError(f"unknown model.backbone {cfg.backbone!r}; choose from {sorted(BACKBONES)}")
  make_backbone, family = BACKBONES[cfg.backbone]
  backbone = make_backbone(cfg, rngs)
  if cfg.head not in HEADS:
    raise ValueError(f"unknown model.head {cfg.head!r}; choose from {list(HEADS)}")
  head = HEADS[cfg.head].build(cfg, backbone, family, rngs)
  model = FASModel(backbone, head)
  impl = cfg.conv_impl
  if impl not in conv_ops.IMPLS:
    raise ValueError(f"unknown model.conv_impl {impl!r}; choose from {list(conv_ops.IMPLS)}")
  model.set_attributes(conv_impl=impl, raise_if_not_found=False)
  return model


@functools.cache
def feature_map_size(backbone: str, input_size: int) -> int:
  """Side of a classification backbone's last feature map for a square input, traced abstractly
  (no parameters are made). Neither size // stride nor its ceiling is right for every backbone:
  VGG's and DenseNet's pools floor, strided convolutions' padding ceils."""
  make, _ = BACKBONES[backbone]
  cfg = ml_collections.ConfigDict({"theta": 0.0, "map_size": 32})

  def features(images):
    net = make(cfg, nnx.Rngs(0))
    net.eval()
    return net(images)

  out = jax.eval_shape(features, jax.ShapeDtypeStruct((1, input_size, input_size, 3), jnp.float32))
  return int(out.shape[1])


def flat_state(model) -> dict[str, nnx.Variable]:
  """{'backbone/layer1/0/conv1/kernel': variable, ...} of every variable in the model."""
  return {"/".join(map(str, path)): var for path, var in nnx.to_flat_state(nnx.state(model))}


def _host(x) -> np.ndarray:
  # A replicated array of a multi-process run is not fully addressable; every copy is the same.
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_data(0)
  return np.ascontiguousarray(np.asarray(x))


def fingerprint(model) -> str:
  """16 hex digits identifying `model`'s weights: the sha256 of every parameter's and batch
  statistic's name, dtype, shape and bytes. Two copies of one checkpoint give the same value,
  two steps of a run (or two runs) different ones; the provenance of every artefact names it."""
  h = hashlib.sha256()
  for name, var in sorted(flat_state(model).items()):
    if not isinstance(var, (nnx.Param, nnx.BatchStat)):
      continue  # RNG counters and the like: not what the model computes
    value = _host(var.get_value() if hasattr(var, "get_value") else var.value)
    h.update(f"{name}|{value.dtype}|{value.shape}|".encode())
    h.update(value.tobytes())
  return h.hexdigest()[:16]
