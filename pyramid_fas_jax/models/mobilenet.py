"""MobileNetV2 with torchvision's exact structure (`features.N`, `features.N.conv.M`,
`classifier.1`), so torchvision's ImageNet weights import by renaming alone.

The FAS backbone is torchvision's whole `features` stack, ending with the 1x1 conv to 1280
channels + BN + ReLU6: the map its classifier pools, at stride 32 (8x8 at 256x256 input).
"""

import functools

import jax
from flax import nnx

from pyramid_fas_jax.models.layers import (
  BatchNorm,
  Sequential,
  conv,
  kaiming_fan_out,
  linear,
  normal_001,
  zeros,
)

# torchvision's inverted_residual_setting: (expansion t, output channels c, repeats n, stride s).
MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu6(in_features, out_features, kernel_size=3, *, strides=1, groups=1, rngs):
  """torchvision's Conv2dNormActivation(..., activation_layer=ReLU6): indices 0 conv, 1 BN."""
  return Sequential([
      conv(in_features, out_features, kernel_size, strides=strides, groups=groups,
           kernel_init=kaiming_fan_out, rngs=rngs),
      BatchNorm(out_features), jax.nn.relu6])


class InvertedResidual(nnx.Module):
  """Expand (1x1, unless t = 1) - depthwise 3x3 - linear 1x1 projection; a residual connection
  when the stride is 1 and the width unchanged."""

  def __init__(self, in_features: int, out_features: int, strides: int, expand_ratio: int, *,
               rngs: nnx.Rngs):
    hidden = int(round(in_features * expand_ratio))
    layers = []
    if expand_ratio != 1:
      layers.append(conv_bn_relu6(in_features, hidden, 1, rngs=rngs))
    layers += [conv_bn_relu6(hidden, hidden, strides=strides, groups=hidden, rngs=rngs),
               conv(hidden, out_features, 1, kernel_init=kaiming_fan_out, rngs=rngs),
               BatchNorm(out_features)]
    self.conv = Sequential(layers)
    self.use_residual = strides == 1 and in_features == out_features

  def __call__(self, x):
    return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nnx.Module):
  """Returns the `features` map (NHWC); with `num_classes`, also torchvision's logits (global
  average pool, dropout 0.2, linear).

  Widths are taken as given (torchvision's width_mult=1.0 rounding leaves them unchanged).
  """

  def __init__(self, setting=MOBILENET_V2_SETTING, *, stem_features: int = 32,
               last_features: int = 1280, stem_stride: int = 2, num_classes: int | None = None,
               rngs: nnx.Rngs):
    features = [conv_bn_relu6(3, stem_features, strides=stem_stride, rngs=rngs)]
    c = stem_features
    for t, out, n, s in setting:
      for i in range(n):
        features.append(InvertedResidual(c, out, s if i == 0 else 1, t, rngs=rngs))
        c = out
    features.append(conv_bn_relu6(c, last_features, 1, rngs=rngs))
    self.features = Sequential(features)
    self.num_features = last_features
    if num_classes:
      self.classifier = Sequential([
          nnx.Dropout(0.2, rngs=rngs),
          linear(last_features, num_classes, kernel_init=normal_001, bias_init=zeros, rngs=rngs)])
    else:
      self.classifier = None

  def __call__(self, x):
    x = self.features(x)
    if self.classifier is None:
      return x
    return x, self.classifier(x.mean(axis=(1, 2)))


MobileNetV2X10 = functools.partial(MobileNetV2, MOBILENET_V2_SETTING)
# CPU-sized variant for tests and runlocal configs: stride 8 (a stride-1 stem and three stride-2
# stages), so 64x64 input keeps an 8x8 map.
MobileNetV2Tiny = functools.partial(
    MobileNetV2, ((1, 8, 1, 1), (6, 16, 2, 2), (6, 24, 2, 2), (6, 32, 1, 2)), stem_features=8,
    last_features=64, stem_stride=1)
