"""Reading the frames of a video (or one image) upright: rotation tags, per-video fixes and
frame sampling.

Orientation, in this order:
1. The container's rotation tag (the display matrix a phone writes, e.g. "rotate 90 degrees
   clockwise to display") is honoured: every frame is turned as a player would show it.
   Videos are opened with OpenCV's FFmpeg backend, which reads the tag
   (CAP_PROP_ORIENTATION_META: clockwise degrees); its own auto-rotation is switched off and
   the tag applied here, so the pixels depend neither on that setting's default nor on which
   backend a given OpenCV build would pick (not every backend reads tags).
2. A dataset's per-video fix (`FIXES`) is applied on top, and only to a video whose container
   carries no rotation tag. The fix lists were made with readers that ignored tags, so for a
   tagged video a listed fix may undo what the tag already did (a 180-degree tag plus
   `rotate_180` is upside down again); for such a video the tag is honoured, the fix skipped,
   and the builders say so (`preprocess.Preprocessor.orientation_checks`). A fix is meant for
   pixels that are wrong whatever the tag says.
Images are read by cv2.imread, which already applies their EXIF orientation.

Damaged files are named, not read silently: OpenCV's JPEG decoder fills a truncated file's
missing rows with grey and returns the image, so a JPEG is also decoded by Pillow, which
refuses it; a video that ends before the frame count its header promises is reported
(`Truncation`: a warning unless the caller collects them) with both counts.

Sizes are checked before decoding (faces/limits.py): an image's or a video's declared width x
height against max_pixels, a video's frame count against max_video_frames (a header that claims
more, or nothing, is counted by reading, up to that many), and with a `limits.Budget` every frame
is charged before it is decoded. Nothing here is sized by a header's claim.
"""

import dataclasses
import pathlib
import warnings
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from pyramid_fas_jax.faces import limits as limits_lib

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# Containers OpenCV's FFmpeg backend reads; what the datasets ship (.avi, .mov, .mp4) included.
VIDEO_SUFFIXES = (".avi", ".mov", ".mp4", ".m4v", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                  ".flv", ".3gp")

# Clockwise degrees -> cv2.rotate code.
_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180,
              270: cv2.ROTATE_90_COUNTERCLOCKWISE}
ROTATIONS = (0, 90, 180, 270)


def rotate(frame: np.ndarray, degrees: int) -> np.ndarray:
  """`frame` turned `degrees` (0, 90, 180 or 270) clockwise."""
  return frame if degrees % 360 == 0 else cv2.rotate(frame, _ROTATIONS[degrees % 360])


# Name -> function applied to each RGB frame of an untagged video stored with that defect.
FIXES = {
    "rotate_180": lambda f: rotate(f, 180),
    "rotate_90_cw": lambda f: rotate(f, 90),
    "rotate_90_ccw": lambda f: rotate(f, 270),
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
  candidates = range(0, max(num_frames, 0), frame_step)   # lazy: only the picks are listed
  if max_frames and len(candidates) > max_frames:
    picks = np.linspace(0, len(candidates) - 1, max_frames).round().astype(int)
    return [candidates[i] for i in picks]
  return list(candidates)


@dataclasses.dataclass(frozen=True)
class Truncation:
  """A video whose stream ended before the frame count in its header."""
  path: str
  promised: int   # frames the header counts
  decoded: int    # frames that decoded before the stream ended

  def __str__(self) -> str:
    return (f"{self.path}: its header promises {self.promised} frames but only {self.decoded} "
            f"decode (a truncated or corrupt file?); the sampled frames from {self.decoded} on "
            "are missing")


def _warn(truncation: Truncation) -> None:
  warnings.warn(str(truncation), RuntimeWarning, stacklevel=3)


def is_image(path) -> bool:
  return pathlib.Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video(path) -> bool:
  return pathlib.Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: pathlib.Path) -> tuple[cv2.VideoCapture, int]:
  """The capture of `path`, auto-rotation off, and its rotation tag (clockwise degrees)."""
  if not cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
    raise OSError(f"cannot read video {path}: this OpenCV ({cv2.__version__}) has no FFmpeg "
                  "backend, which videos are read with; install opencv-python-headless")
  cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
  if not cap.isOpened():
    raise OSError(f"OpenCV cannot open video {path}")
  if not cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0):  # else its own turn would add to ours
    cap.release()
    raise OSError(f"cannot read video {path} upright: this OpenCV ({cv2.__version__}) cannot "
                  "switch off its auto-rotation; use opencv-python-headless >= 4.8")
  tag = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META))) % 360
  if tag not in ROTATIONS:
    cap.release()
    raise OSError(f"video {path} has a rotation tag of {tag} degrees; only quarter turns are "
                  "supported: re-encode it upright (ffmpeg -i IN OUT does)")
  return cap, tag


