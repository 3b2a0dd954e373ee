"""`pyramid-fas serve`: a liveness page and a JSON endpoint for an ONNX export, without JAX.

Starlette app (`create_app`), run by uvicorn on 127.0.0.1. Routes:

  GET  /           the page (static/index.html: plain HTML and JS, no build step): upload an
                   image or a short video, or take a webcam frame (getUserMedia); it shows the
                   face box, the live/attack decision with its score and threshold, and the
                   predicted masks or depth maps over the face crop (the paper's Fig. 6).
  GET  /v1/model   model.json, every absolute path in it cut to its last part (`public`), the
                   export's directory by its name, and the face detector it runs
                   (`face_detector`: model.json's, unless create_app's argument overrides it:
                   runtime.Model).
  POST /v1/score   multipart/form-data with one file field `file` (an image or a video, named
                   with its extension): JSON as `score_file` returns it. Errors are JSON
                   {"error": one line}: 413 over the upload size or a decoding limit
                   (faces/limits.py: pixels, frames, decoded bytes), 415 not an image or video
                   (by name or content), 422 no face in any sampled frame, 400 a malformed
                   request, 408 a body that did not arrive within `body_timeout_s`, 503 a
                   request past its deadline (`request_timeout_s`) or too many at once.

Bounded for anyone who can reach the port: the body is read incrementally up to its limit and
deadline; at most `max_decoding` uploads decode at once, each within its own limits.Budget and
deadline, outside any lock; only the model call is serialised.
"""

import asyncio
import base64
import contextlib
import dataclasses
import pathlib
import re
import socket
import tempfile
import threading
import time

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from pyramid_fas_jax.deploy import media as media_lib
from pyramid_fas_jax.deploy import runtime
from pyramid_fas_jax.faces import limits as limits_lib
from pyramid_fas_jax.faces import preprocess
from pyramid_fas_jax.faces import video as video_lib

STATIC = pathlib.Path(__file__).parent / "static"
MAX_BYTES = 32 * 1024 * 1024
DRAIN = 4
REQUEST_TIMEOUT_S = 60    # an upload's decoding, face crops and model call
BODY_TIMEOUT_S = 30       # a client has this long to send the whole body
MAX_DECODING = 2          # uploads decoded at once (each may hold its decoded-bytes budget)
# A short video: what a build of it would store ('default' build: every 5th frame, at most 30).
SETTINGS = preprocess.Settings(frame_step=5, max_frames=30)
# Side of the face crop and of the map overlays the page shows, pixels.
DISPLAY = 192


class UploadError(Exception):

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status


def _png(rgb: np.ndarray) -> str:
  ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
  assert ok
  return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


def _maps(outputs: dict, row: int) -> dict[str, np.ndarray]:
  """The (s, s) mask or depth maps of one row, largest first (mask_8 ... mask_1, depth_32, ...)."""
  def is_map(name, value):
    kind, _, scale = name.partition("_")   # mask_8, depth_32; not mask_logit_8
    return kind in ("mask", "depth") and scale.isdigit() and value.ndim == 3

  maps = {k: v[row] for k, v in outputs.items() if is_map(k, v)}
  return dict(sorted(maps.items(), key=lambda kv: -kv[1].shape[0]))


