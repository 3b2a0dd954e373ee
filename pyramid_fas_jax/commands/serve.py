"""pyramid-fas serve --model=DIR [--port=8000] [--host=127.0.0.1]

Serves a liveness page for an ONNX export (`pyramid-fas export --format=onnx`) with uvicorn:
upload an image or a short video, or take a webcam frame, and see the face box, the live/attack
decision with its score and threshold, and the predicted masks or depth maps over the face crop.
Programs POST the file to /v1/score (multipart field `file`) and get JSON; GET /v1/model returns
model.json. Runs without JAX (pyramid_fas_jax.deploy.runtime). Binds 127.0.0.1 unless --host says
otherwise: the page has no authentication.

The export is loaded and the address bound before `serving ... on http://HOST:PORT/` is printed
(the port actually bound: --port=0 picks a free one); a model or address that cannot be used
exits 2 with one line and nothing announced.
"""

import dataclasses

from absl import flags

from pyramid_fas_jax.commands import common, exit_codes
from pyramid_fas_jax.faces import limits as limits_lib

# This run's flags: define_flags binds them.
_MODEL = _HOST = _PORT = _MAX_MB = _MAX_PIXELS = _MAX_DECODED = None
_TIMEOUT = _BODY_TIMEOUT = _KEEP_ALIVE = _CONNECTIONS = _DETECTOR = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _MODEL, _HOST, _PORT, _MAX_MB, _MAX_PIXELS, _MAX_DECODED
  global _TIMEOUT, _BODY_TIMEOUT, _KEEP_ALIVE, _CONNECTIONS, _DETECTOR
  fv = flag_values
  _MODEL = flags.DEFINE_string("model", None, "an ONNX export's directory (pyramid-fas export)",
                               flag_values=fv)
  _HOST = flags.DEFINE_string("host", "127.0.0.1", "address to bind", flag_values=fv)
  _PORT = flags.DEFINE_integer("port", 8000, "port to bind (0: a free one, printed)",
                               lower_bound=0, upper_bound=65535, flag_values=fv)
  _MAX_MB = flags.DEFINE_float("max_upload_mb", 32, "largest upload accepted, MiB",
                               lower_bound=0, flag_values=fv)
  _MAX_PIXELS = flags.DEFINE_integer(
      "max_pixels", None, "refuse (413) an image or video frame of more pixels, before decoding "
      f"it (default ${limits_lib.ENV['max_pixels']}, else {limits_lib.MAX_PIXELS:,})",
      lower_bound=1, flag_values=fv)
  _MAX_DECODED = flags.DEFINE_float(
      "max_decoded_mb", None, "refuse (413) an upload whose decoded frames come to more MiB "
      f"(default ${limits_lib.ENV['max_decoded_bytes']}, else "
      f"{limits_lib.SERVE_MAX_DECODED_MB})", lower_bound=1, flag_values=fv)
  _TIMEOUT = flags.DEFINE_float("request_timeout_s", 60, "an upload not scored within this many "
                                "seconds gets 503", lower_bound=0.1, flag_values=fv)
  _BODY_TIMEOUT = flags.DEFINE_float("body_timeout_s", 30, "an upload not received within this "
                                     "many seconds gets 408", lower_bound=0.1, flag_values=fv)
  _KEEP_ALIVE = flags.DEFINE_integer("timeout_keep_alive_s", 5, "an idle connection is closed "
                                     "after this many seconds", lower_bound=1, flag_values=fv)
  _CONNECTIONS = flags.DEFINE_integer("max_connections", 64, "connections beyond this many get "
                                      "503", lower_bound=1, flag_values=fv)
  _DETECTOR = common.define_face_detector_flag(
      fv, default=None, default_is="the one the export's model.json names, else mtcnn")
  flags.mark_flags_as_required(["model"], flag_values=fv)


_PROG = "pyramid-fas serve"


def main(argv):
  if len(argv) > 1:
    exit_codes.usage_error(_PROG, f"unexpected arguments {argv[1:]}")
  try:
    import uvicorn

    from pyramid_fas_jax.deploy import serve
  except ModuleNotFoundError as e:
    exit_codes.usage_error(_PROG, f"{e}: install the serve extra (pip install "
                           "'pyramid-fas-jax[serve]')")
  try:
    limits = limits_lib.Limits.from_env(_MAX_PIXELS.value, _MAX_DECODED.value,
                                        default_decoded_mb=limits_lib.SERVE_MAX_DECODED_MB)
    settings = dataclasses.replace(serve.SETTINGS, limits=limits)
    app = serve.create_app(_MODEL.value, max_bytes=int(_MAX_MB.value * 1024 * 1024),
                           settings=settings, request_timeout_s=_TIMEOUT.value,
                           body_timeout_s=_BODY_TIMEOUT.value,
                           face_detector=_DETECTOR.value)
  except (ValueError, OSError, ModuleNotFoundError) as e:
    exit_codes.usage_error(_PROG, e)
  try:
    sock = serve.bind(_HOST.value, _PORT.value)
  except OSError as e:
    exit_codes.usage_error(_PROG, f"--host={_HOST.value} --port={_PORT.value}: cannot listen "
                           f"there ({e.strerror or e}): choose a free port (--port=0 picks one) "
                           "and an address of this machine")
  print(f"serving {_MODEL.value} on {serve.url(sock)}", flush=True)
  config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=_KEEP_ALIVE.value,
                          limit_concurrency=_CONNECTIONS.value)
  uvicorn.Server(config).run(sockets=[sock])
