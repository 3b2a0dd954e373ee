"""What the five real-dataset builders (datasets/<name>/) share: configs, the archive check,
parallel per-video preprocessing and the faces report.

A dataset's builder lists the videos its official archive holds (`_videos`: official name,
stored split, species, subject, domain, device, per-video fix); this base checks that every one
is there and decodes, runs `preprocess.Preprocessor` on each (MTCNN crops; face-mesh depth for
live videos) in `num_workers` processes and writes the shared feature spec. The liveness mask
is filled from the label (all live or all attack): none of the five releases we read has
per-pixel annotations.

Every sampled frame with a face crop is stored, whatever its label: a live frame whose face
the mesh model rejects is kept with depth 0 and `depth_valid` False (the depth losses leave its
depth out; evaluation scores it like any other frame), so no split is filtered by label.
Frames without a face are not stored. Each build writes `face_report.json` next to
dataset_info.json: per split and per video the sampled frame indices without a face (not
stored) and without depth (stored, depth_valid False), the videos without any stored frame,
and per video its orientation findings (a rotation tag honoured over a listed fix; a face in
fewer than half the sampled frames, with the quarter turn that finds more:
`Preprocessor.orientation_checks`). The videos without a stored frame are listed with their
metadata in the split's metadata index too (metadata_index.py), so that evaluation counts them
as failures to acquire instead of losing them.

Builds take CPU-hours, so they survive being killed: each video's examples are kept as it
finishes, in a cache beside the build (`<config dir>/.video_cache_<version>/`, one file per
video, written atomically), keyed by the video file (path, size, mtime), its metadata and the
build settings. A build run again after a kill (SIGTERM, SIGKILL, an OOM kill, a preempted
node) reuses every finished video and redoes at most those that were in flight, and writes the
same examples, byte for byte, as an uninterrupted build. A finished build removes the cache;
`--overwrite` clears it first, and a changed setting or file misses it by its key. The archive
check and the videos run in `num_workers` processes (every core by default), with progress
(videos/s, ETA) and a summary (frames kept, faces, depth maps, failures to acquire, CPU time).
"""

import abc
import dataclasses
import hashlib
import json
import pathlib
import pickle
import shutil
import time

import cv2
import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from pyramid_fas_jax.data import features, metadata_index, workers
from pyramid_fas_jax.faces import face, preprocess
from pyramid_fas_jax.faces import video as video_lib
from pyramid_fas_jax.files import atomic


@dataclasses.dataclass
class RealFasConfig(tfds.core.BuilderConfig):
  """Frame sampling and crop settings of a build (see preprocess.Settings)."""
  crop_size: int = 320
  context: float = 1.5
  frame_step: int = 5
  max_frames: int = 30
  detect_size: int = 640
  smooth: int = 5
  jpeg_quality: int = 95
  # face.DETECTORS; the paper's protocol (and every config below) uses MTCNN. A config of another
  # detector needs a name of its own: builds are stored by config name.
  face_detector: str = "mtcnn"

  def __post_init__(self):
    face.check_detector(self.face_detector)
    if self.face_detector != "mtcnn":   # dataset_info.json's description then says so
      note = f"Face boxes by {face.detector_version(self.face_detector)}, not MTCNN."
      self.description = f"{self.description} {note}" if self.description else note

  def settings(self) -> preprocess.Settings:
    return preprocess.Settings(crop_size=self.crop_size, context=self.context,
                               frame_step=self.frame_step, max_frames=self.max_frames,
                               detect_size=self.detect_size, smooth=self.smooth,
                               face_detector=self.face_detector)


# The RELEASE_NOTES entry of every real dataset's 1.1.0.
RELEASE_1_1_0 = ("Every frame with a face crop stored: live frames without a face-mesh fit are "
                 "kept with depth 0 and depth_valid False (1.0.0 dropped them); feature "
                 "depth_valid; a per-split metadata index (metadata-<split>.json) that also "
                 "lists the videos without any stored frame (failures to acquire); videos read "
                 "upright by their container's rotation tag (1.0.0 ignored tags), a per-video "
                 "fix applied only to untagged videos.")

