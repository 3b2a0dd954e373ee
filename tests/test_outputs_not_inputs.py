"""Outputs never replace inputs (files/outputs.py): every command with path flags refuses an
output that is one of its inputs or lies inside an input directory, in one line naming both
flags (exit 2), before any work, the input unchanged byte for byte."""

import os
import pathlib

import pytest

from pyramid_fas_jax import cli
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.files import outputs

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


@pytest.fixture
def inputs(tmp_path):
  (tmp_path / "ckpt" / "model").mkdir(parents=True)
  (tmp_path / "ckpt" / "config.json").write_text("{}\n")
  (tmp_path / "export").mkdir()
  (tmp_path / "export" / "model.json").write_text("{}\n")
  (tmp_path / "videos").mkdir()
  (tmp_path / "videos" / "a.png").write_bytes(b"png")
  for name in ("x.npy", "w.pth", "dev.txt", "test.txt", "a.mp4", "results.json"):
    (tmp_path / name).write_bytes(name.encode())
  os.link(tmp_path / "test.txt", tmp_path / "hardlink.txt")
  os.symlink(tmp_path / "dev.txt", tmp_path / "symlink.txt")
  return tmp_path


# (command, its flags with {t} for the inputs' folder, the output flag, the input flag).
CASES = [
    ("predict", ["--checkpoint={t}/ckpt", "--input={t}/x.npy", "--output={t}/x.npy"],
     "output", "input"),
    ("predict", ["--checkpoint={t}/ckpt", "--input={t}/x.npy", "--output={t}/ckpt/config.json"],
     "output", "checkpoint"),
    ("predict", ["--model={t}/export", "--input={t}/videos", "--output={t}/export/model.json"],
     "output", "model"),
    ("predict", ["--model={t}/export", "--input={t}/videos", "--output={t}/videos/a.png"],
     "output", "input"),
    ("score", ["--dev={t}/dev.txt", "--test={t}/test.txt", "--json={t}/test.txt"],
     "json", "test"),
    ("score", ["--dev={t}/dev.txt", "--test={t}/test.txt", "--json={t}/hardlink.txt"],
     "json", "test"),
    ("score", ["--dev={t}/symlink.txt", "--test={t}/test.txt", "--json={t}/dev.txt"],
     "json", "dev"),
    ("score", ["--dev={t}/dev.txt", "--test={t}/test.txt", "--plots={t}/dev.txt"],
     "plots", "dev"),
    ("export", ["--checkpoint={t}/ckpt", "--output={t}/ckpt"], "output", "checkpoint"),
    ("export", ["--checkpoint={t}/ckpt", "--output={t}/ckpt/exported"], "output", "checkpoint"),
    ("export", ["--checkpoint={t}/ckpt", "--results={t}/export/model.json",
                "--output={t}/export"], "output", "results"),
    ("preprocess", ["--input={t}/videos", "--output={t}/videos/crops"], "output", "input"),
    ("preprocess", ["--input={t}/a.mp4", "--output={t}/a.mp4"], "output", "input"),
    ("import-weights", [f"--config={TINY}", "--format=torchvision-resnet50", "--input={t}/w.pth",
                        "--output={t}/w.pth"], "output", "input"),
    ("evaluate", ["--checkpoint={t}/ckpt", "--workdir={t}/ckpt"], "workdir", "checkpoint"),
    ("evaluate", ["--checkpoint={t}/ckpt", "--workdir={t}/ckpt/eval"], "workdir", "checkpoint"),
]


def _tree(root):
  return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("prog,args,out_flag,in_flag", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_an_output_over_or_inside_an_input_is_refused(capsys, inputs, prog, args, out_flag,
                                                      in_flag):
  before = _tree(inputs)
  argv = [a.format(t=inputs) for a in args]
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", prog, *argv])
  assert e.value.code == exit_codes.USAGE
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.startswith(f"pyramid-fas {prog}: ")]
  assert len(lines) == 1, err
  out = next(a for a in argv if a.startswith(f"--{out_flag}="))
  src = next(a for a in argv if a.startswith(f"--{in_flag}="))
  assert lines[0].startswith(f"pyramid-fas {prog}: {out}"), lines[0]
  assert src in lines[0] and lines[0].endswith(f"choose another --{out_flag}"), lines[0]
  assert "Traceback" not in err
  assert _tree(inputs) == before


def test_a_runs_checkpoints_inside_the_output_workdir_are_fine(tmp_path):
  step = tmp_path / "run" / "checkpoints" / "8"
  step.mkdir(parents=True)
  assert outputs.clash({"checkpoint": step}, {"workdir": tmp_path / "run"}) is None
  assert outputs.clash({"input": tmp_path / "run"}, {"output": tmp_path / "elsewhere"}) is None
  assert outputs.clash({"dev": None}, {"json": tmp_path / "x"}) is None
  assert outputs.clash({"input": step}, {"output": step / "x"}) == (
      f"--output={step / 'x'} lies inside the input directory --input={step}: a command never "
      "writes over or into its own inputs; choose another --output")
