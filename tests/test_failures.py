"""Every failure a user can act on is one line on stderr naming the file or flag and what to do,
with its documented exit code (commands/exit_codes.py), no traceback, and nothing written where
nothing should be: usage errors before JAX says anything, a dataset that is not built, a
corrupt record file, a broken export, a full disk, Ctrl-C. All of them go through one place,
cli.py's `_run`; the tests drive the commands, in this process where a fresh one adds nothing
and in a fresh one where only it shows (start-up logging, signals, resource limits).
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tiny_train_config
from flax import nnx

from pyramid_fas_jax import cli, models
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.training import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


def run(capsys, *args):
  """(exit code, stderr) of `pyramid-fas *args` in this process."""
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", *map(str, args)])
  return e.value.code or 0, capsys.readouterr().err


def fresh(*args, popen=False, limit_bytes=None, **kw):
  """`pyramid-fas *args` in a new process (and session, so a signal can go to its group, as
  Ctrl-C's does); `limit_bytes` caps the size of any file it writes (RLIMIT_FSIZE)."""
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  cmd = [sys.executable, "-m", "pyramid_fas_jax.cli", *map(str, args)]
  if limit_bytes is not None:  # set by the child itself: no preexec_fn fork of this process
    cmd[1:3] = ["-c", "import resource, runpy, sys; "
                f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); "
                "sys.argv[0] = 'pyramid-fas'; runpy.run_module('pyramid_fas_jax.cli', "
                "run_name='__main__')"]
  if popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                        **kw)


def one_line(code, err, want_code, prog, *named):
  """stderr is exactly one line, `prog: ...`, naming every string of `named`."""
  assert code == want_code, err[-3000:]
  assert "Traceback" not in err, err[-3000:]
  lines = err.splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"{prog}: "), err[-3000:]
  for name in named:
    assert str(name) in lines[0], (name, lines[0])
  return lines[0]


def listing(root) -> list[str]:
  root = pathlib.Path(root)
  return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  """An untrained tiny model checkpoint with its config (as import-weights writes one)."""
  config = tiny_train_config.get_config(None)
  model = models.build_model(config.model, nnx.Rngs(0))
  return checkpoint.save_model(tmp_path_factory.mktemp("ckpt") / "model", model, config)


# --- usage errors: one line, before JAX's start-up logging -------------------------------------

@pytest.mark.parametrize("command,flag", [
    ("train", "--config.eval.video_agg=max"),
    ("evaluate", "--config.eval.video_agg=max"),
    ("demo", "--workdir"),
])
def test_a_usage_error_is_the_only_line_on_stderr(tmp_path, command, flag):
  workdir = tmp_path / "run"
  if command == "demo":  # demo's config is fixed; its one input is the workdir
    (tmp_path / "file").write_text("")
    args = [f"--workdir={tmp_path / 'file'}"]
  else:
    if command == "evaluate":
      workdir.mkdir()
    args = [f"--config={TINY}:{tmp_path}", f"--workdir={workdir}", flag]
  done = fresh(command, *args)
  one_line(done.returncode, done.stderr, exit_codes.USAGE, f"pyramid-fas {command}", flag)
  assert listing(tmp_path) == (["run"] if command == "evaluate" else
                               ["file"] if command == "demo" else [])


# --- a dataset that is not built -----------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "evaluate --workdir", "evaluate --checkpoint"])
def test_a_dataset_that_is_not_built_is_named_with_its_build_command(capsys, tmp_path,
                                                                    model_dir, command):
  # A real dataset: SynthFAS would be built on first use (tests/test_first_use.py).
  missing, out = tmp_path / "no_data", tmp_path / "out"
  args = [f"--config={TINY}:{missing}", "--config.data.name=casia_mfsd",
          "--config.data.protocol=official", "--config.data.builder_config=default",
          "--config.eval.threshold=test_eer",
          f"--workdir={out}"]
  if command == "evaluate --workdir":
    out.mkdir()  # a run's directory, empty: nothing may be added to it
  elif command == "evaluate --checkpoint":
    args.append(f"--checkpoint={model_dir}")
  code, err = run(capsys, command.split()[0], *args)
  line = one_line(code, err, exit_codes.USAGE, f"pyramid-fas {command.split()[0]}",
                  f"data_dir='{missing}'",
                  f"python -m pyramid_fas_jax.data.builders casia_mfsd --config=default "
                  f"--data_dir={missing} --manual_dir=<the official archive, extracted>`")
  assert "tfds build" not in line
  assert listing(out) == [] and not missing.exists()  # no workdir files, no config.json


