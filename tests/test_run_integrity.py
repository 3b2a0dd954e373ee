"""Nothing a run wrote is overwritten or lost, and every checkpoint it writes is self-describing.

Each test does what a user did (the command where the issue is about a command) and checks the
exit code, the first line of the message and, where data was at stake, that nothing on disk
changed (every path, size, mtime and sha256). One tiny 8-step run is trained once for the
module; a test that changes it works on a copy.
"""

import hashlib
import json
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch_reference as ref
from flax import nnx

from pyramid_fas_jax import evaluation, models
from pyramid_fas_jax.evaluation import evaluator
from pyramid_fas_jax.experiment.demo import load_config
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.training import changes, checkpoint, train, train_checkpoint, train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"


def _cli(*args, timeout=600, popen=False):
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  cmd = [sys.executable, "-m", "pyramid_fas_jax.cli", *map(str, args)]
  if popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _message(stderr: str, prog: str) -> list[str]:
  """The command's own message (absl log lines above it are not part of it)."""
  lines = stderr.splitlines()
  first = next(i for i, line in enumerate(lines) if line.startswith(f"{prog}: "))
  return lines[first:]


def _tree(root) -> dict:
  """{path: (size, mtime_ns, sha256)} of every file under `root`, {path/: None} per directory."""
  out = {}
  for path in sorted(pathlib.Path(root).rglob("*")):
    rel = str(path.relative_to(root))
    if path.is_dir():
      out[rel + "/"] = None
    else:
      stat = path.stat()
      out[rel] = (stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
  return out


def _params(step_dir) -> dict:
  model, _ = checkpoint.load_model(step_dir)
  return {k: np.asarray(v[...]) for k, v in models.flat_state(model).items()}


def _truncate_array_file(step_dir: pathlib.Path) -> pathlib.Path:
  """Cut the largest array file of the step's model item in half, as a failed copy would."""
  files = [p for p in (step_dir / checkpoint.MODEL_ITEM).rglob("*")
           if p.is_file() and p.parent.name == "d"]
  victim = max(files, key=lambda p: p.stat().st_size)
  os.truncate(victim, victim.stat().st_size // 2)
  return victim


@pytest.fixture(scope="module")
def run(synth_tiny, tmp_path_factory):
  """A finished tiny run (checkpoints 4, 6, 8; best/8); tests only read it."""
  workdir = tmp_path_factory.mktemp("integrity") / "run"
  results = train.train_and_evaluate(load_config(TINY, synth_tiny), workdir)
  return workdir, results


@pytest.fixture
def run_copy(run, tmp_path):
  shutil.copytree(run[0], tmp_path / "run")
  return tmp_path / "run"


# Data overwritten or lost ---------------------------------------------------------------------


def test_evaluating_another_protocol_keeps_the_runs_results(run_copy, synth_tiny):
  before = _tree(run_copy)
  r = _cli("evaluate", f"--config={TINY}:{synth_tiny}", "--config.data.protocol=cross_attack/print",
           f"--workdir={run_copy}", timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  after = _tree(run_copy)
  assert {k: after[k] for k in before} == before  # every file of the run untouched
  home = run_copy / "eval" / "synth_fas" / "cross_attack" / "print"
  new = sorted(set(after) - set(before))
  assert all(k.startswith("eval/synth_fas/") for k in new), new
  assert {"results.json", "step_8.json", "scores/test_frames_step8.txt",
          "plots/roc.png"} <= {str(pathlib.Path(k).relative_to(home.relative_to(run_copy)))
                               for k in new if k.startswith(str(home.relative_to(run_copy)))}
  assert r.stdout.strip().splitlines()[-1].endswith(f"into {home}")
  # They are the other protocol's numbers: its test split holds bona fide and print only.
  test = evaluation.read_scores(home / "scores" / "test_frames_step8.txt")
  assert set(test.species) == {"live", "print"}
  assert json.loads((home / "results.json").read_text())["step"] == 8


def test_results_dir_is_the_run_for_its_own_data_only(run, synth_tiny, tmp_path):
  workdir, _ = run
  config = load_config(TINY, synth_tiny)
  assert evaluator.results_dir(config, workdir) == workdir
  config.data.data_dir = str(tmp_path)  # the same build elsewhere: still the run's own data
  assert evaluator.results_dir(config, workdir) == workdir
  config.data.builder_config = "small"
  assert evaluator.results_dir(config, workdir) == workdir / "eval" / "synth_fas@small" / "intra"
  assert evaluator.results_dir(config, tmp_path) == tmp_path  # no config.json: nobody's run


def test_import_weights_refuses_a_training_run(run_copy, tmp_path):
  before = _tree(run_copy)
  for output, kind in ((run_copy, "a training run's workdir"),
                       (run_copy / "checkpoints" / "8", "a training checkpoint step")):
    r = _cli("import-weights", "--format=official-cdcn", f"--input={tmp_path / 'w.npz'}",
             "--config=configs/cdcn_ps.py", f"--output={output}", "--overwrite")
    assert r.returncode == 2, r.stderr[-3000:]
    message = _message(r.stderr, "pyramid-fas import-weights")
    assert message[0].startswith(
        f"pyramid-fas import-weights: --output={output} is {kind}; "
        "a model checkpoint is never written into one, even with --overwrite")
    assert len(message) == 1 and "Traceback" not in r.stderr
  assert _tree(run_copy) == before


def test_import_weights_overwrites_only_when_asked(tmp_path):
  out = tmp_path / "cdcn"
  config = load_config(REPO / "configs" / "cdcn_ps.py")
  checkpoint.save_model(out, models.build_model(config.model, nnx.Rngs(0)), config)  # an import
  (out / "notes.txt").write_text("mine")
  weights = tmp_path / "w.npz"
  np.savez(weights, **ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=1))
  args = ["import-weights", "--format=official-cdcn", "--config=configs/cdcn_ps.py",
          f"--output={out}", f"--input={weights}"]
  before = _tree(out)
  r = _cli(*args)
  assert r.returncode == 2
  assert _message(r.stderr, "pyramid-fas import-weights") == [
      f"pyramid-fas import-weights: --output={out} exists and is not empty (config.json, model, "
      "notes.txt); choose a new directory, or pass --overwrite to replace its model/ and "
      "config.json"]
  assert _tree(out) == before
  r = _cli(*args, "--overwrite")
  assert r.returncode == 0, r.stderr[-3000:]
  assert "replacing its model/ and config.json: --overwrite" in r.stdout
  got = _params(out)["backbone/conv1/conv/kernel"]
  # The file's first conv, (O, I, kh, kw) -> (kh, kw, I, O).
  want = ref.random_state_dict(ref.cdcn_state_dict_shapes(), seed=1)["conv1.0.conv.weight"]
  np.testing.assert_array_equal(got, want.transpose(2, 3, 1, 0))
  assert (out / "notes.txt").read_text() == "mine"  # not ours: left alone


def test_check_model_output_cases(tmp_path):
  assert checkpoint.check_model_output(tmp_path / "new") is False
  assert checkpoint.check_model_output(tmp_path) is False  # empty
  (tmp_path / "f").write_text("x")
  with pytest.raises(checkpoint.CheckpointError, match="is a file"):
    checkpoint.check_model_output(tmp_path / "f")
  assert checkpoint.check_model_output(tmp_path, overwrite=True) is True


def test_resume_with_a_changed_config_is_refused(run_copy, synth_tiny):
  before = _tree(run_copy)
  r = _cli("train", f"--config={TINY}:{synth_tiny}", f"--workdir={run_copy}",
           "--config.batch_size=4", "--config.model.scales=(2,1)", "--config.optim.name=adam",
           "--config.log_every_steps=1")
  assert r.returncode == 2, r.stderr[-3000:]
  message = _message(r.stderr, "pyramid-fas train")
  assert message[0] == (
      f"pyramid-fas train: --workdir={run_copy} holds checkpoints of another config: 3 field(s) "
      "changed (batch_size, model.scales, optim.name); train in a new --workdir, or rerun with "
      f"the run's own config ({run_copy / 'config.json'}), or pass "
      "--allow_config_change=batch_size,model.scales,optim.name to resume with the change anyway")
  assert message[1:] == ["  batch_size: 8 -> 4", "  model.scales: [4, 2, 1] -> [2, 1]",
                         '  optim.name: "sgd" -> "adam"']
  assert "Traceback" not in r.stderr
  assert _tree(run_copy) == before


def test_check_resume_lets_harmless_and_allowed_changes_through(run, synth_tiny, tmp_path):
  workdir, _ = run
  config = load_config(TINY, synth_tiny)
  config.eval.threshold = "test_eer"
  config.num_steps = 100
  config.data.data_dir = str(tmp_path)
  changes.check_resume(config, workdir)  # harmless only
  config.optim.lr = 0.5
  with pytest.raises(changes.ConfigChangedError, match=r"1 field\(s\) changed \(optim.lr\)"):
    changes.check_resume(config, workdir)
  changes.check_resume(config, workdir, allow=["optim.*"])
  config.data.num_workers = 2  # the grain state depends on it: never harmless
  with pytest.raises(changes.ConfigChangedError, match=r"\(data.num_workers\)"):
    changes.check_resume(config, workdir, allow=["optim.*"])


def test_fields_added_since_the_run_started_do_not_block_a_resume(run_copy, synth_tiny):
  stored = json.loads((run_copy / "config.json").read_text())
  del stored["eval"]["failure_to_acquire"]  # as a config.json written before the field existed
  (run_copy / "config.json").write_text(json.dumps(stored))
  changes.check_resume(load_config(TINY, synth_tiny), run_copy)


def test_a_harmless_change_keeps_the_previous_config(run_copy, synth_tiny):
  old = (run_copy / "config.json").read_text()
  metrics = (run_copy / "metrics.jsonl").read_text()
  config = load_config(TINY, synth_tiny)
  config.log_every_steps = 1
  config.eval.bootstrap = 0
  results = train.train_and_evaluate(config, run_copy)  # finished: evaluated again, not trained
  assert results["step"] == 8 and "bootstrap" not in results["test"]
  assert (run_copy / "metrics.jsonl").read_text() == metrics
  assert json.loads((run_copy / "config.json").read_text())["log_every_steps"] == 1
  (kept,) = run_copy.glob("config.*.json")
  assert kept.read_text() == old


def test_unreadable_latest_checkpoints_fall_back_to_the_newest_readable(run, run_copy, synth_tiny,
                                                                       caplog):
  workdir, results = run
  _truncate_array_file(run_copy / "checkpoints" / "8")
  (run_copy / "checkpoints" / "6" / "meta" / "metadata").write_text("")
  corrupt = {s: _tree(run_copy / "checkpoints" / s) for s in ("6", "8")}
  with caplog.at_level(logging.WARNING):
    again = train.train_and_evaluate(load_config(TINY, synth_tiny), run_copy)
  warnings = [r.getMessage() for r in caplog.records if "skipping checkpoint" in r.getMessage()]
  assert len(warnings) == 2
  assert warnings[0].startswith(f"skipping checkpoint step 8 ({run_copy / 'checkpoints' / '8'}): "
                                "ValueError: OUT_OF_RANGE: Error reading")
  assert warnings[1] == (f"skipping checkpoint step 6 ({run_copy / 'checkpoints' / '6'}): "
                         "JSONDecodeError: Expecting value: line 1 column 1 (char 0)")
  # Moved aside, byte for byte, never deleted; the run went on from step 4 and wrote 6 and 8
  # again, exactly as the uninterrupted run did.
  for step, tree in corrupt.items():
    assert _tree(run_copy / "unreadable_checkpoints" / step) == tree
  assert sorted(p.name for p in (run_copy / "checkpoints").iterdir()) == ["4", "6", "8"]
  assert [p.name for p in (run_copy / "best").iterdir()] == ["8"]
  want, got = _params(workdir / "checkpoints" / "8"), _params(run_copy / "checkpoints" / "8")
  for k in want:
    np.testing.assert_array_equal(got[k], want[k], err_msg=k)
  assert again["test"]["ACER"] == results["test"]["ACER"]


def test_no_readable_checkpoint_stops_with_one_line(run_copy, synth_tiny):
  for step in ("4", "6", "8"):
    _truncate_array_file(run_copy / "checkpoints" / step)
  before = _tree(run_copy)
  r = _cli("train", f"--config={TINY}:{synth_tiny}", f"--workdir={run_copy}")
  assert r.returncode == 2, r.stderr[-3000:]
  message = _message(r.stderr, "pyramid-fas train")
  assert len(message) == 1 and "Traceback" not in r.stderr
  assert message[0].startswith(
      f"pyramid-fas train: no readable checkpoint in {run_copy / 'checkpoints'}: step 8: "
      "ValueError: OUT_OF_RANGE")
  assert "; step 6: ValueError" in message[0] and "; step 4: ValueError" in message[0]
  assert _tree(run_copy) == before  # nothing moved, nothing written


def test_evaluate_skips_an_unreadable_latest_checkpoint(run_copy, synth_tiny, caplog):
  _truncate_array_file(run_copy / "checkpoints" / "8")
  with caplog.at_level(logging.WARNING):
    model, step = checkpoint.restore_checkpoint(load_config(TINY, synth_tiny), run_copy)
  assert step == 6
  assert any(r.getMessage().startswith("skipping checkpoint step 8") for r in caplog.records)
  want = _params(run_copy / "checkpoints" / "6")
  for k, v in models.flat_state(model).items():
    np.testing.assert_array_equal(np.asarray(v[...]), want[k], err_msg=k)
  _truncate_array_file(run_copy / "best" / "8")
  with pytest.raises(checkpoint.CheckpointError, match=r"no readable checkpoint in .*best: step 8"):
    checkpoint.restore_checkpoint(load_config(TINY, synth_tiny), run_copy, best=True)


def test_sigterm_saves_and_exits_75(synth_tiny, tmp_path):
  workdir = tmp_path / "run"
  proc = _cli("train", f"--config={TINY}:{synth_tiny}", f"--workdir={workdir}", popen=True)
  start = time.time()
  # checkpoints/ appears once training has started up (the SIGTERM handler is in place by then).
  while not (workdir / "checkpoints").exists():
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() - start < 300
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=600)
  assert proc.returncode == 75, err[-3000:]
  assert _message(err, "pyramid-fas train") == [
      f"pyramid-fas train: preempted at step 1; the checkpoint is saved in {workdir}; rerun the "
      "same command to resume"]
  assert [p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()] == ["1"]
  assert not (workdir / "results.json").exists()  # not finished, so not evaluated


# Every checkpoint is self-describing ----------------------------------------------------------


def test_predict_takes_a_best_checkpoint_without_config(run, tmp_path):
  workdir, _ = run
  x = np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32)
  np.save(tmp_path / "x.npy", x)
  r = _cli("predict", f"--checkpoint={workdir / 'best' / '8'}", f"--input={tmp_path / 'x.npy'}",
           f"--output={tmp_path / 'y.npz'}")
  assert r.returncode == 0, r.stderr[-3000:]
  # The model the run's own config builds, restored from that step, scores the same.
  model = models.build_model(checkpoint.load_config(workdir).model, nnx.Rngs(0))
  checkpoint.restore_into(model, workdir / "best" / "8")
  model.eval()
  want = inference.predict(model, x, 3)
  got = np.load(tmp_path / "y.npz")
  np.testing.assert_allclose(got["score"], want["score"], rtol=1e-6, atol=1e-6)


