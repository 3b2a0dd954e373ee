"""Untrusted media and the server are bounded (faces/limits.py): every entry point that decodes a
user's file refuses one over a limit before decoding it, reads a video whose header lies with
bounded frames, refuses an input over its decoded-bytes budget; `serve` starts only where it can
serve, says the address it bound, and shows no path of the server's disk."""

import json
import os
import pathlib
import re
import shutil
import socket
import struct
import subprocess
import sys
import urllib.request
import zlib

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the `runtime` extra (onnxruntime) is not installed")

from pyramid_fas_jax.deploy import media
from pyramid_fas_jax.faces import limits, preprocess, video

REPO = pathlib.Path(__file__).resolve().parents[1]
# What a decode of the 20000x20000 image would add at least: its 1.2 GB of BGR pixels. A
# process that refuses it before decoding stays far below; its imports alone take ~300 MB.
DECODED = 20000 * 20000 * 3
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
INPUT = type("Input", (), dict(size=32, mean=MEAN, std=STD, eval_scale=1.0))


def _png(path, width, height):
  """A valid greyscale PNG declaring `width` x `height` of zeros: 0.4 MB on disk for
  20000x20000, 400 MB once decoded (1.2 GB as OpenCV's BGR)."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))
  packer, row = zlib.compressobj(9), b"\0" * (width + 1)   # filter byte + a row of zeros
  body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
  header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
                   + chunk(b"IEND", b""))
  return path


def _avi(path, frames=10, size=(64, 48), claim=None):
  """An MJPG .avi of `frames` grey frames; with `claim`, its headers say that many frames and its
  index is cut off, so OpenCV reports the claim (10**9, or 0: unknown)."""
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
  for i in range(frames):
    writer.write(np.full((size[1], size[0], 3), 20 * i, np.uint8))
  writer.release()
  if claim is not None:
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih") + 8, data.find(b"strh") + 8
    data[avih + 16:avih + 20] = data[strh + 32:strh + 36] = struct.pack("<I", claim)
    path.write_bytes(data[:data.find(b"idx1")])
  return path


@pytest.fixture(scope="module")
def big_png(tmp_path_factory):
  return _png(tmp_path_factory.mktemp("big") / "huge.png", 20000, 20000)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  import test_export
  import tiny_train_config
  root = tmp_path_factory.mktemp("bounded")
  ckpt = test_export.saved(tiny_train_config.get_config(None), root / "model")
  test_export.export_lib.export(ckpt, "onnx", root / "onnx")
  return root / "onnx"


def _env(**extra):
  return dict(os.environ, PYTHONPATH=str(REPO), **extra)


def _peak(pid="self") -> int:
  """A process's peak resident bytes: its memory map's high-water mark (VmHWM), which, unlike
  getrusage's ru_maxrss, does not carry the forking parent's over an exec."""
  status = pathlib.Path(f"/proc/{pid}/status").read_text()
  return int(next(s for s in status.splitlines() if s.startswith("VmHWM:")).split()[1]) * 1024


_MEASURED = """
import atexit, pathlib, runpy, sys
out = sys.argv.pop(1)
atexit.register(lambda: pathlib.Path(out).write_text(next(
    s for s in pathlib.Path("/proc/self/status").read_text().splitlines()
    if s.startswith("VmHWM:")).split()[1]))
