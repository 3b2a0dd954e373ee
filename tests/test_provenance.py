"""Provenance (files/provenance.py): every artefact names the model (weights fingerprint,
checkpoint, step), the scoring config and the data it came from, and every reader checks what it
combines: export's threshold, score's dev and test, the runtime's model.json against the ONNX it
was sealed into, predict's --config against the checkpoint's; and no command writes over an
artefact of another producer (evaluate's workdir, export's, predict's, score's and preprocess's
outputs) unless --overwrite. Table-driven over the commands."""

import json
import pathlib

import numpy as np
import pytest
import tiny_train_config
from flax import nnx

from pyramid_fas_jax import cli, models
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.evaluation import evaluator, scorefile
from pyramid_fas_jax.experiment import checks
from pyramid_fas_jax.files import cache, provenance
from pyramid_fas_jax.training import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


def _model(seed):
  model = models.build_model(tiny_train_config.get_config(None).model, nnx.Rngs(seed))
  model.eval()
  return model


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
  """Two checkpoints of the tiny config with different weights: {'a': dir, 'b': dir}."""
  root = tmp_path_factory.mktemp("ckpts")
  config = tiny_train_config.get_config(None)
  return {name: checkpoint.save_model(root / name, _model(seed), config)
          for name, seed in (("a", 0), ("b", 1))}


# --- the record and its checks -------------------------------------------------------------


def test_fingerprint_is_of_the_weights_not_of_the_object(ckpts):
  a, _ = checkpoint.load_model(ckpts["a"])
  again, _ = checkpoint.load_model(ckpts["a"])
  b, _ = checkpoint.load_model(ckpts["b"])
  fp = models.fingerprint(a)
  assert len(fp) == 16 and fp == models.fingerprint(again) == models.fingerprint(_model(0))
  assert fp != models.fingerprint(b)
  # One running statistic changed by one ulp is another model.
  name, var = next((k, v) for k, v in models.flat_state(again).items()
                   if isinstance(v, nnx.BatchStat))
  var.value = np.nextafter(np.asarray(var.value), np.inf).astype(np.float32)
  assert models.fingerprint(again) != fp, name


def test_scoring_fields_leave_out_what_changes_no_score():
  config = tiny_train_config.get_config(None)
  fields = provenance.scoring_fields(config)
  assert fields["input.eval_scale"] == config.input.eval_scale
  assert fields["model.scales"] == [4, 2, 1]
  assert not set(provenance.IGNORED) & set(fields)
  assert not any(k.startswith(("optim.", "data.", "aug.")) for k in fields)
  with config.unlocked():
    config.eval.bootstrap, config.model.conv_impl = 7, "xla"   # intervals, how convs compute
  assert provenance.scoring_fields(config) == fields
  with config.unlocked():
    config.input.eval_scale = 1.7
  changed = provenance.scoring_fields(config)
  assert provenance.differing(fields, changed) == ["input.eval_scale"]
  assert provenance.digest(fields) != provenance.digest(changed)


def _prov(fp, **fields):
  base = {"input.size": 32, "input.eval_scale": 1.3}
  return provenance.record(fingerprint=fp, config=None) | {
      "config": {"fields": base | fields, "digest": "x"}}


@pytest.mark.parametrize("theirs,match", [
    (None, "records no model provenance"),
    ({"package": "0.1.0"}, "records no model provenance"),
    (_prov("bbbb"), "comes from a model, fingerprint bbbb, not a model, fingerprint aaaa"),
    (_prov("aaaa", **{"input.eval_scale": 1.0}), r"input.eval_scale: 1.0 vs 1.3"),
])
def test_require_same_model_names_what_differs(theirs, match):
  with pytest.raises(provenance.ProvenanceError, match=match):
    provenance.require_same_model(theirs, _prov("aaaa"), "--results=r.json", "evaluate it")
  provenance.require_same_model(_prov("aaaa"), _prov("aaaa"), "r", "")


@pytest.mark.parametrize("suffix", [".json", ".npz", ".txt"])
def test_check_replace_per_kind_of_file(tmp_path, suffix):
  path = tmp_path / f"out{suffix}"
  mine, other = {"owner": "predict of model a on x"}, {"owner": "predict of model b on x"}

  def write(prov):
    if suffix == ".json":
      path.write_text(json.dumps({"value": 1, provenance.KEY: prov}))
    elif suffix == ".npz":
      np.savez(path, score=np.zeros(2), **{provenance.KEY: provenance.as_npz_entry(prov)})
    else:
      path.write_text(provenance.header_line(prov) + "\n0.5 1\n")

  assert provenance.check_replace(path, mine, "output", False) is False   # nothing there
  write(mine)
  assert provenance.read(path) == mine
  assert provenance.check_replace(path, mine, "output", False) is True
  write(other)
  with pytest.raises(provenance.ProvenanceError,
                     match=f"--output={path} exists and holds the output of predict of model b"):
    provenance.check_replace(path, mine, "output", False)
  assert provenance.check_replace(path, mine, "output", True) is True
  path.write_bytes(b"the user's own file")
  with pytest.raises(provenance.ProvenanceError, match="was not written by pyramid-fas"):
    provenance.check_replace(path, mine, "output", False)


