"""models/conv_ops.py: for every convolution geometry the models use, the forward and both
gradients equal XLA's plain convolution (jax.vjp of lax.conv_general_dilated) in float32, under
the train step's compiler options; CDC (folded and unfolded) likewise; the 1x1 matmul sharded
over 4 devices equals one device."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from pyramid_fas_jax import models
from pyramid_fas_jax.experiment.demo import load_config
from pyramid_fas_jax.models import cdc, conv_ops

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"

# (kernel, stride, padding, dilation, depthwise): every geometry of every config's model, full
# size and runlocal (test_every_model_geometry_is_listed keeps this complete).
GEOMETRIES = [
    (1, 1, 0, 1, False),  # bottlenecks, heads, DenseNet, MobileNet, ShuffleNet
    (1, 2, 0, 1, False),  # ResNet50 downsample
    (3, 1, 1, 1, False),  # CDCN, VGG, ResNet, DenseNet
    (3, 2, 1, 1, False),  # ResNet v1.5 stride on the 3x3, MobileNet/ShuffleNet stems
    (5, 1, 2, 1, False),  # CDCN++ spatial attention
    (7, 1, 3, 1, False),  # CDCN++ spatial attention
    (7, 2, 3, 1, False),  # ResNet50, DenseNet121 stems
    (3, 1, 1, 1, True),   # MobileNetV2, ShuffleNetV2 depthwise
    (3, 2, 1, 1, True),   # depthwise downsampling
]
EXTRA = [(3, 1, 2, 2, False), (1, 3, 1, 1, False)]  # dilation (CDConv allows it); odd 1x1 padding


def _geometry(kernel_shape, strides, padding, dilation, groups):
  (k, _, cin_per_group, _), (s, _), ((p, _), _), (d, _) = kernel_shape, strides, padding, dilation
  return (k, s, p, d, groups > 1 and cin_per_group == 1)


def test_every_model_geometry_is_listed(monkeypatch):
  """Trace (abstractly: no parameters, no compute) every config's model, full size and runlocal,
  recording each convolution; a backbone shared by several configs is traced once."""
  seen = set()
  conv = conv_ops.conv

  def recording(x, kernel, strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                impl="auto"):
    seen.add(_geometry(kernel.shape, strides, padding, dilation, groups))
    return conv(x, kernel, strides, padding, dilation, groups, impl)

  monkeypatch.setattr(conv_ops, "conv", recording)
  features = {}  # (backbone, theta, map_size, input size) -> its abstract output
  for path in sorted(CONFIGS.glob("*.py")):
    for arg in (None, "synth_fas/intra,runlocal"):
      config = load_config(path, arg)
      m = config.model
      model = nnx.eval_shape(lambda: models.build_model(m, nnx.Rngs(0)))
      key = (m.backbone, m.theta, m.map_size, config.input.size)
      if key not in features:
        graphdef, state = nnx.split(model.backbone)
        image = jax.ShapeDtypeStruct((1, key[-1], key[-1], 3), jnp.float32)
        features[key] = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, image)
      graphdef, state = nnx.split(model.head)
      jax.eval_shape(lambda s, f: nnx.merge(graphdef, s)(f), state, features[key])
  assert seen <= set(GEOMETRIES), sorted(seen - set(GEOMETRIES))
  assert seen == set(GEOMETRIES), f"listed but unused: {sorted(set(GEOMETRIES) - seen)}"


def _check_against_xla(fn, ref, x, kernel, rtol=1e-5):
  """Forward, input and kernel gradients of fn vs ref (relative to the largest reference entry),
  both jitted with the train step's compiler options."""
  options = conv_ops.compiler_options()
  y_ref = ref(x, kernel)
  g = jnp.asarray(np.random.default_rng(7).normal(size=y_ref.shape), jnp.float32)
  vjp = lambda f: jax.jit(lambda x, k, g: (f(x, k), *jax.vjp(f, x, k)[1](g)),
                          compiler_options=options)
  got, want = vjp(fn)(x, kernel, g), vjp(ref)(x, kernel, g)
  for name, a, b in zip(("forward", "input gradient", "kernel gradient"), got, want):
    assert a.shape == b.shape, name
    err = float(jnp.abs(a - b).max() / jnp.abs(b).max())
    assert err < rtol, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("k,stride,pad,dil,depthwise", GEOMETRIES + EXTRA)
