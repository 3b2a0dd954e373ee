"""Face preprocessing on a real face (scikit-image's astronaut): MTCNN box, context crop,
face-mesh depth; frame sampling, box smoothing, the model cache, `pyramid-fas preprocess`."""

import json

import cv2
import numpy as np
import pytest

from pyramid_fas_jax import cli
from pyramid_fas_jax.faces import face, face_mesh, preprocess, video
from pyramid_fas_jax.files import cache


@pytest.fixture(scope="module")
def processed(astronaut_png):
  pre = preprocess.Preprocessor(preprocess.Settings(crop_size=192))
  return pre(astronaut_png, live=True).frames[0], pre


def test_mtcnn_finds_the_face(processed):
  frame, _ = processed
  x0, y0, x1, y1 = frame.box
  # The astronaut's face spans about x 180-270, y 60-175 of the 512x512 image.
  assert 165 < x0 < 195 and 255 < x1 < 285 and 45 < y0 < 80 and 160 < y1 < 190
  nx, ny = frame.detection.keypoints["nose"]
  assert x0 < nx < x1 and y0 < ny < y1
  assert frame.detection.confidence > 0.9


def test_crop_holds_the_box_with_context(processed):
  frame, _ = processed
  ymin, xmin, ymax, xmax = frame.crop.face_box
  # Side = 1.5 x the longer (vertical) side of the box, centred on it.
  assert ymax - ymin == pytest.approx(1 / 1.5, abs=0.01)
  assert (ymin + ymax) / 2 == pytest.approx(0.5, abs=0.01)
  assert (xmin + xmax) / 2 == pytest.approx(0.5, abs=0.01)
  # Mapping the box back through the crop window gives the source box.
  x0, y0, side = frame.crop.window
  np.testing.assert_allclose([x0 + xmin * side, y0 + ymin * side, x0 + xmax * side,
                              y0 + ymax * side], frame.box, atol=1.0)


def test_depth_is_brightest_at_the_nose_and_zero_off_the_face(processed):
  frame, _ = processed
  depth = frame.depth.astype(np.float32) / 255
  assert frame.depth.dtype == np.uint8 and depth.shape == (192, 192)
  nose = frame.crop.to_crop(np.array([frame.detection.keypoints["nose"]]))[0]
  peak = np.array(np.unravel_index(depth.argmax(), depth.shape))[::-1] + 0.5  # x, y
  assert np.linalg.norm(peak - nose) < 0.06 * 192, (peak, nose)
  assert depth.max() > 0.95
  # Falls off towards the cheeks: halfway from the nose to the box's sides, and at its sides.
  _, xmin, _, xmax = frame.crop.face_box
  y = int(nose[1])
  for frac in (0.5, 0.9):
    for edge in (xmin * 192, xmax * 192):
      x = int(nose[0] + frac * (edge - nose[0]))
      assert depth[y, x] < depth[y, int(nose[0])] - 0.1 * frac, (frac, edge, depth[y, x])
  # Background: the crop's corners and border are off the face.
  border = np.concatenate([depth[:8].ravel(), depth[-8:].ravel(), depth[:, :8].ravel(),
                           depth[:, -8:].ravel()])
  assert (border == 0).all()
  # The face itself is covered (no holes in the middle of the mesh).
  cx, cy = int(nose[0]), int(nose[1])
  assert (depth[cy - 20:cy + 20, cx - 20:cx + 20] > 0).all()


def test_depth_follows_a_rotated_face(astronaut, processed):
  """The mesh model is fed an upright crop (eyes levelled from MTCNN's keypoints), so a tilted
  face still gets its depth peak at the nose."""
  _, pre = processed
  m = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
  tilted = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
  det = pre.detector.detect(tilted)
  assert det is not None
  points, presence = pre.mesh.landmarks(tilted, det.box, det.keypoints)
  assert presence > 0.9
  nose = np.array(det.keypoints["nose"])
  nearest = points[points[:, 2].argmin(), :2]
  assert np.linalg.norm(nearest - nose) < 12, (nearest, nose)


def test_no_face_gives_no_box(processed):
  _, pre = processed
  assert pre.detector.detect(np.full((240, 320, 3), 128, np.uint8)) is None


