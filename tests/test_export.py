"""`pyramid-fas export` and the JAX-free runtime: the ONNX model on onnxruntime and the StableHLO
artefact on jax.export.deserialize equal the JAX model, and the runtime scores files as
`predict` does."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tiny_train_config
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.files import provenance
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.training import checkpoint

ort = pytest.importorskip("onnxruntime", reason="the `export` extra (onnxruntime) is not installed")
pytest.importorskip("jax2onnx", reason="the `export` extra (jax2onnx) is not installed")

from pyramid_fas_jax.deploy import export as export_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.py"))


def cli(*args):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.run([sys.executable, "-m", "pyramid_fas_jax.cli", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def randomise_batch_stats(model, seed=0):
  """Running statistics far from (0, 1), so that eval-mode BatchNorm is not the identity."""
  rng = np.random.default_rng(seed)
  for name, var in models.flat_state(model).items():
    if isinstance(var, nnx.BatchStat):
      low, high = (0.5, 2.0) if name.endswith("var") else (-0.3, 0.3)
      var.value = rng.uniform(low, high, var.value.shape).astype(np.float32)
  return model


def saved(config, directory, seed=0):
  model = randomise_batch_stats(models.build_model(config.model, nnx.Rngs(seed)), seed)
  return checkpoint.save_model(directory, model, config)


def relative_error(got, want):
  """max |got - want| over the output's scale (float32 carries ~7 digits)."""
  return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))


def assert_exports_match(ckpt, tmp_path, batch=3):
  """Both formats, run outside the model code, equal the JAX model within 1e-5 relative."""
  model, config = checkpoint.load_model(ckpt)
  size = config.input.size
  x = np.random.default_rng(1).normal(size=(batch, size, size, 3)).astype(np.float32)
  want = inference.predict(model, x, batch_size=batch)
  onnx_meta = export_lib.export(ckpt, "onnx", tmp_path / "onnx")
  assert list(onnx_meta["outputs"]) == sorted(want)
  session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
  # The batch is dynamic: one and `batch` images through the same file.
  for n in (1, batch):
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {"images": x[:n]})))
    assert set(got) == set(want)
    for k in want:
      assert got[k].shape == want[k][:n].shape, k
      assert relative_error(got[k], want[k][:n]) < 1e-5, (k, relative_error(got[k], want[k][:n]))
  export_lib.export(ckpt, "stablehlo", tmp_path / "hlo")
  exported = export_lib.load_stablehlo(tmp_path / "hlo" / "model.stablehlo")
  got = exported.call(x)
  for k in want:
    assert relative_error(np.asarray(got[k]), want[k]) < 1e-5, k
  return onnx_meta


def test_tiny_model_exports_exactly_with_model_json(tmp_path):
  config = tiny_train_config.get_config(None)   # resnet_tiny, pyramid mask (4, 2, 1), 32x32
  ckpt = saved(config, tmp_path / "model")
  meta = assert_exports_match(ckpt, tmp_path)
  on_disk = json.loads((tmp_path / "onnx" / "model.json").read_text())
  assert on_disk == meta
  assert meta["format"] == "onnx" and meta["onnx_opset"] == export_lib.OPSET
  assert meta["input"]["shape"] == ["batch", 32, 32, 3] and meta["input"]["colour_order"] == "RGB"
  assert meta["input"]["mean"] == pytest.approx(list(config.input.mean))
  assert meta["input"]["std"] == pytest.approx(list(config.input.std))
  assert meta["face_crop"]["context"] == 1.5 and meta["face_crop"]["crop_size"] == 320
  assert meta["face_crop"]["eval_scale"] == pytest.approx(config.input.eval_scale)
  assert set(meta["outputs"]) >= {"score", "mask_4", "mask_2", "mask_1", "features"}
  assert meta["outputs"]["mask_4"]["shape"] == ["batch", 4, 4]
  assert meta["score"]["higher_is_live"] is True
  # No evaluation of an imported or stand-alone checkpoint: the default, saying so.
  assert meta["threshold"]["value"] == 0.5 and "no evaluation" in meta["threshold"]["source"]


