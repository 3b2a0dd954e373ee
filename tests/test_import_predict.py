"""import-weights -> predict round trips on random PyTorch-layout state dicts made here (no
download): our outputs must equal an independent float64 numpy forward of the reference network."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import save_file

import torch_reference as ref
from pyramid_fas_jax import checkpoint, convert, models
from pyramid_fas_jax import config as fas

REPO = pathlib.Path(__file__).resolve().parents[1]


def cli(*args):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.run([sys.executable, "-m", "pyramid_fas_jax.cli", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def test_torchvision_resnet50_round_trip(tmp_path):
  sd = ref.random_state_dict(ref.resnet50_state_dict_shapes(), seed=1)
  weights = tmp_path / "resnet50.safetensors"
  save_file(sd, str(weights))
  out = tmp_path / "r50"
  # 64x64 input keeps the reference forward cheap; F is then 2x2, so the pyramid is (2, 1).
  overrides = ["--config.input.size=64", "--config.model.scales=(2,1)"]
  r = cli("import-weights", "--format=torchvision-resnet50", f"--input={weights}",
          "--config=configs/resnet50_ps.py", f"--output={out}", *overrides)
  assert r.returncode == 0, r.stderr
  assert "dropped by design (55)" in r.stdout  # fc.weight, fc.bias and 53 num_batches_tracked

  x = np.random.default_rng(2).normal(size=(2, 64, 64, 3)).astype(np.float32)
  np.save(tmp_path / "x.npy", x)
  r = cli("predict", f"--checkpoint={out}", f"--input={tmp_path / 'x.npy'}",
          f"--output={tmp_path / 'y.npz'}")
  assert r.returncode == 0, r.stderr
  y = np.load(tmp_path / "y.npz")
  want = ref.resnet50_features(x.transpose(0, 3, 1, 2).astype(np.float64), sd)
  # Random weights and BN statistics let activations grow to ~1e3 over 16 blocks, so compare
  # against the scale of the output (float32 has ~7 digits).
  err = np.abs(y["features"] - want.transpose(0, 2, 3, 1)).max() / np.abs(want).max()
  assert err < 1e-5, err
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
  from pyramid_fas_jax import inference  # pylint: disable=g-import-not-at-top
  y = inference.predict(model, x, batch_size=2)
  want = ref.cdcn_depth(x.transpose(0, 3, 1, 2).astype(np.float64), sd, theta=0.7)
  np.testing.assert_allclose(y["depth_32"], want, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(y["depth_16"], want.reshape(2, 16, 2, 16, 2).mean(axis=(2, 4)),
                             rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(y["score"], want.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


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
