"""BlazeFace, the fast face detector (faces/blazeface.py): its verified model file, MediaPipe's
anchors and decoding, the calibration onto MTCNN's boxes on a real face (scikit-image's
astronaut), and the `face_detector` option through builds, exports and the runtime."""

import json
import shutil

import numpy as np
import pytest

from pyramid_fas_jax.data import real_builder
from pyramid_fas_jax.faces import blazeface, face, face_mesh, preprocess
from pyramid_fas_jax.files import cache


@pytest.fixture(scope="module")
def detections(astronaut):
  """MTCNN's detection, and BlazeFace's: as drawn, after the affine map, after O-Net too."""
  fast = blazeface.BlazeFaceDetector()
  return {"mtcnn": face.FaceDetector().detect(astronaut),
          "raw": max(fast.raw_detections(astronaut), key=lambda d: d.area),
          "affine": blazeface.BlazeFaceDetector(refine=False).detect(astronaut),
          "blazeface": fast.detect(astronaut)}


def test_model_file_is_a_verified_asset(tmp_path, monkeypatch):
  name = blazeface.SHORT_RANGE.asset
  path = face_mesh.asset_path(name)   # fetched with the face-mesh files, verified since
  assert cache.sha256(path) == face_mesh.ASSETS[name][1]
  # A cache made before the detector was listed gets it on its first use, by fetching.
  monkeypatch.setenv("PYRAMID_FAS_CACHE", str(tmp_path))
  old = face_mesh.cache_dir()
  old.mkdir(parents=True)
  shutil.copy(path.parent / "face_landmark.tflite", old / "face_landmark.tflite")
  with pytest.raises(FileNotFoundError, match="is not there; run .*--fetch"):
    face_mesh.asset_path(name, fetch=False)
  fetched = []
  monkeypatch.setattr(face_mesh, "fetch_assets", lambda dest: fetched.append(dest) or
                      shutil.copy(path, dest / name))
  assert face_mesh.asset_path(name) == old / name and fetched == [old]
  (old / name).write_bytes(b"tampered")
  with pytest.raises(FileNotFoundError, match="wrong sha256"):
    face_mesh.asset_path(name, fetch=False)


def test_anchors_follow_mediapipes_options():
  short = blazeface.anchors(128, (8, 16, 16, 16), 2)
  # Stride 8: a 16x16 grid, 2 anchors a cell; the three stride-16 layers share an 8x8 grid,
  # 2 anchors each: 512 + 384.
  assert short.shape == (896, 2)
  np.testing.assert_allclose(short[:2], [[1 / 32, 1 / 32]] * 2)
  np.testing.assert_allclose(short[2], [3 / 32, 1 / 32])        # next cell along x
  np.testing.assert_allclose(short[32], [1 / 32, 3 / 32])       # next row
  np.testing.assert_allclose(short[512:518], [[1 / 16, 1 / 16]] * 6)
  np.testing.assert_allclose(short[-1], [15 / 16, 15 / 16])
  assert blazeface.anchors(192, (4,), 1).shape == (2304, 2)     # the full-range model's
  # The model file agrees: one regressor row per anchor.
  assert len(blazeface.BlazeFaceDetector(refine=False).anchors) == 896


def test_decoding_one_anchor_gives_its_box_and_keypoints():
  anchor_xy = blazeface.anchors(128, (8, 16, 16, 16), 2)
  raw = np.zeros((896, 16), np.float32)
  scores = np.full((896, 1), -50.0, np.float32)
  k = 600   # stride 16: cell (600 - 512) // 6 = 14, row 1 column 6: centre (6.5 / 8, 1.5 / 8)
  np.testing.assert_allclose(anchor_xy[k], [0.8125, 0.1875])
  raw[k, :4] = [12.8, -6.4, 32.0, 64.0]        # input pixels: centre offset, width, height
  raw[k, 4:6] = [-25.6, 0.0]                   # first keypoint 0.2 left of the anchor
  scores[k] = 2.0
  boxes, keypoints, probs = blazeface.decode(raw, scores, anchor_xy, 128, 0.5)
  np.testing.assert_allclose(boxes, [[0.7875, -0.1125, 1.0375, 0.3875]], atol=1e-6)
  np.testing.assert_allclose(keypoints[0, 0], [0.6125, 0.1875], atol=1e-6)
  np.testing.assert_allclose(keypoints[0, 1:], [[0.8125, 0.1875]] * 5, atol=1e-6)
  np.testing.assert_allclose(probs, [1 / (1 + np.exp(-2.0))])
  scores[k] = 1e9   # clipped to 100 as MediaPipe clips it: no overflow
  assert blazeface.decode(raw, scores, anchor_xy, 128, 0.5)[2][0] == pytest.approx(1.0)