def rotation_tag(path) -> int:
  """Clockwise degrees (0, 90, 180, 270) the container of video `path` says to turn its stored
  frames by for display; 0 for an image or an untagged video."""
  if is_image(path):
    return 0
  cap, tag = _open(pathlib.Path(path))
  cap.release()
  return tag


def applied_fix(tag: int, fix: str | None) -> str | None:
  """The per-video fix that applies to a video with rotation tag `tag`: `fix` if the container
  carries no tag; None if it does (the tag is honoured instead; see the module docstring)."""
  return fix if tag == 0 else None


def check_readable(path) -> str | None:
  """None if the first frame of `path` decodes, else why not (for the builders' checks)."""
  path = pathlib.Path(path)
  if not path.is_file():
    return "missing"
  if is_image(path):
    try:
      read_image(path)
    except OSError as e:
      return str(e)
    return None
  try:
    cap, _ = _open(path)  # what read_frames opens, so a tag it refuses is named here
  except OSError as e:
    return str(e)
  try:
    ok, _ = cap.read()
    return None if ok else "no decodable frame"
  finally:
    cap.release()


def _is_jpeg(path: pathlib.Path) -> bool:
  with open(path, "rb") as f:
    return f.read(3) == b"\xff\xd8\xff"


def image_size(path, limits: limits_lib.Limits) -> tuple[int, int] | None:
  """(width, height) an image file's header declares, read without decoding its pixels; None
  where Pillow does not know the format (OpenCV's own limit then applies)."""
  from PIL import Image
  # Pillow refuses far past its MAX_IMAGE_PIXELS without saying the size; ours says it, so
  # Pillow's limit is kept at least as high as ours.
  Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, limits.max_pixels)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      with Image.open(path) as image:
        return image.size
  except Image.DecompressionBombError:
    return _plugin_size(path, Image) or (limits.max_pixels + 1, 1)
  except (OSError, SyntaxError, ValueError):
    return None


def _plugin_size(path, Image) -> tuple[int, int] | None:
  """The header's size read by the format's own Pillow plugin, which (unlike Image.open) does
  not refuse a large one; None if that fails."""
  try:
    factory = Image.OPEN[Image.registered_extensions()[pathlib.Path(path).suffix.lower()]][0]
    with open(path, "rb") as f:
      return factory(f, str(path)).size
  except Exception:  # noqa: BLE001 - any failure: the caller refuses by Pillow's word alone
    return None


