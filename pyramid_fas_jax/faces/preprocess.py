"""One video (or image) -> what training sees: sampled frames, smoothed face boxes (MTCNN, or
BlazeFace calibrated onto MTCNN's boxes: Settings.face_detector), context crops and, for live
faces, face-mesh pseudo depth aligned with each crop.

Shared by the dataset builders and `pyramid-fas preprocess`, so a user can look at exactly the
crops and depth maps a build stores. Frames without a face, and live frames whose face the
mesh model rejects, are listed in the result (`missing`, `no_depth`) and produce no crop.
Frames are read upright (video.read_frames: rotation tag, then an untagged video's fix);
`Preprocessor.orientation_checks` reports a video that still looks turned.
"""

import collections
import dataclasses
from collections.abc import Iterator

import numpy as np

from pyramid_fas_jax.faces import face as face_lib
from pyramid_fas_jax.faces import face_mesh
from pyramid_fas_jax.faces import limits as limits_lib
from pyramid_fas_jax.faces import video as video_lib

# A video with a face in fewer than this share of its sampled frames is reported, with the
# quarter turn that finds more faces on up to ROTATION_PROBE_FRAMES of them (spread evenly).
LOW_FACE_RATE = 0.5
ROTATION_PROBE_FRAMES = 8
# Clockwise degrees on top of how an untagged, unfixed video was read -> the fix that does it.
_FIX_FOR_TURN = {90: "rotate_90_cw", 180: "rotate_180", 270: "rotate_90_ccw"}


@dataclasses.dataclass(frozen=True)
class Settings:
  crop_size: int = 320        # side of the stored crop, pixels
  context: float = 1.5        # crop side / the face box's longer side
  frame_step: int = 1         # keep every k-th frame
  max_frames: int = 0         # at most this many per video, spread evenly (0 = all)
  detect_size: int = 640      # MTCNN runs on frames downscaled to this longer side
  face_detector: str = "mtcnn"   # one of face.DETECTORS; MTCNN is the paper's
  smooth: int = 5             # median window over detected frames (1 = off)
  min_presence: float = 0.5   # face-mesh presence probability a live frame needs for depth
  limits: limits_lib.Limits | None = None   # what a file may declare; None: Limits.from_env()

  def __post_init__(self):
    face_lib.check_detector(self.face_detector)


@dataclasses.dataclass
class Frame:
  index: int                  # frame index in the source video
  box: tuple | None           # smoothed face box (x0, y0, x1, y1), source pixels; None: no face
  detection: face_lib.Detection | None
  crop: face_lib.Crop | None = None
  depth: np.ndarray | None = None   # uint8 (size, size): depth * 255, when computed


@dataclasses.dataclass
class Result:
  source: str
  live: bool
  frames: list[Frame]

  @property
  def missing(self) -> list[int]:
    """Indices of sampled frames in which the detector found no face."""
    return [f.index for f in self.frames if f.box is None]

  @property
  def no_depth(self) -> list[int]:
    """Indices of live frames with a face but no depth (the mesh model rejected the face);
    empty for attacks, which have no depth to compute."""
    return [f.index for f in self.frames if self.live and f.crop is not None and f.depth is None]