def test_weighted_suppression_merges_overlaps_by_score():
  boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
  points = np.zeros((3, 6, 2))
  out = blazeface.weighted_nms(boxes, points, np.array([0.9, 0.6, 0.7]))
  assert len(out) == 2
  np.testing.assert_allclose(out[0][0], [0.4, 0, 10.4, 10])   # (0.9 * 0 + 0.6 * 1) / 1.5
  assert out[0][2] == 0.9 and out[1][2] == 0.7


def test_letterbox_keeps_the_aspect():
  rgb = np.full((64, 128, 3), 255, np.uint8)
  square, (sx, sy, left, top) = blazeface.letterbox(rgb, 128)
  assert (sx, sy, left, top) == (1.0, 1.0, 0, 32)
  assert (square[:32] == -1).all() and (square[96:] == -1).all() and (square[32:96] == 1).all()


def test_calibration_is_the_affine_map():
  box = (100, 200, 300, 400)   # centre (200, 300), 200 x 200
  got = blazeface.calibrate(box, {"a": 0.1, "b": -0.2, "c": 0.5, "d": 1.5})
  # centre (200 + 20, 300 - 40), 100 wide, 300 high
  np.testing.assert_allclose(got, (170, 110, 270, 410))
  a, b, c, d = (blazeface.CALIBRATION[k] for k in "abcd")
  np.testing.assert_allclose(blazeface.calibrate(box), (200 + 200 * a - 100 * c,
                                                       300 + 200 * b - 100 * d,
                                                       200 + 200 * a + 100 * c,
                                                       300 + 200 * b + 100 * d))
  # MTCNN's box is taller than BlazeFace's square and reaches higher (the forehead).
  assert d > 1 > c and b < 0


def test_calibrated_box_matches_mtcnn_on_a_real_face(detections):
  ref = detections["mtcnn"].box
  iou = {k: blazeface.iou(detections[k].box, ref)[0] for k in ("raw", "affine", "blazeface")}
  assert iou["blazeface"] >= 0.85, iou
  assert iou["raw"] < iou["affine"] < iou["blazeface"], iou
  # Keypoints: the same eye under the same name (left_eye on the image's left in both).
  fast, slow = detections["blazeface"].keypoints, detections["mtcnn"].keypoints
  assert fast["left_eye"][0] < fast["right_eye"][0] and slow["left_eye"][0] < slow["right_eye"][0]
  for eye in ("left_eye", "right_eye"):
    assert np.hypot(*np.subtract(fast[eye], slow[eye])) < 10, (fast, slow)
  assert set(fast) == set(blazeface.KEYPOINTS)


def test_unknown_detector_is_refused_naming_the_valid_ones():
  assert face.DETECTORS == ("mtcnn", "blazeface")
  for make in (lambda: face.make_detector("dlib"),
               lambda: preprocess.Settings(face_detector="dlib"),
               lambda: real_builder.RealFasConfig(name="x", face_detector="dlib")):
    with pytest.raises(ValueError, match="'dlib': choose one of mtcnn, blazeface"):
      make()


def test_preprocessor_with_blazeface_crops_and_fits_the_mesh(astronaut_png, detections):
  pre = preprocess.Preprocessor(preprocess.Settings(crop_size=96, face_detector="blazeface"))
  frame = pre(astronaut_png, live=True).frames[0]
  assert isinstance(pre.detector, blazeface.BlazeFaceDetector)
  assert frame.crop.image.shape == (96, 96, 3)
  np.testing.assert_allclose(frame.box, detections["blazeface"].box, atol=1e-3)
  # The face mesh, levelled by BlazeFace's eyes, finds the face: depth peaks at the nose.
  assert frame.depth is not None and frame.depth.max() > 240
  peak = np.array(np.unravel_index(frame.depth.argmax(), frame.depth.shape))[::-1] + 0.5
  nose = frame.crop.to_crop(np.array([frame.detection.keypoints["nose"]]))[0]
  assert np.linalg.norm(peak - nose) < 0.08 * 96, (peak, nose)


def test_builds_key_and_describe_the_detector(tmp_path):
  clip = tmp_path / "clip.avi"
  clip.write_bytes(b"video")
  video = real_builder.Video(clip, "clip", "train", "live", "1", "d", "phone")
  mtcnn = real_builder.RealFasConfig(name="a")
  fast = real_builder.RealFasConfig(name="b", face_detector="blazeface", description="Mine.")
  assert mtcnn.settings().face_detector == "mtcnn"
  assert fast.settings().face_detector == "blazeface"
  keys = {real_builder.cache_key(c.settings(), 95, video, "1.1.0") for c in (mtcnn, fast)}
  assert len(keys) == 2
  assert blazeface.CALIBRATION_ID in fast.description and fast.description.startswith("Mine.")
  assert real_builder.CONFIGS[0].face_detector == "mtcnn"