CONFIGS = (
    RealFasConfig(name="default", description="320-pixel context crops (1.5 x the face box) "
                  "of every 5th frame, at most 30 per video spread over it: for 256x256 inputs."),
    RealFasConfig(name="blazeface", face_detector="blazeface",
                  description="As `default`, with BlazeFace's boxes (calibrated onto MTCNN's) "
                  "for MTCNN's: a build of less CPU (README, Real datasets, has the figures)."),
    RealFasConfig(name="small", crop_size=128, frame_step=10, max_frames=10,
                  description="128-pixel crops of every 10th frame, at most 10 per video: CPU "
                  "runs at 64-96 pixel inputs."),
    RealFasConfig(name="tiny", crop_size=64, frame_step=1, max_frames=2, detect_size=320,
                  smooth=1, description="64-pixel crops of the first two frames: tests on "
                  "fake archives."),
)


@dataclasses.dataclass(frozen=True)
class Video:
  """One video of an official archive and its metadata."""
  path: pathlib.Path
  video_id: str          # official name: path in the archive, no extension
  split: str             # stored split
  species: str
  subject: str
  domain: str
  device: str
  fix: str | None = None  # a video_lib.FIXES key for an untagged video stored turned


_WORKER = {}


def _init_worker():
  # One OpenCV thread per worker: N workers x all cores each would oversubscribe the machine.
  cv2.setNumThreads(1)


def _preprocessor(settings: preprocess.Settings) -> preprocess.Preprocessor:
  """One detector + face-mesh model per process (worker or main), built on first use."""
  if _WORKER.get("settings") != settings:
    _WORKER["settings"] = settings
    _WORKER["pre"] = preprocess.Preprocessor(settings, depth=True)
  return _WORKER["pre"]


def cache_key(settings: preprocess.Settings, jpeg_quality: int, video: Video,
              version: str) -> str:
  """The cache file name of `video`'s examples: what they depend on, hashed."""
  stat = video.path.stat()
  what = {"file": str(video.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
          "video": {k: str(v) for k, v in dataclasses.asdict(video).items()},
          "settings": repr(settings), "jpeg_quality": jpeg_quality, "version": version,
          # a refit calibration changes the boxes under the same detector name
          "detector": face.detector_version(settings.face_detector)}
  return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32] + ".pkl"


