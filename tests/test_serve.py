"""`pyramid-fas serve`: POST /v1/score on 127.0.0.1 with real and malformed uploads, and the page
in a real headless browser (Debian's chromium via selenium), whose displayed score must be the
runtime's."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import cv2
import numpy as np
import pytest

pytest.importorskip("starlette", reason="the `serve` extra (starlette) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the `serve` extra (uvicorn) is not installed")
pytest.importorskip("multipart", reason="the `serve` extra (python-multipart) is not installed")

import test_export
import tiny_train_config

from pyramid_fas_jax.deploy import runtime, serve

REPO = pathlib.Path(__file__).resolve().parents[1]
LIMIT = 2 * 1024 * 1024
# Set to a path to keep the browser test's screenshot (docs/serve.png in the README).
SCREENSHOT = os.environ.get("PYRAMID_FAS_SCREENSHOT")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("serve")
  ckpt = test_export.saved(tiny_train_config.get_config(None), root / "model")
  test_export.export_lib.export(ckpt, "onnx", root / "onnx")
  return root / "onnx"


@pytest.fixture(scope="module")
def server(model_dir):
  """The app under uvicorn on a free 127.0.0.1 port, in a thread of this process."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  config = uvicorn.Config(serve.create_app(model_dir, max_bytes=LIMIT), host="127.0.0.1",
                          port=port, log_level="warning")
  instance = uvicorn.Server(config)
  thread = threading.Thread(target=instance.run, daemon=True)
  thread.start()
  deadline = time.time() + 60
  while not instance.started:
    assert time.time() < deadline and thread.is_alive(), "uvicorn did not start"
    time.sleep(0.05)
  yield f"http://127.0.0.1:{port}"
  instance.should_exit = True
  thread.join(timeout=30)


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory):
  from skimage import data
  path = tmp_path_factory.mktemp("media") / "astronaut.png"
  cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
  return path


def post(url, name=None, data=b"", field="file", content_type=None):
  """(status, JSON) of a multipart POST of one file (`name`, `data`) in form field `field`."""
  boundary = uuid.uuid4().hex
  body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
          f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
  body += data + f"\r\n--{boundary}--\r\n".encode()
  request = urllib.request.Request(
      url + "/v1/score", data=body, method="POST",
      headers={"Content-Type": content_type or f"multipart/form-data; boundary={boundary}"})
  try:
    with urllib.request.urlopen(request, timeout=120) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_score_endpoint_equals_the_runtime(server, model_dir, astronaut_png):
  status, answer = post(server, "astronaut.png", astronaut_png.read_bytes())
  assert status == 200, answer
  want = runtime.Model(model_dir).score(astronaut_png)
  assert answer["score"] == pytest.approx(float(want["video_score"][0]), abs=1e-7)
  assert answer["frames"][0]["score"] == pytest.approx(float(want["score"][0]), abs=1e-7)
  assert answer["threshold"] == 0.5 and answer["live"] == (answer["score"] > 0.5)
  x0, y0, x1, y1 = answer["frames"][0]["box"]
  assert 0 <= x0 < x1 <= 512 and 0 <= y0 < y1 <= 512
  assert [m["name"] for m in answer["maps"]] == ["mask_4", "mask_2", "mask_1"]
  for m in answer["maps"]:
    np.testing.assert_allclose([m["min"], m["max"]],
                               [want[m["name"]][0].min(), want[m["name"]][0].max()], atol=1e-6)
    assert m["overlay"].startswith("data:image/png;base64,")
  with urllib.request.urlopen(server + "/v1/model", timeout=30) as response:
    assert json.loads(response.read())["format"] == "onnx"


@pytest.mark.parametrize("name,data,field,status,words", [
    ("big.png", b"\0" * (LIMIT + 1), "file", 413, "over the limit"),
    ("notes.txt", b"hello", "file", 415, "not an image"),
    ("fake.jpg", b"this is text, not a JPEG", "file", 415, "cannot be decoded"),
    ("empty.png", b"", "file", 415, "empty file"),
    ("astronaut.png", b"whatever", "image", 400, "no file field 'file'"),
])
def test_bad_uploads_get_one_clear_line(server, name, data, field, status, words):
  got, answer = post(server, name, data, field)
  assert got == status, answer
  assert words in answer["error"] and "\n" not in answer["error"]


