"""`pyramid-fas predict` on images, videos and directories: the evaluation crop they share with
the input pipeline (augment.eval_image), and the scores, rows and reports the command writes."""

import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tiny_train_config
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.data import augment, normalize, pipeline
from pyramid_fas_jax.deploy import media
from pyramid_fas_jax.faces import preprocess
from pyramid_fas_jax.training import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cli(*args):
  env = dict(os.environ, PYTHONPATH=str(REPO))
  return subprocess.run([sys.executable, "-m", "pyramid_fas_jax.cli", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)


def _example(h, w, seed=0):
  rng = np.random.default_rng(seed)
  return dict(image=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
              depth=rng.integers(0, 256, (h, w, 1), dtype=np.uint8),
              mask=rng.integers(0, 256, (h, w, 1), dtype=np.uint8),
              face_box=np.array([0.2, 0.3, 0.7, 0.75]), label=1, species=0, video_id=b"v",
              frame=3)


def _eval_transform(size, eval_scale):
  return pipeline._Transform(species=("live",), size=size, mean=MEAN, std=STD,
                             eval_scale=eval_scale, aug=None)


def test_eval_transform_is_the_plain_warp_of_the_crop():
  # 64 / (1.1 x 60 px) keeps the warp a single bilinear resample (no area pre-shrink), so cv2
  # alone gives the reference.
  example = _example(120, 100)
  out = _eval_transform(64, 1.1)(example)
  matrix = augment.crop_matrix(example["face_box"], (120, 100), 1.1, 64, flip=False)
  args = dict(dsize=(64, 64), borderMode=cv2.BORDER_REPLICATE)
  image = cv2.warpAffine(example["image"], matrix, flags=cv2.INTER_LINEAR, **args)
  want = ((image.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32))
          / np.asarray(STD, np.float32))
  assert out["image"].dtype == np.uint8  # normalised on the device, by normalize.normalise
  np.testing.assert_array_equal(out["image"], image)
  np.testing.assert_array_equal(normalize.normalise(out["image"], MEAN, STD), want)
  depth = cv2.warpAffine(example["depth"][..., 0], matrix, flags=cv2.INTER_LINEAR, **args)
  mask = cv2.warpAffine(example["mask"][..., 0], matrix, flags=cv2.INTER_NEAREST, **args)
  np.testing.assert_array_equal(out["depth"], depth)
  np.testing.assert_array_equal(out["mask"], (mask >= 128).astype(np.uint8))


@pytest.mark.parametrize("h,w,size,eval_scale", [(120, 100, 64, 1.1), (400, 360, 32, 1.0),
                                                 (90, 90, 48, 2.0)])
def test_eval_image_is_the_image_evaluation_sees(h, w, size, eval_scale):
  """eval_image == the image of the joint warp that evaluation applies (also when it shrinks a
  large crop by area first), and == the batch row of _Transform and of a config's transform."""
  example = _example(h, w, seed=h)
  matrix = augment.crop_matrix(example["face_box"], (h, w), eval_scale, size, flip=False)
  image, depth, mask = augment.warp(example, matrix, size)
  want = ((image.astype(np.float32) / 255.0 - np.asarray(MEAN, np.float32))
          / np.asarray(STD, np.float32))
  transform = _eval_transform(size, eval_scale)
  out = transform(example)
  np.testing.assert_array_equal(normalize.normalise(out["image"], MEAN, STD), want)
  np.testing.assert_array_equal(out["depth"], depth)
  np.testing.assert_array_equal(out["mask"], mask)
  got = augment.eval_image(transform, example["image"], example["face_box"])
  assert got.dtype == np.float32 and got.shape == (size, size, 3)
  np.testing.assert_array_equal(got, want)

  config = tiny_train_config.get_config(None)
  config.input.size, config.input.eval_scale = size, eval_scale
  row = pipeline._transform(config, ("live",), train=False)(example)
  np.testing.assert_array_equal(
      augment.eval_image(config.input, example["image"], example["face_box"]),
      normalize.normalise(row["image"], config.input.mean, config.input.std))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
  config = tiny_train_config.get_config(None)  # 32x32 input, resnet_tiny, pyramid_mask head
  model = models.build_model(config.model, nnx.Rngs(0))
  return checkpoint.save_model(tmp_path_factory.mktemp("ckpt") / "model", model, config), config


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
  from skimage import data
  path = tmp_path_factory.mktemp("media") / "astronaut.png"
  cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
  return path


def _gray_png(directory):
  path = directory / "gray.png"
  cv2.imwrite(str(path), np.full((240, 320, 3), 128, np.uint8))
  return path


def _predict(ckpt, inp, out, *flags):
  r = cli("predict", f"--checkpoint={ckpt}", f"--input={inp}", f"--output={out}", *flags)
  assert r.returncode == 0, r.stderr
  return np.load(out), r