def test_evaluate_takes_a_step_directory(run_copy, run):
  _, results = run
  r = _cli("evaluate", f"--checkpoint={run_copy / 'checkpoints' / '8'}")
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.strip().splitlines()[-1].endswith(f"into {run_copy}")
  again = json.loads((run_copy / "results.json").read_text())
  assert again["step"] == 8 and again["test"]["ACER"] == results["test"]["ACER"]


def test_load_config_finds_every_kind_of_checkpoint(run, tmp_path):
  workdir, _ = run
  want = json.loads((workdir / "config.json").read_text())
  for step_dir in (workdir / "checkpoints" / "6", workdir / "best" / "8"):
    assert checkpoint.config_json(checkpoint.load_config(step_dir)) == want
  # A step written before steps held their config: the run's config.json, two levels up.
  old = tmp_path / "old" / "checkpoints" / "6"
  shutil.copytree(workdir / "checkpoints" / "6", old)
  shutil.rmtree(old / "config")
  (tmp_path / "old" / "config.json").write_text(json.dumps(want))
  assert checkpoint.config_json(checkpoint.load_config(old)) == want
  (tmp_path / "old" / "config.json").unlink()
  with pytest.raises(checkpoint.CheckpointError, match="holds no config.json and no config item"):
    checkpoint.load_config(old)
  (old.parent.parent / "config.json").write_text("")
  with pytest.raises(checkpoint.CheckpointError, match="is not valid JSON"):
    checkpoint.load_config(old)



