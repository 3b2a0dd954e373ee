"""Videos stored as a phone stores them (turned pixels plus a rotation tag), encoded here by the
ffmpeg binary of the imageio-ffmpeg wheel from a real face (scikit-image's astronaut): they are
read as a player shows them, the face is found in every frame and cropped upright; per-video
fixes apply only to untagged videos; a video with too few faces is reported with the turn that
finds them (`pyramid-fas preprocess`), and `predict` reads tagged videos upright too."""

import json
import re
import subprocess

import ml_collections
import numpy as np
import pytest

from pyramid_fas_jax import cli
from pyramid_fas_jax.deploy import media
from pyramid_fas_jax.faces import face, preprocess, video

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

FRAMES = 6
SIZE = (320, 240)   # displayed height, width: a portrait phone video
TAGS = (0, 90, 180, 270)


def _ffmpeg(*args, data: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
  return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", *args], input=data,
                        capture_output=True, check=check)


@pytest.fixture(scope="module")
def upright():
  """What the viewer should see: the astronaut's face, moving up and left a little per frame."""
  from skimage import data
  a = data.astronaut()
  h, w = SIZE
  return np.stack([a[10 + 4 * i:10 + 4 * i + h, 100 + 3 * i:100 + 3 * i + w]
                   for i in range(FRAMES)])