def test_rasterize_depth_z_buffer_and_holes():
  """A square pyramid seen from the top: the apex (nearest) is 1, the base corners 0; where a
  farther triangle lies under it the nearer surface is kept; an enclosed hole is filled."""
  pts = np.array([[10, 10, 5], [50, 10, 5], [50, 50, 5], [10, 50, 5], [30, 30, -5.0]])
  sides = np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
  depth = face_mesh.rasterize_depth(pts, sides, 64)
  assert depth[30, 30] == pytest.approx(1.0, abs=0.06)
  assert depth[11, 11] < 0.1 and depth[0, 0] == 0 and depth[60, 60] == 0
  assert depth[20, 30] == pytest.approx(0.5, abs=0.08)
  # A triangle at the base's depth inside the square is hidden: nothing changes.
  under = np.vstack([pts, [[15, 15, 5], [45, 15, 5], [30, 45, 5.0]]])
  both = np.vstack([sides, [[5, 6, 7]]])
  np.testing.assert_allclose(face_mesh.rasterize_depth(under, both, 64), depth, atol=1e-6)
  # Nearer, it shows through: its part outside the pyramid's top faces wins too.
  above = np.vstack([pts, [[15, 15, -10], [45, 15, -10], [30, 45, -10.0]]])
  assert (face_mesh.rasterize_depth(above, both, 64)[20:35, 25:35] == 1.0).all()
  # A ring (outer square, inner square open): the hole is inpainted from its rim.
  ring = np.array([[8, 8, 0], [56, 8, 0], [56, 56, 0], [8, 56, 0],
                   [24, 24, -4], [40, 24, -4], [40, 40, -4], [24, 40, -4.0]])
  quads = [(0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]
  tris = np.array([t for a, b, c, e in quads for t in ((a, b, c), (a, c, e))])
  filled = face_mesh.rasterize_depth(ring, tris, 64)
  assert filled[32, 32] > 0.9 and filled[2, 2] == 0


def test_mesh_triangles_cover_the_landmarks():
  tris = face_mesh.mesh_triangles()
  assert tris.shape[1] == 3 and 800 < len(tris) < 1000
  assert set(np.unique(tris)) == set(range(468))


def test_sample_indices():
  assert video.sample_indices(10, 3) == [0, 3, 6, 9]
  assert video.sample_indices(100, 5, 4) == [0, 30, 65, 95]
  assert video.sample_indices(3, 1, 0) == [0, 1, 2]
  assert video.sample_indices(0, 1, 5) == []
  with pytest.raises(ValueError, match="frame_step"):
    video.sample_indices(10, 0)


def test_read_frames_samples_and_fixes(tmp_path):
  path = tmp_path / "v.avi"
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
  for i in range(7):
    frame = np.zeros((24, 32, 3), np.uint8)
    frame[:12] = 40 * i  # top half encodes the frame number
    writer.write(frame)
  writer.release()
  got = list(video.read_frames(path, frame_step=2, max_frames=3))
  assert [i for i, _ in got] == [0, 4, 6]  # of 0, 2, 4, 6: first, last and one between
  for i, rgb in got:
    assert abs(int(rgb[:12].mean()) - 40 * i) < 6 and rgb[12:].mean() < 6
  _, flipped = next(video.read_frames(path, frame_step=3, fix="rotate_180"))
  assert flipped[:12].mean() < 6  # frame 0's bright half is now at the bottom
  with pytest.raises(ValueError, match="unknown fix"):
    next(video.read_frames(path, fix="rotate_45"))
  assert video.check_readable(tmp_path / "nope.avi") == "missing"
  (tmp_path / "bad.avi").write_bytes(b"not a video")
  assert video.check_readable(tmp_path / "bad.avi") is not None
  assert video.check_readable(path) is None


def test_smooth_boxes_median_ignores_outliers_and_keeps_gaps():
  boxes = [(10, 10, 30, 30), (11, 10, 31, 30), None, (60, 60, 90, 90), (10, 11, 30, 31),
           (12, 10, 32, 30)]
  out = face.smooth_boxes(boxes, window=3)
  assert out[2] is None
  # The outlier: centre and size are the medians of its neighbours and itself.
  np.testing.assert_allclose(out[3], (11, 11, 31, 31))
  np.testing.assert_allclose(out[0], (10.5, 10, 30.5, 30))  # fewer neighbours at the start
  assert face.smooth_boxes(boxes, window=1) == boxes
  with pytest.raises(ValueError, match="odd"):
    face.smooth_boxes(boxes, window=4)


def test_context_crop_pads_beyond_the_frame():
  rgb = np.zeros((100, 100, 3), np.uint8)
  rgb[:, :50] = 200
  crop = face.context_crop(rgb, (0, 0, 40, 40), context=2.0, size=40)
  ymin, xmin, ymax, xmax = crop.face_box
  assert (ymin, xmin, ymax, xmax) == pytest.approx((0.25, 0.25, 0.75, 0.75))
  assert crop.window == (-20, -20, 80)
  # The top-left quarter lies beyond the frame: it repeats the frame's bright border.
  assert crop.image[:8, :8].mean() > 190
  with pytest.raises(ValueError, match="context"):
    face.context_crop(rgb, (0, 0, 40, 40), context=0.9, size=40)


def test_model_cache_is_verified(tmp_path, monkeypatch):
  path = face_mesh.model_path()  # fetched (pip) on first use, verified since
  assert cache.sha256(path) == face_mesh.ASSETS["face_landmark.tflite"][1]
  monkeypatch.setenv("PYRAMID_FAS_CACHE", str(tmp_path))
  with pytest.raises(FileNotFoundError, match="is not there; run .*--fetch"):
    face_mesh.model_path(fetch=False)
  bad = face_mesh.cache_dir() / path.name
  bad.parent.mkdir(parents=True)
  bad.write_bytes(b"tampered")
  with pytest.raises(FileNotFoundError, match="wrong sha256"):
    face_mesh.model_path(fetch=False)


def _run_cli(*args):
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", "preprocess", *args])
  return e.value.code


def test_preprocess_command_writes_crops_depth_and_boxes(astronaut, tmp_path, capsys):
  # Frames 0, 1, 3 show the face (drifting right); frame 2 is blank.
  path = tmp_path / "clip.avi"
  small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 256))
  for i in range(4):
    frame = np.full((256, 320, 3), 90, np.uint8)
    if i != 2:
      frame[:, 8 * i:8 * i + 256] = small
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()
  out = tmp_path / "out"
  code = _run_cli(f"--input={path}", f"--output={out}", "--depth", "--crop_size=96",
                  "--smooth=1")
  assert code in (None, 0)
  summary = json.loads((out / "frames.json").read_text())
  frames = summary["frames"]
  assert [f["index"] for f in frames] == [0, 1, 2, 3]
  assert frames[2]["box"] is None and summary["frames_without_face"] == [2]
  assert not (out / "crops" / "000002.jpg").exists()
  for f in (frames[0], frames[1], frames[3]):
    name = f"{f['index']:06d}"
    crop = cv2.imread(str(out / "crops" / f"{name}.jpg"))
    depth = cv2.imread(str(out / "depth" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (96, 96, 3) and depth.shape == (96, 96) and depth.max() > 240
    x0, y0, x1, y1 = f["box"]
    # Source pixels: the face (x 180-270 of 512, halved) moves 8 pixels a frame.
    assert 80 + 8 * f["index"] < x0 < 100 + 8 * f["index"] and x1 - x0 > 35
  assert "3 of 4 frames cropped; no face in frames [2]" in capsys.readouterr().out


def test_preprocess_command_names_a_missing_input(tmp_path, capsys):
  assert _run_cli(f"--input={tmp_path / 'nope.mp4'}", f"--output={tmp_path}") == 2
  assert "nope.mp4 does not exist" in capsys.readouterr().err


def test_square_window_pads_beyond_the_frame_by_the_border_mode():
  rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) + 1
  inside = face.square(rgb, 1, 0, 2, cv2.BORDER_CONSTANT)
  np.testing.assert_array_equal(inside, rgb[0:2, 1:3])
  zeros = face.square(rgb, 2, 1, 2, cv2.BORDER_CONSTANT)   # rows 1-2, columns 2-3
  np.testing.assert_array_equal(zeros[0, 0], rgb[1, 2])
  assert (zeros[1] == 0).all() and (zeros[:, 1] == 0).all()
  repeated = face.square(rgb, 2, 1, 2, cv2.BORDER_REPLICATE)
  assert (repeated == rgb[1, 2]).all()
  off = face.square(rgb, 10, 10, 3, cv2.BORDER_CONSTANT)
  assert off.shape == (3, 3, 3) and not off.any()
