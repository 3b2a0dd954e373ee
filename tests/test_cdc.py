"""Central difference convolution: the folded single convolution against the naive two-convolution
form of the official code (float64 numpy), and theta = 0 against a plain convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch_reference as ref
from flax import nnx

from pyramid_fas_jax.models import cdc


def _run(module, x_nchw):
  y = module(jnp.asarray(x_nchw.transpose(0, 2, 3, 1), jnp.float32))
  return np.asarray(y, np.float64).transpose(0, 3, 1, 2)


def _torch_weight(module):
  return np.asarray(module.kernel[...], np.float64).transpose(3, 2, 0, 1)  # HWIO -> OIHW


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,hw", [
    (3, 1, 1, 1, 1, 9), (3, 2, 1, 1, 1, 10), (3, 2, 1, 1, 1, 9), (5, 1, 2, 1, 1, 8),
    (5, 3, 2, 1, 1, 11), (3, 1, 2, 2, 1, 9), (3, 1, 1, 1, 2, 7), (1, 1, 0, 1, 1, 6)])
def test_folded_cdc_equals_two_convolutions(kernel, stride, padding, dilation, groups, hw):
  assert cdc.is_foldable(kernel, padding, dilation)
  rng = np.random.default_rng(kernel * 100 + stride * 10 + hw)
  x = rng.normal(size=(2, 4, hw, hw + 1))
  m = cdc.CDConv(4, 6, kernel, strides=stride, padding=padding, dilation=dilation, groups=groups,
                 theta=0.7, rngs=nnx.Rngs(stride + hw))
  w = _torch_weight(m)
  want = ref.conv2d(x, w, stride, padding, dilation, groups)
  diff = ref.conv2d(x, w.sum(axis=(2, 3))[:, :, None, None], stride, 0, 1, groups)
  want = want - 0.7 * diff
  got = _run(m, x)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


def test_fold_is_one_convolution():
  m = cdc.CDConv(3, 5, 3, theta=0.7, rngs=nnx.Rngs(0))
  hlo = jax.jit(m.__call__).lower(jnp.zeros((1, 8, 8, 3))).as_text()
  assert hlo.count("convolution(") == 1


def test_fold_kernel_hand_case():
  w = jnp.arange(9.0).reshape(3, 3, 1, 1)  # sum = 36, centre = 4
  folded = cdc.fold_kernel(w, 0.5)
  expected = np.arange(9.0).reshape(3, 3)
  expected[1, 1] = 4 - 0.5 * 36
  np.testing.assert_array_equal(np.asarray(folded)[..., 0, 0], expected)


def test_unfoldable_geometry_uses_two_convolutions():
  # 3x3 with padding 0: the centre tap is off the 1x1 grid, so the output sizes differ and the
  # reference cannot subtract them; we say so instead of broadcasting silently.
  m = cdc.CDConv(2, 3, 3, padding=0, theta=0.7, rngs=nnx.Rngs(0))
  assert not cdc.is_foldable(3, 0)
  with pytest.raises(ValueError, match="cannot subtract"):
    m(jnp.zeros((1, 6, 6, 2)))
  # 4x4 (even) kernel with padding 2 and stride 2: both terms are 4x4 at 7x7 input; not foldable.
  rng = np.random.default_rng(1)
  x = rng.normal(size=(1, 2, 7, 7))
  m = cdc.CDConv(2, 3, 4, strides=2, padding=2, theta=0.3, rngs=nnx.Rngs(1))
  assert not cdc.is_foldable(4, 2)
  w = _torch_weight(m)
  want = ref.conv2d(x, w, 2, 2) - 0.3 * ref.conv2d(x, w.sum(axis=(2, 3))[:, :, None, None], 2, 0)
  np.testing.assert_allclose(_run(m, x), want, atol=2e-5, rtol=1e-5)


def test_theta_zero_is_plain_convolution():
  rng = np.random.default_rng(3)
  x = rng.normal(size=(2, 3, 9, 9))
  m = cdc.CDConv(3, 4, 3, strides=2, theta=0.0, rngs=nnx.Rngs(3))
  np.testing.assert_allclose(_run(m, x), ref.conv2d(x, _torch_weight(m), 2, 1), atol=2e-5,
                             rtol=1e-5)
  plain = nnx.Conv(3, 4, (3, 3), strides=2, padding=((1, 1), (1, 1)), use_bias=False,
                   rngs=nnx.Rngs(0))
  plain.kernel[...] = m.kernel[...]
  xj = jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32)
  np.testing.assert_array_equal(np.asarray(m(xj)), np.asarray(plain(xj)))


def test_bias_enters_both_terms_like_the_reference():
  rng = np.random.default_rng(4)
  x = rng.normal(size=(1, 2, 5, 5))
  m = cdc.CDConv(2, 3, 3, use_bias=True, theta=0.7, rngs=nnx.Rngs(4))
  w, b = _torch_weight(m), np.asarray(m.bias[...], np.float64)
  want = ref.conv2d(x, w, 1, 1, bias=b) - 0.7 * ref.conv2d(
      x, w.sum(axis=(2, 3))[:, :, None, None], 1, 0, bias=b)
  np.testing.assert_allclose(_run(m, x), want, atol=2e-5, rtol=1e-5)
