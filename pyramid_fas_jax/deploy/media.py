"""Images, videos and directories of them -> the network inputs evaluation would make of them.

Every sampled frame gets the dataset builders' face crop (preprocess.Preprocessor: MTCNN box
smoothed over frames, context crop) and then evaluation's crop and normalisation
(augment.eval_image), so a file is scored as evaluation scores the examples a build stores of
it. Videos are read upright, their container's rotation tag honoured (video.read_frames). Frames
without a face get no row and are listed. Used by `pyramid-fas predict` and by the JAX-free
runtime (pyramid_fas_jax.deploy.runtime): this module imports no JAX (augment.py neither).
Files come from users: each call decodes within one limits.Budget (the settings' limits: pixels
per image or frame, frames per video, decoded bytes in all), every size checked before decoding.
"""

import dataclasses
import pathlib

import numpy as np

from pyramid_fas_jax.data import augment
from pyramid_fas_jax.evaluation import report, scorefile
from pyramid_fas_jax.faces import limits as limits_lib
from pyramid_fas_jax.faces import preprocess
from pyramid_fas_jax.faces import video as video_lib


@dataclasses.dataclass
class Media:
  """Network inputs of the face frames of some files, and what could not be scored."""
  images: np.ndarray        # float32 (N, size, size, 3), normalised
  sources: np.ndarray       # (N,) str: the file of each row
  frames: np.ndarray        # (N,) int32: frame index in that file (0 for an image)
  files: list[str]          # every file read, in order
  no_face: list[tuple[str, int]]   # (file, frame index) of sampled frames without a face
  # Videos that ended before their header's frame count (video.Truncation).
  truncated: list[video_lib.Truncation] = dataclasses.field(default_factory=list)
  # (N, 4) float: each row's smoothed face box x0, y0, x1, y1, source pixels.
  boxes: np.ndarray | None = None

  def missing(self, file: str) -> list[int]:
    """Sampled frames of `file` in which no face was found."""
    return [i for f, i in self.no_face if f == file]


def is_media(path) -> bool:
  return video_lib.is_image(path) or video_lib.is_video(path)


def media_files(path) -> list[pathlib.Path]:
  """The image and video files `path` names: itself, or those directly inside it (sorted; other
  files there are passed over)."""
  path = pathlib.Path(path)
  kinds = (f"images ({' '.join(video_lib.IMAGE_SUFFIXES)}) and videos "
           f"({' '.join(video_lib.VIDEO_SUFFIXES)})")
  if path.is_dir():
    files = sorted(p for p in path.iterdir() if p.is_file() and is_media(p))
    if not files:
      raise ValueError(f"input {path}: the directory holds none of the {kinds} that are read")
    return files
  if not path.exists():
    raise FileNotFoundError(f"input {path} does not exist")
  if not is_media(path):
    raise ValueError(f"input {path}: unsupported extension {path.suffix or '(none)'!r}; "
                     f"expected {kinds}, or a directory of them")
  return [path]


def load(path, input_params, settings: preprocess.Settings = preprocess.Settings(),
         deadline: float | None = None) -> Media:
  """Evaluation's input for every sampled frame with a face of the files `path` names.

  `input_params` has the fields of config.input (size, mean, std, eval_scale), with which
  augment.eval_image makes a network input of each face crop. All files together decode
  within one budget of `settings.limits` (default: limits.Limits.from_env()), until
  `deadline` (time.monotonic() seconds) if given.

  Raises:
    ValueError: if `path` names no image or video, or no sampled frame has a face;
      limits.TooLarge (a ValueError) if a file is over a limit, before it is decoded.
    OSError: if a file cannot be read, or is a truncated or corrupt image (video.read_image).
    limits.TimedOut: past `deadline`.
  """
  files = media_files(path)
  budget = limits_lib.Budget(settings.limits, deadline)
  pre = preprocess.Preprocessor(settings, depth=False)
  images, sources, frames, no_face, truncated, boxes = [], [], [], [], [], []
  for file in files:
    for frame in pre.frames(file, live=False, on_truncated=truncated.append, budget=budget):
      if frame.crop is None:
        no_face.append((str(file), frame.index))
        continue
      images.append(augment.eval_image(input_params, frame.crop.image, frame.crop.face_box))
      boxes.append(frame.box)
      sources.append(str(file))
      frames.append(frame.index)
  if not images:
    raise ValueError(f"input {path}: no face found in any frame ({len(no_face)} sampled from "
                     f"{len(files)} file{'s' if len(files) > 1 else ''})")
  return Media(np.stack(images), np.asarray(sources), np.asarray(frames, np.int32),
               [str(f) for f in files], no_face, truncated=truncated,
               boxes=np.asarray(boxes, np.float64).reshape(-1, 4))


def video_aggregation(config) -> str:
  """How evaluation scores a video from its frames (config.eval.video_agg); configs that score
  frames (None) get the mean."""
  how = report.video_agg_value(config.eval.video_agg) or "mean"
  if how not in scorefile.VIDEO_AGGREGATIONS:
    raise ValueError(f"config.eval.video_agg={how!r} is not 'mean', 'median' or None")
  return how


def per_source(media: Media, scores: np.ndarray, how: str = "mean") -> tuple[np.ndarray, ...]:
  """(files with at least one face, the mean or median of their frame scores), input order."""
  # Evaluation's own per-video aggregation, with each file as a video (labels are unknown here).
  videos = scorefile.aggregate_videos(scorefile.ScoreSet.from_arrays(
      scores, np.ones(len(scores), np.int64), video_ids=media.sources), how)
  by_file = dict(zip(videos.video_ids.tolist(), videos.scores.tolist()))
  names = [f for f in media.files if f in by_file]
  return np.asarray(names), np.asarray([by_file[f] for f in names], np.float32)


def outputs(media: Media, scores: np.ndarray, how: str) -> dict:
  """What `predict` writes beside the network's outputs: each row's file and frame, per-file
  scores, and the sampled frames without a face."""
  video_source, video_score = per_source(media, scores, how)
  return dict(
      source=media.sources, frame=media.frames, video_source=video_source,
      video_score=video_score,
      no_face_source=np.asarray([f for f, _ in media.no_face], dtype=str),
      no_face_frame=np.asarray([i for _, i in media.no_face], np.int32))
