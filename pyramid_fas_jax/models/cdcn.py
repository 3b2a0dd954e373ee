"""CDCN (Yu et al., CVPR 2020) with the official code's architecture and parameter names.

stem 64 -> three blocks (128-196-128, each ending in a 3x3/2 max pool) -> each block's output
resized to `map_size` (32) with PyTorch-style bilinear (no antialiasing) -> concatenated (384
channels) -> CDC 128 -> CDC 64 -> CDC 1 + ReLU: a depth (or mask) map of `map_size` x `map_size`.

The backbone ends at the concatenation (its `features`); lastconv1..3 form the map predictor,
which `heads.DenseMapHead` owns. `theta=0` gives DepthNet, the plain-convolution baseline.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from pyramid_fas_jax.models.cdc import CDConv
from pyramid_fas_jax.models.layers import BatchNorm, max_pool, resize_bilinear


class ConvBNReLU(nnx.Module):
  """basic_conv + BatchNorm2d + ReLU, one `nn.Sequential` of the official code."""

  def __init__(self, in_features, out_features, *, theta, rngs):
    self.conv = CDConv(in_features, out_features, 3, theta=theta, rngs=rngs)
    self.bn = BatchNorm(out_features)

  def __call__(self, x):
    return jax.nn.relu(self.bn(self.conv(x)))


class CDCNBlock(nnx.Module):
  def __init__(self, in_features, widths, *, theta, rngs):
    layers = []
    for w in widths:
      layers.append(ConvBNReLU(in_features, w, theta=theta, rngs=rngs))
      in_features = w
    self.layers = nnx.List(layers)

  def __call__(self, x):
    for layer in self.layers:
      x = layer(x)
    return max_pool(x)


class CDCN(nnx.Module):
  """Multi-level CDC feature extractor; returns the concatenated (N, map_size, map_size, 3C) map."""

  def __init__(self, *, theta: float = 0.7, stem: int = 64, widths=(128, 196, 128),
               map_size: int = 32, rngs: nnx.Rngs):
    self.conv1 = ConvBNReLU(3, stem, theta=theta, rngs=rngs)
    self.Block1 = CDCNBlock(stem, widths, theta=theta, rngs=rngs)
    self.Block2 = CDCNBlock(widths[-1], widths, theta=theta, rngs=rngs)
    self.Block3 = CDCNBlock(widths[-1], widths, theta=theta, rngs=rngs)
    self.map_size = map_size
    self.num_features = 3 * widths[-1]

  def __call__(self, x):
    x = self.conv1(x)
    b1 = self.Block1(x)
    b2 = self.Block2(b1)
    b3 = self.Block3(b2)
    return jnp.concatenate([resize_bilinear(b, self.map_size) for b in (b1, b2, b3)], axis=-1)


DepthNet = functools.partial(CDCN, theta=0.0)
# CPU-sized variant (a quarter of the channels) for tests and the demo.
CDCNTiny = functools.partial(CDCN, stem=16, widths=(32, 48, 32))