def test_a_config_written_before_its_fields_existed_is_migrated_at_load(tmp_path):
  """Every field added since (checkpoint.MIGRATED) reads as what the code did before it; a
  current config reads back unchanged, its values kept even where they are not the defaults."""
  current = checkpoint.config_json(load_config(TINY, "unused"))
  current["model"].update(spp_pool="max", conv_impl="xla", loss_reduction="sum")
  current["eval"].update(video_agg=None, failure_to_acquire="exclude", test_while_training=False)
  current.update(dtype="bfloat16", init_from="imagenet")
  old = json.loads(json.dumps(current))
  for field, _ in checkpoint.MIGRATED:
    *sections, name = field.split(".")
    node = old
    for section in sections:
      node = node[section]
    del node[name]
  want = {"model.spp_pool": "avg", "model.conv_impl": "auto", "model.loss_reduction": "mean",
          "dtype": "float32", "init_from": "", "eval.video_agg": "mean",
          "eval.failure_to_acquire": "reject", "eval.test_while_training": True}
  assert dict(checkpoint.MIGRATED) == want
  kept = {k: changes.flatten(current)[k] for k in want}
  for name, tree, expected in (("old", old, want), ("current", current, kept)):
    (tmp_path / name).mkdir()
    (tmp_path / name / "config.json").write_text(json.dumps(tree))
    flat = changes.flatten(checkpoint.config_json(checkpoint.load_config(tmp_path / name)))
    assert {k: flat[k] for k in want} == expected
    assert changes.flatten(changes.stored_config(tmp_path / name)) == flat  # what a resume reads
  assert checkpoint.config_json(checkpoint.load_config(tmp_path / "current")) == current


