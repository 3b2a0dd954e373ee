"""Every bad input of a command ends in one line naming it (exit code 2, commands/exit_codes.py),
no traceback, and nothing written; and what used to pass silently with wrong numbers is refused
or reported. Most run `cli.main` in this process (the same code as `pyramid-fas ...`); a few run
a fresh process, for what only one shows (flag parsing from scratch, a second device count, a
user without write permission).
"""

import os
import pathlib
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tiny_train_config
from flax import nnx

from pyramid_fas_jax import cli, models
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.evaluation import evaluator, report
from pyramid_fas_jax.training import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"
RUNLOCAL = "--config=configs/resnet50_ps.py:synth_fas/intra,runlocal"
# config_flags loads config files with importlib's load_module.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


def run(capsys, *args):
  """(exit code, stdout, stderr) of `pyramid-fas *args` run in this process."""
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", *map(str, args)])
  out, err = capsys.readouterr()
  return e.value.code or 0, out, err


def messages(err: str, prog: str) -> list[str]:
  """The command's own lines on stderr (absl's INFO log of the devices may come first)."""
  return [line for line in err.splitlines() if line.startswith(f"{prog}: ")]


def refused(capsys, prog, *args) -> list[str]:
  code, _, err = run(capsys, *args)
  assert code == exit_codes.USAGE, err
  assert "Traceback" not in err, err
  lines = messages(err, prog)
  assert lines, err
  return [line[len(prog) + 2:] for line in lines]


def fresh(*args, env=None, **kw):
  environ = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", **(env or {}))
  return subprocess.run([sys.executable, "-m", "pyramid_fas_jax.cli", *map(str, args)], cwd=REPO,
                        env=environ, capture_output=True, text=True, timeout=300, **kw)


# --- config overrides and config files ---------------------------------------------------------

@pytest.mark.parametrize("override,expected", [
    ("--config.batch_sizee=8", "--config.batch_sizee=8: the config has no field batch_sizee; "
     "did you mean batch_size"),
    ("--config.optim.lrr=1", "--config.optim.lrr=1: the config has no field optim.lrr; did you "
     "mean optim.lr?"),
    ("--config.dataa.name=x", "--config.dataa.name=x: the config has no field dataa.name; did "
     "you mean data?"),
    ("--config.model.backbonee=vgg16", "--config.model.backbonee=vgg16: the config has no field "
     "model.backbonee; did you mean model.backbone?"),
    ("--config.batch_size=abc", "--config.batch_size=abc: not a valid int (the field's type; it "
     "is 8 in configs/resnet50_ps.py:synth_fas/intra,runlocal)"),
    ("--config.seed.deep=1", "--config.seed.deep=1: the config has no field seed.deep; seed is "
     "0, not a group of fields"),
])
def test_a_bad_override_is_one_line_with_its_neighbours(capsys, tmp_path, monkeypatch,
                                                        override, expected):
  monkeypatch.chdir(REPO)
  (line,) = refused(capsys, "pyramid-fas train", "train", RUNLOCAL,
                    f"--workdir={tmp_path / 'w'}", override)
  assert line.startswith(expected), line
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("spec,expected", [
    ("configs/nope.py", "--config=configs/nope.py: the config file configs/nope.py does not "
     "exist; did you mean"),
    ("configs/resnet50_ps.py:nope/intra", "--config=configs/resnet50_ps.py:nope/intra: no "
     "protocols for dataset 'nope'"),
    ("configs/resnet50_ps.py:synth_fas/intra,runlocall", "--config=configs/resnet50_ps.py:"
     "synth_fas/intra,runlocall: unknown config option(s) ['runlocall']"),
    ("configs/resnet50_ps.py:oulu_npu/Protocol_9", "--config.data.protocol=Protocol_9: not a "
     "protocol of oulu_npu; did you mean"),
])
def test_a_bad_config_file_or_dataset_option_is_one_line(capsys, tmp_path, monkeypatch, spec,
                                                         expected):
  monkeypatch.chdir(REPO)
  lines = refused(capsys, "pyramid-fas train", "train", f"--config={spec}",
                  f"--workdir={tmp_path / 'w'}")
  assert lines[0].startswith(expected), lines
  assert not (tmp_path / "w").exists()