def test_no_face_and_not_multipart(server, tmp_path):
  ok, gray = cv2.imencode(".png", np.full((240, 320, 3), 128, np.uint8))
  assert ok
  got, answer = post(server, "gray.png", gray.tobytes())
  assert got == 422 and "no face found" in answer["error"], answer
  got, answer = post(server, content_type="application/json")
  assert got == 415 and "multipart/form-data" in answer["error"]


def _browser():
  """A headless chromium driven by selenium, or the reason there is none."""
  try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
  except ImportError:
    return None, "selenium is not installed (the test extra)"
  binary = shutil.which("chromium") or shutil.which("chromium-browser")
  driver = shutil.which("chromedriver")
  if binary is None or driver is None:
    return None, ("Debian's chromium and chromium-driver are not installed "
                  "(apt-get install chromium chromium-driver; .ci/run does)")
  options = webdriver.ChromeOptions()
  options.binary_location = binary
  for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1200,1000"):
    options.add_argument(arg)
  try:
    return webdriver.Chrome(service=Service(driver), options=options), None
  except Exception as e:
    return None, f"chromium did not start: {str(e).splitlines()[0]}"


def test_page_in_a_headless_browser_shows_the_runtimes_score(server, model_dir, astronaut_png,
                                                             tmp_path):
  browser, reason = _browser()
  if browser is None:
    print(f"SKIPPED the browser test: {reason}")
    pytest.skip(reason)
  from selenium.webdriver.common.by import By
  from selenium.webdriver.support.ui import WebDriverWait

  try:
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(astronaut_png))
    WebDriverWait(browser, 120).until(lambda b: b.find_element(By.ID, "score").text)
    WebDriverWait(browser, 30).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#maps figure")) == 4)
    shown = float(browser.find_element(By.ID, "score").get_attribute("data-score"))
    text = browser.find_element(By.ID, "score").text
    decision = browser.find_element(By.ID, "decision").text
    assert browser.find_element(By.ID, "error").text == ""
    want = float(runtime.Model(model_dir).score(astronaut_png)["video_score"][0])
    assert shown == pytest.approx(want, abs=1e-7)
    assert text == f"{want:.6f}"
    assert decision == ("LIVE" if want > 0.5 else "ATTACK")
    shot = pathlib.Path(SCREENSHOT) if SCREENSHOT else tmp_path / "serve.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
  finally:
    browser.quit()


def test_serve_command_binds_localhost_and_refuses_a_missing_model(model_dir, tmp_path):
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  env = dict(os.environ, PYTHONPATH=str(REPO))
  command = [sys.executable, "-m", "pyramid_fas_jax.cli", "serve"]
  r = subprocess.run(command + [f"--model={tmp_path / 'none'}"], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=300)
  assert r.returncode == 2 and "no model.json" in r.stderr and len(r.stderr.splitlines()) == 1
  process = subprocess.Popen(command + [f"--model={model_dir}", f"--port={port}"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    deadline, page = time.time() + 180, None
    while page is None:
      assert time.time() < deadline and process.poll() is None, "serve did not start"
      try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
          page = response.read().decode()
      except OSError:
        time.sleep(0.5)
    assert 'id="file"' in page and "getUserMedia" in page
  finally:
    process.terminate()
    process.wait(timeout=30)
  assert f"on http://127.0.0.1:{port}/" in process.stdout.read()


def test_a_short_video_is_scored_per_frame_and_averaged(server, model_dir, astronaut_png,
                                                       tmp_path):
  rgb = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2RGB)
  path = tmp_path / "clip.avi"
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (512, 512))
  for shift in range(0, 80, 8):   # 10 frames; the server samples every 5th: frames 0 and 5
    writer.write(cv2.cvtColor(np.roll(rgb, shift, axis=1), cv2.COLOR_RGB2BGR))
  writer.release()
  status, answer = post(server, "clip.avi", path.read_bytes())
  assert status == 200, answer
  assert answer["kind"] == "video" and [f["frame"] for f in answer["frames"]] == [0, 5]
  frame_scores = [f["score"] for f in answer["frames"]]
  assert answer["score"] == pytest.approx(np.mean(frame_scores), abs=1e-7)
  want = runtime.Model(model_dir).score(path, serve.SETTINGS)
  np.testing.assert_allclose(frame_scores, want["score"], atol=1e-7)
  # Boxes are median-smoothed over 5 detections, as builds smooth them: with two, both frames
  # get the same box.
  assert answer["frames"][0]["box"] == answer["frames"][1]["box"]