def test_a_real_dataset_names_its_manual_download(tmp_path):
  from pyramid_fas_jax.data import splits
  config = tiny_train_config.get_config(str(tmp_path))
  config.data.name, config.data.builder_config = "oulu_npu", "default"
  with pytest.raises(splits.DatasetNotBuiltError) as e:
    splits.require_built(config.data)
  assert str(e.value).startswith(f"dataset oulu_npu/default is not built in data_dir='{tmp_path}'")
  assert ("`python -m pyramid_fas_jax.data.builders oulu_npu --config=default "
          f"--data_dir={tmp_path} --manual_dir=<the official archive, extracted>`") in str(e.value)


# --- a corrupt record file ---------------------------------------------------------------------

@pytest.fixture
def corrupt(synth_tiny, tmp_path):
  """A copy of SynthFAS tiny whose split's record file is cut in half: (data_dir, file)."""
  data_dir = tmp_path / "tfds"
  shutil.copytree(synth_tiny, data_dir)

  def cut(split):
    (file,) = (data_dir / "synth_fas" / "tiny").glob(f"*/synth_fas-{split}.array_record-*")
    os.truncate(file, file.stat().st_size // 2)
    return data_dir, file
  return cut


@pytest.mark.parametrize("command,split", [("train", "train"), ("evaluate", "dev")])
def test_a_truncated_record_file_is_named_with_the_rebuild_command(capsys, tmp_path, corrupt,
                                                                  model_dir, command, split):
  data_dir, file = corrupt(split)
  out = tmp_path / "out"
  args = [f"--config={TINY}:{data_dir}", f"--workdir={out}"]
  if command == "evaluate":
    args.append(f"--checkpoint={model_dir}")
  code, err = run(capsys, command, *args)
  line = one_line(code, err, exit_codes.USAGE, f"pyramid-fas {command}", f"record file {file}",
                  "truncated or corrupt",
                  f"python -m pyramid_fas_jax.data.builders synth_fas --config=tiny "
                  f"--data_dir={data_dir} --overwrite`")
  assert "Traceback" not in line
  assert not (out / "results.json").exists()


def test_a_garbled_metadata_index_falls_back_to_the_records(synth_tiny, tmp_path, caplog):
  from pyramid_fas_jax.data import metadata_index, splits
  data_dir = tmp_path / "tfds"
  shutil.copytree(synth_tiny, data_dir)
  (index,) = (data_dir / "synth_fas" / "tiny").glob("*/metadata-train.json")
  want = splits.of(tiny_train_config.get_config(synth_tiny).data, "train").keys
  content = json.loads(index.read_text())
  del content["columns"]["video_id"]["values"]  # the JSON parses; a column lost its strings
  index.write_text(json.dumps(content))
  config = tiny_train_config.get_config(str(data_dir))
  with caplog.at_level("WARNING"):
    assert splits.of(config.data, "train").keys == want
  assert f"metadata index {index} is unreadable (KeyError" in caplog.text
  assert metadata_index.path(index.parent, "train") == index


# --- a broken export ---------------------------------------------------------------------------

def _export(directory: pathlib.Path, size=8, op="ReduceMean") -> pathlib.Path:
  """A minimal valid ONNX export: `score` is the mean of the input, with its model.json sealed
  into it as `pyramid-fas export` seals it (deploy/export.py)."""
  import onnx
  from onnx import TensorProto, helper

  from pyramid_fas_jax.deploy import runtime
  from pyramid_fas_jax.files import cache, provenance
  graph = helper.make_graph(
      [helper.make_node(op, ["images"], ["score"], axes=[1, 2, 3], keepdims=0)], "g",
      [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", size, size, 3])],
      [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])])
  meta = {"format": "onnx", "file": "model.onnx", "checkpoint": "runs/r/best/8",
          "input": {"name": "images", "shape": ["batch", size, size, 3], "mean": [0.5] * 3,
                    "std": [0.25] * 3},
          "face_crop": {"eval_scale": 1.0}, "outputs": {"score": {"shape": ["batch"]}},
          "threshold": {"value": 0.5, "source": "test"}, "video_aggregation": "mean",
          "provenance": provenance.record(fingerprint=op.lower())}
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
  helper.set_model_props(model, {runtime.SEALED_KEY: json.dumps(meta)})
  directory.mkdir(parents=True)
  onnx.save(model, directory / "model.onnx")
  meta["file_digest"] = cache.sha256(directory / "model.onnx")
  (directory / "model.json").write_text(json.dumps(meta))
  return directory