def test_a_typo_in_a_fresh_process_gives_no_traceback(tmp_path):
  # ml_collections' own "did you mean" is in its KeyError's repr, which once escaped as a
  # traceback: a fresh process parses the flags exactly as a user's does.
  done = fresh("train", RUNLOCAL, f"--workdir={tmp_path / 'w'}", "--config.optim.lrr=1")
  assert done.returncode == exit_codes.USAGE and "Traceback" not in done.stderr
  assert done.stderr.splitlines() == [
      "pyramid-fas train: --config.optim.lrr=1: the config has no field optim.lrr; did you mean "
      "optim.lr?"]
  assert not (tmp_path / "w").exists()


def test_data_dir_can_be_overridden(capsys, monkeypatch, tmp_path):
  """The flag launch/tpu_vm.sh --data_dir emits (a None field could not be overridden): it
  reaches the dataset loader, which builds the embedded dataset there on first use."""
  monkeypatch.chdir(REPO)
  code, _, err = run(capsys, "train", f"--config={TINY}:{tmp_path / 'none'}",
                     f"--workdir={tmp_path / 'w'}", f"--config.data.data_dir={tmp_path / 'x'}")
  assert code == 0 and "is not supported for overriding" not in err, err
  assert (tmp_path / "x" / "synth_fas" / "tiny").is_dir() and not (tmp_path / "none").exists()


# --- config values, checked before any work ----------------------------------------------------

def test_every_bad_config_value_is_listed_before_anything_is_written(capsys, tmp_path,
                                                                     monkeypatch):
  monkeypatch.chdir(REPO)
  workdir = tmp_path / "run"
  lines = refused(
      capsys, "pyramid-fas train", "train", f"--config={TINY}:{tmp_path}",
      f"--workdir={workdir}", "--config.num_steps=-5", "--config.log_every_steps=0",
      "--config.checkpoint_every_steps=0", "--config.eval_every_steps=-1",
      "--config.batch_size=7", "--config.eval.threshold=dev_eerr", "--config.eval.mode=isoo",
      "--config.eval.video_agg=max", "--config.data.epoch_unit=clip",
      "--config.data.num_workers=-2", "--config.optim.name=adamw",
      "--config.model.head=pyramid", "--config.model.spp_pool=min",
      "--config.model.loss_reduction=total", "--config.aug.scale_range=(1.3, 0.8)",
      "--config.input.size=0")
  by_field = {line.split("=", 1)[0]: line for line in lines}
  assert len(by_field) == len(lines)
  expected = {
      "--config.num_steps": "-5: must be an integer >= 0",
      "--config.log_every_steps": "0: must be an integer >= 1",
      "--config.checkpoint_every_steps": "0: must be an integer >= 1",
      "--config.eval_every_steps": "-1: must be an integer >= 0",
      "--config.batch_size": "7: must divide by the 4 devices it is split over",
      "--config.eval.threshold": "dev_eerr: must be dev_eer, test_eer or a finite number",
      "--config.eval.mode": "isoo: must be one of 'iso', 'cdcn'",
      "--config.eval.video_agg": "max: must be mean, median or none",
      "--config.data.epoch_unit": "clip: must be one of 'video', 'frame'",
      "--config.data.num_workers": "-2: must be an integer >= 0 (0 reads in-process, -1 chooses",
      "--config.optim.name": "adamw: must be one of 'sgd', 'adam'",
      "--config.model.head": "pyramid: must be one of 'pyramid_mask'",
      "--config.model.spp_pool": "min: must be one of 'max', 'avg'",
      "--config.model.loss_reduction": "total: must be one of 'mean', 'sum'",
      "--config.aug.scale_range": "'(1.3,0.8)': must be '(low,high)' with 0 < low <= high",
      "--config.input.size": "0: must be an integer >= 1",
  }
  for field, text in expected.items():
    assert by_field.get(field, "").startswith(f"{field}={text}"), (field, lines)
  assert set(by_field) == set(expected), lines
  assert not workdir.exists()  # no workdir, no config.json


