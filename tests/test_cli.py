"""cli.py dispatches: the command modules define their flags per run, so they import together and
commands run one after another in one process (a notebook, a test) never share flag values."""

import os
import pathlib
import pkgutil
import subprocess
import sys

import pytest
import tiny_train_config
from absl import flags
from test_bad_inputs import run

from pyramid_fas_jax import cli, commands
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.commands import score as score_command
from pyramid_fas_jax.commands import train as train_command

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


def test_every_command_module_imports_with_the_others_in_one_process():
  names = [m.name for m in pkgutil.iter_modules(commands.__path__)]
  assert {module for module, _ in cli.COMMANDS.values()} <= set(names)
  code = ("import importlib, sys\nfrom absl import flags\n"
          f"for name in {names!r}:\n"
          "  importlib.import_module(f'pyramid_fas_jax.commands.{name}')\n"
          "print(sorted(n for n in ('config', 'workdir', 'input', 'output', 'checkpoint') "
          "if n in flags.FLAGS))")
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                     env=dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu"), timeout=300)
  assert r.returncode == 0, r.stderr
  assert r.stdout.splitlines()[-1] == "[]"  # importing defines no flag


def test_every_command_defines_its_flags_on_a_flag_values_of_its_own():
  flag_values = {name: cli.command_flags(name) for name in cli.COMMANDS}
  for name, fv in flag_values.items():
    module = f"pyramid_fas_jax.commands.{cli.COMMANDS[name][0]}"
    assert fv.get_flags_for_module(module), name
    assert "verbosity" in fv  # absl's own flags are there too
  assert flag_values["train"]["config"] is not flag_values["predict"]["config"]
  assert "workdir" not in flags.FLAGS and "config" not in flags.FLAGS


def test_a_second_run_starts_from_its_own_defaults(capsys, monkeypatch, tmp_path):
  """Overrides, lists and plain flags of a first run do not reach a second one, and a
  --config.x override may be given again."""
  seen = []

  def record(argv):
    del argv
    seen.append((train_command._CONFIG.value.batch_size, train_command._CONFIG.value.seed,
                 train_command._WORKDIR.value, train_command._ALLOW.value))

  monkeypatch.setattr(train_command, "main", record)
  default = tiny_train_config.get_config(None)
  assert run(capsys, "train", f"--config={TINY}", f"--workdir={tmp_path}/a",
             "--config.batch_size=8", "--config.seed=3", "--allow_config_change=optim.lr")[0] == 0
  assert run(capsys, "train", f"--config={TINY}", f"--workdir={tmp_path}/b",
             "--config.seed=5")[0] == 0
  assert run(capsys, "train", f"--config={TINY}", f"--workdir={tmp_path}/c")[0] == 0
  assert seen == [(8, 3, f"{tmp_path}/a", ["optim.lr"]),
                  (default.batch_size, 5, f"{tmp_path}/b", []),
                  (default.batch_size, default.seed, f"{tmp_path}/c", [])]


def test_score_twice_in_one_process_with_different_flags(capsys, tmp_path):
  scores = tmp_path / "s.txt"
  scores.write_text("0.9 1\n0.1 0\n0.8 1\n0.3 0\n0.6 1\n0.4 0\n")
  out_json = tmp_path / "a.json"
  code, out, _ = run(capsys, "score", f"--dev={scores}", f"--test={scores}", "--bootstrap=0",
                     f"--json={out_json}", "--mode=cdcn")
  assert code == exit_codes.OK and f"wrote {out_json}" in out
  assert score_command.FLAGS.mode == "cdcn"
  out_json.unlink()
  code, out, _ = run(capsys, "score", f"--test={scores}", "--threshold=test_eer",
                     "--bootstrap=0")
  assert code == exit_codes.OK
  assert "wrote" not in out and not out_json.exists()  # not the first run's --json
  assert score_command.FLAGS.mode == "iso" and score_command.FLAGS.dev is None


def test_usage_unknown_commands_and_help(capsys):
  code, out, _ = run(capsys)
  assert code == exit_codes.USAGE and out.startswith("usage: pyramid-fas <command>")
  code, _, err = run(capsys, "scor")
  assert code == exit_codes.USAGE
  assert err.startswith("pyramid-fas: unknown command 'scor' (did you mean 'score'?)")
  for how in ("-h", "--help", "--helpshort", "-?"):
    code, out, _ = run(capsys, "score", how)
    assert code == exit_codes.OK and "--test: test score file" in out, how
    assert "--verbosity" not in out, how  # absl's flags only with --helpfull
  code, out, _ = run(capsys, "score", "--helpfull")
  assert code == exit_codes.OK and "--test: test score file" in out and "--verbosity" in out