def _swap_onnx(directory):
  other = _export(directory.parent / "other", op="ReduceMax")
  (directory / "model.onnx").write_bytes((other / "model.onnx").read_bytes())


def _edit(field, value):
  def edit(directory):
    meta = json.loads((directory / "model.json").read_text())
    *parents, leaf = field.split(".")
    node = meta
    for key in parents:
      node = node[key]
    if value is KeyError:
      del node[leaf]
    else:
      node[leaf] = value
    (directory / "model.json").write_text(json.dumps(meta))
  return edit


def _truncate_onnx(directory):
  file = directory / "model.onnx"
  os.truncate(file, file.stat().st_size // 2)


# (case, how the export is broken, what the line must name besides the file)
BROKEN = [
    ("nan threshold", _edit("threshold.value", float("nan")), "threshold.value is NaN"),
    ("no mean", _edit("input.mean", KeyError), "no field input.mean"),
    ("string std", _edit("input.std", "0.25"), 'input.std is "0.25", not 3 finite numbers'),
    ("zero std", _edit("input.std", [0.25, 0, 0.25]), "not 3 finite numbers > 0"),
    ("float size", _edit("input.shape", ["batch", 8.5, 8.5, 3]), "input.shape"),
    ("bad aggregation", _edit("video_aggregation", "max"), "video_aggregation"),
    ("not json", lambda d: (d / "model.json").write_text('{"format": "onnx",'), "not valid JSON"),
    ("truncated onnx", _truncate_onnx, "onnxruntime cannot load it"),
    ("another model", _swap_onnx, "not the file model.json was exported with"),
    ("edited", _edit("input.name", "pixels"), "input.name differ from what the export wrote"),
]


@pytest.mark.parametrize("command", ["predict", "serve"])
@pytest.mark.parametrize("case,breaks,named", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_export_is_one_line_naming_file_and_field(capsys, tmp_path, command, case,
                                                           breaks, named):
  export = _export(tmp_path / "exported")
  np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 3), np.float32))
  args = {"predict": ["predict", f"--model={export}", f"--input={tmp_path / 'x.npy'}",
                      f"--output={tmp_path / 'o.npz'}"],
          "serve": ["serve", f"--model={export}", "--port=0"]}[command]
  if command == "predict":  # the export as written works (serve would go on serving it)
    code, err = run(capsys, *args)
    assert code == 0 and (tmp_path / "o.npz").exists(), err
    (tmp_path / "o.npz").unlink()
  breaks(export)
  file = export / ("model.onnx" if case in ("truncated onnx", "another model") else "model.json")
  if case == "another model":
    import shutil
    shutil.rmtree(export.parent / "other")
  prog = f"pyramid-fas {command}"
  line = one_line(*run(capsys, *args), exit_codes.USAGE, prog, file, named)
  assert "pyramid-fas export --checkpoint=runs/r/best/8 --format=onnx" in line or (
      case == "not json" and "pyramid-fas export" in line)
  assert not (tmp_path / "o.npz").exists()


