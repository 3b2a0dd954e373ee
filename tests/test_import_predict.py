"""import-weights -> predict round trips on random PyTorch-layout state dicts made here (no
download): our outputs must equal an independent float64 numpy forward of the reference network."""

import os
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch_reference as ref
from flax import nnx
from safetensors.numpy import save_file

from pyramid_fas_jax import models
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.training import checkpoint
from pyramid_fas_jax.weights import convert

REPO = pathlib.Path(__file__).resolve().parents[1]


def cli(*args):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.run([sys.executable, "-m", "pyramid_fas_jax.cli", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def _import_and_predict(tmp_path, state_dict, fmt, config, seed):
  """Import `state_dict` as `fmt` into `config` at 64x64 (the last map is 2x2, so the pyramid is
  (2, 1)), predict random images with the checkpoint: (import's stdout, images, predict's npz)."""
  weights = tmp_path / "weights.safetensors"
  save_file(state_dict, str(weights))
  out = tmp_path / "imported"
  overrides = ["--config.input.size=64", "--config.model.scales=(2,1)"]
  r = cli("import-weights", f"--format={fmt}", f"--input={weights}", f"--config={config}",
          f"--output={out}", *overrides)
  assert r.returncode == 0, r.stderr
  x = np.random.default_rng(seed).normal(size=(2, 64, 64, 3)).astype(np.float32)
  np.save(tmp_path / "x.npy", x)
  p = cli("predict", f"--checkpoint={out}", f"--input={tmp_path / 'x.npy'}",
          f"--output={tmp_path / 'y.npz'}")
  assert p.returncode == 0, p.stderr
  return r.stdout, x, np.load(tmp_path / "y.npz")


def test_torchvision_resnet50_round_trip(tmp_path):
  sd = ref.random_state_dict(ref.resnet50_state_dict_shapes(), seed=1)
  stdout, x, y = _import_and_predict(tmp_path, sd, "torchvision-resnet50",
                                     "configs/resnet50_ps.py", seed=2)
  assert "dropped by design (55)" in stdout  # fc.weight, fc.bias and 53 num_batches_tracked
  want = ref.resnet50_features(x.transpose(0, 3, 1, 2).astype(np.float64), sd)
  assert _relative_error(y["features"], want) < 1e-5  # activations grow to ~1e3 over 16 blocks
  assert set(y.files) >= {"score", "logit", "mask_2", "mask_1", "features"}
  assert y["mask_2"].shape == (2, 2, 2)


def test_official_cdcn_round_trip(tmp_path):
  sd = ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=3)
  weights = tmp_path / "cdcn.npz"
  np.savez(weights, **{"module." + k: v for k, v in sd.items()})  # DataParallel-style keys
  out = tmp_path / "cdcn"
  # 32x32 input: the blocks come out at 16, 8 and 4 and are upsampled to 32 (PyTorch bilinear).
  r = cli("import-weights", "--format=official-cdcn", f"--input={weights}",
          "--config=configs/cdcn_ps.py", f"--output={out}", "--config.input.size=32")
  assert r.returncode == 0, r.stderr
  x = np.random.default_rng(4).normal(size=(2, 32, 32, 3)).astype(np.float32)
  model, _ = checkpoint.load_model(out)
  y = inference.predict(model, x, batch_size=2)
  want = ref.cdcn_depth(x.transpose(0, 3, 1, 2).astype(np.float64), sd, theta=0.7)
  np.testing.assert_allclose(y["depth_32"], want, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(y["depth_16"], want.reshape(2, 16, 2, 16, 2).mean(axis=(2, 4)),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(y["score"], want.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


def _relative_error(got_nhwc, want_nchw):
  # Random weights and BN statistics let activations grow over many layers, so compare against
  # the scale of the output (float32 has ~7 digits).
  want = want_nchw.transpose(0, 2, 3, 1)
  return np.abs(got_nhwc - want).max() / np.abs(want).max()


def _imported(cfg, state_dict, fmt):
  """build_model(cfg) with `state_dict` imported in-process. The model is built abstractly and
  zero-filled instead of initialised: eager init compiles one random-number program per distinct
  shape (~0.2 s each on this CPU, hundreds in DenseNet), and the import overwrites every backbone
  variable anyway. The FAS head keeps zeros; these tests compare `features`."""
  model = nnx.eval_shape(lambda: models.build_model(cfg, nnx.Rngs(0)))
  for var in models.flat_state(model).values():
    var.set_value(jnp.zeros(var.shape, var.dtype))
  convert.import_state_dict(model, state_dict, fmt)
  return model


def test_torchvision_shufflenet_v2_round_trip(tmp_path):
  sd = ref.random_state_dict(ref.shufflenet_v2_state_dict_shapes(), seed=11)
  stdout, x, y = _import_and_predict(tmp_path, sd, "torchvision-shufflenet_v2_x1_0",
                                     "configs/shufflenet_v2_ps.py", seed=12)
  assert "dropped by design (58)" in stdout  # fc.weight, fc.bias and 56 num_batches_tracked
  want = ref.shufflenet_v2_features(x.transpose(0, 3, 1, 2).astype(np.float64), sd)
  assert _relative_error(y["features"], want) < 1e-5
  assert y["mask_2"].shape == (2, 2, 2) and y["features"].shape == (2, 2, 2, 1024)


def _vgg16_state_dict(seed):
  """Random features; the classifier (124M of VGG16's 138M parameters, dropped on import unread)
  as read-only zero views that take no memory."""
  shapes = ref.vgg16_state_dict_shapes()
  sd = ref.random_state_dict({k: v for k, v in shapes.items() if k.startswith("features.")}, seed)
  sd.update({k: np.broadcast_to(np.float32(0), v) for k, v in shapes.items()
             if k.startswith("classifier.")})
  return sd


def _densenet121_state_dict(seed):
  """Random weights under the key names of torchvision's hosted densenet121-a639ec97.pth
  (denselayerJ.norm.1.weight, ...), which the importer must rename as torchvision does."""
  return ref.random_state_dict(ref.densenet121_state_dict_shapes(legacy=True), seed)


def _current_densenet_keys(sd):
  return {k.replace(".norm.", ".norm").replace(".conv.", ".conv") if "denselayer" in k else k: v
          for k, v in sd.items()}


# (backbone, format, state dict, numpy forward on current key names, input size, tolerance).
# VGG16 and DenseNet121 end at 1x1 for a 32x32 input; the mobile nets at 2x2 for 64x64.
# MobileNetV2's tolerance is looser because float32 rounding alone reaches 1e-5 there: the
# reference forward itself, run with float32 tensors, is 1.1e-5 off its float64 result (52 convs
# with random BN gains compound the rounding; ReLU6 keeps the output's scale at 6).
IN_PROCESS_CASES = [
    ("vgg16", "torchvision-vgg16", _vgg16_state_dict, ref.vgg16_features, 32, 1e-5),
    ("densenet121", "torchvision-densenet121", _densenet121_state_dict,
     lambda x, sd: ref.densenet121_features(x, _current_densenet_keys(sd)), 32, 1e-5),
    ("mobilenet_v2", "torchvision-mobilenet_v2",
     lambda seed: ref.random_state_dict(ref.mobilenet_v2_state_dict_shapes(), seed),
     ref.mobilenet_v2_features, 64, 1e-4),
]


@pytest.mark.parametrize("backbone,fmt,make_sd,forward,size,tol", IN_PROCESS_CASES,
                         ids=[c[0] for c in IN_PROCESS_CASES])
def test_torchvision_import_predict(backbone, fmt, make_sd, forward, size, tol):
  sd = make_sd(21)
  scales = (1,) if size == 32 else (2, 1)
  model = _imported(fas.model_config(backbone=backbone, scales=scales), sd, fmt)
  x = np.random.default_rng(22).normal(size=(2, size, size, 3)).astype(np.float32)
  y = inference.predict(model, x, batch_size=2)
  want = forward(x.transpose(0, 3, 1, 2).astype(np.float64), sd)
  assert _relative_error(y["features"], want) < tol


def test_official_cdcnpp_import_predict():
  sd = ref.random_state_dict(ref.cdcnpp_state_dict_shapes(), seed=31)
  cfg = fas.model_config(backbone="cdcnpp", head="pyramid_depth", scales=(32, 16),
                         predictor_widths=(128,))
  model = _imported(cfg, sd, "official-cdcnpp")
  x = np.random.default_rng(32).normal(size=(2, 32, 32, 3)).astype(np.float32)
  y = inference.predict(model, x, batch_size=2)
  want = ref.cdcnpp_depth(x.transpose(0, 3, 1, 2).astype(np.float64), sd, theta=0.7)
  assert want.max() > 0  # the final ReLU leaves something to compare
  np.testing.assert_allclose(y["depth_32"], want, rtol=1e-4, atol=1e-4 * want.max())
  np.testing.assert_allclose(y["depth_16"], want.reshape(2, 16, 2, 16, 2).mean(axis=(2, 4)),
                             rtol=1e-4, atol=1e-4 * want.max())


def test_depthnet_imports_official_cdcn_theta0():
  """DepthNet is the official CDCN code run with theta = 0: its weights use official-cdcn."""
  sd = ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=41)
  model = _imported(fas.model_config(backbone="depthnet", head="pyramid_depth", scales=(32, 16)),
                    sd, "official-cdcn")
  x = np.random.default_rng(42).normal(size=(2, 32, 32, 3)).astype(np.float32)
  y = inference.predict(model, x, batch_size=2)
  want = ref.cdcn_depth(x.transpose(0, 3, 1, 2).astype(np.float64), sd, theta=0.0)
  assert want.max() > 0
  np.testing.assert_allclose(y["depth_32"], want, rtol=1e-4, atol=1e-4 * want.max())


def test_cdcn_weights_do_not_fit_cdcnpp():
  cfg = fas.model_config(backbone="cdcnpp", head="pyramid_depth", predictor_widths=(128,))
  model = nnx.eval_shape(lambda: models.build_model(cfg, nnx.Rngs(0)))
  sd = ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=0)
  with pytest.raises(convert.WeightImportError) as e:
    convert.import_state_dict(model, sd, "official-cdcnpp")
  msg = str(e.value)
  assert "missing from the file: backbone/sa1/conv1/kernel" in msg
  assert "left over (no model variable): lastconv3.0.conv.weight" in msg
  assert "wrong shape: Block1.3.conv.weight (196, 128, 3, 3)" in msg


def test_import_names_missing_and_leftover_keys():
  cfg = fas.model_config(backbone="cdcn", head="pyramid_depth", scales=(32, 16))
  model = models.build_model(cfg, nnx.Rngs(0))
  sd = ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=0)
  del sd["Block2.4.running_var"]
  sd["extra.layer.weight"] = np.zeros(3, np.float32)
  with pytest.raises(convert.WeightImportError) as e:
    convert.import_state_dict(model, sd, "official-cdcn")
  msg = str(e.value)
  assert "missing from the file: backbone/Block2/layers/1/bn/var" in msg
  assert "left over (no model variable): extra.layer.weight" in msg


def test_import_rejects_wrong_architecture():
  # ResNet50 weights into the CPU-sized ResNet: every shape is wrong and named.
  cfg = fas.model_config(backbone="resnet_tiny")
  model = models.build_model(cfg, nnx.Rngs(0))
  sd = ref.random_state_dict(ref.resnet50_state_dict_shapes())
  with pytest.raises(convert.WeightImportError, match=r"wrong shape: conv1.weight \(64, 3, 7, 7\)"):
    convert.import_state_dict(model, sd, "torchvision-resnet50")


def test_cli_errors_are_one_line(tmp_path):
  r = cli("import-weights", "--format=official-cdcn", f"--input={tmp_path / 'nope.pth'}",
          "--config=configs/cdcn_ps.py", f"--output={tmp_path / 'o'}")
  assert r.returncode == 2
  assert "does not exist" in r.stderr and "Traceback" not in r.stderr
  r = cli("predikt")
  assert r.returncode == 2 and "did you mean 'predict'" in r.stderr