def test_threshold_comes_from_the_runs_evaluation(tmp_path):
  step = tmp_path / "run" / "best" / "40"
  step.mkdir(parents=True)
  (tmp_path / "run" / "eval").mkdir()
  prov = provenance.record(fingerprint="aaaa", config=tiny_train_config.get_config(None))
  results = {"mode": "iso", "threshold_strategy": "dev_eer",
             "dev": {"source": "synth_fas/intra/dev", "threshold": 0.3125},
             "test": {"threshold": 0.3125, "threshold_source": "dev_eer (EER threshold of the "
                      "dev set)"}, provenance.KEY: prov}
  (tmp_path / "run" / "eval" / "step_40.json").write_text(json.dumps(results))
  value, source = export_lib.choose_threshold(step, prov)
  assert value == 0.3125
  assert "dev_eer" in source and "synth_fas/intra/dev" in source and "step_40.json" in source
  assert export_lib.choose_threshold(step, prov, threshold=0.7) == (
      0.7, "fixed value given to `pyramid-fas export --threshold`")
  # A run that scored dev alone while training (eval.test_while_training=False, the demo).
  dev_alone = dict(results, dev=dict(results["test"], source="synth_fas/intra/dev",
                                     threshold=0.25))
  del dev_alone["test"]
  (tmp_path / "run" / "eval" / "step_40.json").write_text(json.dumps(dev_alone))
  value, source = export_lib.choose_threshold(step, prov)
  assert value == 0.25 and "dev_eer" in source and "synth_fas/intra/dev" in source
  (tmp_path / "bad.json").write_text(json.dumps({provenance.KEY: prov}))
  with pytest.raises(ValueError, match="holds no test.threshold"):
    export_lib.choose_threshold(step, prov, results=tmp_path / "bad.json")
  # The run's own evaluation of step 40, but of other weights (a rewritten step): refused.
  with pytest.raises(provenance.ProvenanceError, match="fingerprint aaaa, not"):
    export_lib.choose_threshold(step, dict(prov, model={"fingerprint": "bbbb"}))


def test_export_command_writes_both_and_refuses_a_non_checkpoint(tmp_path):
  ckpt = saved(tiny_train_config.get_config(None), tmp_path / "model")
  r = cli("export", f"--checkpoint={ckpt}", "--format=onnx", f"--output={tmp_path / 'out'}",
          "--threshold=0.25")
  assert r.returncode == 0, r.stderr
  assert "wrote" in r.stdout and "threshold 0.25" in r.stdout
  assert (tmp_path / "out" / "model.onnx").is_file()
  assert json.loads((tmp_path / "out" / "model.json").read_text())["threshold"]["value"] == 0.25
  (tmp_path / "empty").mkdir()
  r = cli("export", f"--checkpoint={tmp_path / 'empty'}", f"--output={tmp_path / 'out2'}")
  assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
  assert r.stderr.startswith(f"pyramid-fas export: {tmp_path / 'empty'} holds no config"), r.stderr
  assert not (tmp_path / "out2").exists()


def _config(name):
  spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("synth_fas/intra,runlocal")


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_exports(name, tmp_path):
  """Every architecture and head of configs/, at its runlocal size."""
  assert_exports_match(saved(_config(name), tmp_path / "model"), tmp_path)


@pytest.mark.slow
def test_imported_official_cdcn_exports(tmp_path):
  """An official CDCN state dict, imported, exports and still equals the reference network."""
  import torch_reference as ref

  from pyramid_fas_jax.weights import convert

  sd = ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=3)
  weights = tmp_path / "cdcn.npz"
  np.savez(weights, **{"module." + k: v for k, v in sd.items()})
  out = tmp_path / "cdcn"
  r = cli("import-weights", "--format=official-cdcn", f"--input={weights}",
          "--config=configs/cdcn_ps.py", f"--output={out}", "--config.input.size=32")
  assert r.returncode == 0, r.stderr
  assert_exports_match(out, tmp_path, batch=2)
  x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype(np.float32)
  session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"))
  depth = session.run(["depth_32"], {"images": x})[0]
  want = ref.cdcn_depth(x.transpose(0, 3, 1, 2).astype(np.float64), sd, theta=0.7)
  np.testing.assert_allclose(depth, want, rtol=1e-4, atol=1e-4)
  del convert


