"""Central difference convolution (CDC), as the official CDCN code defines it.

    out = conv(x, w) - theta * conv1x1(x, sum of w over the kernel window)

The difference term is a 1x1 convolution at the same stride with no padding. When the kernel's
centre tap reads exactly the pixel that 1x1 convolution reads (odd kernel, padding = dilation *
(k - 1) / 2), the term folds into the centre tap, w_c <- w_c - theta * sum(w), and CDC is ONE
convolution, as fast as a plain one. Other geometries fall back to the two-convolution form.
"""

from flax import nnx

from pyramid_fas_jax.models import conv_ops
from pyramid_fas_jax.models.layers import torch_bias_init, torch_default_init


def fold_kernel(kernel, theta: float):
  """The HWIO kernel w' with conv(x, w') == conv(x, w) - theta * conv1x1(x, sum_hw w)."""
  kh, kw = kernel.shape[:2]
  diff = kernel.sum(axis=(0, 1))
  return kernel.at[kh // 2, kw // 2].add(-theta * diff)


def is_foldable(kernel_size: int, padding: int, dilation: int = 1) -> bool:
  return kernel_size % 2 == 1 and padding == dilation * (kernel_size - 1) // 2


class CDConv(nnx.Module):
  """Conv2d_cd of the official CDCN code (bias off by default, as there), NHWC.

  `theta=0` is a plain convolution. The bias, when used, enters both terms as in the reference
  (it is passed to the difference convolution too), so the effective bias is (1 - theta) * b.
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, *, strides: int = 1,
               padding: int = 1, dilation: int = 1, groups: int = 1, use_bias: bool = False,
               theta: float = 0.7, rngs: nnx.Rngs):
    if in_features % groups or out_features % groups:
      raise ValueError(f"groups={groups} must divide in_features={in_features} and "
                       f"out_features={out_features}")
    shape = (kernel_size, kernel_size, in_features // groups, out_features)
    self.kernel = nnx.Param(torch_default_init(rngs.params(), shape))
    fan_in = kernel_size * kernel_size * in_features // groups
    self.bias = (nnx.Param(torch_bias_init(fan_in)(rngs.params(), (out_features,)))
                 if use_bias else None)
    self.kernel_size, self.strides, self.padding = kernel_size, strides, padding
    self.dilation, self.groups, self.theta = dilation, groups, float(theta)
    self.conv_impl = "auto"

  def _conv(self, x, kernel, padding, dilation):
    return conv_ops.conv(x, kernel, (self.strides, self.strides), ((padding, padding),) * 2,
                         (dilation, dilation), self.groups, impl=self.conv_impl)

  def __call__(self, x):
    kernel = self.kernel[...]
    bias = None if self.bias is None else self.bias[...]
    if self.theta == 0.0:
      out = self._conv(x, kernel, self.padding, self.dilation)
    elif is_foldable(self.kernel_size, self.padding, self.dilation):
      out = self._conv(x, fold_kernel(kernel, self.theta), self.padding, self.dilation)
      if bias is not None:
        bias = (1.0 - self.theta) * bias
    else:
      normal = self._conv(x, kernel, self.padding, self.dilation)
      diff = self._conv(x, kernel.sum(axis=(0, 1), keepdims=True), 0, 1)
      if normal.shape != diff.shape:
        raise ValueError(
            f"CDConv(kernel_size={self.kernel_size}, padding={self.padding}, "
            f"strides={self.strides}) on input {x.shape}: the {self.kernel_size}x"
            f"{self.kernel_size} and 1x1 terms have shapes {normal.shape} and {diff.shape}; "
            "the reference code cannot subtract them either")
      out = normal - self.theta * diff
      if bias is not None:
        bias = (1.0 - self.theta) * bias
    return out if bias is None else out + bias.astype(out.dtype)
