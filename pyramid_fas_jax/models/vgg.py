"""VGG with torchvision's exact structure (`features.N`, `classifier.N`), so torchvision's ImageNet
weights import by renaming alone.

The FAS backbone is torchvision's whole `features` stack, which ends with the fifth 2x2 max pool:
that pool is what brings the map to stride 32 (8x8 at 256x256 input; conv5_3 is still 16x16).
"""

import functools

import jax
from flax import nnx

from pyramid_fas_jax.models.layers import (
  Sequential,
  adaptive_avg_pool,
  conv,
  kaiming_fan_out,
  linear,
  max_pool,
  normal_001,
  zeros,
)

# torchvision's configuration "D" (VGG16): output widths of the 3x3 convs, "M" a 2x2 max pool.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")


def max_pool_2x2(x):
  return max_pool(x, 2, 2, 0)


class VGG(nnx.Module):
  """Returns the `features` map (NHWC); with `num_classes`, also torchvision's classifier logits
  (adaptive 7x7 average pool, flattened in PyTorch's C, H, W order, three linear layers)."""

  def __init__(self, layers=VGG16_LAYERS, *, num_classes: int | None = None,
               classifier_width: int = 4096, rngs: nnx.Rngs):
    features, in_features = [], 3
    for v in layers:
      if v == "M":
        features.append(max_pool_2x2)
      else:
        features.append(conv(in_features, v, 3, use_bias=True, kernel_init=kaiming_fan_out,
                             bias_init=zeros, rngs=rngs))
        features.append(jax.nn.relu)
        in_features = v
    self.features = Sequential(features)
    self.num_features = in_features
    if num_classes:
      dense = functools.partial(linear, kernel_init=normal_001, bias_init=zeros, rngs=rngs)
      self.classifier = Sequential([
          dense(in_features * 7 * 7, classifier_width), jax.nn.relu, nnx.Dropout(0.5, rngs=rngs),
          dense(classifier_width, classifier_width), jax.nn.relu, nnx.Dropout(0.5, rngs=rngs),
          dense(classifier_width, num_classes)])
    else:
      self.classifier = None

  def __call__(self, x):
    x = self.features(x)
    if self.classifier is None:
      return x
    pooled = adaptive_avg_pool(x, 7).transpose(0, 3, 1, 2)
    return x, self.classifier(pooled.reshape(x.shape[0], -1))


VGG16 = functools.partial(VGG, VGG16_LAYERS)
# CPU-sized variant for tests and runlocal configs: three pools (stride 8), so a 64x64 input still
# gives the 8x8 map that every pyramid scale of the paper needs.
VGGTiny = functools.partial(VGG, (16, "M", 32, "M", 64, 64, "M"))
