"""The run lock (files/lock.py): while one process holds a workdir, a second train, demo or
evaluate of it is refused in one line naming the holder (pid, host), exit 2, nothing written;
a lock whose holder died is taken over with a warning naming it."""

import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

from pyramid_fas_jax import cli
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.files import lock
from pyramid_fas_jax.training import train_checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_train_config.py"
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

HOLD = """
import sys, time
from pyramid_fas_jax.files import lock
with lock.hold(sys.argv[1], "pyramid-fas train"):
  print("held", flush=True)
  sys.stdin.read()
"""


def _holder(workdir):
  proc = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert proc.stdout.readline() == "held\n"
  return proc


@pytest.fixture
def held(tmp_path):
  workdir = tmp_path / "run"
  proc = _holder(workdir)
  yield workdir, proc
  proc.stdin.close()
  proc.wait(timeout=60)


def _tree(root):
  return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("prog,args", [
    ("train", [f"--config={TINY}:/nonexistent", "--workdir={w}"]),
    ("demo", ["--workdir={w}"]),
    ("evaluate", [f"--config={TINY}:/nonexistent", "--workdir={w}"]),
])
def test_a_second_command_on_a_held_workdir_is_refused_naming_the_holder(capsys, held, prog,
                                                                       args):
  workdir, proc = held
  before = _tree(workdir)
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", prog, *(a.format(w=workdir) for a in args)])
  assert e.value.code == exit_codes.USAGE
  lines = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith(f"pyramid-fas {prog}: ")]
  assert len(lines) == 1, lines
  assert lines[0].startswith(f"pyramid-fas {prog}: {workdir} is in use by pid {proc.pid} on "
                             f"host {socket.gethostname()} (pyramid-fas train, since 20")
  assert "wait for it to finish or stop it" in lines[0]
  assert _tree(workdir) == before


def test_a_killed_holder_is_taken_over_with_a_warning(tmp_path, capsys):
  workdir = tmp_path / "run"
  proc = _holder(workdir)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  dead = lock.holder(workdir)  # the dead holder's identity stays
  assert dead["pid"] == proc.pid
  with lock.hold(workdir, "pyramid-fas train"):
    assert lock.holder(workdir)["pid"] == os.getpid()
    with lock.hold(workdir, "pyramid-fas train"):  # re-entrant: demo holds, then trains
      pass
    assert lock.holder(workdir)["pid"] == os.getpid()
  assert capsys.readouterr().err.splitlines() == [
      f"pyramid-fas train: warning: taking over the run lock of {workdir} from pid {proc.pid} "
      f"on host {socket.gethostname()} (pyramid-fas train, since {dead['since']}), which is no "
      "longer running"]
  assert lock.holder(workdir) is None  # released cleanly: nothing left to take over


def test_a_refused_new_workdir_and_a_released_one_leave_nothing(tmp_path):
  workdir = tmp_path / "new"
  with lock.hold(workdir, "x"):
    assert workdir.is_dir()
  assert not workdir.exists()  # created only for the lock: removed with it
  (tmp_path / "kept").mkdir()
  with lock.hold(tmp_path / "kept", "x"):
    (tmp_path / "kept" / "results.json").write_text("{}")
  assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == [lock.LOCK_FILE,
                                                                   "results.json"]


def test_partial_orbax_saves_are_removed_and_complete_steps_kept(tmp_path):
  for d in ("checkpoints/4", "checkpoints/6.orbax-checkpoint-tmp-1712", "best/4",
            "best/6.orbax-checkpoint-tmp-99"):
    (tmp_path / d).mkdir(parents=True)
    (tmp_path / d / "x").write_text("x")
  removed = train_checkpoint.remove_partial_saves(tmp_path)
  assert [p.relative_to(tmp_path).as_posix() for p in removed] == [
      "best/6.orbax-checkpoint-tmp-99", "checkpoints/6.orbax-checkpoint-tmp-1712"]
  assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("*/*")) == [
      "best/4", "checkpoints/4"]
