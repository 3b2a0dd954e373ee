"""Input-pipeline throughput: decoded + augmented images per second, per worker, at 256x256; and
the bytes a batch sends to the device (uint8 maps) against the float32 maps sent before.

  python benchmarks/input_pipeline.py                       # builds a 320-pixel SynthFAS sample
  python benchmarks/input_pipeline.py --data_dir=D --builder_config=default --workers=0,2

Without --data_dir it first renders a small SynthFAS set with 320-pixel crops (the default
config's resolution) into a temporary folder. Each run reads JPEG + 2 PNGs per example,
decodes them, crops, flips and resizes to --size and draws the colour jitter and Cutout (applied
on the device: data/normalize.py), in --workers grain worker processes (0 = in the main
process; default 0, 1, ..., one per core but one, at least 1). The line marked `auto` is the
count data.num_workers=-1 picks on this machine (pipeline.auto_workers). It also times the
device-side conversion (normalize.device_batch, jitted, on JAX's default backend) per batch.
"""

import argparse
import tempfile
import time

import jax
import numpy as np

from pyramid_fas_jax.data import builders, cpus, normalize, pipeline
from pyramid_fas_jax.experiment import config as data_config


def _sample_build(data_dir: str) -> str:
  builder_cls = builders.load_builder("synth_fas")
  bench = builder_cls.BUILDER_CONFIGS[0].__class__(
      name="bench320", crop_size=320, num_subjects=3, frames_per_video=2,
      description="benchmark sample: default-config resolution, 144 frames")
  builders.build("synth_fas", data_dir, bench, num_workers=2)
  return "bench320"


def measure(config, batches: int) -> tuple[float, dict]:
  """(images/s, the first batch)."""
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  first = next(it)  # worker start-up and the first batch are not throughput
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  rate = batches * config.batch_size / (time.perf_counter() - start)
  del it
  return rate, first


def transfer_bytes(batch: dict) -> tuple[int, int]:
  """(bytes to the device now, bytes the same batch sent as float32 maps without the
  augmentation parameters, as before)."""
  sent = [k for k in pipeline.DEVICE_KEYS + normalize.AUGMENT_KEYS if k in batch]
  now = sum(np.asarray(batch[k]).nbytes for k in sent)
  before = sum(np.asarray(batch[k]).size * 4 if k in ("image", "depth", "mask")
               else np.asarray(batch[k]).nbytes for k in pipeline.DEVICE_KEYS)
  return now, before


def device_seconds(batch: dict, input_cfg, repeats: int = 20) -> float:
  """Median seconds of the jitted device-side conversion of one batch (already on device)."""
  sent = {k: jax.device_put(batch[k]) for k in pipeline.DEVICE_KEYS + normalize.AUGMENT_KEYS
          if k in batch}
  convert = jax.jit(lambda b: normalize.device_batch(b, input_cfg))
  jax.block_until_ready(convert(sent))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(convert(sent))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--builder_config", default="default")
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--workers", default=None,
                      help="comma-separated worker counts (default 0 to cores - 1)")
  args = parser.parse_args()
  cores = cpus.cores()
  auto = pipeline.auto_workers(cores)
  counts = ([int(w) for w in args.workers.split(",")] if args.workers else
            list(range(max(cores - 1, 1) + 1)))
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
          f"batch {args.batch_size}, {args.batches} batches per run, {cores} cores "
          f"(data.num_workers=-1 picks {auto})")
    first = None
    for workers in counts:
      config.data.num_workers = workers
      config.data.prefetch = pipeline.AUTO
      rate, batch = measure(config, args.batches)
      first = batch if first is None else first
      per = rate / max(workers, 1)
      where = "in-process" if workers == 0 else f"{workers} worker(s)"
      mark = "  <- auto" if workers == auto else ""
      print(f"  {where:>12}: {rate:7.1f} images/s total, {per:7.1f} images/s per worker{mark}")
    now, before = transfer_bytes(first)
    print(f"host -> device per batch of {args.batch_size}: {now / 2**20:.2f} MiB (uint8 maps + "
          f"augmentation parameters), was {before / 2**20:.2f} MiB (float32 maps): "
          f"{before / now:.2f}x less")
    seconds = device_seconds(first, config.input)
    print(f"device-side conversion (normalize.device_batch) on {jax.default_backend()}: "
          f"{seconds * 1e3:.2f} ms per batch")


if __name__ == "__main__":
  main()
