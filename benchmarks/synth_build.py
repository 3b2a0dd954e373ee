"""SynthFAS build speed: rendered (and optionally written) images per second.

  python benchmarks/synth_build.py --config=small --num_workers=2          # full build
  python benchmarks/synth_build.py --config=default --render_only=60      # render 60 frames

A full build writes to a temporary data dir unless --data_dir is given. --render_only times
the generator alone (no encoding, no TFDS), cycling over every species and domain, and
prints the time per species.
"""

import argparse
import collections
import sys
import tempfile
import time

from pyramid_fas_jax.data import builders
from pyramid_fas_jax.data.synth import generate


def _config(name: str) -> generate.SynthConfig:
  builder_cls = builders.load_builder("synth_fas")
  configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
  if name not in configs:
    sys.exit(f"unknown SynthFAS config {name!r}; known: {sorted(configs)}")
  return configs[name].synth()


def render_only(name: str, count: int) -> None:
  cfg = _config(name)
  videos = generate.videos(cfg)
  times = collections.defaultdict(list)
  start = time.perf_counter()
  # Videos are grouped by subject, as the builder renders them (one subject's maps at a time).
  for video in videos[:count]:
    t = time.perf_counter()
    generate.render_example(cfg, video, 0)
    times[video.species].append(time.perf_counter() - t)
  total = time.perf_counter() - start
  n = sum(map(len, times.values()))
  print(f"SynthFAS/{name} ({cfg.crop_size}x{cfg.crop_size}): rendered {n} frames in "
        f"{total:.1f} s = {n / total:.1f} images/s on one core")
  for species, ts in times.items():
    print(f"  {species:8s} {1e3 * sum(ts) / len(ts):6.1f} ms/frame")


def full_build(name: str, num_workers: int, data_dir: str | None) -> None:
  with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    builder = builders.build("synth_fas", data_dir or tmp, name, num_workers=num_workers,
                             overwrite=True)
    total = time.perf_counter() - start
    n = sum(s.num_examples for s in builder.info.splits.values())
    print(f"SynthFAS/{name}: built {n} frames with {num_workers} worker(s) in {total:.1f} s "
          f"= {n / total:.1f} images/s (render + JPEG/PNG + ArrayRecord)")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="small")
  parser.add_argument("--num_workers", type=int, default=1)
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--render_only", type=int, default=0, metavar="N")
  args = parser.parse_args()
  if args.render_only:
    render_only(args.config, args.render_only)
  else:
    full_build(args.config, args.num_workers, args.data_dir)


if __name__ == "__main__":
  main()
