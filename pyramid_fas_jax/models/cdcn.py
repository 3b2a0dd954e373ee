"""CDCN and CDCN++ (Yu et al., CVPR 2020) with the official code's architecture and parameter
names (CVPR2020_paper_codes/models/CDCNs.py).

CDCN: stem 64 -> three blocks (128-196-128, each ending in a 3x3/2 max pool) -> each block's output
resized to `map_size` (32) with PyTorch-style bilinear (no antialiasing) -> concatenated (384
channels) -> CDC 128 -> CDC 64 -> CDC 1 + ReLU: a depth (or mask) map of `map_size` x `map_size`.

CDCN++: the NAS-searched blocks (128-204-128, 153-128-179-128, 128-153-128), and before each
block's output is resized it is multiplied by a spatial attention map (kernels 7, 5, 3); the next
block still reads the unattended output. Its map predictor is CDC 128 -> CDC 1 + ReLU.

The backbone ends at the concatenation (its `features`); the lastconv layers form the map
predictor, which `heads.DenseMapHead` owns. `theta=0` gives DepthNet, the plain-convolution
baseline of the official code.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from pyramid_fas_jax.models.cdc import CDConv
from pyramid_fas_jax.models.layers import BatchNorm, conv, max_pool, resize_bilinear

CDCN_BLOCKS = ((128, 196, 128),) * 3


def cdcnpp_blocks(width: int = 128):
  """The block widths CDCN++'s search found, computed as the official code does them
  (int(128 * 1.6) = 204, ...)."""
  return ((width, int(width * 1.6), width),
          (int(width * 1.2), width, int(width * 1.4), width),
          (width, int(width * 1.2), width))


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


class SpatialAttention(nnx.Module):
  """sigmoid(conv_k([mean over channels, max over channels])): one weight per position."""

  def __init__(self, kernel_size: int, *, rngs: nnx.Rngs):
    self.conv1 = conv(2, 1, kernel_size, rngs=rngs)

  def __call__(self, x):
    pooled = jnp.concatenate([x.mean(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)], -1)
    return jax.nn.sigmoid(self.conv1(pooled))


class CDCN(nnx.Module):
  """Multi-level CDC feature extractor; returns the concatenated (N, map_size, map_size, C) map,
  C = the sum of the blocks' last widths. With `attention` kernel sizes (one per block), CDCN++."""

  def __init__(self, *, theta: float = 0.7, stem: int = 64, blocks=CDCN_BLOCKS, attention=None,
               map_size: int = 32, rngs: nnx.Rngs):
    self.conv1 = ConvBNReLU(3, stem, theta=theta, rngs=rngs)
    in_features = stem
    for i, widths in enumerate(blocks, start=1):
      setattr(self, f"Block{i}", CDCNBlock(in_features, widths, theta=theta, rngs=rngs))
      in_features = widths[-1]
    self.num_blocks = len(blocks)
    self.attention = attention is not None
    if self.attention:
      if len(attention) != len(blocks):
        raise ValueError(f"one attention kernel size per block: got {attention} for "
                         f"{len(blocks)} blocks")
      for i, k in enumerate(attention, start=1):
        setattr(self, f"sa{i}", SpatialAttention(k, rngs=rngs))
    self.map_size = map_size
    self.num_features = sum(widths[-1] for widths in blocks)

  def __call__(self, x):
    x = self.conv1(x)
    maps = []
    for i in range(1, self.num_blocks + 1):
      x = getattr(self, f"Block{i}")(x)
      attended = x * getattr(self, f"sa{i}")(x) if self.attention else x
      maps.append(resize_bilinear(attended, self.map_size))
    return jnp.concatenate(maps, axis=-1)


DepthNet = functools.partial(CDCN, theta=0.0)
CDCNpp = functools.partial(CDCN, stem=64, blocks=cdcnpp_blocks(128), attention=(7, 5, 3))
# CPU-sized variants (a quarter of the channels) for tests and the demo.
CDCNTiny = functools.partial(CDCN, stem=16, blocks=((32, 48, 32),) * 3)
CDCNppTiny = functools.partial(CDCN, stem=16, blocks=cdcnpp_blocks(32), attention=(7, 5, 3))
