"""Pseudo depth of live faces: MediaPipe's face-mesh model, rasterised with a z-buffer.

The paper's depth labels come from PRNet, whose weights are not distributable. We use
MediaPipe's face landmark model (`face_landmark.tflite`, Apache-2.0: 468 3-D landmarks of a
192x192 face crop) run with `ai-edge-litert`, and MediaPipe's triangulation of those landmarks
(FACEMESH_TESSELATION in `face_mesh_connections.py`). Both files ship inside the
`mediapipe==0.10.21` wheel on PyPI; `fetch_assets` downloads that wheel with pip (nothing is
installed: mediapipe pins protobuf<5, which breaks grain), extracts the two files, and the
BlazeFace face detector of faces/blazeface.py, into ~/.cache/pyramid_fas_jax/mediapipe-0.10.21/
and checks their sha256 (a cache made before one was listed gets it on its first use).
`make install` runs it; so does `python -m pyramid_fas_jax.faces.face_mesh --fetch`; otherwise
the first use does.

Depth: the landmarks' z (smaller = nearer the camera) becomes d = (z_max - z) / (z_max - z_min)
over the face, 1 at the nose tip; the mesh's triangles are rasterised with barycentric
interpolation, keeping the nearest surface per pixel (z-buffer), so a turned head shows its
near side. The mesh leaves the eyes and the mouth open: those enclosed holes are inpainted
from their rims. Pixels off the face are 0.
"""

import ast
import collections
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import cv2
import numpy as np

from pyramid_fas_jax.files import atomic, cache

