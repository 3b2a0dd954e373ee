"""Every config in configs/: its runlocal model builds and runs a jitted forward, with and without
pyramid supervision, and the full-size settings are the paper's (scales, input, optimiser)."""

import importlib.util
import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.training import train_step
from pyramid_fas_jax.weights import pretrained

CONFIGS = sorted(p.stem for p in (pathlib.Path(__file__).resolve().parents[1] / "configs").glob(
    "*.py"))


def load(name, arg=None):
  path = pathlib.Path(__file__).resolve().parents[1] / "configs" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def test_every_architecture_of_fig5_has_a_config():
  assert {"resnet50_ps", "cdcn_ps", "vgg16_ps", "densenet121_ps", "shufflenet_v2_ps",
          "mobilenet_v2_ps", "depthnet_ps", "cdcnpp_ps"} <= set(CONFIGS)


# config -> (head, full-size scales, optimiser): the paper's settings (Table II, Fig. 5).
EXPECTED = {
    "resnet50_ps": ("pyramid_mask", (8, 4, 2, 1), "sgd"),
    "resnet50_binary": ("binary", (1,), "sgd"),
    "resnet50_depth": ("pyramid_depth", (8,), "sgd"),
    "resnet50_multiclass": ("multiclass_mask", (8,), "sgd"),
    "resnet50_spp": ("spp", (2, 1), "sgd"),
    "vgg16_ps": ("pyramid_mask", (8, 4, 2, 1), "sgd"),
    "densenet121_ps": ("pyramid_mask", (8, 4, 2, 1), "sgd"),
    "shufflenet_v2_ps": ("pyramid_mask", (8, 4, 2, 1), "sgd"),
    "mobilenet_v2_ps": ("pyramid_mask", (8, 4, 2, 1), "sgd"),
    "cdcn_ps": ("pyramid_depth", (32, 16), "adam"),
    "cdcn_mask": ("dense_mask", (32, 16), "adam"),
    "depthnet_ps": ("pyramid_depth", (32, 16), "adam"),
    "cdcnpp_ps": ("pyramid_depth", (32, 16), "adam"),
}


def test_every_config_is_expected():
  assert set(CONFIGS) - {"demo"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_full_size_settings(name):
  head, scales, optimiser = EXPECTED[name]
  full = load(name, "oulu_npu/Protocol_4_1")
  single = load(name, "oulu_npu/Protocol_4_1,single_scale")
  assert full.data.name == "oulu_npu" and full.data.protocol == "Protocol_4_1"
  assert full.input.size == 256 and full.num_steps == 0
  assert full.model.head == head and tuple(full.model.scales) == scales
  assert full.optim.name == optimiser
  assert tuple(single.model.scales) == scales[:1]
  assert single.model.backbone == full.model.backbone
  if optimiser == "sgd":  # fine-tuning an ImageNet backbone; the FCNs train from scratch
    assert (full.optim.lr, full.optim.momentum, full.batch_size, full.num_epochs) == (
        1e-3, 0.9, 32, 80)
    assert full.init_from == pretrained.IMAGENET and full.model.backbone in pretrained.WEIGHTS
    assert single.init_from == pretrained.IMAGENET
  else:
    assert (full.optim.lr, full.batch_size, full.num_epochs, full.optim.lr_step_epochs) == (
        1e-4, 8, 800, 500)
    assert full.init_from == ""
  assert full.optim.weight_decay == 5e-5


@pytest.mark.parametrize("option", ["runlocal", "runlocal,single_scale"])
@pytest.mark.parametrize("name", CONFIGS)
def test_runlocal_model_runs(name, option):
  config = load(name, f"synth_fas/intra,{option}")
  assert config.init_from == ""  # the CPU-sized backbones have no ImageNet weights
  model = models.build_model(config.model, nnx.Rngs(config.seed))
  model.eval()
  size = config.input.size
  x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
  out = nnx.jit(lambda m, x: m(x))(model, x)
  kind = {"pyramid_depth": "depth", "binary": None, "spp": None}.get(config.model.head, "mask")
  for s in config.model.scales if kind else ():
    assert out[f"{kind}_{s}"].shape == (2, s, s)
  assert out["score"].shape == (2,)
  assert np.all(np.isfinite(np.asarray(out["score"])))
  # The first scale of a map head is the map the backbone produces at this input size.
  if kind:
    assert out["features"].shape[1] == config.model.scales[0]


def _backbone_leaves(state):
  """{"['layer']['0']['kernel']": numpy copy, ...} of the model's backbone in a train state."""
  backbone = nnx.to_pure_dict(state)[0]["backbone"]
  return {jax.tree_util.keystr(p): np.array(v)
          for p, v in jax.tree_util.tree_leaves_with_path(backbone)}


# The paper's two main models and the demo run by default; the rest are slow on 2 CPU cores.
FAST = {"resnet50_ps", "cdcn_ps", "demo"}


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(set(EXPECTED) | {"demo"})])
def test_runlocal_train_step_moves_params_and_bn_statistics(name):
  config = load(name, "synth_fas/intra,runlocal")
  graphdef, state = train_step.create_train_state(config)
  n, size = 2, config.input.size
  label = np.array([1, 0], np.int32)
  mask = np.broadcast_to(label[:, None, None], (n, size, size)).astype(np.float32)
  batch = {"image": np.random.default_rng(0).normal(size=(n, size, size, 3)).astype(np.float32),
           "mask": mask, "depth": mask * 0.5, "label": label, "species": 1 - label}
  before = _backbone_leaves(state)  # copies: the step donates `state`
  state, metrics = train_step.jit_train_step(graphdef, config.model)(state, batch)
  assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) > 0
  after = _backbone_leaves(state)
  changed = {k for k in after if not np.array_equal(after[k], before[k])}
  assert any(k.endswith("['kernel']") for k in changed)  # convolutions learn
  # Every BatchNorm's running mean moves (VGG16 has none).
  assert {k for k in before if k.endswith("['mean']")} <= changed