def test_image_is_scored_like_a_stored_example(tiny_checkpoint, astronaut_png, tmp_path):
  ckpt, config = tiny_checkpoint
  got, r = _predict(ckpt, astronaut_png, tmp_path / "png.npz")
  # The reference input: the builders' crop, stored-example style, through evaluation's transform.
  frame = preprocess.Preprocessor(preprocess.Settings(), depth=False)(
      astronaut_png, live=False).frames[0]
  crop = frame.crop
  zeros = np.zeros(crop.image.shape[:2], np.uint8)
  example = dict(image=crop.image, depth=zeros, mask=zeros, face_box=np.asarray(crop.face_box),
                 label=0, species=0, video_id=b"astronaut", frame=0)
  row = pipeline._transform(config, ("live",), train=False)(example)
  np.save(tmp_path / "x.npy", normalize.normalise(row["image"], config.input.mean,
                                                 config.input.std)[None])
  want, _ = _predict(ckpt, tmp_path / "x.npy", tmp_path / "npy.npz")

  assert set(want.files) >= {"score", "logit", "mask_4", "features"}
  for key in set(want.files) - {"provenance"}:   # the inputs differ: an image and a .npy
    np.testing.assert_allclose(got[key], want[key], atol=1e-6, err_msg=key)
  assert got["source"].tolist() == [str(astronaut_png)] and got["frame"].tolist() == [0]
  assert got["video_source"].tolist() == [str(astronaut_png)]
  np.testing.assert_allclose(got["video_score"], got["score"], atol=1e-7)
  assert got["no_face_source"].size == 0 and got["no_face_frame"].size == 0
  assert f"{astronaut_png}: 1 frames scored, 0 without a face, mean score" in r.stdout
  # The .npy path is unchanged: model outputs only.
  assert not {"source", "frame", "video_score"} & set(want.files)


def test_video_gives_one_row_per_frame_and_their_mean(tiny_checkpoint, astronaut_png, tmp_path):
  ckpt, _ = tiny_checkpoint
  rgb = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2RGB)
  path = tmp_path / "clip.avi"
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
  for shift in (0, 12, 24):  # the face moves, so the frames score differently
    writer.write(cv2.cvtColor(np.roll(rgb, shift, axis=1), cv2.COLOR_RGB2BGR))
  writer.release()
  got, r = _predict(ckpt, path, tmp_path / "video.npz", "--frame_step=1")
  assert got["score"].shape == (3,)
  assert got["frame"].tolist() == [0, 1, 2]
  assert got["source"].tolist() == [str(path)] * 3
  assert got["video_source"].tolist() == [str(path)]
  np.testing.assert_allclose(got["video_score"], [got["score"].mean()], rtol=1e-6)
  assert f"{path}: 3 frames scored, 0 without a face" in r.stdout


def test_directory_reports_the_frames_without_a_face(tiny_checkpoint, astronaut_png, tmp_path):
  ckpt, _ = tiny_checkpoint
  folder = tmp_path / "in"
  folder.mkdir()
  png = folder / "astronaut.png"
  png.write_bytes(astronaut_png.read_bytes())
  gray = _gray_png(folder)
  (folder / "notes.txt").write_text("not an image")  # other files are passed over
  got, r = _predict(ckpt, folder, tmp_path / "dir.npz")
  assert got["source"].tolist() == [str(png)]
  assert got["video_source"].tolist() == [str(png)]
  assert got["no_face_source"].tolist() == [str(gray)] and got["no_face_frame"].tolist() == [0]
  assert f"{gray}: 0 frames scored, 1 without a face, no score" in r.stdout
  assert "warning: no face found in 1 frames" in r.stderr and str(gray) in r.stderr


def test_unsupported_input_is_a_one_line_error(tiny_checkpoint, tmp_path):
  ckpt, _ = tiny_checkpoint
  notes = tmp_path / "notes.txt"
  notes.write_text("hello")
  r = cli("predict", f"--checkpoint={ckpt}", f"--input={notes}", f"--output={tmp_path / 'o.npz'}")
  assert r.returncode == 2 and "Traceback" not in r.stderr
  lines = [line for line in r.stderr.splitlines() if line.startswith("pyramid-fas predict:")]
  assert len(lines) == 1 and str(notes) in lines[0] and "unsupported extension '.txt'" in lines[0]
  assert not (tmp_path / "o.npz").exists()


def test_media_errors_name_the_input(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "readme.md").write_text("no media here")
  with pytest.raises(ValueError, match=f"input {empty}: the directory holds none of the images"):
    media.media_files(empty)
  gray = _gray_png(tmp_path)
  with pytest.raises(ValueError, match=f"input {gray}: no face found in any frame"):
    media.load(gray, tiny_train_config.get_config(None).input, preprocess.Settings())


def test_video_score_follows_the_configs_aggregation():
  loaded = media.Media(images=np.zeros((4, 2, 2, 3), np.float32),
                       sources=np.asarray(["a.avi", "a.avi", "a.avi", "b.png"]),
                       frames=np.asarray([0, 5, 10, 0], np.int32),
                       files=["b.png", "a.avi", "c.avi"], no_face=[("c.avi", 0)])
  scores = np.asarray([0.1, 0.2, 0.9, 0.4], np.float32)
  names, mean = media.per_source(loaded, scores, "mean")
  assert names.tolist() == ["b.png", "a.avi"]  # input order; c.avi has no face, so no score
  np.testing.assert_allclose(mean, [0.4, 0.4], rtol=1e-6)
  _, median = media.per_source(loaded, scores, "median")
  np.testing.assert_allclose(median, [0.4, 0.2], rtol=1e-6)
  assert loaded.missing("c.avi") == [0] and loaded.missing("a.avi") == []
  config = tiny_train_config.get_config(None)
  assert media.video_aggregation(config) == "mean"
  config.eval.video_agg = "median"
  assert media.video_aggregation(config) == "median"
  config.eval.video_agg = None
  assert media.video_aggregation(config) == "mean"
  # Frame level as the command line writes it (--config.eval.video_agg=none), stored that way.
  config.eval.video_agg = "none"
  assert media.video_aggregation(config) == "mean"
  config.eval.video_agg = "max"
  with pytest.raises(ValueError, match="'max'"):
    media.video_aggregation(config)
