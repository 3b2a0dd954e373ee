"""Every 2-D convolution of the models (NHWC input, HWIO kernel), computed the fastest way
measured on each platform. `model.conv_impl` chooses:

  'auto' (default)  on CPU: a 1x1 convolution (any stride) is a matrix product with a custom
                    gradient, every other one XLA's convolution, and the train step is compiled
                    with `compiler_options()`, which hands XLA:CPU's convolutions and dots to
                    its Eigen kernels instead of YNNPACK. On GPU and TPU: XLA's convolution
                    and compiler defaults (nothing has been measured there that says
                    otherwise).
  'xla'             XLA's convolution and default compiler options everywhere (JAX's own path).

'auto' asks JAX's default backend, or the platform `lowering_for` names while a program is
traced for another one (tests/test_accelerator_lowering.py exports CUDA and TPU programs on CPU).

Why (`python benchmarks/conv_grad.py`: every layer shape of CDCN at batch 2 and ResNet50 at
batch 8, 256x256 input; process CPU seconds, 2-core AMD EPYC, JAX 0.10.2). XLA:CPU gives
convolutions to YNNPACK by default, whose kernel gradient (a convolution with the batch as its
contraction and the output gradient as a 128x128 or 256x256 "window") runs 4-11 times longer
than the forward. Eigen's convolution computes the same kernel gradient 3-5 times faster, and
the forward and input gradient about as fast:

  CPU s, all layers   forward  input grad  kernel grad  (kernel grad as matmuls: taps/im2col/chunks)
  CDCN, YNNPACK         2.54      2.25       13.72
  CDCN, Eigen           2.29      1.99        3.47       10.30 / 8.58 / 7.06
  ResNet50, YNNPACK     1.01      1.15        4.73
  ResNet50, Eigen       0.91      0.98        1.43        2.34 / 2.27 / 2.17
  ResNet50, 'auto'      0.92      1.05        1.14
  (measured while 'auto' still left dots to YNNPACK; see _CPU_OPTIONS for why no longer)

The three matmul formulations of the kernel gradient (one matmul per kernel tap on the shifted
input view; one im2col matmul; im2col over row blocks of <= 32 MiB) beat YNNPACK but not Eigen,
per layer and in the whole CDCN-PS step (12.8 CPU s with the row-block im2col under a custom
VJP, 9.8 s with Eigen, 23 s with YNNPACK), and compile 2-3 times slower. For a 1x1 convolution
a matrix product beats both (1.14 against 1.43 s of ResNet50's kernel gradients) once its
gradient transposes the input as a plain copy; left to autodiff, XLA fuses that transpose into
BatchNorm's backward, which then writes column by column (ResNet50-PS step 3.4 s instead of
3.0 s). Depthwise kernel gradients (batch-grouped convolutions) never go to YNNPACK.

Gradients are XLA's own, or a matrix product's: tests/test_conv_ops.py checks forward, input
and kernel gradients against `lax.conv_general_dilated` for every geometry the models use.
"""

import contextlib
import contextvars
import functools

import jax
import jax.numpy as jnp
from absl import logging
from jax import lax

DIMS = ("NHWC", "HWIO", "NHWC")
IMPLS = ("auto", "xla")
# XLA:CPU's default library fusions are YNNPACK dots, convolutions and reductions. Leaving
# convolutions out sends them to Eigen. Dots are left out too: with YNNPACK dots and reductions
# together, JAX 0.12.1's XLA:CPU computes wrong gradients in a batch-sharded train step (the
# tiny ResNet's layers before its last two stages 3% off on 4 devices, one device exact;
# tests/test_train.py::test_sharded_step_equals_single_device_step), and Eigen's dot is as fast:
# `python benchmarks/cpu_fusions.py` (wall s / process CPU s per train step, 2-core AMD EPYC,
# JAX 0.10.2, beside two nice-19 training runs), YNNPACK dots and reductions against reductions:
#   ResNet50-PS batch 8: 3.446 / 6.39 against 3.448 / 6.43;  demo batch 16: 0.188 / 0.341
#   against 0.188 / 0.335 (idle: 0.154 / 0.287 against 0.163 / 0.300). JAX 0.12.1, ResNet50-PS:
#   7.82 against 7.97 CPU s. CDCN-PS batch 2, JAX 0.10.2: 14.3 against 14.7 CPU s.
_CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
# The platform 'auto' chooses for while `lowering_for` is active; None: JAX's default backend.
_TARGET = contextvars.ContextVar("conv_ops_target", default=None)