def test_the_batch_must_divide_by_the_devices_of_a_fresh_process(tmp_path):
  # Two devices: the split a batch of 7 would have failed on, after 35 s, in JAX's sharding.
  done = fresh("train", f"--config={TINY}:{tmp_path}", f"--workdir={tmp_path / 'w'}",
               "--config.batch_size=7", "--config.eval_batch_size=6",
               env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
  assert done.returncode == exit_codes.USAGE and "Traceback" not in done.stderr
  assert messages(done.stderr, "pyramid-fas train") == [
      "pyramid-fas train: --config.batch_size=7: must divide by the 2 devices it is split over; "
      "use a multiple of 2"]
  assert not (tmp_path / "w").exists()


def test_checks_that_need_the_model_and_the_protocol(monkeypatch):
  from pyramid_fas_jax.experiment import checks
  from pyramid_fas_jax.experiment.demo import load_config
  monkeypatch.chdir(REPO)

  def problems(path, arg=None, **fields):
    config = load_config(path, arg)
    for key, value in fields.items():
      node = config
      *parents, leaf = key.split("__")
      for p in parents:
        node = node[p]
      node[leaf] = value
    return checks.problems(config, device_count=1)

  assert problems("configs/cdcn_ps.py", "synth_fas/intra,runlocal") == []
  (line,) = problems("configs/cdcn_ps.py", "synth_fas/intra,runlocal", model__scales=(16, 8))
  assert line.startswith("--config.model.scales='(16,8)': the first scale must be the "
                         "predicted map's size, model.map_size=8")
  # What counts is the backbone's map, not the input: resnet_tiny (stride 8, convolutions that
  # round up) maps 60 to 8x8, which pools; 96 to 12x12 and ResNet50 224 to 7x7, which do not.
  assert problems("configs/resnet50_ps.py", "synth_fas/intra,runlocal", input__size=60) == []
  (line,) = problems("configs/resnet50_ps.py", "synth_fas/intra,runlocal", input__size=96)
  assert line == ("--config.input.size=96: gives resnet_tiny a 12x12 feature map, which "
                  "model.scales='(8,4,2,1)' cannot average-pool: every scale must divide the "
                  "map's side, e.g. input.size=64 or 128")
  (line,) = problems("configs/resnet50_ps.py", "synth_fas/intra", input__size=224)
  assert line.startswith("--config.input.size=224: gives resnet50 a 7x7 feature map")
  assert line.endswith("e.g. input.size=256")
  (line,) = problems("configs/cdcn_ps.py", "casia_mfsd/official,runlocal",
                     eval__threshold="dev_eer")
  assert line.startswith("--config.eval.threshold=dev_eer: casia_mfsd/official has no dev set")
  (line,) = problems("configs/cdcn_ps.py", model__loss_reduction="sum")
  assert line.startswith("--config.model.loss_reduction=sum: applies to mask BCE only")
  # What the command line gives as strings: a number, and frame level.
  assert problems("configs/demo.py", eval__threshold="0.5", eval__video_agg="none") == []
  # The demo scores dev alone during training, unless an override makes its evaluations read
  # test (a test-EER threshold, mode cdcn): those are accepted and score test while training.
  demo = load_config("configs/demo.py")
  assert not evaluator.tests_while_training(demo)
  for field in ({"eval__threshold": "test_eer"}, {"eval__mode": "cdcn"},
                {"eval__test_while_training": True}):
    assert problems("configs/demo.py", **field) == [], field
    config = load_config("configs/demo.py")
    for key, value in field.items():
      section, name = key.split("__")
      config[section][name] = value
    assert evaluator.tests_while_training(config), field
  for threshold in ("0.5", "none", "dev_eer"):
    demo.eval.threshold = threshold
    assert not evaluator.tests_while_training(demo), threshold
  assert report.threshold_value("0.5") == 0.5
  assert report.video_agg_value("none") is None


def test_a_workdir_that_is_a_file_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(REPO)
  file = tmp_path / "file"
  file.write_text("not a directory")
  for command in ("train", "evaluate"):
    (line,) = refused(capsys, f"pyramid-fas {command}", command, f"--config={TINY}:{tmp_path}",
                      f"--workdir={file}")
    assert line == f"--workdir={file}: is a file, not a directory; name a directory"
  (line,) = refused(capsys, "pyramid-fas train", "train", f"--config={TINY}:{tmp_path}",
                    f"--workdir={file}/run")
  assert line == f"--workdir={file}/run: cannot be created: {file} is a file"
  (line,) = refused(capsys, "pyramid-fas evaluate", "evaluate", f"--workdir={tmp_path}/none")
  assert line.startswith(f"--workdir={tmp_path}/none: does not exist")
  assert file.read_text() == "not a directory"


def test_a_read_only_workdir_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
  from pyramid_fas_jax.experiment import checks
  monkeypatch.chdir(REPO)
  read_only = tmp_path / "ro"
  read_only.mkdir()
  read_only.chmod(0o555)
  if os.geteuid() == 0:
    # Root may write anywhere; the permission bits decide here as they would for a user.
    access = os.access
    monkeypatch.setattr(checks.os, "access", lambda path, mode: access(path, mode) and not (
        mode & os.W_OK and not os.stat(path).st_mode & 0o200))
  try:
    (line,) = refused(capsys, "pyramid-fas train", "train", f"--config={TINY}:{tmp_path}",
                      f"--workdir={read_only}")
    assert line == (f"--workdir={read_only}: the directory is not writable; choose another or "
                    "fix its permissions")
    (line,) = refused(capsys, "pyramid-fas demo", "demo", f"--workdir={read_only}/demo")
    assert line == f"--workdir={read_only}/demo: cannot be created: {read_only} is not writable"
    assert not any(read_only.iterdir())
  finally:
    read_only.chmod(0o755)


# --- each command's --help ---------------------------------------------------------------------

@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_command_help_lists_its_own_flags(capsys, command):
  code, out, _ = run(capsys, command, "--help")
  assert code == exit_codes.OK
  module = f"pyramid_fas_jax.commands.{cli.COMMANDS[command][0]}"
  own = cli.command_flags(command).get_flags_for_module(module)
  assert own, module
  text = " ".join(out.split())  # help wraps its lines
  for flag in own:
    first_words = " ".join(re.sub(r"^<[^>]*>: ", "", flag.help).split()[:3])
    # --[no]name for a bool, <a|b|c>: before an enum's help.
    assert re.search(rf"--(\[no\])?{flag.name}: (<[^>]*>: )?{re.escape(first_words)}", text), (
        flag.name, out)
  assert sys.modules[module].__doc__.strip().splitlines()[0] in out
  assert "--helpfull" in out


def test_commands_run_one_after_another_in_one_process(capsys, tmp_path, monkeypatch):
  """train and predict both define --config, preprocess and predict --input: a second main()
  in one process (a notebook) gets its own flags at their defaults."""
  monkeypatch.chdir(REPO)
  assert run(capsys, "train", "--help")[0] == 0
  assert run(capsys, "predict", "--help")[0] == 0
  refused(capsys, "pyramid-fas score", "score", f"--test={tmp_path}/none", "--json=/tmp")
  code, _, err = run(capsys, "score", f"--test={tmp_path}/none")
  assert code == 2 and "--test=" in err and "--json" not in err  # not the last run's --json


# --- score -------------------------------------------------------------------------------------

def test_score_outputs_are_checked_before_reading(capsys, tmp_path):
  scores = tmp_path / "s.txt"
  scores.write_text("0.9 1\n0.1 0\n0.8 1\n0.3 0\n")
  (line,) = refused(capsys, "pyramid-fas score", "score", f"--test={scores}",
                    "--threshold=test_eer", f"--json={tmp_path}")
  assert line == f"--json={tmp_path} is a directory; name the JSON file to write"
  other = tmp_path / "other.txt"
  other.write_text("not plots")
  (line,) = refused(capsys, "pyramid-fas score", "score", f"--test={scores}",
                    "--threshold=test_eer", f"--plots={other}")
  assert line == f"--plots={other} is a file; name a directory for the plots"
  (line,) = refused(capsys, "pyramid-fas score", "score", f"--test={scores}",
                    "--threshold=test_eer", f"--plots={scores}")
  assert line.startswith(f"--plots={scores} is --test={scores}: a command never writes over")
  (line,) = refused(capsys, "pyramid-fas score", "score", f"--test={tmp_path}")
  assert line == f"--test={tmp_path}: is a directory, not a score file"
  code, out, _ = run(capsys, "score", f"--test={scores}", "--threshold=test_eer",
                     "--bootstrap=0", f"--json={tmp_path}/new/r.json")
  assert code == 0 and (tmp_path / "new" / "r.json").exists(), out


# --- import-weights ----------------------------------------------------------------------------

class _Runs:
  """Unpickling this would run a shell command."""

  def __reduce__(self):
    return (os.system, ("touch PWNED",))


class _Custom:
  pass


_GARBAGE = np.random.default_rng(0).bytes(256)


@pytest.mark.parametrize("name,content,expected", [pytest.param(*case, id=case[0]) for case in [
    ("garbage.pth", _GARBAGE, "is not a PyTorch file"),
    ("runs.pth", pickle.dumps({"w": _Runs()}), "refusing to unpickle posix.system"),
    ("custom.pth", pickle.dumps(_Custom()), "refusing to unpickle test_bad_inputs._Custom"),
    ("garbage.safetensors", _GARBAGE[:64], "is not a readable .safetensors file"),
    ("garbage.npz", _GARBAGE[:64], "is not a readable .npz of arrays"),
    ("weights.h5", b"", "unknown weights format '.h5'"),
]])
def test_unreadable_weights_are_one_line_and_run_nothing(capsys, tmp_path, monkeypatch, name,
                                                         content, expected):
  monkeypatch.chdir(tmp_path)
  (tmp_path / name).write_bytes(content)
  (line,) = refused(capsys, "pyramid-fas import-weights", "import-weights",
                    "--format=torchvision-resnet50", f"--input={name}",
                    f"--config={REPO / 'configs' / 'demo.py'}", f"--output={tmp_path / 'out'}")
  assert expected in line and line.startswith(name), line
  assert not (tmp_path / "PWNED").exists() and not (tmp_path / "out").exists()


# --- predict -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  config = tiny_train_config.get_config(None)  # 32x32 input, ImageNet statistics
  model = models.build_model(config.model, nnx.Rngs(0))
  return checkpoint.save_model(tmp_path_factory.mktemp("ckpt") / "model", model, config)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
  from skimage import data
  return data.astronaut()


def _normalised(n=2, size=32, seed=0):
  rng = np.random.default_rng(seed)
  pixels = rng.uniform(0, 1, (n, size, size, 3))
  return ((pixels - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)).astype(np.float32)


@pytest.mark.parametrize("array,expected", [
    (np.zeros((2, 32, 32, 3), np.uint8), "a uint8 array, i.e. pixels, not network inputs; the "
     ".npy path feeds the network as given"),
    (np.full((2, 32, 32, 3), 200.0, np.float32), "200 at index (0, 0, 0, 0) is far outside the "
     "normalised range of channel 0 ([-2.12, 2.25]; 0-255 pixels?)"),
    ("nan", "the element at index (1, 3, 4, 2) is nan; every element must be finite"),
    ("inf", "the element at index (0, 0, 0, 1) is inf"),
])
def test_predict_refuses_npy_that_is_not_network_input(capsys, tiny_checkpoint, tmp_path, array,
                                                       expected):
  if isinstance(array, str):
    bad = _normalised()
    bad[(1, 3, 4, 2) if array == "nan" else (0, 0, 0, 1)] = float(array)
    array = bad
  np.save(tmp_path / "x.npy", array)
  out = tmp_path / "out.npz"
  (line,) = refused(capsys, "pyramid-fas predict", "predict", f"--checkpoint={tiny_checkpoint}",
                    f"--input={tmp_path / 'x.npy'}", f"--output={out}")
  assert line.startswith(f"input {tmp_path / 'x.npy'}: {expected}"), line
  assert not out.exists()


def test_predict_scores_normalised_npy_and_warns_of_unnormalised(capsys, tiny_checkpoint,
                                                                 tmp_path):
  np.save(tmp_path / "x.npy", _normalised())
  code, _, err = run(capsys, "predict", f"--checkpoint={tiny_checkpoint}",
                     f"--input={tmp_path / 'x.npy'}", f"--output={tmp_path / 'a.npz'}")
  assert code == 0 and "warning" not in err and np.load(tmp_path / "a.npz")["score"].shape == (2,)
  np.save(tmp_path / "p.npy", np.full((1, 32, 32, 3), 0.5, np.float32))
  code, _, err = run(capsys, "predict", f"--checkpoint={tiny_checkpoint}",
                     f"--input={tmp_path / 'p.npy'}", f"--output={tmp_path / 'b.npz'}")
  assert code == 0 and f"predict: warning: {tmp_path / 'p.npy'} lies in [0, 1]" in err


@pytest.mark.parametrize("flag", ["--batch_size=0", "--batch_size=-3", "--frame_step=0",
                                  "--max_frames=-1"])
def test_predict_refuses_a_bad_count(capsys, tiny_checkpoint, tmp_path, flag):
  np.save(tmp_path / "x.npy", _normalised())
  (line,) = refused(capsys, "pyramid-fas predict", "predict", f"--checkpoint={tiny_checkpoint}",
                    f"--input={tmp_path / 'x.npy'}", f"--output={tmp_path / 'o.npz'}", flag)
  assert line.startswith(f"flag {flag}: ")
  assert not (tmp_path / "o.npz").exists()


def _truncated_jpeg(astronaut, path):
  ok, data = cv2.imencode(".jpg", cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
  path.write_bytes(data.tobytes()[:len(data) // 2])
  # OpenCV decodes it without an error, the lower half grey: what used to be scored.
  partial = cv2.imread(str(path))
  assert ok and partial is not None and partial.shape == astronaut.shape
  return path


def test_a_truncated_jpeg_is_refused_by_predict_and_preprocess(capsys, tiny_checkpoint,
                                                               astronaut, tmp_path):
  jpeg = _truncated_jpeg(astronaut, tmp_path / "face.jpg")
  (line,) = refused(capsys, "pyramid-fas predict", "predict", f"--checkpoint={tiny_checkpoint}",
                    f"--input={jpeg}", f"--output={tmp_path / 'o.npz'}")
  assert line.startswith(f"image {jpeg} is a truncated or corrupt JPEG")
  (line,) = refused(capsys, "pyramid-fas preprocess", "preprocess", f"--input={jpeg}",
                    f"--output={tmp_path / 'crops'}")
  assert line.startswith(f"image {jpeg} is a truncated or corrupt JPEG")
  assert not (tmp_path / "o.npz").exists() and not (tmp_path / "crops").exists()
  from pyramid_fas_jax.faces import video
  assert video.check_readable(jpeg).startswith(f"image {jpeg} is a truncated")
  whole = tmp_path / "whole.jpg"
  cv2.imwrite(str(whole), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
  assert video.check_readable(whole) is None
  np.testing.assert_array_equal(video.read_image(whole),
                                cv2.cvtColor(cv2.imread(str(whole)), cv2.COLOR_BGR2RGB))


def _video(astronaut, path, frames=12):
  small = cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 128))
  for i in range(frames):
    writer.write(cv2.cvtColor(np.roll(small, 2 * i, axis=1), cv2.COLOR_RGB2BGR))
  writer.release()
  return path


def test_a_truncated_video_is_reported_with_both_counts(capsys, tiny_checkpoint, astronaut,
                                                       tmp_path):
  whole = _video(astronaut, tmp_path / "whole.avi")
  cut = tmp_path / "cut.avi"
  cut.write_bytes(whole.read_bytes()[:int(whole.stat().st_size * 0.6)])
  cap = cv2.VideoCapture(str(cut))
  promised = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
  decoded = 0
  while cap.read()[0]:
    decoded += 1
  cap.release()
  assert promised == 12 and 0 < decoded < promised  # the header still says 12
  import json
  code, out, _ = run(capsys, "preprocess", f"--input={cut}", f"--output={tmp_path / 'p'}",
                     "--crop_size=64", "--smooth=1")
  assert code == 0
  summary = json.loads((tmp_path / "p" / "frames.json").read_text())
  assert len(summary["frames"]) == decoded
  assert summary["truncated"]["promised"] == promised
  assert summary["truncated"]["decoded"] == decoded
  assert (f"warning: {cut}: its header promises {promised} frames but only {decoded} decode"
          in out)
  code, _, err = run(capsys, "predict", f"--checkpoint={tiny_checkpoint}", f"--input={cut}",
                     f"--output={tmp_path / 'o.npz'}", "--frame_step=1", "--max_frames=0")
  assert code == 0
  assert f"predict: warning: {cut}: its header promises {promised} frames but only {decoded}" \
         in err
  assert np.load(tmp_path / "o.npz")["frame"].tolist() == list(range(decoded))
  # The whole video: no report.
  code, out, _ = run(capsys, "preprocess", f"--input={whole}", f"--output={tmp_path / 'q'}",
                     "--crop_size=64", "--smooth=1", "--max_frames=3")
  assert code == 0 and "promises" not in out
  assert "truncated" not in json.loads((tmp_path / "q" / "frames.json").read_text())


def test_preprocess_of_a_directory_does_each_file(capsys, astronaut, tmp_path):
  folder = tmp_path / "in"
  folder.mkdir()
  _video(astronaut, folder / "a.avi", frames=3)
  cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
  (folder / "notes.txt").write_text("passed over")
  code, out, _ = run(capsys, "preprocess", f"--input={folder}", f"--output={tmp_path / 'out'}",
                     "--crop_size=64", "--smooth=1")
  assert code == 0
  assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.avi", "a.png"]
  assert f"wrote {tmp_path / 'out' / 'a.avi'}: 3 of 3 frames cropped" in out
  assert f"wrote {tmp_path / 'out' / 'a.png'}: 1 of 1 frames cropped" in out
  empty = tmp_path / "empty"
  empty.mkdir()
  (line,) = refused(capsys, "pyramid-fas preprocess", "preprocess", f"--input={empty}",
                    f"--output={tmp_path / 'none'}")
  assert line.startswith(f"input {empty}: the directory holds none of the images")
  (line,) = refused(capsys, "pyramid-fas preprocess", "preprocess",
                    f"--input={tmp_path / 'missing.mp4'}", f"--output={tmp_path / 'none'}")
  assert line == f"input {tmp_path / 'missing.mp4'} does not exist"
  assert not (tmp_path / "none").exists()


def test_the_readme_lists_the_exit_codes():
  """README's Troubleshooting table has a row per code of exit_codes.py, and no other."""
  codes = {v for k, v in vars(exit_codes).items() if k.isupper() and isinstance(v, int)}
  assert codes == {0, 1, 2, 74, 75, 130}
  readme = (REPO / "README.md").read_text()
  section = readme.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
  rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.M)
  assert {int(code) for code, _ in rows} == codes
  assert len(rows) == len(codes)
  # The meanings are exit_codes.py's, in the same words.
  doc = " ".join(exit_codes.__doc__.split())
  for code, meaning in rows:
    assert re.search(rf"\b{code}\s+{re.escape(meaning.split(':')[0].split(' (')[0])}", doc), code
