"""Reading the frames of a video (or one image): frame sampling and per-video orientation fixes.

Frames are read as stored: OpenCV's automatic rotation from container metadata is switched off,
so what a builder sees does not depend on the OpenCV build, and a dataset's known orientation
defects are undone explicitly with `FIXES` (the lists of such videos were made from the raw
stored frames).
"""

import pathlib
from typing import Iterator

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Containers OpenCV's FFmpeg backend reads; what the datasets ship (.avi, .mov, .mp4) included.
VIDEO_SUFFIXES = (".avi", ".mov", ".mp4", ".m4v", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                  ".flv", ".3gp")

# Name -> function applied to each RGB frame of a video stored with that defect.
FIXES = {
    "rotate_180": lambda f: cv2.rotate(f, cv2.ROTATE_180),
    "rotate_90_cw": lambda f: cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE),
    "rotate_90_ccw": lambda f: cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE),
    "flip_horizontal": lambda f: cv2.flip(f, 1),
    "flip_vertical": lambda f: cv2.flip(f, 0),
}


def sample_indices(num_frames: int, frame_step: int = 1, max_frames: int = 0) -> list[int]:
  """Every `frame_step`-th frame from 0; if that is more than `max_frames` (> 0), that many
  spread evenly over them (first and last included), so a cap never keeps only the start."""
  if frame_step < 1:
    raise ValueError(f"frame_step={frame_step} must be >= 1")
  if max_frames < 0:
    raise ValueError(f"max_frames={max_frames} must be >= 0 (0 = no limit)")
  candidates = list(range(0, max(num_frames, 0), frame_step))
  if max_frames and len(candidates) > max_frames:
    picks = np.linspace(0, len(candidates) - 1, max_frames).round().astype(int)
    candidates = [candidates[i] for i in picks]
  return candidates


def is_image(path) -> bool:
  return pathlib.Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path) -> bool:
  return pathlib.Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: pathlib.Path) -> cv2.VideoCapture:
  cap = cv2.VideoCapture(str(path))
  if not cap.isOpened():
    raise IOError(f"OpenCV cannot open video {path}")
  cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
  return cap


def check_readable(path) -> str | None:
  """None if the first frame of `path` decodes, else why not (for the builders' checks)."""
  path = pathlib.Path(path)
  if not path.is_file():
    return "missing"
  if is_image(path):
    return None if cv2.imread(str(path)) is not None else "not a readable image"
  cap = cv2.VideoCapture(str(path))
  try:
    if not cap.isOpened():
      return "OpenCV cannot open it"
    ok, _ = cap.read()
    return None if ok else "no decodable frame"
  finally:
    cap.release()


def read_frames(path, frame_step: int = 1, max_frames: int = 0,
                fix: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
  """(frame index, uint8 RGB frame) of the sampled frames of a video, or (0, image).

  The sample comes from the header's frame count (counted by reading when the header has
  none); a video that ends before its count yields the sampled frames it has.
  """
  path = pathlib.Path(path)
  if fix is not None and fix not in FIXES:
    raise ValueError(f"unknown fix {fix!r} for {path}; expected one of {sorted(FIXES)}")
  apply = FIXES[fix] if fix else (lambda f: f)
  if is_image(path):
    bgr = cv2.imread(str(path))
    if bgr is None:
      raise IOError(f"cannot read image {path}")
    yield 0, apply(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return
  cap = _open(path)
  try:
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if count <= 0:  # some containers do not say: count by grabbing, then rewind
      count = 0
      while cap.grab():
        count += 1
      cap.release()
      cap = _open(path)
    wanted = sample_indices(count, frame_step, max_frames)
    position = 0
    for index in wanted:
      while position < index:  # grab() advances without retrieving and converting the frame
        if not cap.grab():
          return
        position += 1
      ok, bgr = cap.read()
      if not ok:
        return
      position += 1
      yield index, apply(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
  finally:
    cap.release()
