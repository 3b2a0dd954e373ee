"""A real-dataset build killed part way (SIGKILL, as an OOM kill or a preempted node does) and run
again reuses every video it finished (data/real_builder.py's video cache), redoes only those in
flight, and writes the same dataset, byte for byte, as an uninterrupted build; the finished
build leaves no cache and no incomplete folder behind."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import fake_trees
import pytest

from pyramid_fas_jax.data import builders, real_builder

REPO = pathlib.Path(__file__).resolve().parents[1]
NAME = "casia_mfsd"
pytestmark = pytest.mark.slow

_BUILD = """
import sys
from pyramid_fas_jax.data import builders
builders.build(sys.argv[1], sys.argv[2], config="tiny", manual_dir=sys.argv[3], partial=True)
"""


def _files(data_dir) -> dict:
  """{relative path: bytes} of the built version's record files and metadata indexes (the face
  report holds CPU times, which differ between runs)."""
  version = next(pathlib.Path(data_dir, NAME, "tiny").glob("[0-9]*"))
  return {p.relative_to(version).as_posix(): p.read_bytes() for p in sorted(version.iterdir())
          if p.name.startswith((f"{NAME}-", "metadata-"))}


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
  root = tmp_path_factory.mktemp("archive")
  videos = fake_trees.TREES[NAME](root)
  reference = tmp_path_factory.mktemp("uninterrupted")
  builders.build(NAME, str(reference), config="tiny", manual_dir=str(root), partial=True,
                 num_workers=1)
  return root, len(videos), _files(reference)


def _cached(cache: pathlib.Path) -> int:
  # A kill mid-write leaves a hidden temporary file (files/atomic.py), never a cached video.
  return sum(not p.name.startswith(".") for p in cache.glob("*.pkl")) if cache.is_dir() else 0


def _kill_after(data_dir, root, cached: int) -> int:
  """Start a build (every core) in a process of its own, SIGKILL it and its workers once its
  cache holds `cached` videos; returns how many it holds then."""
  builder = builders.load_builder(NAME)(config="tiny", data_dir=str(data_dir))
  cache = builder.cache_dir
  process = subprocess.Popen([sys.executable, "-c", _BUILD, NAME, str(data_dir), str(root)],
                             cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             env=dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu"))
  deadline = time.monotonic() + 300
  while time.monotonic() < deadline and process.poll() is None:
    if _cached(cache) >= cached:
      break
    time.sleep(0.01)
  assert process.poll() is None, "the build finished before it could be killed"
  os.killpg(process.pid, signal.SIGKILL)
  process.wait()
  time.sleep(0.2)   # the killed workers' last renames, if any, have landed
  return _cached(cache)


@pytest.mark.parametrize("cached", [1, 20])
def test_a_killed_build_resumes_from_the_videos_it_finished(archive, tmp_path, monkeypatch,
                                                            cached):
  root, total, want = archive
  kept = _kill_after(tmp_path, root, cached)
  assert cached <= kept < total
  redone = []
  process = real_builder._process_video
  monkeypatch.setattr(real_builder, "_process_video",
                      lambda args: redone.append(args[2].video_id) or process(args))
  builder = builders.build(NAME, str(tmp_path), config="tiny", manual_dir=str(root),
                           partial=True, num_workers=1)
  assert len(redone) == total - kept        # nothing finished is done twice
  assert _files(tmp_path) == want           # the same examples, byte for byte
  assert not builder.cache_dir.exists()
  assert not list(builder.data_path.parent.glob("incomplete.*"))


def test_two_workers_write_what_one_does(archive, tmp_path):
  """The worker pool (data/workers.py, started from a forkserver inside this process, which
  holds JAX's threads) gives the examples in the order and bytes of the in-process build."""
  root, _, want = archive
  builders.build(NAME, str(tmp_path), config="tiny", manual_dir=str(root), partial=True,
                 num_workers=2)
  assert _files(tmp_path) == want


def test_overwrite_and_changed_files_miss_the_cache(archive, tmp_path):
  root, _, _ = archive
  builder = builders.load_builder(NAME)(config="tiny", data_dir=str(tmp_path))
  video = builder._videos(root)[0]
  settings, quality = builder.builder_config.settings(), builder.builder_config.jpeg_quality
  key = real_builder.cache_key(settings, quality, video, "1.1.0")
  assert key == real_builder.cache_key(settings, quality, video, "1.1.0")
  import dataclasses
  other = dataclasses.replace(settings, frame_step=2)
  assert real_builder.cache_key(other, quality, video, "1.1.0") != key
  assert real_builder.cache_key(settings, quality + 1, video, "1.1.0") != key
  os.utime(video.path, ns=(0, 12345))   # the file changed
  assert real_builder.cache_key(settings, quality, video, "1.1.0") != key
  # --overwrite empties it, so a rebuild redoes every video.
  builder.cache_dir.mkdir(parents=True)
  (builder.cache_dir / "x.pkl").write_bytes(b"stale")
  builders.build(NAME, str(tmp_path), config="tiny", manual_dir=str(root), partial=True,
                 num_workers=1, overwrite=True)
  assert not builder.cache_dir.exists()


def test_every_core_by_default():
  assert builders.worker_count(-1) == len(os.sched_getaffinity(0))
  assert builders.worker_count(3) == 3
  with pytest.raises(ValueError, match="num_workers=0"):
    builders.worker_count(0)
