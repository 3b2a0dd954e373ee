"""ResNet v1.5 with torchvision's exact structure, so torchvision ImageNet weights import 1:1.

v1.5: the stride of a downsampling bottleneck sits on its 3x3 conv. Attribute names follow
torchvision's state-dict keys (conv1, bn1, layer1..4, downsample) to keep the import a rename.
"""

import functools

import jax
from flax import nnx

from pyramid_fas_jax.models.layers import BatchNorm, conv, kaiming_fan_out, linear, max_pool


class Bottleneck(nnx.Module):
  expansion = 4

  def __init__(self, in_features: int, planes: int, strides: int, *, rngs: nnx.Rngs):
    out = planes * self.expansion
    self.conv1 = conv(in_features, planes, 1, kernel_init=kaiming_fan_out, rngs=rngs)
    self.bn1 = BatchNorm(planes)
    self.conv2 = conv(planes, planes, 3, strides=strides, kernel_init=kaiming_fan_out, rngs=rngs)
    self.bn2 = BatchNorm(planes)
    self.conv3 = conv(planes, out, 1, kernel_init=kaiming_fan_out, rngs=rngs)
    self.bn3 = BatchNorm(out)
    if strides != 1 or in_features != out:
      self.downsample = nnx.List([
          conv(in_features, out, 1, strides=strides, kernel_init=kaiming_fan_out, rngs=rngs),
          BatchNorm(out)])
    else:
      self.downsample = None

  def __call__(self, x):
    y = jax.nn.relu(self.bn1(self.conv1(x)))
    y = jax.nn.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    shortcut = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
    return jax.nn.relu(y + shortcut)


class ResNet(nnx.Module):
  """Bottleneck ResNet. Returns the last feature map (NHWC); with `num_classes`, also logits.

  `stem_stride=1, stem_pool=False` removes the stem's 4x downsampling: small CPU variants then keep
  an 8x8 last feature map at 64x64 input, so every pyramid scale of the paper still exists.
  """

  def __init__(self, block_sizes=(3, 4, 6, 3), *, width: int = 64, stem_stride: int = 2,
               stem_pool: bool = True, num_classes: int | None = None, rngs: nnx.Rngs):
    self.conv1 = conv(3, width, 7, strides=stem_stride, kernel_init=kaiming_fan_out, rngs=rngs)
    self.bn1 = BatchNorm(width)
    self.stem_pool = stem_pool
    in_features = width
    for i, n in enumerate(block_sizes):
      planes = width * 2**i
      blocks = []
      for j in range(n):
        strides = 2 if (i > 0 and j == 0) else 1
        blocks.append(Bottleneck(in_features, planes, strides, rngs=rngs))
        in_features = planes * Bottleneck.expansion
      setattr(self, f"layer{i + 1}", nnx.List(blocks))
    self.num_stages = len(block_sizes)
    self.num_features = in_features
    self.fc = linear(in_features, num_classes, rngs=rngs) if num_classes else None

  def __call__(self, x):
    x = jax.nn.relu(self.bn1(self.conv1(x)))
    if self.stem_pool:
      x = max_pool(x)
    for i in range(self.num_stages):
      for block in getattr(self, f"layer{i + 1}"):
        x = block(x)
    if self.fc is None:
      return x
    return x, self.fc(x.mean(axis=(1, 2)))


ResNet50 = functools.partial(ResNet, (3, 4, 6, 3))
# CPU-sized variant for tests and the demo: same code path, a fraction of the compute.
ResNetTiny = functools.partial(ResNet, (1, 1, 1, 1), width=8, stem_stride=1, stem_pool=False)
