"""Every config's programs (full size, 256x256 input, but for the demo's 64x64 model) lower for
CUDA and TPU on this CPU-only machine: the train step as training jits it (float32 and bfloat16
compute, the state replicated and the batch sharded over the data mesh) and the eval-mode
forward, through jax.export (traced and lowered to StableHLO for the named platform, not
compiled, so no accelerator is needed). model.conv_impl 'auto' is resolved for the target
platform (conv_ops.lowering_for), not for the CPU the test runs on, so each program holds the
convolutions that platform would run. Everything is abstract (nnx.eval_shape,
jax.ShapeDtypeStruct): no full-size parameters are made."""

import dataclasses
import functools
import itertools
import pathlib
import re

import jax
import jax.numpy as jnp
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from pyramid_fas_jax.experiment.demo import load_config
from pyramid_fas_jax.models import conv_ops, inference
from pyramid_fas_jax.training import distributed, train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.py"))
PLATFORMS = ("cuda", "tpu")
# One config per backbone runs by default (the paper's Fig. 5 models); the other heads and
# options on those backbones are slow (1-12 s a test on 2 CPU cores).
FAST = {"resnet50_ps", "vgg16_ps", "densenet121_ps", "shufflenet_v2_ps", "mobilenet_v2_ps",
        "cdcn_ps", "depthnet_ps", "cdcnpp_ps"}
PER_DEVICE_BATCH = 2
# `%7 = stablehlo.convolution(%5, %6) ... : (tensor<2x256x256x3xbf16>, tensor<...>) -> tensor<...>`
CONV = re.compile(r"stablehlo\.convolution\(.*: \((tensor<[^>]*>), (tensor<[^>]*>)\) -> "
                  r"(tensor<[^>]*>)")
MLIR_DTYPE = {"float32": "f32", "bfloat16": "bf16"}


# The fast suite pairs each platform with one dtype, so both platforms and both dtypes still
# lower for (nearly) every backbone; the other two pairings are slow. DenseNet121's train step
# takes about 8 s to trace with jax 0.10.2 and flax 0.12.8, two thirds of it in its 242
# BatchNorm statistics updates (flax's Variable[...] = x reads the tracer's .sharding, whose
# AttributeError message JAX builds by walking the jaxpr so far), so by default it lowers in
# bfloat16 for TPU only; its float32 forward lowers for both.
FAST_PAIRS = {("cuda", "float32"), ("tpu", "bfloat16")}


def _fast_step(name, platform, dtype):
  return (platform, dtype) in FAST_PAIRS and (name, platform) != ("densenet121_ps", "cuda")


def _params(*axes, fast=lambda *_: True):
  """pytest params of every config crossed with `axes`, slow unless the config is in FAST and
  `fast(name, *values)` holds."""
  return [pytest.param(name, *values, id="-".join((name, *values)),
                       marks=() if name in FAST and fast(name, *values) else pytest.mark.slow)
          for name in CONFIGS for values in itertools.product(*axes)]


@functools.cache
def _abstract(name):
  """(config, graphdef, abstract train state, number of convolution modules) of a config's
  model and optimizer as training builds them, shapes only."""
  config = load_config(REPO / "configs" / f"{name}.py")
  config.init_from = ""  # the ImageNet weights change values, not the program
  model, optimizer = nnx.eval_shape(lambda: train_step.create_model_and_optimizer(config))
  # Every convolution module (layers.Conv, cdc.CDConv) carries the model-wide conv_impl.
  n_convs = sum(1 for _, node in nnx.iter_graph(model) if hasattr(node, "conv_impl"))
  graphdef, state = nnx.split((model, optimizer))
  return config, graphdef, state, n_convs


def _train_batch(config, n):
  """The abstract training batch as pipeline.py sends it: uint8 maps, and the colour jitter's
  and Cutout's parameters where the config draws them."""
  s = config.input.size
  spec = {"image": ((n, s, s, 3), jnp.uint8), "depth": ((n, s, s), jnp.uint8),
          "mask": ((n, s, s), jnp.uint8), "label": ((n,), jnp.int32),
          "species": ((n,), jnp.int32), "depth_valid": ((n,), jnp.float32)}
  a = config.aug
  if a.brightness > 0 or a.contrast > 0 or a.saturation > 0:
    spec.update(jitter=((n, 3), jnp.float32), jitter_order=((n, 3), jnp.int32))
  if a.cutout > 0:
    spec["cutout"] = ((n, 4), jnp.int32)
  return {k: jax.ShapeDtypeStruct(shape, dtype) for k, (shape, dtype) in spec.items()}


def _training_step(name, dtype):
  """(jitted step, (state, batch), mesh) as train.py makes them: a 'data' mesh over every
  device, the state replicated, the batch sharded along it."""
  config, graphdef, state, _ = _abstract(name)
  mesh = distributed.make_mesh()
  step = train_step.jit_train_step(graphdef, config.model, NamedSharding(mesh, P()),
                                   NamedSharding(mesh, P("data")), dtype=dtype,
                                   input_cfg=config.input)
  return step, (state, _train_batch(config, PER_DEVICE_BATCH * mesh.size)), mesh


def _forward(name):
  """(jitted eval-mode forward, (state, images)): inference.apply as evaluation and `predict`
  run it on the pipeline's uint8 images, every output."""
  config, graphdef, state, _ = _abstract(name)
  model, _ = nnx.merge(graphdef, state)
  model.eval()
  eval_graphdef, eval_state = nnx.split(model)
  fn = jax.jit(functools.partial(inference.apply, eval_graphdef,
                                 norm=inference.norm_of(config.input)))
  s = config.input.size
  return fn, (eval_state, jax.ShapeDtypeStruct((PER_DEVICE_BATCH, s, s, 3), jnp.uint8))


