"""DenseNet-BC with torchvision's exact structure, so torchvision's ImageNet weights import by
renaming alone (`features.denseblock1.denselayer1.norm1.weight` -> features/denseblock1/...).

torchvision's `memory_efficient` option (gradient checkpointing of each bottleneck) changes only
memory, not values, and is not reproduced; dropout inside dense layers (drop_rate) is 0 in every
torchvision DenseNet and is left out.

The FAS backbone returns relu(features): the map torchvision's classifier pools, after norm5 and
the ReLU its forward applies. Its stride is 32 (8x8 at 256x256 input).
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from pyramid_fas_jax.models.layers import (
  BatchNorm,
  avg_pool,
  conv,
  kaiming_fan_in,
  linear,
  max_pool,
  zeros,
)


class DenseLayer(nnx.Module):
  """BN-ReLU-conv1x1 (bottleneck, bn_size * growth) - BN-ReLU-conv3x3 (growth new channels)."""

  def __init__(self, in_features, growth_rate, bn_size, *, rngs):
    width = bn_size * growth_rate
    self.norm1 = BatchNorm(in_features)
    self.conv1 = conv(in_features, width, 1, kernel_init=kaiming_fan_in, rngs=rngs)
    self.norm2 = BatchNorm(width)
    self.conv2 = conv(width, growth_rate, 3, kernel_init=kaiming_fan_in, rngs=rngs)

  def __call__(self, x):
    y = self.conv1(jax.nn.relu(self.norm1(x)))
    return self.conv2(jax.nn.relu(self.norm2(y)))


class DenseBlock(nnx.Module):
  def __init__(self, num_layers, in_features, growth_rate, bn_size, *, rngs):
    for i in range(num_layers):
      setattr(self, f"denselayer{i + 1}",
              DenseLayer(in_features + i * growth_rate, growth_rate, bn_size, rngs=rngs))
    self.num_layers = num_layers

  def __call__(self, x):
    for i in range(self.num_layers):
      x = jnp.concatenate([x, getattr(self, f"denselayer{i + 1}")(x)], axis=-1)
    return x


class Transition(nnx.Module):
  """BN-ReLU-conv1x1 halving the channels, then AvgPool2d(2, 2)."""

  def __init__(self, in_features, out_features, *, rngs):
    self.norm = BatchNorm(in_features)
    self.conv = conv(in_features, out_features, 1, kernel_init=kaiming_fan_in, rngs=rngs)

  def __call__(self, x):
    x = self.conv(jax.nn.relu(self.norm(x)))
    # PyTorch's AvgPool2d floors the output size: an odd last row/column is dropped.
    h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    return avg_pool(x[:, :h, :w], 2)


class Features(nnx.Module):
  """torchvision's `features` Sequential: conv0, norm0, pool0, denseblockK, transitionK, norm5."""

  def __init__(self, growth_rate, block_config, num_init_features, bn_size, stem_stride,
               stem_pool, *, rngs):
    self.conv0 = conv(3, num_init_features, 7, strides=stem_stride, kernel_init=kaiming_fan_in,
                      rngs=rngs)
    self.norm0 = BatchNorm(num_init_features)
    self.stem_pool = stem_pool
    c = num_init_features
    for i, n in enumerate(block_config, start=1):
      setattr(self, f"denseblock{i}", DenseBlock(n, c, growth_rate, bn_size, rngs=rngs))
      c += n * growth_rate
      if i < len(block_config):
        setattr(self, f"transition{i}", Transition(c, c // 2, rngs=rngs))
        c //= 2
    self.norm5 = BatchNorm(c)
    self.num_blocks = len(block_config)
    self.num_features = c

  def __call__(self, x):
    x = jax.nn.relu(self.norm0(self.conv0(x)))
    if self.stem_pool:
      x = max_pool(x)
    for i in range(1, self.num_blocks + 1):
      x = getattr(self, f"denseblock{i}")(x)
      if i < self.num_blocks:
        x = getattr(self, f"transition{i}")(x)
    return self.norm5(x)


class DenseNet(nnx.Module):
  """Returns relu(features) (NHWC); with `num_classes`, also torchvision's logits (global average
  pool, linear).

  `stem_stride=1, stem_pool=False` removes the stem's 4x downsampling, as for the small ResNet.
  """

  def __init__(self, growth_rate: int = 32, block_config=(6, 12, 24, 16), *,
               num_init_features: int = 64, bn_size: int = 4, stem_stride: int = 2,
               stem_pool: bool = True, num_classes: int | None = None, rngs: nnx.Rngs):
    self.features = Features(growth_rate, block_config, num_init_features, bn_size, stem_stride,
                             stem_pool, rngs=rngs)
    self.num_features = self.features.num_features
    self.classifier = (linear(self.num_features, num_classes, bias_init=zeros, rngs=rngs)
                       if num_classes else None)

  def __call__(self, x):
    x = jax.nn.relu(self.features(x))
    if self.classifier is None:
      return x
    return x, self.classifier(x.mean(axis=(1, 2)))


DenseNet121 = functools.partial(DenseNet, 32, (6, 12, 24, 16))
# CPU-sized variant for tests and runlocal configs: stride 8, so 64x64 input keeps an 8x8 map.
DenseNetTiny = functools.partial(DenseNet, 8, (2, 2, 2, 2), num_init_features=16, bn_size=2,
                                 stem_stride=1, stem_pool=False)