# ---------------------------------------------------------------- the runtime


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("exported")
  ckpt = saved(tiny_train_config.get_config(None), root / "model")
  export_lib.export(ckpt, "onnx", root / "onnx")
  return ckpt, root / "onnx"


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
  from skimage import data
  path = tmp_path_factory.mktemp("media") / "astronaut.png"
  cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
  return path


TRAINING_STACK = ("jax", "flax", "tensorflow_datasets", "tensorflow", "grain")


def _run_printing_loaded_stack(code: str) -> list[str]:
  """Runs `code` in a fresh interpreter, then prints which training-stack modules it loaded;
  returns stdout's lines."""
  code += f"\nprint([m for m in {TRAINING_STACK!r} if m in sys.modules])"
  r = subprocess.run([sys.executable, "-c", "import sys\n" + code], cwd=REPO,
                     capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                     timeout=300)
  assert r.returncode == 0, r.stderr
  return r.stdout.splitlines()


def test_runtime_scores_without_importing_jax(exported, astronaut_png):
  _, model_dir = exported
  score, loaded = _run_printing_loaded_stack(
      "from pyramid_fas_jax.deploy import runtime\n"
      f"out = runtime.Model({str(model_dir)!r}).score({str(astronaut_png)!r})\n"
      "print(float(out['score'][0]))")[-2:]
  assert loaded == "[]"
  assert 0 < float(score) < 1
  # The command too: `predict --model` on a deployment without the training stack.
  out = astronaut_png.parent / "command.npz"
  lines = _run_printing_loaded_stack(
      "from pyramid_fas_jax import cli\n"
      "try:\n"
      f"  cli.main(['pyramid-fas', 'predict', '--model={model_dir}', "
      f"'--input={astronaut_png}', '--output={out}'])\n"
      "except SystemExit as e:\n"
      "  print('exit', e.code)")
  assert lines[-2:] in (["exit 0", "[]"], ["exit None", "[]"]), lines
  np.testing.assert_allclose(np.load(out)["score"][0], float(score), rtol=1e-6)


def test_runtime_equals_predict_on_an_image_and_a_video(exported, astronaut_png, tmp_path):
  ckpt, model_dir = exported
  rgb = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2RGB)
  folder = tmp_path / "media"
  folder.mkdir()
  (folder / "astronaut.png").write_bytes(astronaut_png.read_bytes())
  writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10,
                           (512, 512))
  for shift in (0, 12, 24, 36):  # the face moves, so the frames score differently
    writer.write(cv2.cvtColor(np.roll(rgb, shift, axis=1), cv2.COLOR_RGB2BGR))
  writer.release()
  outs = {}
  for how in (f"--checkpoint={ckpt}", f"--model={model_dir}"):
    out = tmp_path / f"{how.split('=')[0][2:]}.npz"
    r = cli("predict", how, f"--input={folder}", f"--output={out}", "--frame_step=1")
    assert r.returncode == 0, r.stderr
    outs[how[2:7]] = np.load(out)
  jax_out, onnx_out = outs["check"], outs["model"]
  assert sorted(jax_out.files) == sorted(onnx_out.files)
  assert len(jax_out["score"]) == 5   # the image and the video's four frames
  assert len(set(np.round(jax_out["score"], 6).tolist())) > 1
  # The same model, so the same fingerprint; the ONNX run adds its export's path.
  prov = {how: json.loads(str(out["provenance"])) for how, out in (("jax", jax_out),
                                                                    ("onnx", onnx_out))}
  assert prov["jax"]["model"]["fingerprint"] == prov["onnx"]["model"]["fingerprint"]
  assert prov["onnx"]["export"] == str(model_dir.absolute())
  for k in set(jax_out.files) - {"provenance"}:
    if jax_out[k].dtype.kind in "US" or not jax_out[k].size:
      assert jax_out[k].tolist() == onnx_out[k].tolist(), k
    else:
      assert relative_error(onnx_out[k], jax_out[k]) < 1e-5, k
  np.testing.assert_allclose(onnx_out["score"], jax_out["score"], rtol=1e-5, atol=1e-7)