MEDIAPIPE_VERSION = "0.10.21"
# File in the cache -> (member of the wheel, sha256).
ASSETS = {
    "face_landmark.tflite": ("mediapipe/modules/face_landmark/face_landmark.tflite",
                             "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
    "face_mesh_connections.py": (
        "mediapipe/python/solutions/face_mesh_connections.py",
        "cc7171e44d0612db38720cb2fd2516c395992cdd7457efe341543be6f3c22d87"),
    # BlazeFace, the optional fast face detector (faces/blazeface.py).
    "face_detection_short_range.tflite": (
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
}
# Any one wheel of the release holds the same files; naming one makes the download the same
# on every machine, whatever its own platform or Python.
WHEEL_PLATFORM = ("--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                  "--implementation", "cp", "--abi", "cp311")
INPUT_SIZE = 192
# MediaPipe crops the face box scaled by 1.5 and rotated upright before the landmark model.
ROI_SCALE = 1.5


def cache_dir() -> pathlib.Path:
  """mediapipe-<version>/ in the cache (pyramid_fas_jax.files.cache.root: $PYRAMID_FAS_CACHE, else
  ~/.cache/pyramid_fas_jax)."""
  return cache.root() / f"mediapipe-{MEDIAPIPE_VERSION}"


def fetch_assets(dest: pathlib.Path | None = None) -> pathlib.Path:
  """Downloads the mediapipe wheel with pip and extracts the verified ASSETS into `dest`."""
  dest = pathlib.Path(dest) if dest else cache_dir()
  dest.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           *WHEEL_PLATFORM, "--dest", tmp, f"mediapipe=={MEDIAPIPE_VERSION}"]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if run.returncode:
      raise RuntimeError(f"`{' '.join(cmd)}` failed ({run.returncode}):\n{run.stderr[-2000:]}\n"
                         f"Copy {', '.join(m for m, _ in ASSETS.values())} from any "
                         f"mediapipe=={MEDIAPIPE_VERSION} wheel into {dest} instead.")
    wheels = list(pathlib.Path(tmp).glob("mediapipe-*.whl"))
    if len(wheels) != 1:
      raise RuntimeError(f"pip download left {[w.name for w in wheels]} in {tmp}, expected one "
                         "mediapipe wheel")
    with zipfile.ZipFile(wheels[0]) as wheel:
      contents = {name: wheel.read(member) for name, (member, _) in ASSETS.items()}
  for name, data in contents.items():
    member, sha = ASSETS[name]
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha:
      raise RuntimeError(f"{member} from {wheels[0].name} has sha256 {digest}, expected {sha}")
    atomic.write_bytes(dest / name, data)  # parallel fetches never see a half-written file
  return dest


def asset_path(name: str, fetch: bool = True) -> pathlib.Path:
  """The verified cached copy of ASSETS[name]; fetched on first use unless `fetch` is False."""
  path = cache_dir() / name
  if path.is_file() and cache.sha256(path) == ASSETS[name][1]:
    return path
  if not fetch:
    problem = "has the wrong sha256" if path.is_file() else "is not there"
    raise FileNotFoundError(f"{path} {problem}; run `python -m pyramid_fas_jax.faces.face_mesh "
                            "--fetch` (or `make install`)")
  fetch_assets(path.parent)
  return path


def model_path(fetch: bool = True) -> pathlib.Path:
  """The face landmark model (.tflite)."""
  return asset_path("face_landmark.tflite", fetch)


def mesh_triangles(fetch: bool = True) -> np.ndarray:
  """(k, 3) landmark indices of the face mesh's triangles, from FACEMESH_TESSELATION.

  MediaPipe lists the mesh as its triangles' edges; the triangles are the 3-cliques of that
  edge graph.
  """
  source = asset_path("face_mesh_connections.py", fetch).read_text()
  marker = "FACEMESH_TESSELATION = frozenset("
  start = source.index(marker) + len(marker)
  edges = ast.literal_eval(source[start:source.index("])", start) + 1])
  neighbours = collections.defaultdict(set)
  for a, b in edges:
    neighbours[a].add(b)
    neighbours[b].add(a)
  triangles = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
  return np.asarray(sorted(triangles), np.int64)


def _roi_matrix(box, keypoints) -> np.ndarray:
  """2x3 affine: source pixels -> the model's 192x192 input, face upright (eyes level)."""
  x0, y0, x1, y1 = box
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  (lx, ly), (rx, ry) = keypoints["left_eye"], keypoints["right_eye"]
  angle = np.degrees(np.arctan2(ry - ly, rx - lx))
  scale = INPUT_SIZE / (ROI_SCALE * max(x1 - x0, y1 - y0))
  m = cv2.getRotationMatrix2D((cx, cy), angle, scale)
  m[:, 2] += (INPUT_SIZE / 2 - cx, INPUT_SIZE / 2 - cy)
  return m


class FaceMesh:
  """468 3-D landmarks of the face in a detected box, and the depth map they define."""

  def __init__(self, path: str | os.PathLike | None = None, num_threads: int = 1):
    from ai_edge_litert.interpreter import Interpreter

    self._interp = Interpreter(model_path=str(path or model_path()), num_threads=num_threads)
    self.triangles = mesh_triangles()
    self._interp.allocate_tensors()
    self._input = self._interp.get_input_details()[0]["index"]
    outputs = sorted(self._interp.get_output_details(), key=lambda o: -int(np.prod(o["shape"])))
    self._landmarks, self._presence = outputs[0]["index"], outputs[1]["index"]

  def landmarks(self, rgb: np.ndarray, box, keypoints) -> tuple[np.ndarray, float]:
    """(468, 3) landmarks (x, y in source pixels; z in the same units, smaller = nearer) and
    the model's face-presence probability."""
    m = _roi_matrix(box, keypoints)
    # Pixel centres: warpAffine maps index to index; our boxes are continuous coordinates.
    shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    m_idx = (np.vstack([m, [0, 0, 1]]) @ np.linalg.inv(shift))[:2] - [[0, 0, 0.5], [0, 0, 0.5]]
    crop = cv2.warpAffine(rgb, m_idx, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    self._interp.set_tensor(self._input, (crop.astype(np.float32) / 255.0)[None])
    self._interp.invoke()
    pts = self._interp.get_tensor(self._landmarks).reshape(-1, 3).astype(np.float64)
    logit = float(self._interp.get_tensor(self._presence).ravel()[0])
    inv = cv2.invertAffineTransform(m)
    xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
    z = pts[:, 2] / m[0, :2].dot(m[0, :2]) ** 0.5  # back to source-pixel units
    return np.column_stack([xy, z]), 1.0 / (1.0 + np.exp(-logit))


def rasterize_depth(points: np.ndarray, triangles: np.ndarray, size: int) -> np.ndarray:
  """float32 (size, size) depth in [0, 1] of a triangle mesh: `points` (n, 3) in crop pixels
  (x, y continuous, z smaller = nearer), `triangles` (k, 3) indices into them. 1 at the nearest
  point, 0 at the farthest and off the mesh; enclosed holes are inpainted.
  """
  xy, z = points[:, :2], points[:, 2]
  span = z.max() - z.min()
  if span <= 0:
    raise ValueError("flat landmarks: every z is equal")
  d = (z.max() - z) / span
  tri = xy[triangles]                                   # (k, 3, 2)
  lo = np.clip(np.floor(tri.min(1)), 0, size).astype(np.int64)
  hi = np.clip(np.ceil(tri.max(1)), 0, size).astype(np.int64)
  w, h = hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1]
  (ax, ay), (bx, by), (cx, cy) = tri[:, 0].T, tri[:, 1].T, tri[:, 2].T
  det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
  n = np.where((w > 0) & (h > 0) & (np.abs(det) > 1e-9), w * h, 0)
  # Every (triangle, pixel of its bounding box) pair at once.
  t = np.repeat(np.arange(len(triangles)), n)
  local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
  px = lo[t, 0] + local % w[t]
  py = lo[t, 1] + local // w[t]
  fx, fy = px + 0.5, py + 0.5                            # pixel centres
  w0 = ((by[t] - cy[t]) * (fx - cx[t]) + (cx[t] - bx[t]) * (fy - cy[t])) / det[t]
  w1 = ((cy[t] - ay[t]) * (fx - cx[t]) + (ax[t] - cx[t]) * (fy - cy[t])) / det[t]
  w2 = 1.0 - w0 - w1
  inside = (w0 >= -1e-6) & (w1 >= -1e-6) & (w2 >= -1e-6)
  dt = d[triangles]
  value = w0 * dt[t, 0] + w1 * dt[t, 1] + w2 * dt[t, 2]
  depth = np.zeros(size * size, np.float32)
  np.maximum.at(depth, (py * size + px)[inside], value[inside].astype(np.float32))  # z-buffer
  return _fill_holes(depth.reshape(size, size))


def _fill_holes(depth: np.ndarray) -> np.ndarray:
  """Inpaints the zero regions that do not touch the border (eyes, mouth)."""
  count, labels = cv2.connectedComponents((depth == 0).astype(np.uint8), connectivity=4)
  border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
  holes = (labels > 0) & ~np.isin(labels, border)
  if count <= 1 or not holes.any():
    return depth
  # 16-bit: OpenCV's Telea inpainting returns garbage on float32 images.
  fixed = np.round(depth * 65535).astype(np.uint16)
  filled = cv2.inpaint(fixed, holes.astype(np.uint8), 3, cv2.INPAINT_TELEA) / 65535.0
  return np.where(holes, filled, depth).astype(np.float32)


def main(argv=None) -> None:
  """python -m pyramid_fas_jax.faces.face_mesh --fetch: download, verify and cache the model."""
  import argparse

  parser = argparse.ArgumentParser(prog="python -m pyramid_fas_jax.faces.face_mesh",
                                   description=__doc__.split("\n\n")[0])
  parser.add_argument("--fetch", action="store_true",
                      help="fetch the files into the cache unless verified copies are there")
  args = parser.parse_args(argv)
  for name, (_, sha) in ASSETS.items():
    path = asset_path(name, fetch=args.fetch)
    print(f"{path} (sha256 {sha[:12]}..., from mediapipe=={MEDIAPIPE_VERSION})")


if __name__ == "__main__":
  main()