# --- evaluate: a workdir's results belong to their model -----------------------------------


def _results(directory, prov):
  directory.mkdir(parents=True, exist_ok=True)
  (directory / "results.json").write_text(json.dumps({"test": {}, provenance.KEY: prov}))


def test_a_training_runs_results_belong_to_its_own_checkpoints(tmp_path):
  run = tmp_path / "run"
  (run / "checkpoints" / "8").mkdir(parents=True)
  prov = _prov("aaaa")
  evaluator.claim(run, run / "checkpoints" / "8", prov)
  evaluator.claim(run, run / "best" / "4", prov)
  for foreign in (tmp_path / "other" / "best" / "4", tmp_path / "imported"):
    for overwrite in (False, True):   # never, not even with --overwrite
      with pytest.raises(provenance.ProvenanceError,
                         match=f"--workdir={run} is a training run: .* {foreign} is not one"):
        evaluator.claim(run, foreign, prov, overwrite)


def test_another_models_results_are_refused_or_cleared_never_mixed(tmp_path):
  out = tmp_path / "out"
  _results(out, _prov("aaaa"))
  _results(out / "eval" / "oulu_npu" / "1", _prov("aaaa"))
  for name in ("scores", "plots"):
    (out / name).mkdir()
    (out / name / "x").write_text("x")
  (out / "config.json").write_text("{}")
  (out / "step_3.json").write_text("{}")
  (out / "notes.txt").write_text("mine")
  evaluator.claim(out, tmp_path / "ckpt_a", _prov("aaaa"))   # the same model: fine
  with pytest.raises(provenance.ProvenanceError,
                     match=f"--workdir={out} holds the results of a model, fingerprint aaaa"):
    evaluator.claim(out, tmp_path / "ckpt_b", _prov("bbbb"))
  assert (out / "results.json").is_file()
  evaluator.claim(out, tmp_path / "ckpt_b", _prov("bbbb"), overwrite=True)
  assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]   # what it did not write stays


def test_train_refuses_a_directory_holding_an_evaluation(tmp_path):
  _results(tmp_path / "evaluated", _prov("aaaa"))
  problem = checks.foreign_results_problem(tmp_path / "evaluated")
  assert problem.startswith(f"--workdir={tmp_path / 'evaluated'}: holds the evaluation of a "
                            "model, fingerprint aaaa")
  run = tmp_path / "run"
  _results(run, _prov("aaaa"))
  (run / "checkpoints").mkdir()
  assert checks.foreign_results_problem(run) is None
  assert checks.foreign_results_problem(tmp_path / "new") is None


# --- export and the runtime ------------------------------------------------------------------

ort = pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")
pytest.importorskip("jax2onnx", reason="the `export` extra is not installed")

from pyramid_fas_jax.deploy import export as export_lib  # noqa: E402
from pyramid_fas_jax.deploy import runtime  # noqa: E402


@pytest.fixture(scope="module")
def exports(ckpts, tmp_path_factory):
  root = tmp_path_factory.mktemp("exports")
  for name in ckpts:
    export_lib.export(ckpts[name], "onnx", root / name, threshold=0.25)
  return root


def _edit(directory, field, value):
  meta = json.loads((directory / "model.json").read_text())
  node = meta
  *parents, last = field.split(".")
  for key in parents:
    node = node[key]
  node[last] = value
  (directory / "model.json").write_text(json.dumps(meta))


def _copy(src, dst):
  dst.mkdir()
  for f in src.iterdir():
    (dst / f.name).write_bytes(f.read_bytes())
  return dst


def test_the_export_records_its_model(ckpts, exports):
  meta = json.loads((exports / "a" / "model.json").read_text())
  model, config = checkpoint.load_model(ckpts["a"])
  prov = meta[provenance.KEY]
  assert prov["model"]["fingerprint"] == models.fingerprint(model)
  assert prov["model"]["checkpoint"] == str(ckpts["a"])
  assert prov["config"]["fields"] == provenance.scoring_fields(config)
  assert meta["file_digest"] == cache.sha256(exports / "a" / "model.onnx")
  assert runtime.Model(exports / "a").meta == meta