def read_image(path, limits: limits_lib.Limits | None = None,
               budget: limits_lib.Budget | None = None) -> np.ndarray:
  """The uint8 RGB pixels of an image file, EXIF orientation applied.

  Its header's size is checked against `limits` (default: limits.Limits.from_env()) and
  charged to `budget` before the pixels are decoded.

  Raises:
    IOError: naming the file, if it cannot be decoded, or is a truncated or corrupt JPEG.
    limits.TooLarge: if it declares more pixels than the limits allow.
  """
  path = pathlib.Path(path)
  limits = budget.limits if budget is not None else limits or limits_lib.Limits.from_env()
  size = image_size(path, limits)
  if size is not None:
    (budget or limits_lib.Budget(limits)).charge(path, *size)
  bgr = cv2.imread(str(path))
  if bgr is None:
    raise OSError(f"cannot read image {path}: not an image OpenCV decodes, or a truncated or "
                  "corrupt file")
  if _is_jpeg(path):
    # OpenCV's libjpeg only warns on stderr and fills what is missing; Pillow refuses it.
    from PIL import Image
    try:
      with Image.open(path) as image:
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
      raise OSError(f"image {path} is a truncated or corrupt JPEG ({e}); OpenCV would decode "
                    "it with the missing part grey: re-export it, or leave it out") from None
  if size is None:  # a format Pillow does not read: charged once decoded, before converting
    (budget or limits_lib.Budget(limits)).charge(path, bgr.shape[1], bgr.shape[0])
  return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _frame_count(cap, path: pathlib.Path, limits: limits_lib.Limits) -> tuple[int, bool]:
  """(frames of the video open in `cap`, whether they were counted by reading). A header that
  claims nothing or more than max_video_frames is not believed: its frames are grabbed and
  counted, at most max_video_frames of them, and a video with more is refused."""
  count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
  if 0 < count <= limits.max_video_frames:
    return count, False
  counted = 0
  while counted <= limits.max_video_frames and cap.grab():
    counted += 1
  if counted > limits.max_video_frames:
    raise limits_lib.TooLarge(
        f"video {path} has over {limits.max_video_frames:,} frames (its header says "
        f"{count:,}): cut it shorter, or raise the limit (${limits_lib.ENV['max_video_frames']})")
  return counted, True


def read_frames(path, frame_step: int = 1, max_frames: int = 0, fix: str | None = None,
                on_truncated: Callable[[Truncation], None] | None = None,
                limits: limits_lib.Limits | None = None,
                budget: limits_lib.Budget | None = None) -> Iterator[tuple[int, np.ndarray]]:
  """(frame index, uint8 RGB frame) of the sampled frames of a video, upright, or (0, image).

  Each frame is turned by the container's rotation tag, then `fix` (a `FIXES` key) is applied
  if the video has no tag (`applied_fix`). Indices count stored frames, whatever the rotation.
  The sample comes from the header's frame count (counted by reading when the header has
  none, or more than `limits` allow); a video that ends before a sampled frame yields the
  sampled frames it has, and its `Truncation` goes to `on_truncated` (default: a
  RuntimeWarning). The declared frame size is checked against `limits` (default:
  limits.Limits.from_env()) and each frame charged to `budget`, if given, before decoding.

  Raises:
    IOError: naming the file, if it cannot be opened or (an image) decoded (`read_image`).
    limits.TooLarge: a frame size or frame count over the limits, or `budget` spent.
  """
  path = pathlib.Path(path)
  if fix is not None and fix not in FIXES:
    raise ValueError(f"unknown fix {fix!r} for {path}; expected one of {sorted(FIXES)}")
  limits = budget.limits if budget is not None else limits or limits_lib.Limits.from_env()
  if is_image(path):
    rgb = read_image(path, limits, budget)
    yield 0, FIXES[fix](rgb) if fix else rgb
    return
  report = on_truncated or _warn
  cap, tag = _open(path)
  fix = applied_fix(tag, fix)
  width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
  height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))

  def upright(bgr):
    rgb = rotate(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), tag)
    return FIXES[fix](rgb) if fix else rgb

  try:
    limits.check_pixels(path, width, height)
    count, counted = _frame_count(cap, path, limits)
    if counted:  # rewind
      cap.release()
      cap, _ = _open(path)
    wanted = sample_indices(count, frame_step, max_frames)
    position = 0
    for index in wanted:
      while position < index:  # grab() advances without retrieving and converting the frame
        if not cap.grab():
          break
        position += 1
      if budget is not None and position == index:
        budget.charge(path, width, height)
      ok, bgr = cap.read() if position == index else (False, None)
      if not ok:
        report(Truncation(str(path), count, position))
        return
      position += 1
      yield index, upright(bgr)
  finally:
    cap.release()