sys.argv[0] = "pyramid-fas"
runpy.run_module("pyramid_fas_jax.cli", run_name="__main__")
"""


def cli_measured(tmp_path, *args, **env):
  """(completed process, its peak resident bytes) of `pyramid-fas ARGS`."""
  peak = tmp_path / "peak.txt"
  r = subprocess.run([sys.executable, "-c", _MEASURED, str(peak), *args], cwd=REPO,
                     env=_env(**env), capture_output=True, text=True, timeout=300)
  return r, int(peak.read_text()) * 1024


def _load_measured(tmp_path, path):
  """(error line, peak resident bytes) of media.load(path) in a fresh process."""
  code = (f"import pathlib\nfrom pyramid_fas_jax.deploy import media\n"
          f"from pyramid_fas_jax.faces import limits\n"
          f"try:\n  media.load({str(path)!r}, type('I', (), dict(size=32, mean=(0.5,) * 3, "
          f"std=(0.25,) * 3, eval_scale=1.0)))\nexcept limits.TooLarge as e:\n  print(e)\n"
          "print(next(s for s in pathlib.Path('/proc/self/status').read_text().splitlines() "
          "if s.startswith('VmHWM:')).split()[1])")
  r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True,
                     text=True, timeout=300)
  assert r.returncode == 0, r.stderr
  line, peak = r.stdout.splitlines()
  return line, int(peak) * 1024


@pytest.mark.parametrize("entry", ["media.load", "predict", "preprocess"])
def test_a_huge_image_is_refused_before_decoding(entry, big_png, model_dir, tmp_path):
  if entry == "media.load":
    line, peak = _load_measured(tmp_path, big_png)
  else:
    args = (["predict", f"--model={model_dir}", f"--output={tmp_path / 'o.npz'}"]
            if entry == "predict" else ["preprocess", f"--output={tmp_path / 'o'}"])
    r, peak = cli_measured(tmp_path, *args, f"--input={big_png}")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    line = r.stderr
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "o").exists()
  assert str(big_png) in line and "20000x20000" in line and "64,000,000" in line, line
  assert "PYRAMID_FAS_MAX_PIXELS" in line
  assert peak < DECODED / 2, f"{entry} peaked at {peak / 2**20:.0f} MiB"


def test_the_limit_is_raised_by_flag_and_environment(tmp_path):
  small = _png(tmp_path / "small.png", 300, 200)   # 60,000 pixels
  for given in (dict(env={"PYRAMID_FAS_MAX_PIXELS": "50000"}), dict(flag=50_000)):
    got = limits.Limits.from_env(given.get("flag"))
    if "env" in given:
      os.environ.update(given["env"])
      try:
        got = limits.Limits.from_env()
      finally:
        del os.environ["PYRAMID_FAS_MAX_PIXELS"]
    assert got.max_pixels == 50_000
    with pytest.raises(limits.TooLarge, match="300x200 pixels"):
      video.read_image(small, got)
  assert video.read_image(small, limits.Limits(max_pixels=60_000)).shape == (200, 300, 3)
  os.environ["PYRAMID_FAS_MAX_DECODED_MB"] = "lots"
  try:
    with pytest.raises(ValueError, match=r"\$PYRAMID_FAS_MAX_DECODED_MB='lots'"):
      limits.Limits.from_env()
  finally:
    del os.environ["PYRAMID_FAS_MAX_DECODED_MB"]


@pytest.mark.parametrize("claim", [10**9, 0])
def test_a_lying_video_header_is_read_with_bounded_frames(claim, tmp_path):
  path = _avi(tmp_path / "clip.avi", frames=10, claim=claim)
  cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
  assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == claim   # the lie reaches the reader
  cap.release()
  # Its 10 real frames are counted and sampled evenly, first and last included.
  assert [i for i, _ in video.read_frames(path, 1, 4)] == [0, 3, 6, 9]
  assert [i for i, _ in video.read_frames(path, 3, 0)] == [0, 3, 6, 9]
  claimed = re.escape(f"over 5 frames (its header says {claim:,})")
  with pytest.raises(limits.TooLarge, match=claimed):
    list(video.read_frames(path, 1, 4, limits=limits.Limits(max_video_frames=5)))
  # media.load (predict, serve) through the same reader: 4 frames sampled, none with a face.
  with pytest.raises(ValueError, match=r"\(4 sampled from 1 file\)"):
    media.load(path, INPUT, preprocess.Settings(max_frames=4))


def test_sample_indices_never_lists_the_claim():
  assert video.sample_indices(10**12, 1, 3) == [0, 500_000_000_000, 999_999_999_999]


@pytest.mark.parametrize("entry", ["media.load", "predict"])
def test_an_input_over_its_decoded_bytes_is_refused(entry, model_dir, tmp_path):
  # 3 videos of 10 frames of 640x480 (0.88 MiB each decoded), every frame sampled: 26 MiB.
  folder = tmp_path / "clips"
  folder.mkdir()
  for k in range(3):
    _avi(folder / f"c{k}.avi", size=(640, 480))
  if entry == "media.load":
    budget = limits.Limits(max_decoded_bytes=8 * limits.MB)
    with pytest.raises(limits.TooLarge) as e:
      media.load(folder, INPUT, preprocess.Settings(max_frames=0, limits=budget))
    line = str(e.value)
  else:
    r, _ = cli_measured(tmp_path, "predict", f"--model={model_dir}", f"--input={folder}",
                        f"--output={tmp_path / 'o.npz'}", "--frame_step=1", "--max_frames=0",
                        "--max_decoded_mb=8")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    line = r.stderr
  # 8 MiB hold 9 frames: the 10th, of the first file, is refused.
  assert f"{folder / 'c0.avi'}: decoding it brings this input to over 8 MiB" in line, line
  assert "--max_decoded_mb" in line


# --- the server ---------------------------------------------------------------------------

def _serve(*args, **env):
  return subprocess.Popen([sys.executable, "-m", "pyramid_fas_jax.cli", "serve", *args],
                          cwd=REPO, env=_env(**env), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def server(model_dir):
  """`pyramid-fas serve --port=0` with 1 MiB of decoded pixels per upload: (url, process)."""
  process = _serve(f"--model={model_dir}", "--port=0", "--max_decoded_mb=1",
                   "--max_upload_mb=4")
  line = process.stdout.readline()
  try:
    assert line.startswith("serving "), (line, process.stderr.read())
    url = line.split(" on ")[1].strip()
    yield url, process
  finally:
    process.terminate()
    process.wait(timeout=30)


def _post(url, name, data):
  import test_serve
  return test_serve.post(url.rstrip("/"), name, data)


def test_served_address_is_the_bound_port(server):
  url, _ = server
  host, port = url.removeprefix("http://").rstrip("/").split(":")
  assert host == "127.0.0.1" and int(port) > 0
  with urllib.request.urlopen(url, timeout=30) as response:
    assert 'id="file"' in response.read().decode()


@pytest.mark.parametrize("upload,words", [
    ("huge", "huge.png is 20000x20000 pixels"),
    ("bytes", "decoding it brings this input to over 1 MiB"),
])
def test_server_refuses_an_upload_over_a_limit_with_413(server, big_png, tmp_path, upload, words):
  url, process = server
  if upload == "huge":
    name, data = "huge.png", big_png.read_bytes()
  else:   # 2 sampled frames of 640x480 are 1.8 MiB of pixels
    name, data = "clip.avi", _avi(tmp_path / "clip.avi", size=(640, 480)).read_bytes()
  status, answer = _post(url, name, data)
  assert status == 413 and words in answer["error"] and "\n" not in answer["error"], answer
  assert "/tmp" not in answer["error"] and "upload" not in answer["error"].split(":")[0]
  if upload == "huge":
    assert _peak(process.pid) < DECODED / 2


def test_server_shows_no_absolute_path(server, model_dir):
  url, _ = server
  with urllib.request.urlopen(url + "v1/model", timeout=30) as response:
    text = response.read().decode()
  meta = json.loads(text)
  assert json.loads((model_dir / "model.json").read_text())["checkpoint"].startswith("/")
  assert meta["checkpoint"] == "model" and meta["directory"] == model_dir.name
  assert str(model_dir.parent) not in text and '"/' not in text
  with urllib.request.urlopen(url, timeout=30) as response:
    assert str(model_dir.parent) not in response.read().decode()


def _broken_model(model_dir, tmp_path, threshold):
  broken = tmp_path / f"broken_{threshold}"
  shutil.copytree(model_dir, broken)
  meta = json.loads((broken / "model.json").read_text())
  meta["threshold"]["value"] = threshold
  (broken / "model.json").write_text(json.dumps(meta))
  return broken


@pytest.mark.parametrize("case", ["port in use", "bad host", "NaN threshold", "no threshold"])
def test_a_failed_start_is_one_line_before_serving(case, model_dir, tmp_path):
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    args = {"port in use": [f"--model={model_dir}", f"--port={taken.getsockname()[1]}"],
            "bad host": [f"--model={model_dir}", "--host=no-such-host.invalid", "--port=0"],
            "NaN threshold": [f"--model={_broken_model(model_dir, tmp_path, float('nan'))}"],
            "no threshold": [f"--model={_broken_model(model_dir, tmp_path, None)}"]}[case]
    process = _serve(*args)
    out, err = process.communicate(timeout=300)
  assert process.returncode == 2 and "serving" not in out, (out, err)
  assert len(err.splitlines()) == 1 and err.startswith("pyramid-fas serve: "), err
  words = {"port in use": "cannot listen there", "bad host": "no-such-host.invalid",
           "NaN threshold": "nan", "no threshold": "threshold.value is null"}[case]
  assert words in err, err
