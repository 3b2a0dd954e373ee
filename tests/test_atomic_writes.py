"""The one write path (files/atomic.py): a Ctrl-C in the middle of a write and a full disk (a
file-size limit, RLIMIT_FSIZE) leave the old file and no temporary one, for every writer of the
module, for the package's writers built on it, and end to end for a command."""

import errno
import json
import os
import pathlib
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
import tiny_train_config
from flax import nnx
from matplotlib.figure import Figure

from pyramid_fas_jax import models
from pyramid_fas_jax.evaluation import report, scorefile, tables
from pyramid_fas_jax.files import atomic
from pyramid_fas_jax.training import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
OLD = b"old content\n"
BIG = "x" * 20000  # well past the file-size limit below


def _savefig(path, text):
  fig = Figure()
  fig.add_subplot().set_title(text[:50])
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp)


# Each writer of the module (and the package's writers on it), given a path and a large payload.
WRITERS = {
    "write_text": lambda p, text: atomic.write_text(p, text),
    "write_bytes": lambda p, text: atomic.write_bytes(p, text.encode()),
    "write_json": lambda p, text: atomic.write_json(p, {"x": text}, indent=1),
    "save_npz": lambda p, text: atomic.save_npz(p, a=np.frombuffer(text.encode(), np.uint8)),
    "replacing+savefig": _savefig,
    "report.write_json": lambda p, text: report.write_json({"x": text, "t": float("inf")}, p),
    "scorefile.write_scores": lambda p, text: scorefile.write_scores(
        p, scorefile.ScoreSet.from_arrays(np.linspace(0, 1, len(text) // 10 + 2),
                                          np.arange(len(text) // 10 + 2) % 2)),
}
SUFFIX = {"save_npz": ".npz", "replacing+savefig": ".png"}


def _target(tmp_path, name):
  path = tmp_path / f"out{SUFFIX.get(name, '.txt')}"
  path.write_bytes(OLD)
  return path


@pytest.mark.parametrize("name", WRITERS)
def test_ctrl_c_before_the_rename_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch,
                                                                      name):
  path = _target(tmp_path, name)

  def interrupted(*args):
    raise KeyboardInterrupt

  # The whole new content is written, then Ctrl-C comes before it replaces the old file.
  monkeypatch.setattr(atomic, "_fsync", interrupted)
  with pytest.raises(KeyboardInterrupt):
    WRITERS[name](path, BIG)
  assert path.read_bytes() == OLD
  assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_ctrl_c_while_a_writer_is_writing_keeps_the_old_file(tmp_path):
  path = _target(tmp_path, "write_text")
  with pytest.raises(KeyboardInterrupt), atomic.replacing(path) as tmp:
    tmp.write_text("half of the new")
    raise KeyboardInterrupt
  assert path.read_bytes() == OLD
  assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("name", WRITERS)
def test_a_completed_write_replaces_the_file_keeping_its_permissions(tmp_path, name):
  path = _target(tmp_path, name)
  os.chmod(path, 0o640)
  WRITERS[name](path, "new")
  assert path.read_bytes() != OLD and path.stat().st_size > 0
  assert [p.name for p in tmp_path.iterdir()] == [path.name]
  assert path.stat().st_mode & 0o777 == 0o640
  # A new file gets the umask's permissions (a temporary file's 0600 would keep it private).
  fresh = tmp_path / "sub" / path.name
  WRITERS[name](fresh, "new")
  umask = os.umask(0)
  os.umask(umask)
  assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_tables_write_every_file_atomically(tmp_path, monkeypatch):
  table = tables.Table("t", ["a", "b"], [["x", 0.5]], n_labels=1)
  written = tables.write_table(table, tmp_path / "t")
  assert sorted(pathlib.Path(p).name for p in written) == ["t.csv", "t.json", "t.md"]
  before = {p: pathlib.Path(p).read_bytes() for p in written}
  monkeypatch.setattr(atomic, "_fsync", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
  with pytest.raises(KeyboardInterrupt):
    tables.write_table(tables.Table("u", ["a", "b"], [["y", 0.25]], n_labels=1), tmp_path / "t")
  assert {p: pathlib.Path(p).read_bytes() for p in written} == before
  assert len(list(tmp_path.iterdir())) == 3


def _limit_file_size(limit=4096):
  def preexec():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  return preexec


def test_a_full_disk_raises_write_error_naming_the_file_and_keeps_the_old_one(tmp_path):
  paths = {}
  for name in WRITERS:
    folder = tmp_path / name.replace("+", "_")
    folder.mkdir()
    paths[name] = str(_target(folder, name))
  script = f"""
import json, sys
sys.path.insert(0, {str(REPO / 'tests')!r})
import test_atomic_writes as t
from pyramid_fas_jax.files import atomic
found = {{}}
for name, path in {paths!r}.items():
  try:
    t.WRITERS[name](path, t.BIG)
    found[name] = "written"
  except atomic.WriteError as e:
    found[name] = [e.errno, e.filename, str(e), isinstance(e, OSError)]
print(json.dumps(found))
"""
  r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                     preexec_fn=_limit_file_size(), env=dict(os.environ,
                                                             PYTHONDONTWRITEBYTECODE="1"))
  assert r.returncode == 0, r.stderr
  found = json.loads(r.stdout.splitlines()[-1])
  for name, path in paths.items():
    code, filename, message, is_os_error = found[name]
    assert (code, filename, is_os_error) == (errno.EFBIG, path, True), name
    assert message.startswith(f"cannot write {path}: the file-size limit was reached"), message
    assert "free space there or choose another output" in message
    assert pathlib.Path(path).read_bytes() == OLD, name
    assert [p.name for p in pathlib.Path(path).parent.iterdir()] == [pathlib.Path(path).name]


def test_score_under_a_file_size_limit_keeps_its_previous_json(tmp_path):
  rng = np.random.default_rng(0)
  for name in ("dev", "test"):
    labels = np.arange(40) % 2
    scorefile.write_scores(tmp_path / f"{name}.txt", scorefile.ScoreSet.from_arrays(
        rng.normal(labels * 0.3, 0.3), labels))
  out = tmp_path / "result.json"
  out.write_bytes(OLD)
  r = subprocess.run(
      [sys.executable, "-m", "pyramid_fas_jax.cli", "score", f"--dev={tmp_path / 'dev.txt'}",
       f"--test={tmp_path / 'test.txt'}", f"--json={out}", "--bootstrap=0", "--overwrite"],
      capture_output=True, text=True, timeout=120, preexec_fn=_limit_file_size(1024), cwd=REPO,
      env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1", JAX_PLATFORMS="cpu"))
  assert r.returncode != 0
  assert f"cannot write {out}: the file-size limit was reached" in r.stderr, r.stderr
  assert out.read_bytes() == OLD
  assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.txt", "result.json", "test.txt"]


def test_save_model_interrupted_keeps_the_old_model(tmp_path, monkeypatch):
  config = tiny_train_config.get_config(None)
  directory = checkpoint.save_model(tmp_path / "ckpt", models.build_model(
      config.model, nnx.Rngs(0)), config)
  before = {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}

  def interrupted(self):
    raise KeyboardInterrupt

  monkeypatch.setattr(checkpoint.ocp.StandardCheckpointer, "wait_until_finished", interrupted)
  with config.unlocked():
    config.seed = 1
  with pytest.raises(KeyboardInterrupt):
    checkpoint.save_model(directory, models.build_model(config.model, nnx.Rngs(1)), config)
  after = {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
  assert after == before
  monkeypatch.undo()
  # Uninterrupted, the new model and its config replace the old ones whole.
  checkpoint.save_model(directory, models.build_model(config.model, nnx.Rngs(1)), config)
  assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model"]
  assert json.loads((directory / "config.json").read_text())["seed"] == 1