def test_resume_and_evaluation_choose_the_step_with_one_function(tmp_path, monkeypatch):
  """A resumed run and `evaluate` pick their checkpoint step by checkpoint.restore_newest, so an
  unreadable step is skipped alike (test_unreadable_latest_checkpoints_fall_back_to_the_newest_
  readable and test_evaluate_skips_an_unreadable_latest_checkpoint check each path's result)."""
  roots = []

  class Chosen(Exception):
    pass

  def restore_newest(root, *args, **kwargs):
    del args, kwargs
    roots.append(pathlib.Path(root))
    raise Chosen

  monkeypatch.setattr(checkpoint, "restore_newest", restore_newest)
  (tmp_path / "checkpoints" / "3").mkdir(parents=True)
  with pytest.raises(Chosen):
    checkpoint.restore_checkpoint(None, tmp_path)
  ckpt = train_checkpoint.TrainCheckpointer(tmp_path)
  with pytest.raises(Chosen):
    ckpt.restore_latest(None, None, None)
  ckpt.close()
  assert roots == [tmp_path / "checkpoints"] * 2


def test_init_from_a_training_step(run):
  workdir, _ = run
  config = checkpoint.load_config(workdir)
  config.init_from = str(workdir / "checkpoints" / "6")
  model, _ = train_step.create_model_and_optimizer(config)
  want = _params(workdir / "checkpoints" / "6")
  for k, v in models.flat_state(model).items():
    np.testing.assert_array_equal(np.asarray(v[...]), want[k], err_msg=k)


