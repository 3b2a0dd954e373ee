"""Input-pipeline throughput: decoded + augmented images per second, per worker, at 256x256.

  python benchmarks/input_pipeline.py                       # builds a 320-pixel SynthFAS sample
  python benchmarks/input_pipeline.py --data_dir=D --builder_config=default --workers=0,2

Without --data_dir it first renders a small SynthFAS set with 320-pixel crops (the default
config's resolution) into a temporary folder. Each run reads JPEG + 2 PNGs per example,
decodes them, applies the training augmentation (scale crop, flip, colour jitter, Cutout),
resizes to --size and normalises, in --workers grain worker processes (0 = in the main
process).
"""

import argparse
import tempfile
import time

from pyramid_fas_jax.data import builders
from pyramid_fas_jax.data import config as data_config
from pyramid_fas_jax.data import pipeline


def _sample_build(data_dir: str) -> str:
  builder_cls = builders.load_builder("synth_fas")
  bench = builder_cls.BUILDER_CONFIGS[0].__class__(
      name="bench320", crop_size=320, num_subjects=3, frames_per_video=2,
      description="benchmark sample: default-config resolution, 144 frames")
  builders.build("synth_fas", data_dir, bench, num_workers=2)
  return "bench320"


def measure(config, batches: int) -> float:
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  next(it)  # worker start-up and the first batch are not throughput
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  rate = batches * config.batch_size / (time.perf_counter() - start)
  del it
  return rate


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--builder_config", default="default")
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--workers", default="0,1,2", help="comma-separated worker counts")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    config = data_config.default_data_config()
    if args.data_dir:
      config.data.data_dir, config.data.builder_config = args.data_dir, args.builder_config
    else:
      config.data.data_dir = tmp
      config.data.builder_config = _sample_build(tmp)
    config.input.size = args.size
    config.batch_size = args.batch_size
    print(f"{config.data.name}/{config.data.builder_config}, input {args.size}x{args.size}, "
          f"batch {args.batch_size}, {args.batches} batches per run")
    for workers in (int(w) for w in args.workers.split(",")):
      config.data.num_workers = workers
      rate = measure(config, args.batches)
      per = rate / max(workers, 1)
      where = "in-process" if workers == 0 else f"{workers} worker(s)"
      print(f"  {where:>12}: {rate:7.1f} images/s total, {per:7.1f} images/s per worker")


if __name__ == "__main__":
  main()
