"""Layers with PyTorch's numerics, so that imported weights and from-scratch training match the
reference implementations (torchvision's classification networks, the official CDCN code).

Images are NHWC; kernels HWIO (PyTorch's OIHW is transposed once, at import).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pyramid_fas_jax.models import conv_ops

# PyTorch's default Conv2d/Linear init: kaiming_uniform(a=sqrt(5)), which is
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
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


class Conv(nnx.Module):
  """nn.Conv2d (NHWC input, HWIO kernel, explicit symmetric padding) through `conv_ops.conv`, so
  that every convolution of the models takes the platform's fastest formulation; `conv_impl`
  (set model-wide from `config.model.conv_impl`) chooses it. The state is nnx.Conv's (`kernel`,
  `bias`), so checkpoints and imported weights are unchanged.
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int, *, strides: int = 1,
               padding: int = 0, groups: int = 1, use_bias: bool = False,
               kernel_init=torch_default_init, bias_init=None, rngs: nnx.Rngs):
    if in_features % groups or out_features % groups:
      raise ValueError(f"groups={groups} must divide in_features={in_features} and "
                       f"out_features={out_features}")
    shape = (kernel_size, kernel_size, in_features // groups, out_features)
    self.kernel = nnx.Param(kernel_init(rngs.params(), shape, jnp.float32))
    fan_in = in_features // groups * kernel_size * kernel_size
    bias_init = bias_init or torch_bias_init(fan_in)
    self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), jnp.float32))
                 if use_bias else None)
    self.strides, self.padding, self.groups = strides, padding, groups
    self.conv_impl = "auto"

  def __call__(self, x):
    s, p = self.strides, self.padding
    y = conv_ops.conv(x, self.kernel[...], (s, s), ((p, p), (p, p)), groups=self.groups,
                      impl=self.conv_impl)
    return y if self.bias is None else y + self.bias[...].astype(y.dtype)


def conv(in_features, out_features, kernel_size, *, strides=1, padding=None, groups=1,
         use_bias=False, kernel_init=torch_default_init, bias_init=None, rngs):
  """A Conv with PyTorch's symmetric padding ((k-1)//2 by default); `groups=in_features` is a
  depthwise convolution. `bias_init=None` is PyTorch's default bias init.

  XLA's 'SAME' pads stride-2 convolutions asymmetrically, which would shift every feature map
  against the PyTorch reference, so padding is always explicit.
  """
  pad = (kernel_size - 1) // 2 if padding is None else padding
  return Conv(in_features, out_features, kernel_size, strides=strides, padding=pad, groups=groups,
              use_bias=use_bias, kernel_init=kernel_init, bias_init=bias_init, rngs=rngs)


def _params_to_input_dtype(arrays, dtype=None):
  """nnx's promote_dtype hook: float32 parameters computed in the input's dtype (mixed
  precision), instead of promoting a bfloat16 input to float32."""
  del dtype
  inputs, *params = arrays
  return (inputs, *(None if p is None else p.astype(inputs.dtype) for p in params))


def linear(in_features, out_features, *, kernel_init=torch_default_init, bias_init=None, rngs):
  return nnx.Linear(in_features, out_features, kernel_init=kernel_init,
                    bias_init=bias_init or torch_bias_init(in_features),
                    promote_dtype=_params_to_input_dtype, rngs=rngs)


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
  """PyTorch MaxPool2d(window, stride, padding) of an NHWC array: padding with -inf, floor output
  size, and the gradient of each output going to the first maximum of its window (row-major), as
  PyTorch's does.

  Computed as the running maximum of the window's window*window strided views, with a custom
  gradient that routes each output's gradient back through the view that won. XLA's own
  reduce-window gradient (select-and-scatter) is expanded on CPU into a variadic reduce-window
  over four index arrays and a scatter: 0.37 s against 0.08 s for forward and backward at
  ResNet50's stem (8x128x128x64), 0.55 s against 0.12 s at CDCN's first block (2x256x256x128).
  """
  return _max_pool(x, window, stride, padding)


def _pool_geometry(shape, window, stride, padding):
  _, h, w, _ = shape
  return (h + 2 * padding - window) // stride + 1, (w + 2 * padding - window) // stride + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, stride, padding):
  return _max_pool_fwd(x, window, stride, padding)[0]


def _max_pool_fwd(x, window, stride, padding):
  n, _, _, c = x.shape
  ho, wo = _pool_geometry(x.shape, window, stride, padding)
  xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)),
               constant_values=-jnp.inf)
  best = winner = None
  for t in range(window * window):
    a, b = divmod(t, window)
    view = jax.lax.slice(xp, (0, a, b, 0), (n, a + (ho - 1) * stride + 1,
                                            b + (wo - 1) * stride + 1, c), (1, stride, stride, 1))
    if best is None:
      index_dtype = jnp.int8 if window * window < 128 else jnp.int32
      best, winner = view, jnp.zeros(view.shape, index_dtype)
    else:
      # Strictly greater: a tie keeps the earlier position, PyTorch's choice.
      take = view > best
      best, winner = jnp.where(take, view, best), jnp.where(take, t, winner).astype(winner.dtype)
  return best, (winner, x.shape)


def _max_pool_bwd(window, stride, padding, residuals, g):
  winner, (n, h, w, c) = residuals
  ho, wo = g.shape[1:3]
  hp, wp = h + 2 * padding, w + 2 * padding
  zero = jnp.zeros((), g.dtype)
  dx = jnp.zeros((n, hp, wp, c), g.dtype)
  for t in range(window * window):
    a, b = divmod(t, window)
    # The transpose of the strided view: interior padding puts each value back at its pixel.
    config = ((0, 0, 0), (a, hp - a - (ho - 1) * stride - 1, stride - 1),
              (b, wp - b - (wo - 1) * stride - 1, stride - 1), (0, 0, 0))
    dx = dx + jax.lax.pad(jnp.where(winner == t, g, zero), zero, config)
  return (dx[:, padding:padding + h, padding:padding + w],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


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

  jax.image.resize antialiases when downsampling by default; PyTorch does not. This is the
  computation jax.image.resize(..., antialias=False) does, called one level down: jax2onnx
  replaces jax.image.resize by an ONNX Resize that needs a constant batch size, and the exported
  models keep theirs dynamic (export.py).
  """
  n, h, w, c = x.shape
  return jax.image.scale_and_translate(
      x, (n, size, size, c), (1, 2), jnp.asarray([size / h, size / w], jnp.float32),
      jnp.zeros(2, jnp.float32), method="linear", antialias=False)
