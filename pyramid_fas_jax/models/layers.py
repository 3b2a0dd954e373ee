"""Layers with PyTorch's numerics, so that imported weights and from-scratch training match the
reference implementations (torchvision's classification networks, the official CDCN code).

Images are NHWC; kernels HWIO (PyTorch's OIHW is transposed once, at import).
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# PyTorch's default Conv2d/Linear init: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_default_init = jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# torchvision ResNet, VGG, MobileNetV2: kaiming_normal(mode="fan_out"), gain sqrt(2), not truncated.
kaiming_fan_out = jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# torchvision DenseNet: kaiming_normal() with its defaults (mode="fan_in", gain sqrt(2)).
kaiming_fan_in = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")
# torchvision VGG and MobileNetV2 classifiers: N(0, 0.01) weights; their biases (and DenseNet's
# classifier bias) start at zero.
normal_001 = jax.nn.initializers.normal(0.01)
zeros = jax.nn.initializers.zeros


def torch_bias_init(fan_in: int):
  """PyTorch's default bias init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / fan_in**0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def conv(in_features, out_features, kernel_size, *, strides=1, padding=None, groups=1,
         use_bias=False, kernel_init=torch_default_init, bias_init=None, rngs):
  """A Conv with PyTorch's symmetric padding ((k-1)//2 by default); `groups=in_features` is a
  depthwise convolution. `bias_init=None` is PyTorch's default bias init.

  XLA's 'SAME' pads stride-2 convolutions asymmetrically, which would shift every feature map
  against the PyTorch reference, so padding is always explicit.
  """
  pad = (kernel_size - 1) // 2 if padding is None else padding
  fan_in = in_features // groups * kernel_size * kernel_size
  return nnx.Conv(
      in_features, out_features, (kernel_size, kernel_size), strides=strides,
      padding=((pad, pad), (pad, pad)), feature_group_count=groups, use_bias=use_bias,
      kernel_init=kernel_init, bias_init=bias_init or torch_bias_init(fan_in), rngs=rngs)


def linear(in_features, out_features, *, kernel_init=torch_default_init, bias_init=None, rngs):
  return nnx.Linear(in_features, out_features, kernel_init=kernel_init,
                    bias_init=bias_init or torch_bias_init(in_features), rngs=rngs)


class Sequential(nnx.List):
  """nn.Sequential: layers applied in order, and indexed as in PyTorch.

  Parameter-free steps (activations, pooling) are stored as plain functions at their PyTorch
  index, so that `features.5.weight` of a torchvision state dict is our `features/5/kernel`.
  """

  def __call__(self, x):
    for layer in self:
      x = layer(x)
    return x


class BatchNorm(nnx.Module):
  """BatchNorm2d as PyTorch computes it.

  Differs from nnx.BatchNorm in two ways that change trained models: the running mean/var move
  by `momentum` (PyTorch's 0.1, i.e. flax momentum 0.9), and the running variance is updated with
  the unbiased batch variance while the batch itself is normalised with the biased one. Under jit
  with a batch sharded over devices, the means below are global: no axis_name is needed.
  """

  def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1):
    self.scale = nnx.Param(jnp.ones((num_features,), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((num_features,), jnp.float32))
    self.mean = nnx.BatchStat(jnp.zeros((num_features,), jnp.float32))
    self.var = nnx.BatchStat(jnp.ones((num_features,), jnp.float32))
    self.eps = eps
    self.momentum = momentum
    self.use_running_average = False

  def __call__(self, x):
    if self.use_running_average:
      mean, var = self.mean[...], self.var[...]
    else:
      axes = tuple(range(x.ndim - 1))
      xf = x.astype(jnp.float32)
      mean = xf.mean(axes)
      var = jnp.square(xf - mean).mean(axes)
      n = x.size // x.shape[-1]
      unbiased = var * (n / max(n - 1, 1))
      m = self.momentum
      self.mean[...] = (1 - m) * self.mean[...] + m * jax.lax.stop_gradient(mean)
      self.var[...] = (1 - m) * self.var[...] + m * jax.lax.stop_gradient(unbiased)
    y = (x - mean) * jax.lax.rsqrt(var + self.eps)
    return (y * self.scale[...] + self.bias[...]).astype(x.dtype)


def max_pool(x, window=3, stride=2, padding=1):
  """PyTorch MaxPool2d(window, stride, padding): padding with -inf, floor output size."""
  return nnx.max_pool(x, (window, window), (stride, stride),
                      padding=((padding, padding), (padding, padding)))


def avg_pool(x, k: int):
  """Non-overlapping k x k average pooling (kernel = stride = k) of an NHWC or NHW array."""
  if k == 1:
    return x
  if x.ndim == 3:
    return avg_pool(x[..., None], k)[..., 0]
  n, h, w, c = x.shape
  if h % k or w % k:
    raise ValueError(f"cannot pool a {h}x{w} map with kernel {k}: sizes must divide")
  return x.reshape(n, h // k, k, w // k, k, c).mean(axis=(2, 4))


def adaptive_avg_pool(x, size: int):
  """F.adaptive_avg_pool2d of an NHWC array to size x size: output cell i averages input rows
  floor(i * h / size) .. ceil((i + 1) * h / size) - 1 (windows overlap when size does not divide h).
  """
  def weights(n):
    w = np.zeros((size, n), np.float32)
    for i in range(size):
      w[i, (i * n) // size:-((-(i + 1) * n) // size)] = 1
    return w / w.sum(axis=1, keepdims=True)

  wh, ww = (jnp.asarray(weights(n), x.dtype) for n in x.shape[1:3])
  return jnp.einsum("nhwc,ih,jw->nijc", x, wh, ww)


def resize_bilinear(x, size: int):
  """PyTorch's F.interpolate(mode='bilinear', align_corners=False) of an NHWC array.

  jax.image.resize antialiases when downsampling by default; PyTorch does not.
  """
  n, _, _, c = x.shape
  return jax.image.resize(x, (n, size, size, c), method="bilinear", antialias=False)