def _process_cached(args) -> tuple[str, list, dict, bool]:
  """_process_video's result for one video, from the cache where a killed build left it (then
  True), else computed and kept there."""
  cache, (settings, jpeg_quality, video), version = args
  path = cache / cache_key(settings, jpeg_quality, video, version)
  if path.is_file():
    try:
      with open(path, "rb") as f:
        return (*pickle.load(f), True)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
      logging.warning("cached examples %s are unreadable: preprocessing %s again", path,
                      video.path)
  result = _process_video((settings, jpeg_quality, video))
  cache.mkdir(parents=True, exist_ok=True)
  atomic.write_bytes(path, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
  return (*result, False)


def _process_video(args) -> tuple[str, list, dict]:
  """All stored examples of one video (bytes, to cross process boundaries) and its report."""
  settings, jpeg_quality, video = args
  started = time.process_time()
  live = video.species == "live"
  examples, missing, no_depth, sampled = [], [], [], 0
  try:
    for frame in _preprocessor(settings).frames(video.path, live=live, fix=video.fix):
      sampled += 1
      if frame.crop is None:
        missing.append(frame.index)
        continue
      # A live face without a mesh fit is stored all the same (depth 0, depth_valid False):
      # dropping it would filter evaluation data by label. An attack's zero depth is a label.
      depth_valid = not live or frame.depth is not None
      if not depth_valid:
        no_depth.append(frame.index)
      size = settings.crop_size
      depth = frame.depth if live and depth_valid else np.zeros((size, size), np.uint8)
      mask = np.full((size, size), 255 if live else 0, np.uint8)
      example = features.make_example(
          image=frame.crop.image, depth=depth, mask=mask, face_box=frame.crop.face_box,
          label=int(live), species=video.species, video_id=video.video_id,
          subject=video.subject, domain=video.domain, device=video.device, frame=frame.index,
          depth_valid=depth_valid, jpeg_quality=jpeg_quality)
      example = {k: v.getvalue() if hasattr(v, "getvalue") else v for k, v in example.items()}
      examples.append((f"{video.video_id}/{frame.index}", example))
  except Exception as e:  # name the video: a worker's traceback alone does not
    raise RuntimeError(f"preprocessing {video.path} ({video.video_id}) failed: "
                       f"{type(e).__name__}: {e}") from e
  if sampled == 0:
    raise RuntimeError(f"{video.path} ({video.video_id}) yielded no frame although its first "
                       "frame decoded in the archive check")
  # Tag honoured / fix skipped, or too few faces (with the turn that finds more): named here.
  checks = _preprocessor(settings).orientation_checks(video.path, video.fix, sampled,
                                                      sampled - len(missing))
  for line in preprocess.orientation_warnings(video.video_id, checks):
    logging.warning("%s", line)
  return video.video_id, examples, dict(sampled=sampled, stored=len(examples),
                                        no_face=missing, no_depth=no_depth, live=live,
                                        cpu_s=round(time.process_time() - started, 3), **checks)


class _Progress:
  """Videos done of a split, at most every PERIOD seconds: rate and ETA."""
  PERIOD = 30.0

  def __init__(self, name: str, split: str, total: int):
    self.name, self.split, self.total = name, split, total
    self.start = self.last = time.perf_counter()
    self.done = self.reused = 0

  def update(self, reused: bool) -> None:
    self.done += 1
    self.reused += reused
    now = time.perf_counter()
    if now - self.last < self.PERIOD and self.done < self.total:
      return
    self.last = now
    made = self.done - self.reused
    rate = made / max(now - self.start, 1e-9)
    eta = (self.total - self.done) / rate if rate > 0 else float("nan")
    logging.info("%s %s: %d/%d videos (%d from the cache of a killed build), %.2f videos/s, "
                 "ETA %s", self.name, self.split, self.done, self.total, self.reused, rate,
                 "-" if eta != eta else f"{eta / 60:.1f} min")


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the real-dataset builders; subclasses set SPECIES, SPLITS and list `_videos`."""

  BUILDER_CONFIGS = list(CONFIGS)
  SPECIES: tuple[str, ...] = ()
  SPLITS: tuple[str, ...] = ()
  HOMEPAGE = ""
  # Set by pyramid_fas_jax.data.builders.build (every core by default).
  num_workers = 1
  require_complete = True   # False: build from the videos present (partial download)

  @abc.abstractmethod
  def _videos(self, root: pathlib.Path) -> list[Video]:
    """Every video the official archive under `root` should hold."""

  def _archive_problems(self, root: pathlib.Path, videos: list[Video]) -> list[str]:
    """Problems of a complete archive beyond missing or unreadable videos (counts, protocol
    files that disagree with pyramid_fas_jax.protocols); one line each."""
    del root, videos
    return []

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(features=features.fas_features(self.SPECIES),
                                          homepage=self.HOMEPAGE)

  def _root(self, manual_dir) -> pathlib.Path:
    """The archive root: manual_dir/<name> if it exists, else manual_dir itself."""
    manual_dir = pathlib.Path(manual_dir)
    nested = manual_dir / self.name
    return nested if nested.is_dir() else manual_dir

  def _checked_videos(self, root: pathlib.Path) -> list[Video]:
    videos = self._videos(root)
    ids = [v.video_id for v in videos]
    if len(set(ids)) != len(ids):
      raise ValueError(f"{self.name}: duplicate video ids in the listing of {root}")
    paths = [v.path for v in videos]
    # Opening every video and decoding a frame: minutes on a full archive.
    problems = dict(zip(paths, workers.imap(video_lib.check_readable, paths, self.num_workers,
                                            _init_worker)))
    missing = [p for p, why in problems.items() if why == "missing"]
    # The readers' errors name the file themselves; "no decodable frame" does not.
    broken = [why if str(p) in why else f"{p}: {why}" for p, why in problems.items()
              if why and why != "missing"]
    lines = broken + ([f"{p}: missing" for p in missing] if self.require_complete else [])
    if self.require_complete:
      lines += self._archive_problems(root, videos)
    if lines:
      raise ValueError(f"{self.name}: the archive under {root} does not match the official "
                       f"layout ({len(lines)} problem(s); see the dataset's README):\n  "
                       + "\n  ".join(lines))
    present = [v for v in videos if problems[v.path] is None]
    if missing:
      logging.warning("%s: building from %d of %d videos (%d missing under %s)", self.name,
                      len(present), len(videos), len(missing), root)
    if not present:
      raise ValueError(f"{self.name}: no video of the official layout under {root}")
    return present

  @property
  def cache_dir(self) -> pathlib.Path:
    """Where finished videos are kept until the build finishes (see the module docstring)."""
    return pathlib.Path(self.data_path).parent / f".video_cache_{self.version}"

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager, download_config)
    # Record positions are known only now that the splits are written.
    metadata_index.write(self, self._unacquired)
    # What a killed build kept is in the dataset now (TFDS renames it into place after this).
    shutil.rmtree(self.cache_dir, ignore_errors=True)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    videos = self._checked_videos(self._root(dl_manager.manual_dir))
    self._unacquired = {}   # split -> its videos without a stored frame, filled as it is built
    return {split: self._generate_examples(split, [v for v in videos if v.split == split])
            for split in self.SPLITS}

  def _generate_examples(self, split: str, videos: list[Video]):
    cfg = self.builder_config
    videos = sorted(videos, key=lambda v: v.video_id)
    tasks = [(self.cache_dir, (cfg.settings(), cfg.jpeg_quality, v), str(self.version))
             for v in videos]
    report, progress = {}, _Progress(self.name, split, len(tasks))
    for video_id, examples, stats, reused in workers.imap(
        _process_cached, tasks, self.num_workers, _init_worker, name=lambda t: t[1][2].path):
      report[video_id] = stats
      progress.update(reused)
      yield from examples
    self._write_report(split, report)
    self._unacquired[split] = [
        dict(video_id=v.video_id, species=v.species, label=int(v.species == "live"),
             subject=v.subject, domain=v.domain, device=v.device)
        for v in videos if report[v.video_id]["stored"] == 0]

  def _write_report(self, split: str, report: dict) -> None:
    summary = dict(
        videos=len(report),
        frames_sampled=sum(r["sampled"] for r in report.values()),
        frames_stored=sum(r["stored"] for r in report.values()),
        frames_without_face=sum(len(r["no_face"]) for r in report.values()),
        frames_without_depth=sum(len(r["no_depth"]) for r in report.values()),
        videos_without_frames=sorted(v for v, r in report.items() if r["stored"] == 0),
        videos_with_low_face_rate=sorted(v for v, r in report.items() if "low_face_rate" in r),
        cpu_s=round(sum(r.get("cpu_s", 0.0) for r in report.values()), 1),
        per_video=report)
    path = pathlib.Path(self.data_path) / "face_report.json"
    full = json.loads(path.read_text()) if path.exists() else {}
    full[split] = summary
    atomic.write_text(path, json.dumps(full, indent=1, sort_keys=True))
    logging.info("%s %s: %d videos, %d of %d sampled frames stored (with a face); %d without a "
                 "face (not stored); %d depth maps, %d stored without depth; %d videos without "
                 "any frame (failures to acquire); %.0f CPU-s of preprocessing", self.name,
                 split, len(report), summary["frames_stored"], summary["frames_sampled"],
                 summary["frames_without_face"],
                 sum(r["stored"] - len(r["no_depth"]) for r in report.values() if r["live"]),
                 summary["frames_without_depth"], len(summary["videos_without_frames"]),
                 summary["cpu_s"])
    if summary["videos_without_frames"]:
      logging.warning("%s %s: no frame stored for %d video(s): %s", self.name, split,
                      len(summary["videos_without_frames"]), summary["videos_without_frames"])
    if summary["videos_with_low_face_rate"]:
      logging.warning("%s %s: a face in fewer than half the sampled frames of %d video(s), see "
                      "low_face_rate in %s: %s", self.name, split,
                      len(summary["videos_with_low_face_rate"]), path,
                      summary["videos_with_low_face_rate"])
