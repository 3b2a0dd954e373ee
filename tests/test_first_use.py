"""The README's first line works: SynthFAS is built where a command first needs it (once, under a
lock, never looking built after a killed build); a real dataset never is."""

import os
import pathlib
import subprocess
import sys

import filelock
import pytest

from pyramid_fas_jax.data import builders, splits
from pyramid_fas_jax.experiment import config as fas

REPO = pathlib.Path(__file__).resolve().parents[1]


def _data(name, data_dir, builder_config="tiny", protocol="intra"):
  data = fas.base_config("synth_fas", "intra", runlocal=True).data
  data.name, data.builder_config, data.data_dir, data.protocol = (name, builder_config,
                                                                  str(data_dir), protocol)
  return data


def _records(data_dir) -> dict:
  """{file name: (inode, mtime)} of the built tiny version's files."""
  version = pathlib.Path(data_dir) / "synth_fas" / "tiny" / "1.1.0"
  return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in version.iterdir()}


def test_synth_fas_is_built_on_first_use(tmp_path, caplog):
  caplog.set_level("INFO")
  # What a killed build leaves: TFDS's temporary folder, never the version folder.
  leftover = tmp_path / "synth_fas" / "tiny" / "incomplete.KILLED_1.1.0"
  leftover.mkdir(parents=True)
  (leftover / "dataset_info.json").write_text("{}")
  # To TFDS a killed build is no build. Asked of the builder itself: tfds.data_source would
  # build it (as TFRecord) if an earlier test in this process had registered the builder.
  assert not builders.load_builder("synth_fas")(config="tiny", data_dir=str(tmp_path)).is_prepared()
  train = splits.of(_data("synth_fas", tmp_path), "train")
  assert len(train.examples) == 24  # tiny: one subject, 24 one-frame videos
  assert sorted(p.name for p in (tmp_path / "synth_fas" / "tiny").iterdir()) == ["1.1.0"]
  said = [r.getMessage() for r in caplog.records]
  assert any(f"synth_fas/tiny/1.1.0 is not built in {tmp_path}: building it now" in m
             and "72 frames of 64x64" in m for m in said), said
  assert any("incomplete.KILLED_1.1.0, left by a build that did not finish" in m for m in said)
  # Built once: a second question reads the build, it does not make another.
  before = _records(tmp_path)
  caplog.clear()
  builders.build_on_first_use("synth_fas", "tiny", str(tmp_path))
  assert _records(tmp_path) == before
  assert not [r for r in caplog.records if "building it now" in r.getMessage()]


def test_a_real_dataset_is_never_built(tmp_path):
  builders.load_builder("casia_mfsd")  # registered with TFDS, as after any earlier build
  with pytest.raises(FileNotFoundError, match="casia_mfsd/tiny is not built"):
    len(splits.of(_data("casia_mfsd", tmp_path), "train").examples)
  assert list(tmp_path.iterdir()) == []  # not even a lock file


def test_a_second_process_waits_for_the_build_and_reuses_it(tmp_path):
  # This test plays the first process: it holds the build lock (its documented path) while a
  # second process asks for the dataset, then builds it, then lets go.
  lock = filelock.FileLock(str(tmp_path / "synth_fas" / ".tiny.lock"))
  (tmp_path / "synth_fas").mkdir()
  lock.acquire()
  code = ("from absl import logging; logging.set_verbosity(logging.INFO); "
          "from pyramid_fas_jax.data import builders; "
          f"builders.build_on_first_use('synth_fas', 'tiny', {str(tmp_path)!r})")
  env = dict(os.environ, PYTHONPATH=str(REPO))
  second = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  try:
    said = []
    for line in second.stdout:
      said.append(line)
      if "waiting for another process building synth_fas/tiny/1.1.0" in line:
        break
    else:
      pytest.fail("the second process did not wait for the lock:\n" + "".join(said))
    builder = builders.load_builder("synth_fas")(config="tiny", data_dir=str(tmp_path),
                                                 file_format="array_record")
    builder.download_and_prepare()
    built = _records(tmp_path)
  finally:
    lock.release()
  rest, _ = second.communicate(timeout=120)
  assert second.returncode == 0, "".join(said) + rest
  assert "built meanwhile by the process waited for: reusing" in rest, rest
  assert "Generating dataset" not in rest, rest
  assert _records(tmp_path) == built  # the second process wrote nothing