# --- a full disk -------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["train", "score"])
def test_a_full_disk_is_one_line_and_74(synth_tiny, tmp_path, command):
  if command == "train":
    args = ["train", f"--config={TINY}:{synth_tiny}", f"--workdir={tmp_path / 'run'}"]
  else:
    scores = tmp_path / "test.txt"
    scores.write_text("".join(f"{0.1 * i} {i % 2}\n" for i in range(10)))
    args = ["score", f"--test={scores}", "--threshold=0.5", "--bootstrap=0",
            f"--json={tmp_path / 'out.json'}"]
  # No file may grow beyond 256 bytes (config.json and score's JSON are larger): the write fails
  # with EFBIG, the path ENOSPC and EDQUOT take too.
  done = fresh(*args, limit_bytes=256)
  assert done.returncode == exit_codes.NO_SPACE and "Traceback" not in done.stderr, done.stderr
  ours = [line for line in done.stderr.splitlines() if line.startswith("pyramid-fas")]
  # The package writes through files/atomic.py, which names the file and keeps its old content.
  written = tmp_path / ("run/config.json" if command == "train" else "out.json")
  assert ours == [f"pyramid-fas {command}: cannot write {written}: the file-size limit was "
                  "reached (its previous content, if any, is unchanged); free space there or "
                  "choose another output"], done.stderr
  assert done.stderr.splitlines()[-1] == ours[0]


# --- Ctrl-C ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def interrupted(synth_tiny, tmp_path_factory):
  """`train` of the tiny config sent SIGINT, as Ctrl-C sends it (to its whole process group),
  once it has started: (workdir, exit code, stderr)."""
  workdir = tmp_path_factory.mktemp("sigint") / "run"
  proc = fresh("train", f"--config={TINY}:{synth_tiny}", f"--workdir={workdir}",
               "--config.data.num_workers=0", popen=True)
  start = time.time()
  # checkpoints/ appears once training has started up (the signal handlers are in place).
  while not (workdir / "checkpoints").exists():
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert time.time() - start < 300
    time.sleep(0.2)
  os.killpg(proc.pid, signal.SIGINT)
  _, err = proc.communicate(timeout=600)
  return workdir, proc.returncode, err


def test_ctrl_c_in_train_saves_and_exits_75(interrupted, synth_tiny):
  workdir, code, err = interrupted
  assert code == exit_codes.PREEMPTED and "Traceback" not in err, err[-3000:]
  ours = [line for line in err.splitlines() if line.startswith("pyramid-fas train: ")]
  assert ours == [f"pyramid-fas train: interrupted (Ctrl-C) at step 1; the checkpoint is saved "
                  f"in {workdir}; rerun the same command to resume"]
  assert err.splitlines()[-1] == ours[0]
  assert [p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()] == ["1"]
  assert not (workdir / "results.json").exists()
  # Resumable: the same command goes on from step 1 to the end.
  from pyramid_fas_jax.experiment.demo import load_config
  from pyramid_fas_jax.training import train
  results = train.train_and_evaluate(load_config(TINY, synth_tiny), workdir)
  assert results["step"] == 8


def test_ctrl_c_in_evaluate_is_one_line_and_130(interrupted, synth_tiny):
  workdir = interrupted[0]
  proc = fresh("evaluate", f"--workdir={workdir}", popen=True)
  # The INFO log starts once the checks have passed: evaluation is under way.
  first = proc.stderr.readline()
  assert first, proc.communicate()
  os.killpg(proc.pid, signal.SIGINT)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == exit_codes.INTERRUPTED and "Traceback" not in err, err[-3000:]
  assert err.splitlines()[-1] == (
      f"pyramid-fas evaluate: interrupted (Ctrl-C) before it finished; --workdir={workdir} may "
      "be missing or incomplete; rerun the command")


# Each command's required flags, so that parsing passes and its main runs.
REQUIRED = {
    "train": [f"--config={TINY}", "--workdir=w"], "demo": [], "evaluate": ["--workdir=w"],
    "predict": ["--model=m", "--input=i", "--output=o.npz"],
    "import-weights": ["--config=configs/demo.py", "--format=official-cdcn", "--input=i",
                       "--output=o"],
    "score": ["--test=t"], "export": ["--checkpoint=c", "--output=o"], "serve": ["--model=m"],
    "preprocess": ["--input=i", "--output=o"]}
