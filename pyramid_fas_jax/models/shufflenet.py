"""ShuffleNetV2 with torchvision's exact structure (conv1.N, stageK.J.branch1/branch2.N, conv5.N),
so torchvision's ImageNet weights import by renaming alone. Its weights use PyTorch's default init.

The FAS backbone ends at conv5 (1x1 conv to 1024 channels + BN + ReLU): the map torchvision's
classifier pools, at stride 32 (8x8 at 256x256 input, as stage4's output).
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from pyramid_fas_jax.models.layers import BatchNorm, Sequential, conv, linear, max_pool


def channel_shuffle(x, groups: int = 2):
  """torchvision's channel_shuffle: channels viewed as (groups, C / groups), transposed."""
  n, h, w, c = x.shape
  return x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4).reshape(n, h, w, c)


class InvertedResidual(nnx.Module):
  """ShuffleNetV2 unit. Stride 1: half the channels pass through and branch2 transforms the other
  half. Stride 2: both branches downsample the whole input. Either way the halves are
  concatenated and channel-shuffled."""

  def __init__(self, in_features: int, out_features: int, strides: int, *, rngs: nnx.Rngs):
    branch = out_features // 2
    if strides == 1 and in_features != 2 * branch:
      raise ValueError(f"a stride-1 unit needs in_features == out_features, got {in_features} "
                       f"and {out_features}")
    self.strides = strides
    if strides > 1:
      self.branch1 = Sequential([
          conv(in_features, in_features, 3, strides=strides, groups=in_features, rngs=rngs),
          BatchNorm(in_features),
          conv(in_features, branch, 1, rngs=rngs), BatchNorm(branch), jax.nn.relu])
    else:
      self.branch1 = None
    self.branch2 = Sequential([
        conv(in_features if strides > 1 else branch, branch, 1, rngs=rngs), BatchNorm(branch),
        jax.nn.relu,
        conv(branch, branch, 3, strides=strides, groups=branch, rngs=rngs), BatchNorm(branch),
        conv(branch, branch, 1, rngs=rngs), BatchNorm(branch), jax.nn.relu])

  def __call__(self, x):
    if self.strides == 1:
      half = x.shape[-1] // 2
      out = jnp.concatenate([x[..., :half], self.branch2(x[..., half:])], axis=-1)
    else:
      out = jnp.concatenate([self.branch1(x), self.branch2(x)], axis=-1)
    return channel_shuffle(out, 2)


class ShuffleNetV2(nnx.Module):
  """Returns conv5's map (NHWC); with `num_classes`, also torchvision's logits (global average
  pool, fc).

  `stem_stride=1, stem_pool=False` removes the stem's 4x downsampling, as for the small ResNet.
  """

  def __init__(self, stages_repeats=(4, 8, 4), stages_out_channels=(24, 116, 232, 464, 1024), *,
               stem_stride: int = 2, stem_pool: bool = True, num_classes: int | None = None,
               rngs: nnx.Rngs):
    c = stages_out_channels[0]
    self.conv1 = Sequential([conv(3, c, 3, strides=stem_stride, rngs=rngs), BatchNorm(c),
                             jax.nn.relu])
    self.stem_pool = stem_pool
    for i, (repeats, out) in enumerate(zip(stages_repeats, stages_out_channels[1:4]), start=2):
      units = [InvertedResidual(c, out, 2, rngs=rngs)]
      units += [InvertedResidual(out, out, 1, rngs=rngs) for _ in range(repeats - 1)]
      setattr(self, f"stage{i}", Sequential(units))
      c = out
    self.num_features = stages_out_channels[-1]
    self.conv5 = Sequential([conv(c, self.num_features, 1, rngs=rngs),
                             BatchNorm(self.num_features), jax.nn.relu])
    self.fc = linear(self.num_features, num_classes, rngs=rngs) if num_classes else None

  def __call__(self, x):
    x = self.conv1(x)
    if self.stem_pool:
      x = max_pool(x)
    x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
    if self.fc is None:
      return x
    return x, self.fc(x.mean(axis=(1, 2)))


ShuffleNetV2X10 = functools.partial(ShuffleNetV2, (4, 8, 4), (24, 116, 232, 464, 1024))
# CPU-sized variant for tests and runlocal configs: stride 8, so 64x64 input keeps an 8x8 map.
ShuffleNetV2Tiny = functools.partial(ShuffleNetV2, (1, 2, 1), (8, 16, 32, 64, 128), stem_stride=1,
                                     stem_pool=False)