@pytest.mark.parametrize("field,value", [
    ("input.mean", [0.0, 0.0, 0.0]), ("input.std", [0.5, 0.5, 0.5]), ("threshold.value", 0.9),
    ("face_crop.eval_scale", 1.7), ("video_aggregation", "median"),
    ("provenance.model.fingerprint", "0000000000000000")])
def test_the_runtime_refuses_an_edited_model_json(exports, tmp_path, field, value):
  edited = _copy(exports / "a", tmp_path / "edited")
  _edit(edited, field, value)
  with pytest.raises(runtime.ModelFileError,
                     match=f"model.json: {field} differ from what the export wrote"):
    runtime.Model(edited)


def test_the_runtime_refuses_a_swapped_or_unsealed_model(exports, tmp_path):
  swapped = _copy(exports / "a", tmp_path / "swapped")
  (swapped / "model.onnx").write_bytes((exports / "b" / "model.onnx").read_bytes())
  with pytest.raises(runtime.ModelFileError, match="not the file model.json was exported with"):
    runtime.Model(swapped)
  unsealed = _copy(exports / "a", tmp_path / "unsealed")
  _edit(unsealed, "file_digest", None)
  with pytest.raises(runtime.ModelFileError, match="no field file_digest"):
    runtime.Model(unsealed)


def test_a_threshold_only_from_results_of_the_exported_model(ckpts, tmp_path):
  model, config = checkpoint.load_model(ckpts["a"])
  mine = export_lib.provenance_of(ckpts["a"], model, config)
  other_model, _ = checkpoint.load_model(ckpts["b"])
  cases = {
      "same": (mine, None),
      "other model": (export_lib.provenance_of(ckpts["b"], other_model, config), "comes from"),
      "other settings": (mine | {"config": {"fields": mine["config"]["fields"]
                                             | {"input.eval_scale": 9.0}}},
                         "input.eval_scale: 9.0 vs"),
      "no provenance": (None, "records no model provenance"),
  }
  for name, (prov, error) in cases.items():
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"test": {"threshold": 0.375, "threshold_source": "dev_eer"},
                                provenance.KEY: prov}))
    if error is None:
      assert export_lib.choose_threshold(ckpts["a"], mine, results=path)[0] == 0.375
    else:
      with pytest.raises(provenance.ProvenanceError, match=error):
        export_lib.choose_threshold(ckpts["a"], mine, results=path)
  # --threshold needs no results.
  assert export_lib.choose_threshold(ckpts["a"], mine, threshold=0.7)[0] == 0.7


# --- every command: foreign outputs, mixed inputs (in process, through cli.main) ------------


def _run(capsys, prog, *args):
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", prog, *map(str, args)])
  captured = capsys.readouterr()
  return e.value.code or 0, captured.out, captured.err


@pytest.fixture
def scores(tmp_path, ckpts):
  """Score files of models a and b (with provenance) and one without any."""
  rng = np.random.default_rng(0)
  made = {}
  for name, fp in (("a", "aaaa"), ("b", "bbbb"), ("plain", None)):
    for split in ("dev", "test"):
      labels = np.arange(20) % 2
      s = scorefile.ScoreSet.from_arrays(rng.uniform(size=20) + labels, labels)
      path = tmp_path / f"{name}_{split}.txt"
      scorefile.write_scores(path, s, None if fp is None else
                             _prov(fp) | {"data": {"split": split}})
      made[name, split] = path
  return made


def test_score_refuses_dev_and_test_of_two_models(capsys, scores, tmp_path):
  code, _, err = _run(capsys, "score", f"--dev={scores['a', 'dev']}",
                      f"--test={scores['b', 'test']}", "--bootstrap=0")
  assert code == exit_codes.USAGE and len(err.splitlines()) == 1, err
  assert err.startswith(f"pyramid-fas score: --dev={scores['a', 'dev']} comes from a model, "
                        "fingerprint aaaa, not a model, fingerprint bbbb; dev and test"), err
  # One model, but dev of one protocol and test of another.
  other = tmp_path / "other_protocol.txt"
  labels = np.arange(20) % 2
  scorefile.write_scores(other, scorefile.ScoreSet.from_arrays(labels * 0.5 + 0.2, labels),
                         _prov("aaaa") | {"data": {"protocol": "2", "split": "test"}})
  code, _, err = _run(capsys, "score", f"--dev={scores['a', 'dev']}", f"--test={other}",
                      "--bootstrap=0")
  assert code == exit_codes.USAGE and "must be the two splits of one protocol" in err, err
  out = tmp_path / "r.json"
  code, _, err = _run(capsys, "score", f"--dev={scores['a', 'dev']}",
                      f"--test={scores['a', 'test']}", "--bootstrap=0", f"--json={out}")
  assert code == 0, err
  recorded = json.loads(out.read_text())[provenance.KEY]["score_files"]
  assert provenance.fingerprint_of(recorded["dev"][provenance.KEY]) == "aaaa"
  assert recorded["test"]["path"] == str(scores["a", "test"])