def _filled(cfg, seed):
  """A model of `cfg` with every variable drawn from numpy (no initialiser is compiled): a
  stand-in for a trained one whose every value differs from what build_model would draw."""
  model = nnx.eval_shape(lambda: models.build_model(cfg.model, nnx.Rngs(0)))
  rng = np.random.default_rng(seed)
  for var in models.flat_state(model).values():
    value = rng.standard_normal(var.shape).astype(var.dtype)
    # Running variances must stay positive for the forward pass to be finite.
    var.set_value(np.abs(value) + 0.5 if isinstance(var, nnx.BatchStat) else value)
  model.eval()
  return model


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO / "configs").glob("*.py")))
def test_load_model_gives_back_the_saved_model_of_every_config(name, tmp_path):
  """load_model builds the model abstractly and fills it from the checkpoint: every variable,
  and so every output, is the saved model's, for every backbone and head a config uses."""
  config = load_config(REPO / "configs" / f"{name}.py", "synth_fas/intra,runlocal")
  saved = _filled(config, seed=7)
  directory = checkpoint.save_model(tmp_path / "model", saved, config)
  loaded, _ = checkpoint.load_model(directory)
  want, have = models.flat_state(saved), models.flat_state(loaded)
  assert set(have) == set(want)
  for key in want:
    assert type(have[key]) is type(want[key]), key
    np.testing.assert_array_equal(np.asarray(have[key].get_value()),
                                  np.asarray(want[key].get_value()), key)
  images = np.random.default_rng(1).integers(0, 256, (2, config.input.size, config.input.size, 3),
                                             dtype=np.uint8)
  a = inference.predict(saved, images, batch_size=2, input_params=config.input)
  b = inference.predict(loaded, images, batch_size=2, input_params=config.input)
  assert set(a) == set(b) and np.isfinite(a["score"]).all()
  for key in a:
    np.testing.assert_array_equal(b[key], a[key], key)


def test_load_model_refuses_a_checkpoint_that_leaves_variables_unset(run, monkeypatch):
  workdir, _ = run
  # A restore that fills nothing (as one that skipped a kind of variable would, in part).
  monkeypatch.setattr(checkpoint, "restore_into", lambda model, directory: None)
  with pytest.raises(checkpoint.CheckpointError, match=r"left .*kernel.* of the model unset"):
    checkpoint.load_model(workdir / "best" / "8")
