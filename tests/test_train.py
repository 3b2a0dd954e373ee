"""The training loop: outputs of a run, sharded == single-device step, kill-and-resume exactness,
two processes == one, config overrides and errors, and the non-finite-loss stop."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import naive_fas
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from pyramid_fas_jax import evaluation, models
from pyramid_fas_jax.experiment.demo import load_config
from pyramid_fas_jax.training import checkpoint, train, train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"


def _cli(args, devices=4, **popen):
  env = dict(os.environ, PYTHONPATH=str(REPO),
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
  return subprocess.Popen([sys.executable, "-m", "pyramid_fas_jax.cli", *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def _params(workdir, step):
  """Flat {path: array} of the model state saved at `step`."""
  config = load_config(TINY, "unused")
  model = models.build_model(config.model, nnx.Rngs(1))
  checkpoint.restore_into(model, pathlib.Path(workdir) / "checkpoints" / str(step))
  return {k: np.asarray(v[...]) for k, v in models.flat_state(model).items()}


def _losses(workdir):
  text = (pathlib.Path(workdir) / "metrics.jsonl").read_text()
  rows = [json.loads(line) for line in text.splitlines()]
  return {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}


@pytest.fixture(scope="module")
def reference_run(synth_tiny, tmp_path_factory):
  """An uninterrupted 8-step run on 4 devices in this process."""
  workdir = tmp_path_factory.mktemp("reference")
  results = train.train_and_evaluate(load_config(TINY, synth_tiny), workdir)
  return workdir, results


def test_run_writes_every_output(reference_run, synth_tiny):
  workdir, results = reference_run
  assert results["step"] == 8 and results["mode"] == "iso"
  test = results["test"]
  assert test["threshold_source"].startswith("dev_eer")
  assert json.loads((workdir / "results.json").read_text())["step"] == 8
  assert json.loads((workdir / "config.json").read_text())["data"]["data_dir"] == synth_tiny
  assert sorted(_losses(workdir)) == [2, 4, 6, 8]
  # tiny: 24 training videos, batch 8 -> 3 steps per video epoch.
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert {r["step"]: r["train/epoch"] for r in rows if "train/epoch" in r} == {
      s: s / 3 for s in (2, 4, 6, 8)}
  assert len(list((workdir / "tb").iterdir())) == 1
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [4, 6, 8]
  assert [p.name for p in (workdir / "best").iterdir()] == ["8"]
  frames = evaluation.read_scores(workdir / "scores" / "test_frames_step8.txt")
  videos = evaluation.read_scores(workdir / "scores" / "test_videos_step8.txt")
  assert len(frames) == 24 and len(videos) == 24  # tiny: 24 one-frame videos per split
  assert set(frames.species) == {"live", "print", "replay", "mask3d", "partial"}
  # The reported metrics, recomputed from the score files in plain Python (tests/naive_fas.py).
  dev_rows = naive_fas.read(workdir / "scores" / "dev_frames_step8.txt", per_video=True)
  test_rows = naive_fas.read(workdir / "scores" / "test_frames_step8.txt", per_video=True)
  _, threshold = naive_fas.eer(dev_rows)
  want = naive_fas.rates(test_rows, threshold)
  assert test["threshold"] == pytest.approx(threshold, abs=1e-6)
  for key in ("APCER", "BPCER", "ACER"):
    assert test[key] == pytest.approx(float(want[key]), abs=1e-9), key
  assert test["EER"] == pytest.approx(float(naive_fas.eer(test_rows)[0]), abs=1e-9)
  assert test["AUC"] == pytest.approx(float(naive_fas.auc(test_rows)), abs=1e-9)


def _meta(workdir, step) -> dict:
  return json.loads((pathlib.Path(workdir) / "checkpoints" / str(step) / "meta" / "metadata")
                    .read_text())


def test_rerunning_a_finished_run_reports_it_again(reference_run, synth_tiny):
  workdir, results = reference_run
  # The run's wall time is stored with its last checkpoint and is the one its results report.
  seconds = results[train.WALL_TIME_KEY]
  assert seconds > 0 and _meta(workdir, 8)[train.WALL_TIME_KEY] == seconds
  again = train.train_and_evaluate(load_config(TINY, synth_tiny), workdir)
  assert again["step"] == 8 and again["test"]["ACER"] == results["test"]["ACER"]
  assert sorted(_losses(workdir)) == [2, 4, 6, 8]  # nothing was trained again
  # ... so it reports the first run's time, not the rerun's seconds.
  assert again[train.WALL_TIME_KEY] == seconds
  assert json.loads((workdir / "results.json").read_text())[train.WALL_TIME_KEY] == seconds


def test_a_resumed_run_adds_to_its_stored_wall_time(reference_run, synth_tiny, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference_run[0], workdir)
  meta = workdir / "checkpoints" / "8" / "meta" / "metadata"
  meta.write_text(json.dumps(dict(_meta(workdir, 8), **{train.WALL_TIME_KEY: 1000.0})))
  config = load_config(TINY, synth_tiny)
  config.num_steps = 10  # a harmless change: the run goes on from step 8
  results = train.train_and_evaluate(config, workdir)
  # 1000 s before, plus this session's (any real session is far below 1000 s).
  assert 1000.0 < results[train.WALL_TIME_KEY] < 2000.0
  assert _meta(workdir, 10)[train.WALL_TIME_KEY] == results[train.WALL_TIME_KEY]


def test_evaluating_dev_alone_during_training_trains_and_chooses_the_same(reference_run,
                                                                          synth_tiny, tmp_path):
  """eval.test_while_training=False (the demo): training's evaluations score dev alone, and the
  run is the reference run's: the same weights at every saved step, dev figures and best
  checkpoint; training ends by scoring test once, for that checkpoint, with the figures the
  reference run logged for it; a rerun of the finished run reports them again."""
  ref, _ = reference_run
  config = load_config(TINY, synth_tiny)
  config.eval.test_while_training = False
  workdir = tmp_path / "dev_alone"
  results = train.train_and_evaluate(config, workdir)
  assert sorted(p.name for p in (workdir / "eval").iterdir()) == sorted(
      p.name for p in (ref / "eval").iterdir())
  assert [p.name for p in (workdir / "best").iterdir()] == [
      p.name for p in (ref / "best").iterdir()]
  best = int(next((workdir / "best").iterdir()).name)
  for path in sorted((workdir / "eval").iterdir()):
    mine, theirs = (json.loads(p.read_text()) for p in (path, ref / "eval" / path.name))
    assert mine["dev"] == theirs["dev"], path.name
    # Only the chosen checkpoint's evaluation scored test, once training had ended.
    assert ("test" in mine) == (path.name == f"step_{best}.json"), path.name
  assert {p.name for p in (workdir / "scores").glob("test_*")} == {
      f"test_frames_step{best}.txt", f"test_videos_step{best}.txt"}
  logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert not [k for row in logged for k in row if k.startswith("test/")]
  for step in (6, 8):
    mine, theirs = _params(workdir, step), _params(ref, step)
    assert all(np.array_equal(mine[k], theirs[k]) for k in theirs), step
  logged_test = json.loads((ref / "eval" / f"step_{best}.json").read_text())["test"]
  assert results["step"] == best
  assert results["provenance"]["model"]["checkpoint"] == str(workdir / "best" / str(best))
  assert json.loads((workdir / "results.json").read_text())["test"] == results["test"]
  for key in ("ACER", "APCER", "BPCER", "AUC", "threshold"):
    assert results["test"][key] == logged_test[key], key
  seconds = results[train.WALL_TIME_KEY]
  assert seconds > 0 and _meta(workdir, 8)[train.WALL_TIME_KEY] == seconds
  again = train.train_and_evaluate(config, workdir)
  assert sorted(_losses(workdir)) == [2, 4, 6, 8]  # nothing was trained again
  assert again["step"] == best and again["test"]["ACER"] == results["test"]["ACER"]
  assert again[train.WALL_TIME_KEY] == seconds


def test_loading_a_best_checkpoint_logs_no_orbax_metadata_warning(reference_run, caplog):
  workdir, _ = reference_run
  caplog.set_level("INFO")
  model, config = checkpoint.load_model(workdir / "best" / "8")
  assert config.num_steps == 8
  said = [r.getMessage() for r in caplog.records]
  assert any("Restoring checkpoint from" in m for m in said), said  # Orbax's logs are caught
  assert not [m for m in said if "Metadata file does not exist" in m]


def test_evaluate_command_reproduces_the_run(reference_run):
  workdir, results = reference_run
  p = _cli(["evaluate", f"--workdir={workdir}", "--step=8"])  # the run's own config.json
  out, err = p.communicate(timeout=300)
  assert p.returncode == 0, err[-3000:]
  again = json.loads((workdir / "results.json").read_text())
  assert again["test"]["ACER"] == results["test"]["ACER"] and "ACER" in out
  assert {pathlib.Path(f).name for f in again["plots"]} == {"roc.png", "det.png", "hist_dev.png",
                                                            "hist_test.png"}


def test_sharded_step_equals_single_device_step(synth_tiny):
  config = load_config(TINY, synth_tiny)
  rng = np.random.default_rng(0)
  batch = {"image": rng.normal(size=(8, 32, 32, 3)).astype(np.float32),
           "mask": np.repeat(np.array([1, 0] * 4, np.float32)[:, None, None], 32, 1).repeat(32, 2),
           "depth": np.zeros((8, 32, 32), np.float32), "label": np.array([1, 0] * 4, np.int32),
           "species": np.array([0, 1] * 4, np.int32)}
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:4]):
    mesh = jax.sharding.Mesh(np.array(devices), ("data",),
                             axis_types=(jax.sharding.AxisType.Auto,))
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    graphdef, state = train_step.create_train_state(config)
    state = jax.device_put(state, replicated)
    step = train_step.jit_train_step(graphdef, config.model, replicated, sharded)
    gbatch = {k: jax.device_put(v, sharded) for k, v in batch.items()}
    state, _ = step(state, gbatch)
    results.append(jax.device_get(nnx.to_pure_dict(state)[0]))  # the model: params, BN stats
  flat = [jax.tree.leaves(r) for r in results]
  assert len(flat[0]) == len(flat[1])
  for a, b in zip(*flat):
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def _wait_for(path, proc, timeout=300):
  start = time.time()
  while not path.exists():
    if proc.poll() is not None:
      raise AssertionError(f"process ended early:\n{proc.stderr.read()[-3000:]}")
    if time.time() - start > timeout:
      proc.kill()
      raise AssertionError(f"{path} did not appear")
    time.sleep(0.2)


@pytest.mark.slow
def test_kill_and_resume_is_exact(reference_run, synth_tiny, tmp_path):
  """SIGTERM during start-up (exit 75 after saving step 1), SIGKILL after step 4, then the rest:
  the same parameters, losses and metrics as the uninterrupted run."""
  ref_dir, ref_results = reference_run
  workdir = tmp_path / "killed"
  args = ["train", f"--config={TINY}:{synth_tiny}", f"--workdir={workdir}"]
  proc = _cli(args)
  _wait_for(workdir / "checkpoints", proc)  # created once the SIGTERM handler is in place
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 75, err[-3000:]  # exit_codes.PREEMPTED: resumable
  assert "pyramid-fas train: preempted at step 1;" in err
  proc = _cli(args)
  _wait_for(workdir / "checkpoints" / "4", proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = _cli(args)
  _, err = done.communicate(timeout=600)
  assert done.returncode == 0, err[-3000:]
  assert "resumed from step" in err
  want, got = _params(ref_dir, 8), _params(workdir, 8)
  assert want.keys() == got.keys()
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  assert _losses(workdir)[8] == _losses(ref_dir)[8]
  results = json.loads((workdir / "results.json").read_text())
  for key in ("APCER", "BPCER", "ACER", "HTER", "AUC", "EER"):
    assert results["test"][key] == ref_results["test"][key], key


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(args, status=0):
  port = _free_port()
  procs = [_cli([*args, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                 f"--process_id={i}"], devices=2) for i in range(2)]
  errs = []
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == status, err[-3000:]
    errs.append(err)
  return errs


@pytest.mark.slow
def test_two_processes_equal_one_process(reference_run, synth_tiny, tmp_path):
  """Training: the same losses as one process while the two runs can only differ by float
  rounding (the all-reduce order). On this tiny model a rounding difference flips max-pool and
  ReLU ties, and SGD steps amplify it (measured on AMD EPYC, JAX 0.10.2): within 1e-7 at step 4,
  1e-6 at step 6, 6e-4 at step 8, so steps past 6 are not compared. (Step 4 was 1.7e-4 off while
  XLA:CPU fused YNNPACK dots with reductions, which computes wrong sharded gradients:
  conv_ops._CPU_OPTIONS.)
  Evaluation: two processes score the one-process run's checkpoint exactly as it did. Resume:
  two processes resume their own run; the one-process run's checkpoint is refused in one line
  (its data iterator position is saved per process)."""
  ref_dir, ref_results = reference_run
  config = f"--config={TINY}:{synth_tiny}"
  workdir = tmp_path / "two"
  for err in _two_processes(["train", config, f"--workdir={workdir}"]):
    assert "resumed from step" not in err
  want, got = _losses(ref_dir), _losses(workdir)
  assert want.keys() == got.keys()
  # The loss at step 4 is computed from the parameters after step 3.
  for step in (2, 4, 6):
    assert got[step] == pytest.approx(want[step], rel=1e-5), step
  assert want[8] != pytest.approx(want[2], rel=1e-3)  # the run did train
  for err in _two_processes(["train", config, f"--workdir={workdir}"]):
    assert "resumed from step 8" in err

  copy = tmp_path / "copy"
  shutil.copytree(ref_dir, copy)
  for err in _two_processes(["train", config, f"--workdir={copy}"], status=2):
    assert "was written by 1 JAX process(es), this run has 2" in err
    assert "Traceback" not in err
  (copy / "results.json").unlink()
  _two_processes(["evaluate", f"--workdir={copy}"])
  results = json.loads((copy / "results.json").read_text())
  for key in ("APCER", "BPCER", "ACER", "HTER", "AUC", "EER"):
    assert results["test"][key] == pytest.approx(ref_results["test"][key], abs=1e-9), key


def test_config_overrides_and_bad_keys(synth_tiny, tmp_path):
  p = _cli(["train", f"--config={TINY}:{synth_tiny}", f"--workdir={tmp_path}",
            "--config.optim.lerning_rate=0.1"])
  _, err = p.communicate(timeout=120)
  assert p.returncode != 0
  assert "lerning_rate" in err and "Traceback" not in err
  p = _cli(["train", f"--config={TINY}:{synth_tiny}", f"--workdir={tmp_path}",
            "--config.num_steps=2", "--config.optim.lr=0.5", "--config.eval.bootstrap=0"])
  _, err = p.communicate(timeout=300)
  assert p.returncode == 0, err[-3000:]
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["optim"]["lr"] == 0.5 and saved["num_steps"] == 2
  assert "bootstrap" not in json.loads((tmp_path / "results.json").read_text())["test"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(synth_tiny, tmp_path):
  config = load_config(TINY, synth_tiny)
  config.optim.lr = 1e30  # diverges within a few steps
  config.log_every_steps = 1
  config.checkpoint_every_steps = 1
  with pytest.raises(train.NonFiniteLossError, match="non-finite loss") as e:
    train.train_and_evaluate(config, tmp_path)
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert f"last good checkpoint is step {steps[-1] if steps else None}" in str(e.value)
  for step in steps:
    for k, v in _params(tmp_path, step).items():
      assert np.all(np.isfinite(v)), (step, k)


def test_init_from_starts_from_the_given_weights(synth_tiny, tmp_path):
  config = load_config(TINY, synth_tiny)
  source = models.build_model(config.model, nnx.Rngs(123))  # not the run's seed
  checkpoint.save_model(tmp_path / "init", source, config)
  config.init_from = str(tmp_path / "init")
  config.optim.lr = 0.0  # SGD with lr 0 (and its weight decay scaled by lr) leaves params alone
  config.num_steps = 1
  config.eval.bootstrap = 0
  train.train_and_evaluate(config, tmp_path / "run")
  got = _params(tmp_path / "run", 1)
  want = {k: np.asarray(v[...]) for k, v in models.flat_state(source).items()}
  params = [k for k in want if k.endswith(("kernel", "scale", "bias"))]
  assert params
  for k in params:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)