def test_conv_and_gradients_equal_xla(k, stride, pad, dil, depthwise):
  rng = np.random.default_rng(k * 100 + stride * 10 + pad)
  cin, cout = (6, 6) if depthwise else (5, 7)
  groups = cin if depthwise else 1
  x = jnp.asarray(rng.normal(size=(2, 11, 10, cin)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(k, k, cin // groups, cout)), jnp.float32)
  args = ((stride, stride), ((pad, pad), (pad, pad)), (dil, dil), groups)
  ref = lambda x, w: lax.conv_general_dilated(x, w, args[0], args[1], rhs_dilation=args[2],
                                              dimension_numbers=conv_ops.DIMS,
                                              feature_group_count=groups)
  _check_against_xla(lambda x, w: conv_ops.conv(x, w, *args), ref, x, kernel)


def _cdc_reference(x, w, theta, stride, pad):
  """The official code's two convolutions, with XLA's plain convolution."""
  conv = lambda w, p: lax.conv_general_dilated(x, w, (stride, stride), ((p, p), (p, p)),
                                               dimension_numbers=conv_ops.DIMS)
  return conv(w, pad) - theta * conv(w.sum(axis=(0, 1), keepdims=True), 0)


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (4, 2, 2)])
def test_cdc_and_gradients_equal_two_xla_convolutions(k, stride, pad):
  """(3, 1, 1) and (3, 2, 1) fold into one convolution; the 4x4 kernel cannot."""
  assert cdc.is_foldable(k, pad) == (k == 3)
  make = lambda: cdc.CDConv(4, 6, k, strides=stride, padding=pad, theta=0.7, rngs=nnx.Rngs(k))
  x = jnp.asarray(np.random.default_rng(stride).normal(size=(2, 9, 9, 4)), jnp.float32)

  def fn(x, w):
    m = make()  # made inside the trace, so that its kernel may be set to a tracer
    m.kernel[...] = w
    return m(x)

  _check_against_xla(fn, lambda x, w: _cdc_reference(x, w, 0.7, stride, pad), x,
                     make().kernel[...])


def test_xla_impl_is_the_plain_convolution_and_auto_uses_matmuls_on_cpu():
  x, w = jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 1, 3, 5))
  jaxpr = lambda impl: str(jax.make_jaxpr(lambda x, w: conv_ops.conv(x, w, impl=impl))(x, w))
  assert "conv_general_dilated" in jaxpr("xla")
  assert "conv_general_dilated" not in jaxpr("auto") and "dot_general" in jaxpr("auto")
  assert conv_ops.compiler_options("xla") is None
  assert conv_ops.compiler_options("auto")  # this XLA knows the option (else a warning, None)
  with pytest.raises(ValueError, match="conv impl"):
    conv_ops.conv(x, w, impl="cudnn")


def test_sharded_1x1_gradient_equals_one_device():
  """Batch sharded over 4 devices: the kernel gradient's matmul over the batch gets XLA's
  cross-device sum."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(8, 6, 6, 5)).astype(np.float32)
  w = rng.normal(size=(1, 1, 5, 3)).astype(np.float32)
  loss = lambda x, w: jnp.sum(jnp.sin(conv_ops.conv(x, w, (2, 2))))
  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  single = grad(x, w)
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  ws = jax.device_put(w, NamedSharding(mesh, P()))
  sharded = grad(xs, ws)
  assert len(sharded[0].sharding.device_set) == 4
  for a, b in zip(single, sharded):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
