"""Frames/s of the JAX-free runtime (ONNX on onnxruntime) against JAX `predict`, on CPU.

  python benchmarks/runtime_fps.py [--configs=cdcn_ps,resnet50_ps] [--size=0] [--frames=64]
                                   [--batch_size=32] [--threads=0] [--face_detector=mtcnn]

For each config a model (random weights; `,runlocal` unless --size sets the input size of the
full model) is saved, exported to ONNX, and timed two ways on the same inputs:
  network:    normalised face crops -> every output; runtime.Model vs inference.predict (the
              jitted forward `predict --checkpoint` runs, after its compile);
  end to end: a generated video of --frames frames (skimage's astronaut, moving) -> per-frame
              and per-file scores: face crop (--face_detector: mtcnn or blazeface) + network,
              runtime.Model.score vs data.media.load + inference.predict (what the two
              `predict` paths do).
Both are the median of three timed runs after a warm-up run. onnxruntime and XLA use every core
(--threads bounds onnxruntime's).
"""

import argparse
import importlib.util
import pathlib
import statistics
import tempfile
import time

import cv2
import jax
import numpy as np
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.deploy import export, media, runtime
from pyramid_fas_jax.faces import face, preprocess
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.training import checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name, size):
  spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if size:
    config = module.get_config("synth_fas/intra")
    config.input.size = size
    return config
  return module.get_config("synth_fas/intra,runlocal")


def timed(fn, repeats=3):
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def write_video(path, frames):
  from skimage import data
  rgb = data.astronaut()
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, rgb.shape[1::-1])
  for i in range(frames):
    writer.write(cv2.cvtColor(np.roll(rgb, 3 * i, axis=1), cv2.COLOR_RGB2BGR))
  writer.release()


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default="cdcn_ps,resnet50_ps")
  parser.add_argument("--size", type=int, default=0, help="full model at this input size")
  parser.add_argument("--frames", type=int, default=64)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--threads", type=int, default=0)
  parser.add_argument("--face_detector", default="mtcnn", choices=face.DETECTORS)
  args = parser.parse_args()
  print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; {args.frames} frames, batch "
        f"{args.batch_size}, faces by {args.face_detector}\n")
  print("| config | input | network, runtime (ONNX) | network, JAX | end to end, runtime | "
        "end to end, JAX |")
  print("|---|---|---|---|---|---|")
  settings = preprocess.Settings(frame_step=1, max_frames=0, face_detector=args.face_detector)
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    video = tmp / "clip.avi"
    write_video(video, args.frames)
    for name in args.configs.split(","):
      config = load_config(name, args.size)
      model = models.build_model(config.model, nnx.Rngs(0))
      ckpt = checkpoint.save_model(tmp / name / "model", model, config)
      export.export(ckpt, "onnx", tmp / name / "onnx")
      onnx_model = runtime.Model(tmp / name / "onnx", threads=args.threads,
                                 face_detector=args.face_detector)
      jax_model, _ = checkpoint.load_model(ckpt)
      loaded = media.load(video, config.input, settings)
      images = np.resize(loaded.images, (args.frames,) + loaded.images.shape[1:])
      fps = [args.frames / timed(lambda: onnx_model(images, args.batch_size)),
             args.frames / timed(lambda: inference.predict(jax_model, images, args.batch_size))]
      fps.append(len(loaded.images) / timed(lambda: onnx_model.score(video, settings,
                                                                     args.batch_size)))
      fps.append(len(loaded.images) / timed(lambda: inference.predict(
          jax_model, media.load(video, config.input, settings).images, args.batch_size)))
      size = config.input.size
      print(f"| {name} ({config.model.backbone}) | {size}x{size} | "
            + " | ".join(f"{f:.1f} frames/s" for f in fps) + " |", flush=True)


if __name__ == "__main__":
  main()