class Preprocessor:
  """Holds the detector and (if depth is wanted) the face-mesh model; one per process."""

  def __init__(self, settings: Settings = Settings(), depth: bool = True):
    if settings.smooth < 1 or settings.smooth % 2 == 0:
      raise ValueError(f"smooth={settings.smooth} must be odd and >= 1")
    self.settings = settings
    self.detector = face_lib.make_detector(settings.face_detector, settings.detect_size)
    self.mesh = face_mesh.FaceMesh() if depth else None

  def __call__(self, path, *, live: bool, fix: str | None = None, on_truncated=None) -> Result:
    """All sampled frames of `path`, with crops, and depth for each when `live`."""
    return Result(source=str(path), live=live,
                  frames=list(self.frames(path, live=live, fix=fix, on_truncated=on_truncated)))

  def frames(self, path, *, live: bool, fix: str | None = None, on_truncated=None,
             budget: limits_lib.Budget | None = None) -> Iterator[Frame]:
    """The sampled frames of `path` in order, each with its crop (and depth when `live` and
    depth is on) or with box None. A video that ends before its header's frame count is
    reported to `on_truncated`; sizes are checked against the settings' limits and each frame
    charged to `budget`, if given (video.read_frames).

    Streams: a frame waits only until the detections its smoothing window needs are in, so
    memory holds a few full-resolution frames, not the video.
    """
    s = self.settings
    half = s.smooth // 2
    geometries = []                  # box_geometry of every detection so far
    pending = collections.deque()    # (frame, rank among detections, rgb) awaiting smoothing
    for index, rgb in video_lib.read_frames(path, s.frame_step, s.max_frames, fix,
                                            on_truncated, s.limits, budget):
      detection = self.detector.detect(rgb)
      frame = Frame(index=index, box=None, detection=detection)
      if detection is None:
        pending.append((frame, None, None))
      else:
        pending.append((frame, len(geometries), rgb))
        geometries.append(face_lib.box_geometry(detection.box))
      while pending and (pending[0][1] is None or pending[0][1] + half < len(geometries)):
        yield self._finish(*pending.popleft(), geometries, live)
    while pending:
      yield self._finish(*pending.popleft(), geometries, live)

  def orientation_checks(self, path, fix: str | None, sampled: int, faces: int) -> dict:
    """What a build's face report says of the orientation of video `path`, read with `fix`, in
    which `faces` of the `sampled` frames had a face; {} when there is nothing to say.

    `orientation`, for a video with a rotation tag or a listed fix: {rotation_tag (clockwise
    degrees), fix, fix_applied} (a fix is skipped on a tagged video). `low_face_rate`, for a
    video with faces in fewer than LOW_FACE_RATE of its sampled frames: {faces, sampled,
    frames_tried, faces_by_rotation: faces found on the tried frames turned 0/90/180/270 degrees
    clockwise on top of how they were read, suggested_rotation: the turn that finds the most,
    None if none beats the frames as read, suggested_fix: the `video.FIXES` entry that does it,
    where a fix can (an untagged video without one)}.
    """
    # Nothing is turned here: a build stores the frames as read and the report tells the user.
    # A model trained on silently re-rotated data would hide a broken archive (a wrong tag, a
    # bad decode, a mislabelled file) that is better fixed, and listed, at its source.
    tag = video_lib.rotation_tag(path)
    checks = {}
    if tag or fix:
      checks["orientation"] = dict(rotation_tag=tag, fix=fix,
                                   fix_applied=video_lib.applied_fix(tag, fix) is not None)
    if sampled and faces < LOW_FACE_RATE * sampled:
      found = self._faces_by_rotation(path, fix, sampled)
      best = max(video_lib.ROTATIONS[1:], key=lambda r: found[r])
      turn = best if found[best] > found[0] else None
      checks["low_face_rate"] = dict(
          faces=faces, sampled=sampled, frames_tried=min(sampled, ROTATION_PROBE_FRAMES),
          faces_by_rotation={str(r): n for r, n in found.items()}, suggested_rotation=turn,
          suggested_fix=_FIX_FOR_TURN.get(turn) if tag == 0 and fix is None else None)
    return checks

  def _faces_by_rotation(self, path, fix, sampled: int) -> dict[int, int]:
    s = self.settings
    tried = set(np.linspace(0, sampled - 1, min(sampled, ROTATION_PROBE_FRAMES)).round()
                .astype(int).tolist())
    found = dict.fromkeys(video_lib.ROTATIONS, 0)
    frames = video_lib.read_frames(path, s.frame_step, s.max_frames, fix,
                                   on_truncated=lambda _: None,  # told on the first reading
                                   limits=s.limits)
    for position, (_, rgb) in enumerate(frames):
      if position in tried:
        for r in video_lib.ROTATIONS:
          found[r] += self.detector.detect(video_lib.rotate(rgb, r)) is not None
    return found

  def _finish(self, frame: Frame, rank, rgb, geometries, live: bool) -> Frame:
    if rank is None:
      return frame
    frame.box = face_lib.median_box(geometries, rank, self.settings.smooth)
    frame.crop = face_lib.context_crop(rgb, frame.box, self.settings.context,
                                       self.settings.crop_size)
    if live and self.mesh is not None:
      frame.depth = self._depth(rgb, frame)
    return frame

  def _depth(self, rgb: np.ndarray, frame: Frame) -> np.ndarray | None:
    # The mesh model sees the frame's own detection (its keypoints level the eyes); the depth
    # is drawn in the smoothed crop, like the image.
    points, presence = self.mesh.landmarks(rgb, frame.detection.box, frame.detection.keypoints)
    if presence < self.settings.min_presence:
      return None
    depth = face_mesh.rasterize_depth(frame.crop.to_crop(points), self.mesh.triangles,
                                      self.settings.crop_size)
    return np.round(depth * 255).astype(np.uint8)


def orientation_warnings(name: str, checks: dict) -> list[str]:
  """One line per finding of `Preprocessor.orientation_checks` on video `name`."""
  lines = []
  o = checks.get("orientation")
  if o and o["fix"] and not o["fix_applied"]:
    lines.append(f"{name}: its container's {o['rotation_tag']}-degree rotation tag is honoured "
                 f"and the fix {o['fix']} skipped (fixes apply to untagged videos only)")
  low = checks.get("low_face_rate")
  if low:
    line = f"{name}: a face in only {low['faces']} of {low['sampled']} sampled frames; "
    turn = low["suggested_rotation"]
    if turn is None:
      line += "no quarter turn of the frames finds more"
    else:
      line += (f"turned {turn} degrees clockwise, {low['faces_by_rotation'][str(turn)]} of "
               f"{low['frames_tried']} tried frames have one (as read: "
               f"{low['faces_by_rotation']['0']}): is it stored rotated?")
      if low["suggested_fix"]:
        line += f" (the fix {low['suggested_fix']} does it)"
    lines.append(line)
  return lines