def _export(fn, args, platform):
  """jax.export of `fn` for `platform`, 'auto' resolved for it. JAX caches a function's trace
  whatever lowering_for says, so `fn` must be a new jit (as _training_step and _forward make)."""
  with conv_ops.lowering_for(platform):
    return jax.export.export(fn, platforms=[platform])(*args)


def _avals(tree):
  return jax.tree.structure(tree), [(a.shape, a.dtype) for a in jax.tree.leaves(tree)]


def _convolutions(exported):
  """(lhs, rhs, result) tensor types of every convolution in the module."""
  return [m.groups() for line in exported.mlir_module().splitlines()
          if (m := CONV.search(line))]


def _assert_serialises(exported):
  """Exported.serialize() of the program (module, avals, shardings, platforms) round-trips. Its
  nnx State trees are not registered for serialisation (nothing of ours serialises a train
  step), so the trees are swapped for flat tuples of the same leaves first."""
  flat = dataclasses.replace(
      exported, in_tree=jax.tree.structure((tuple(exported.in_avals), {})),
      out_tree=jax.tree.structure(tuple(exported.out_avals)))
  back = jax.export.deserialize(bytearray(flat.serialize()))
  assert back.platforms == exported.platforms and back.nr_devices == exported.nr_devices
  assert back.in_avals == exported.in_avals and back.out_avals == exported.out_avals
  assert back.mlir_module_serialized == exported.mlir_module_serialized


def test_lowering_for_resolves_auto_for_the_target_platform():
  # The model's 1x1 convolutions are matrix products on CPU only; the CPU compiler options
  # must not reach an accelerator's step either.
  x, w = jnp.zeros((1, 8, 8, 4)), jnp.zeros((1, 1, 4, 8))
  # A new function each time: JAX would hand back a trace cached under another platform.
  prims = lambda: {e.primitive.name
                   for e in jax.make_jaxpr(lambda x, w: conv_ops.conv(x, w))(x, w).jaxpr.eqns}
  for platform in PLATFORMS:
    with conv_ops.lowering_for(platform):
      assert conv_ops.platform() == platform
      assert "conv_general_dilated" in prims() and conv_ops.compiler_options() is None
  with conv_ops.lowering_for("cpu"):
    assert "conv_general_dilated" not in prims() and conv_ops.compiler_options() is not None
  assert conv_ops.platform() == jax.default_backend()  # the context is left as found


@pytest.mark.parametrize(("name", "platform", "dtype"),
                         _params(PLATFORMS, train_step.DTYPES, fast=_fast_step))
def test_train_step_lowers(name, platform, dtype):
  with conv_ops.lowering_for(platform):  # the step's compiler options too
    step, (state, batch), mesh = _training_step(name, dtype)
  exported = _export(step, (state, batch), platform)
  assert exported.platforms == (platform,) and exported.nr_devices == mesh.size
  # The state comes back as it went in, float32 under bfloat16 compute too, and the metrics are
  # float32 scalars. (The CPU program's outputs are these by construction: tracing it as well
  # would double the test's time for nothing.)
  new_state, metrics = jax.tree.unflatten(exported.out_tree, exported.out_avals)
  assert _avals(new_state) == _avals(state)
  assert {"loss", "grad_norm"} <= set(metrics), sorted(metrics)
  assert {(a.shape, a.dtype) for a in metrics.values()} == {((), jnp.dtype("float32"))}
  # Every convolution module appears as a convolution in the forward, the input gradient
  # (but the first layer's) and the kernel gradient, computed in the step's dtype.
  convs = _convolutions(exported)
  n_convs = _abstract(name)[3]
  assert len(convs) >= 3 * n_convs - 1, (len(convs), n_convs)
  want = MLIR_DTYPE[dtype]
  assert all(t.endswith(f"x{want}>") for c in convs for t in c), {t for c in convs for t in c}
  # train.py's layout: the state replicated on every device, the batch split along 'data'.
  # Inputs the step never reads (a depth head's mask, say) leave the module, shardings and all.
  shardings, kept = exported.in_shardings_jax(mesh), exported.module_kept_var_idx
  n_state = len(jax.tree.leaves(state))
  assert all(shardings[i].is_fully_replicated for i in kept if i < n_state)
  rows = [shardings[i].shard_shape(exported.in_avals[i].shape)[0] for i in kept if i >= n_state]
  assert rows and rows == [PER_DEVICE_BATCH] * len(rows), rows
  _assert_serialises(exported)


@pytest.mark.parametrize(("name", "platform"), _params(PLATFORMS))
def test_eval_forward_lowers(name, platform):
  exported = _export(*_forward(name), platform)
  assert exported.platforms == (platform,)
  # The outputs (scores, maps, features) are those of the program traced for this CPU.
  outputs = jax.tree.unflatten(exported.out_tree, exported.out_avals)
  fn, args = _forward(name)
  assert _avals(outputs) == _avals(jax.eval_shape(fn, *args))
  assert outputs["score"].shape == (PER_DEVICE_BATCH,) and outputs["score"].dtype == jnp.float32
  convs = _convolutions(exported)
  assert len(convs) >= _abstract(name)[3], (len(convs), _abstract(name)[3])
  assert all(t.endswith("xf32>") for c in convs for t in c)
  _assert_serialises(exported)