def _quick_onnx(fn, size, names, path, sealed=None):
  """export.to_onnx's file without jax2onnx (whose import alone takes ~15 s): the same input,
  output names and sealed model.json, every output the input's mean."""
  from onnx import TensorProto, helper

  from pyramid_fas_jax.deploy import export as export_lib
  del fn
  axes = helper.make_tensor("axes", TensorProto.INT64, [3], [1, 2, 3])
  graph = helper.make_graph(
      [helper.make_node("ReduceMean", [export_lib.INPUT_NAME, "axes"], [n], keepdims=0)
       for n in names], "quick",
      [helper.make_tensor_value_info(export_lib.INPUT_NAME, TensorProto.FLOAT,
                                     ["batch", size, size, 3])],
      [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch"]) for n in names], [axes])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", export_lib.OPSET)])
  entry = model.metadata_props.add()
  entry.key, entry.value = export_lib.SEALED_KEY, json.dumps(sealed, sort_keys=True)
  path.write_bytes(model.SerializeToString())


def test_model_json_records_the_detector_and_the_runtime_uses_it(tmp_path, monkeypatch,
                                                                   astronaut_png, detections):
  pytest.importorskip("onnxruntime", reason="the `export` extra is not installed")
  pytest.importorskip("onnx", reason="the `export` extra is not installed")
  import tiny_train_config

  from pyramid_fas_jax.deploy import export as export_lib
  from pyramid_fas_jax.deploy import runtime
  from pyramid_fas_jax.files import provenance

  # export() as it runs, but with a stand-in for the model (building one takes ~20 s of JAX
  # dispatch) and for its conversion; tests/test_export.py exports real models.
  config = tiny_train_config.get_config(None)
  monkeypatch.setattr(export_lib.checkpoint, "load_model", lambda _: (None, config))
  monkeypatch.setattr(export_lib, "provenance_of", lambda *_: provenance.record(
      fingerprint="f" * 16, config=config, owner="export of a stand-in"))
  monkeypatch.setattr(export_lib, "forward_fn", lambda _: lambda images: {
      "score": images.mean(axis=(1, 2, 3))})
  monkeypatch.setattr(export_lib, "to_onnx", _quick_onnx)
  (tmp_path / "ckpt").mkdir()
  assert export_lib.export(tmp_path / "ckpt", "onnx", tmp_path / "mtcnn")[
      "face_crop"]["face_detector"] == "mtcnn"
  meta = export_lib.export(tmp_path / "ckpt", "onnx", tmp_path / "onnx",
                           face_detector="blazeface")
  written = json.loads((tmp_path / "onnx" / "model.json").read_text())
  assert written == meta
  assert written["face_crop"]["face_detector"] == "blazeface"
  assert written["face_crop"]["face_detector_version"] == blazeface.CALIBRATION_ID
  assert written["face_crop"]["face_detector_calibration"]["affine"] == blazeface.CALIBRATION
  assert runtime.Model(tmp_path / "mtcnn").face_detector == "mtcnn"
  onnx_model = runtime.Model(tmp_path / "onnx")   # model.json checked against the sealed copy
  assert onnx_model.face_detector == "blazeface"
  # The runtime crops where BlazeFace finds the face, whatever the settings passed name.
  media = onnx_model.load(astronaut_png, preprocess.Settings(face_detector="mtcnn"))
  np.testing.assert_allclose(media.boxes[0], detections["blazeface"].box, atol=1e-3)
  assert runtime.Model(tmp_path / "onnx", face_detector="mtcnn").face_detector == "mtcnn"
  # Exports from before the field crop with MTCNN; an unknown name is a broken model.json.
  assert runtime.recorded_detector({"face_crop": {"eval_scale": 1.0}}) == "mtcnn"
  broken = tmp_path / "broken"
  broken.mkdir()
  written["face_crop"]["face_detector"] = "dlib"
  (broken / "model.json").write_text(json.dumps(written))
  with pytest.raises(runtime.ModelFileError, match="face_crop.face_detector is \"dlib\""):
    runtime.read_meta(broken)


def test_a_face_onet_rejects_is_no_face(astronaut):
  # Upside down, BlazeFace still fires (0.60) where MTCNN finds nothing; O-Net's gate makes the
  # two agree, so a build's per-quarter-turn face count (the orientation check) still works.
  upside_down = np.ascontiguousarray(astronaut[::-1, ::-1])
  fast = blazeface.BlazeFaceDetector()
  assert fast.raw_detections(upside_down)
  assert face.make_detector("mtcnn").detect(upside_down) is None
  assert fast.detect(upside_down) is None
  assert blazeface.BlazeFaceDetector(refine=False).detect(upside_down) is not None
  assert fast.detect(astronaut) is not None
