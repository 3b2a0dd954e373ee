"""pyramid-fas serve --model=DIR [--port=8000] [--host=127.0.0.1]

Serves a liveness page for an ONNX export (`pyramid-fas export --format=onnx`) with uvicorn:
upload an image or a short video, or take a webcam frame, and see the face box, the live/attack
decision with its score and threshold, and the predicted masks or depth maps over the face crop.
Programs POST the file to /v1/score (multipart field `file`) and get JSON; GET /v1/model returns
model.json. Runs without JAX (pyramid_fas_jax.deploy.runtime). Binds 127.0.0.1 unless --host says
otherwise: the page has no authentication.
"""

from absl import flags

from pyramid_fas_jax.commands import exit_codes

# This run's flags: define_flags binds them.
_MODEL = _HOST = _PORT = _MAX_MB = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _MODEL, _HOST, _PORT, _MAX_MB
  fv = flag_values
  _MODEL = flags.DEFINE_string("model", None, "an ONNX export's directory (pyramid-fas export)",
                               flag_values=fv)
  _HOST = flags.DEFINE_string("host", "127.0.0.1", "address to bind", flag_values=fv)
  _PORT = flags.DEFINE_integer("port", 8000, "port to bind", lower_bound=0, upper_bound=65535,
                               flag_values=fv)
  _MAX_MB = flags.DEFINE_float("max_upload_mb", 32, "largest upload accepted, MiB",
                               lower_bound=0, flag_values=fv)
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
    app = serve.create_app(_MODEL.value, max_bytes=int(_MAX_MB.value * 1024 * 1024))
  except (ValueError, OSError, ModuleNotFoundError) as e:
    exit_codes.usage_error(_PROG, e)
  print(f"serving {_MODEL.value} on http://{_HOST.value}:{_PORT.value}/", flush=True)
  uvicorn.run(app, host=_HOST.value, port=_PORT.value, log_level="warning")