def _encode(path, frames: np.ndarray, tag: int):
  """An H.264 .mp4 whose stored frames are `frames` turned `tag` degrees counter-clockwise and
  whose display matrix says to turn them `tag` degrees clockwise: what a phone writes."""
  stored = np.stack([video.rotate(f, -tag) for f in frames])
  h, w = stored.shape[1:3]
  # -display_rotation is counter-clockwise; -noautorotate keeps it from being applied at once.
  # (This ffmpeg, 9.x, writes no tag for the older -metadata:s:v rotate=.)
  _ffmpeg("-loglevel", "error", "-y", "-noautorotate", "-display_rotation", str(-tag % 360),
          "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "10", "-i", "-",
          "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path), data=stored.tobytes())
  return path


@pytest.fixture(scope="module")
def tagged(upright, tmp_path_factory):
  """{tag: .mp4 showing `upright`}, plus "upside_down": an untagged file of it upside down."""
  root = tmp_path_factory.mktemp("tagged")
  videos = {t: _encode(root / f"tag{t}.mp4", upright, t) for t in TAGS}
  videos["upside_down"] = _encode(root / "upside_down.mp4",
                                  np.stack([video.rotate(f, 180) for f in upright]), 0)
  return videos


def _decode(path, shape, autorotate=True) -> np.ndarray:
  """ffmpeg's own decode: with autorotate, what a player shows; without, the stored pixels."""
  args = [] if autorotate else ["-noautorotate"]
  raw = _ffmpeg("-loglevel", "error", *args, "-i", str(path), "-f", "rawvideo",
                "-pix_fmt", "rgb24", "-").stdout
  return np.frombuffer(raw, np.uint8).reshape(-1, *shape, 3)


def _corr(a, b) -> float:
  return float(np.corrcoef(np.asarray(a, np.float64).ravel(),
                           np.asarray(b, np.float64).ravel())[0, 1])


@pytest.fixture(scope="module")
def pre():
  return preprocess.Preprocessor(preprocess.Settings(crop_size=96, smooth=1), depth=False)


@pytest.mark.parametrize("tag", TAGS)
def test_encoded_video_is_stored_turned_with_a_display_matrix(tagged, upright, tag):
  """The test files are what a phone writes: a display matrix (ffmpeg's sign: counter-clockwise)
  and turned pixels, which ffmpeg's own player decode shows upright."""
  info = _ffmpeg("-i", str(tagged[tag]), check=False).stderr.decode()  # no output: exits 1
  matrix = re.findall(r"Display Matrix: rotation of (-?[\d.]+) degrees", info)
  assert [-float(m) % 360 for m in matrix] == ([tag] if tag else [])
  h, w = SIZE
  stored = _decode(tagged[tag], (w, h) if tag % 180 else (h, w), autorotate=False)
  played = _decode(tagged[tag], SIZE)
  assert len(stored) == len(played) == FRAMES
  assert min(_corr(p, u) for p, u in zip(played, upright)) > 0.97
  if tag == 180:
    assert _corr(stored[0], upright[0]) < 0.5


@pytest.mark.parametrize("tag", TAGS)
def test_read_frames_shows_what_a_player_shows(tagged, tag):
  path = tagged[tag]
  played = _decode(path, SIZE)
  assert video.rotation_tag(path) == tag and video.check_readable(path) is None
  got = list(video.read_frames(path))
  assert [i for i, _ in got] == list(range(FRAMES))
  for i, rgb in got:
    assert rgb.shape == (*SIZE, 3)
    assert np.abs(rgb.astype(int) - played[i]).mean() < 2.0, i
  # Sampling grabs stored frames: indices, and pixels, unchanged by the rotation.
  sampled = list(video.read_frames(path, frame_step=2, max_frames=2))
  assert [i for i, _ in sampled] == [0, 4]
  assert np.abs(sampled[1][1].astype(int) - played[4]).mean() < 2.0


@pytest.mark.parametrize("tag", TAGS)
def test_face_in_every_frame_and_the_crop_upright(tagged, upright, pre, tag):
  result = pre(tagged[tag], live=False)
  assert len(result.frames) == FRAMES and result.missing == []
  for frame in result.frames:
    points = frame.crop.to_crop(np.array([frame.detection.keypoints[k] for k in
                                          ("left_eye", "right_eye", "nose", "mouth_left",
                                           "mouth_right")]))
    (lx, ly), (rx, ry), (_, ny), (_, m1), (_, m2) = points
    assert lx < rx and max(ly, ry) < ny < min(m1, m2), points
    # The crop is the upright source's crop of the same box, not a turned one.
    reference = face.context_crop(upright[frame.index], frame.box, 1.5, 96).image
    upright_corr = _corr(frame.crop.image, reference)
    turned = max(_corr(frame.crop.image, video.rotate(reference, r)) for r in (90, 180, 270))
    assert upright_corr > 0.95 and upright_corr > turned + 0.3, (upright_corr, turned)


def test_a_fix_applies_only_to_an_untagged_video(tagged, upright, pre):
  """A listed rotate_180 on a 180-tagged video would turn it upside down again: the tag is
  honoured and the fix skipped, and said so. On the untagged upside-down file it applies."""
  path = tagged[180]
  _, first = next(video.read_frames(path, fix="rotate_180"))
  assert _corr(first, upright[0]) > 0.97
  result = pre(path, live=False, fix="rotate_180")
  assert result.missing == []
  checks = pre.orientation_checks(path, "rotate_180", FRAMES, FRAMES)
  assert checks == {"orientation": {"rotation_tag": 180, "fix": "rotate_180",
                                    "fix_applied": False}}
  [line] = preprocess.orientation_warnings("msu/video", checks)
  assert "msu/video" in line and "180-degree rotation tag is honoured" in line
  assert "rotate_180 skipped" in line

  path = tagged["upside_down"]
  _, first = next(video.read_frames(path, fix="rotate_180"))
  assert _corr(first, upright[0]) > 0.97
  assert pre(path, live=False, fix="rotate_180").missing == []
  checks = pre.orientation_checks(path, "rotate_180", FRAMES, FRAMES)
  assert checks == {"orientation": {"rotation_tag": 0, "fix": "rotate_180", "fix_applied": True}}
  assert preprocess.orientation_warnings("v", checks) == []
  assert pre.orientation_checks(tagged[0], None, FRAMES, FRAMES) == {}


def test_low_face_rate_names_the_turn_that_finds_the_faces(tagged, tmp_path, capsys):
  """The untagged upside-down file: MTCNN misses the face as read, the report (frames.json of
  `pyramid-fas preprocess`, as a build's face_report.json) says a 180-degree turn finds it."""
  out = tmp_path / "out"
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", "preprocess", f"--input={tagged['upside_down']}",
              f"--output={out}", "--crop_size=96", "--smooth=1"])
  assert e.value.code in (None, 0)
  summary = json.loads((out / "frames.json").read_text())
  low = summary["low_face_rate"]
  faces = FRAMES - len(summary["frames_without_face"])
  assert low["faces"] == faces < FRAMES / 2 and low["sampled"] == low["frames_tried"] == FRAMES
  assert low["faces_by_rotation"]["180"] == FRAMES
  assert low["faces_by_rotation"]["0"] == faces  # every sampled frame was tried
  assert low["suggested_rotation"] == 180 and low["suggested_fix"] == "rotate_180"
  assert "orientation" not in summary  # untagged, no fix: nothing else to say
  printed = capsys.readouterr().out
  assert re.search(rf"warning: .*upside_down\.mp4: a face in only {faces} of {FRAMES} sampled "
                   rf"frames; turned 180 degrees clockwise, {FRAMES} of {FRAMES} tried", printed)


def test_predict_reads_tagged_videos_upright(tagged):
  params = ml_collections.ConfigDict(dict(size=64, mean=(0.5,) * 3, std=(0.5,) * 3,
                                          eval_scale=1.2))
  got = media.load(tagged[90], params,
                   preprocess.Settings(crop_size=96, smooth=1, frame_step=2))
  assert got.no_face == [] and got.frames.tolist() == [0, 2, 4]
  assert got.images.shape == (3, 64, 64, 3)


def test_a_tag_that_is_not_a_quarter_turn_is_named(upright, tmp_path):
  path = tmp_path / "tilted.mp4"
  h, w = SIZE
  _ffmpeg("-loglevel", "error", "-noautorotate", "-display_rotation", "30", "-f", "rawvideo",
          "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "10", "-i", "-", "-c:v", "libx264",
          "-pix_fmt", "yuv420p", str(path), data=upright[:2].tobytes())
  why = video.check_readable(path)
  assert why is not None and "rotation tag of 330 degrees" in why
  with pytest.raises(IOError, match="tilted.mp4 has a rotation tag of 330"):
    next(video.read_frames(path))