def overlay(crop: np.ndarray, value_map: np.ndarray) -> np.ndarray:
  """A map over the face crop, as Fig. 6 shows them: each cell its own colour (nearest), jet
  colours from 0 (blue, attack) to 1 (red, live), half transparent."""
  face = cv2.resize(crop, (DISPLAY, DISPLAY), interpolation=cv2.INTER_LINEAR)
  cells = cv2.resize(np.clip(value_map, 0, 1).astype(np.float32), (DISPLAY, DISPLAY),
                     interpolation=cv2.INTER_NEAREST)
  colours = cv2.cvtColor(cv2.applyColorMap(np.round(cells * 255).astype(np.uint8),
                                           cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
  return cv2.addWeighted(face, 0.5, colours, 0.5, 0)


# An absolute POSIX path in a string: a slash not inside a word, then its parts.
_ABSOLUTE = re.compile(r"(?<![\w.~])/(?:[^\s/'\"]+/)*([^\s/'\"]+)")


def public(value):
  """`value` (model.json, or a part of it) with every absolute path cut to its last part: what
  the server shows says which model it is without telling how the server's disk is laid out."""
  if isinstance(value, dict):
    return {k: public(v) for k, v in value.items()}
  if isinstance(value, list):
    return [public(v) for v in value]
  if isinstance(value, str):
    return _ABSOLUTE.sub(lambda m: m.group(1), value)
  return value


def score_file(model: runtime.Model, path, name: str,
               settings: preprocess.Settings = SETTINGS, *, deadline: float | None = None,
               model_lock=None) -> dict:
  """The JSON answer for one uploaded file: per-frame scores and face boxes (source pixels),
  the file's score (model.json's video aggregation of its frames) and decision, and for its
  first scored frame the face crop the network saw and each map over it (PNG data URLs).
  Decoding stops at `deadline` (time.monotonic()); only the model call holds `model_lock`."""
  path = pathlib.Path(path)
  if not media_lib.is_media(path):
    raise UploadError(415, f"{name}: not an image ({' '.join(video_lib.IMAGE_SUFFIXES)}) or a "
                      f"video ({' '.join(video_lib.VIDEO_SUFFIXES)}) by its name")
  try:
    media = media_lib.load(path, model.input_params, model.settings(settings), deadline)
  except limits_lib.TooLarge as e:
    raise UploadError(413, str(e).replace(str(path), name)) from e
  except limits_lib.TimedOut as e:
    raise UploadError(503, f"{name}: not scored within the server's per-request deadline: "
                      "send a shorter video or a smaller image") from e
  except OSError as e:
    reason = str(e).replace(str(path), name)
    raise UploadError(415, f"{name}: cannot be decoded as an image or video ({reason})") from e
  except ValueError as e:
    # media.load's two refusals: a name it does not read (checked above), and no face.
    raise UploadError(422, f"{name}: no face found in any sampled frame (frame_step "
                      f"{settings.frame_step}, at most {settings.max_frames})") from e
  with model_lock or contextlib.nullcontext():
    outputs = model(media.images)
  scores = outputs["score"]
  file_score = float(media_lib.per_source(media, scores, model.video_aggregation)[1][0])
  crop = runtime.pixels(model.input_params, media.images[0])
  maps = _maps(outputs, 0)
  return {
      "file": name,
      "kind": "image" if video_lib.is_image(path) else "video",
      "score": file_score,
      "live": bool(file_score > model.threshold),
      "threshold": model.threshold,
      "threshold_source": public(model.threshold_source),
      "aggregation": model.video_aggregation,
      "face_detector": model.face_detector,
      "frames": [{"frame": int(f), "score": float(s), "box": [float(v) for v in b]}
                 for f, s, b in zip(media.frames, scores, media.boxes)],
      "no_face_frames": [i for _, i in media.no_face],
      "crop": _png(cv2.resize(crop, (DISPLAY, DISPLAY), interpolation=cv2.INTER_LINEAR)),
      "maps": [{"name": k, "size": int(v.shape[0]), "min": float(v.min()),
                "max": float(v.max()), "overlay": _png(overlay(crop, v))}
               for k, v in maps.items()],
  }


async def _body(request: Request, limit: int, timeout_s: float = BODY_TIMEOUT_S) -> bytes:
  """The request body, refused (413) past `limit` bytes and (408) if it has not all arrived
  within `timeout_s`. Up to DRAIN x `limit` of an oversized upload is read and dropped before
  answering, so that a client still sending gets the 413 rather than a reset connection; beyond
  that the connection is cut short."""
  try:
    return await asyncio.wait_for(_read_body(request, limit), timeout_s)
  except TimeoutError:
    raise UploadError(408, f"the upload did not arrive within {timeout_s:g} s: send it from a "
                      "faster connection, or a smaller file") from None


async def _read_body(request: Request, limit: int) -> bytes:
  declared = request.headers.get("content-length")
  declared = int(declared) if declared is not None and declared.isdigit() else None
  too_big = UploadError(413, f"upload of {declared or 'more than ' + str(limit)} bytes is over "
                        f"the limit of {limit} bytes")
  if declared is not None and declared > DRAIN * limit:
    raise too_big
  chunks, size = [], 0
  async for chunk in request.stream():
    size += len(chunk)
    if size > DRAIN * limit:
      break
    if size <= limit:
      chunks.append(chunk)
  if size > limit:
    raise too_big
  return b"".join(chunks)


async def _upload(request: Request, limit: int, timeout_s: float) -> tuple[str, bytes]:
  if not request.headers.get("content-type", "").startswith("multipart/form-data"):
    raise UploadError(415, "send multipart/form-data with the image or video in the field "
                      "'file' (curl -F file=@face.jpg)")
  body = await _body(request, limit, timeout_s)

  async def stream():
    yield body

  try:
    form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=8).parse()
  except MultiPartException as e:
    raise UploadError(400, f"malformed multipart body: {e.message}") from e
  upload = form.get("file")
  if upload is None or isinstance(upload, str):
    raise UploadError(400, "no file field 'file' in the form (curl -F file=@face.jpg)")
  data = await upload.read()
  if not data:
    raise UploadError(415, f"{upload.filename}: empty file")
  return pathlib.Path(upload.filename or "upload").name, data


def create_app(model_dir, max_bytes: int = MAX_BYTES,
               settings: preprocess.Settings = SETTINGS, *,
               request_timeout_s: float = REQUEST_TIMEOUT_S,
               body_timeout_s: float = BODY_TIMEOUT_S,
               max_decoding: int = MAX_DECODING, face_detector: str | None = None) -> Starlette:
  """The app serving the ONNX export in `model_dir`, refused (ValueError, OSError) before it
  serves if the export cannot be used; faces are found by the detector its model.json names,
  or `face_detector` (face.DETECTORS)."""
  model = runtime.Model(model_dir, face_detector=face_detector)
  if settings.limits is None:  # read once, so a bad environment variable stops the start-up
    settings = dataclasses.replace(settings, limits=limits_lib.Limits.from_env(
        default_decoded_mb=limits_lib.SERVE_MAX_DECODED_MB))
  meta = public(model.meta) | {"directory": pathlib.Path(model_dir).resolve().name,
                               "face_detector": model.face_detector}
  # onnxruntime's session is shared by every request; decoding and face detection (a detector
  # per request, media.load) run in parallel outside it, at most max_decoding at once.
  model_lock = threading.Lock()
  decoding = asyncio.Semaphore(max_decoding)

  async def index(request):
    del request
    return FileResponse(STATIC / "index.html", media_type="text/html")

  async def info(request):
    del request
    return JSONResponse(meta)

  async def score(request):
    try:
      name, data = await _upload(request, max_bytes, body_timeout_s)
      with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"upload{pathlib.Path(name).suffix.lower()}"
        path.write_bytes(data)
        deadline = time.monotonic() + request_timeout_s
        async with decoding:
          # The worker stops itself at its next frame once past the deadline (limits.Budget).
          result = await asyncio.wait_for(run_in_threadpool(
              score_file, model, path, name, settings, deadline=deadline,
              model_lock=model_lock), max(deadline - time.monotonic(), 0) + 1)
    except UploadError as e:
      return JSONResponse({"error": str(e)}, status_code=e.status)
    except TimeoutError:
      return JSONResponse({"error": f"{name}: not scored within the server's "
                           f"{request_timeout_s:g} s per request"}, status_code=503)
    return JSONResponse(result)

  return Starlette(routes=[Route("/", index), Route("/v1/model", info),
                           Route("/v1/score", score, methods=["POST"])])


def bind(host: str, port: int) -> socket.socket:
  """A listening TCP socket on `host`:`port` (0: any free port), or OSError saying why not,
  before anything is announced."""
  infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
  family, kind, proto, _, address = infos[0]
  sock = socket.socket(family, kind, proto)
  try:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds
    sock.bind(address)
    sock.listen(128)
  except OSError:
    sock.close()
    raise
  sock.set_inheritable(True)
  return sock


def url(sock: socket.socket) -> str:
  """The address `sock` is bound to, as a browser takes it (the real port of --port=0)."""
  host, port = sock.getsockname()[:2]
  return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