def platform() -> str:
  """The platform whose formulation 'auto' picks: `lowering_for`'s, else jax.default_backend()."""
  return _TARGET.get() or jax.default_backend()


@contextlib.contextmanager
def lowering_for(target: str):
  """Within it, 'auto' (`conv` and `compiler_options`) chooses as on `target` ('cpu', 'cuda',
  'rocm', 'tpu': jax.export's names), not as on this machine's backend: a program exported for
  an accelerator on a CPU-only machine then holds what that accelerator would run. JAX caches a
  function's trace whatever this says, so trace functions made inside the context."""
  token = _TARGET.set(target)
  try:
    yield
  finally:
    _TARGET.reset(token)


def conv(x, kernel, strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
         impl="auto"):
  """lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
  feature_group_count=groups) of an NHWC input and HWIO kernel, in the input's dtype (the kernel
  is cast to it: float32 parameters, bfloat16 compute under `config.dtype='bfloat16'`)."""
  if impl not in IMPLS:
    raise ValueError(f"unknown conv impl {impl!r}; choose from {IMPLS}")
  kernel = kernel.astype(x.dtype)
  strides, dilation = tuple(strides), tuple(dilation)
  padding = tuple(tuple(p) for p in padding)
  if (impl == "auto" and platform() == "cpu" and kernel.shape[:2] == (1, 1)
      and groups == 1):
    return _conv_1x1(x, kernel, strides, padding)
  return lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
                                  dimension_numbers=DIMS, feature_group_count=groups)


def _pixels_read(x, strides, padding):
  """The input pixels a 1x1 convolution reads: x zero-padded, then every stride-th row and
  column."""
  (top, bottom), (left, right) = padding
  if top or bottom or left or right:
    x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  return x[:, ::strides[0], ::strides[1]]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_1x1(x, kernel, strides, padding):
  """A 1x1 convolution as a matrix product over channels. The custom gradient transposes the
  input once, as a plain copy, for the kernel gradient; left to autodiff, XLA:CPU fuses that
  transpose into the producer of the output gradient (BatchNorm's backward), which then writes
  it column by column."""
  return jnp.einsum("nhwc,co->nhwo", _pixels_read(x, strides, padding), kernel[0, 0])


def _conv_1x1_fwd(x, kernel, strides, padding):
  pixels = _pixels_read(x, strides, padding)
  y = jnp.einsum("nhwc,co->nhwo", pixels, kernel[0, 0])
  return y, (pixels, kernel, jax.ShapeDtypeStruct(x.shape, x.dtype))


def _conv_1x1_bwd(strides, padding, residuals, g):
  pixels, kernel, x_shape = residuals
  c, o = kernel.shape[2:]
  d_pixels = jnp.einsum("nhwo,co->nhwc", g, kernel[0, 0])
  (dx,) = jax.linear_transpose(lambda x: _pixels_read(x, strides, padding), x_shape)(d_pixels)
  dk = jnp.dot(pixels.reshape(-1, c).T, g.reshape(-1, o), preferred_element_type=jnp.float32)
  return dx, dk.reshape(kernel.shape).astype(kernel.dtype)


_conv_1x1.defvjp(_conv_1x1_fwd, _conv_1x1_bwd)


def compiler_options(impl="auto"):
  """XLA compiler options for a jitted train step under `impl`: on CPU with 'auto', convolutions
  by Eigen (see the module docstring); else None. None too, with a warning, if this XLA no
  longer knows the option."""
  if impl != "auto" or platform() != "cpu":
    return None
  return _checked_cpu_options()


@functools.cache
def _checked_cpu_options():
  try:
    jax.jit(lambda x: x + 1, compiler_options=_CPU_OPTIONS).lower(1.0).compile()
  except Exception as e:
    logging.warning("XLA rejected %s (%s); convolutions keep XLA's default CPU kernels",
                    _CPU_OPTIONS, str(e).splitlines()[0])
    return None
  return dict(_CPU_OPTIONS)