# (command, arguments with {t} for the test's folder and {a} for checkpoint a, the output,
# how to lay a foreign artefact there).
def _foreign_file(path):
  path.write_bytes(b"someone else's file")


def _foreign_npz(path):
  np.savez(path, score=np.ones(1),
           **{provenance.KEY: provenance.as_npz_entry({"owner": "predict of model b on y"})})


def _foreign_export(path):
  path.mkdir()
  (path / "model.json").write_text(json.dumps({provenance.KEY: {"owner": "export of model b"}}))


def _foreign_crops(path):
  path.mkdir()
  (path / "frames.json").write_text(json.dumps({provenance.KEY: {"owner": "preprocess of z"}}))


FOREIGN = [
    ("predict", ["--checkpoint={a}", "--input={t}/x.npy", "--output={t}/out.npz"],
     "out.npz", _foreign_file),
    ("predict", ["--checkpoint={a}", "--input={t}/x.npy", "--output={t}/out.npz"],
     "out.npz", _foreign_npz),
    ("score", ["--test={t}/plain_test.txt", "--threshold=test_eer", "--bootstrap=0",
               "--json={t}/out.json"],
     "out.json", _foreign_file),
    ("export", ["--checkpoint={a}", "--threshold=0.5", "--output={t}/out"], "out",
     _foreign_export),
    ("preprocess", ["--input={t}/face.png", "--output={t}/out"], "out", _foreign_crops),
]


@pytest.mark.parametrize("prog,args,target,lay", FOREIGN,
                         ids=[f"{c[0]}-{c[3].__name__[9:]}" for c in FOREIGN])
def test_a_foreign_output_is_refused_then_replaced_with_overwrite(capsys, tmp_path, ckpts,
                                                                  scores, prog, args, target,
                                                                  lay):
  size = tiny_train_config.get_config(None).input.size
  np.save(tmp_path / "x.npy", np.full((2, size, size, 3), -0.5, np.float32))
  if prog == "preprocess":
    import cv2
    from skimage import data
    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
  path = tmp_path / target
  lay(path)
  before = {p: p.read_bytes() for p in [path, *path.rglob("*")] if p.is_file()}
  argv = [a.format(t=tmp_path, a=ckpts["a"]) for a in args]
  code, _, err = _run(capsys, prog, *argv)
  assert code == exit_codes.USAGE, err
  assert len(err.splitlines()) == 1 and err.startswith(f"pyramid-fas {prog}: "), err
  assert str(path) in err and "--overwrite" in err, err
  assert {p: p.read_bytes() for p in before} == before
  code, out, err = _run(capsys, prog, *argv, "--overwrite")
  assert code == 0, err
  written = path / ("model.json" if prog == "export" else "frames.json") if path.is_dir() else path
  prov = provenance.read(written)
  assert prov["package"] and prov.get("owner"), prov
  code, _, err = _run(capsys, prog, *argv)   # its own output: replaced without --overwrite
  assert code == 0, err


def test_predict_records_its_model_and_refuses_a_changed_config(capsys, tmp_path, ckpts):
  size = tiny_train_config.get_config(None).input.size
  np.save(tmp_path / "x.npy", np.full((2, size, size, 3), -0.5, np.float32))
  out = tmp_path / "p.npz"
  base = [f"--checkpoint={ckpts['a']}", f"--input={tmp_path / 'x.npy'}", f"--output={out}"]
  code, _, err = _run(capsys, "predict", *base)
  assert code == 0, err
  prov = provenance.read(out)
  model, _ = checkpoint.load_model(ckpts["a"])
  assert prov["model"]["fingerprint"] == models.fingerprint(model)
  assert prov["input"] == str(tmp_path / "x.npy")
  changed = [f"--config={TINY}", "--config.input.eval_scale=1.7", "--config.eval.bootstrap=3"]
  code, _, err = _run(capsys, "predict", *base, *changed)
  assert code == exit_codes.USAGE and len(err.splitlines()) == 1, err
  assert "in input.eval_scale, so the model would score differently" in err, err
  assert "bootstrap" not in err    # changes no prediction
  code, _, err = _run(capsys, "predict", *base, *changed, "--allow_config_change")
  assert code == 0, err
  assert provenance.read(out)["config_changed_from_checkpoint"] == ["input.eval_scale"]