def test_unknown_config_option_is_named():
  with pytest.raises(ValueError, match=r"unknown config option\(s\) \['pyramid'\]"):
    fas.parse_options("oulu_npu/Protocol_1,pyramid", ("runlocal", "single_scale"))
  assert fas.parse_arg("oulu_npu/Protocol_2,runlocal") == ("oulu_npu", "Protocol_2", True)


@pytest.mark.parametrize("arg,threshold", [
    ("synth_fas/intra", "dev_eer"), ("oulu_npu/Protocol_4_2", "dev_eer"),
    ("replay_attack/grandtest", "dev_eer"), ("casia_mfsd/official", "test_eer"),
    ("msu_mfsd/official", "test_eer"), ("siw_m/leave_out/partial_paper", "test_eer"),
    ("ocim/to_msu_mfsd", "test_eer"), ("ocim/to_msu_mfsd/source_dev", "dev_eer"),
    ("casia_replay/to_replay_attack", "test_eer")])
def test_threshold_comes_from_dev_wherever_the_protocol_has_one(arg, threshold):
  config = load("resnet50_ps", arg)
  assert config.eval.threshold == threshold
  assert config.data.builder_config == "default"


def test_demo_lr_drops_tenfold_where_its_docstring_says():
  """configs/demo.py: 1e-3 until step 1683 (epoch 52 of SynthFAS bench's 33-step epochs, less
  the one epoch optax's staircase drops early), 1e-4 from there to step 2400, no second drop."""
  from pyramid_fas_jax.experiment import demo
  from pyramid_fas_jax.training import optim
  config = demo.load_config(pathlib.Path(__file__).parents[1] / "configs" / "demo.py")
  steps_per_epoch = 528 // config.batch_size  # bench's training videos, one frame each
  lr = optim.make_schedule(config.optim, steps_per_epoch)
  assert (steps_per_epoch, config.num_steps) == (33, 2400)
  assert float(lr(0)) == float(lr(1682)) == pytest.approx(1e-3)
  assert float(lr(1683)) == float(lr(config.num_steps - 1)) == pytest.approx(1e-4)
  # A constant-lr recipe (Table II's) keeps 1e-3 whatever the step.
  assert float(optim.make_schedule(fas.demo_recipe(config, 2400, lr_drop_epoch=None).optim,
                                   33)(5000)) == pytest.approx(1e-3)