FAILURES = {
    "ctrl-c": (KeyboardInterrupt(), exit_codes.INTERRUPTED,
               "interrupted (Ctrl-C) before it finished; "),
    "no space": (OSError(28, "No space left on device", "/full/results.json"),
                 exit_codes.NO_SPACE, "writing /full/results.json: No space left on device; "),
    "quota": (OSError(122, "Disk quota exceeded", "/q/x.npz"), exit_codes.NO_SPACE,
              "writing /q/x.npz: Disk quota exceeded; "),
    "file size": (OSError(27, "File too large"), exit_codes.NO_SPACE,
                  "a write failed: File too large; "),
}


@pytest.mark.parametrize("command,failure", [
    (command, failure) for command in sorted(cli.COMMANDS) for failure in FAILURES
    # train and demo turn SIGINT into a checkpoint: test_ctrl_c_in_train_saves_and_exits_75
    if not (command in ("train", "demo") and failure == "ctrl-c")])
def test_every_command_reports_ctrl_c_and_a_full_disk_in_one_line(capsys, monkeypatch, command,
                                                                 failure):
  """One handler covers every command: raised anywhere in one, each ends as its one line."""
  error, want, start = FAILURES[failure]
  module = cli._module(command)

  def main(argv):
    raise error

  monkeypatch.setattr(module, "main", main)
  monkeypatch.chdir(REPO)
  line = one_line(*run(capsys, command, *REQUIRED[command]), want, f"pyramid-fas {command}",
                  start)
  if failure == "ctrl-c":
    output = next((a for a in REQUIRED[command] if a.startswith(("--output=", "--workdir="))),
                  None)
    assert line.endswith(f"finished; {output} may be missing or incomplete; rerun the command"
                         if output else "finished; rerun the command"), line


@pytest.mark.parametrize("command", ["score", "evaluate"])
@pytest.mark.parametrize("where", ["finaliser", "swallowed"])
def test_ctrl_c_is_never_lost(capsys, monkeypatch, command, where):
  """Ctrl-C arriving while Python runs a finaliser (JAX's GC callback: the race that let
  `evaluate` print 'Exception ignored ... KeyboardInterrupt' and exit 0), or caught by library
  code that carries on, still ends the command as an interruption, in its one line."""
  class Finaliser:
    def __del__(self):
      raise KeyboardInterrupt

  def main(argv):
    if where == "finaliser":
      Finaliser()  # dropped at once: its __del__ raises where Python cannot propagate it
    else:
      try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler runs here
      except BaseException:  # noqa: B036 - what a careless library does
        pass
    return 0

  monkeypatch.setattr(cli._module(command), "main", main)
  monkeypatch.chdir(REPO)
  # As at a terminal (pytest started in the background, as CI may be, inherits it ignored).
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    code, err = run(capsys, command, *REQUIRED[command])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
  finally:
    signal.signal(signal.SIGINT, previous)
  line = one_line(code, err, exit_codes.INTERRUPTED, f"pyramid-fas {command}", "interrupted")
  assert "Exception ignored" not in err and "Traceback" not in err, err
  assert line.endswith("rerun the command"), line


def test_sigint_stops_a_command_started_with_it_ignored(capsys, monkeypatch):
  """A background job of a script starts with SIGINT ignored; `kill -INT` still stops the
  command as documented, and the ignored disposition is put back afterwards."""
  def main(argv):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the handler runs here
    return 0

  monkeypatch.setattr(cli._module("score"), "main", main)
  monkeypatch.chdir(REPO)
  previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    code, err = run(capsys, "score", *REQUIRED["score"])
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, previous)
  one_line(code, err, exit_codes.INTERRUPTED, "pyramid-fas score", "interrupted")


@pytest.mark.parametrize("error", [OSError(13, "Permission denied", "/x"), RuntimeError("bug")])
def test_an_unforeseen_failure_keeps_its_traceback(capsys, monkeypatch, error):
  def main(argv):
    raise error

  monkeypatch.setattr(cli._module("score"), "main", main)
  with pytest.raises(type(error)):
    cli.main(["pyramid-fas", "score", "--test=t"])
