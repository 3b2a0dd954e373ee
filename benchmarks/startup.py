"""Start-up at real scale: wall time from `pyramid-fas train` starting to its first step returning,
on a generated build of 150k small records (OULU-NPU stores ~150k frames), with the metadata
index and, for comparison, with the per-record scan it replaced.

  python benchmarks/startup.py                          # build (cached) + measure
  python benchmarks/startup.py --data_dir=D --runs=3    # keep the build in D; medians of 3
  python benchmarks/startup.py --config=configs/demo.py # the demo's model instead of the tests'
  python benchmarks/startup.py --full_scan              # run the scan too, instead of estimating

The build: SynthFAS's feature spec and builder machinery (TFDS ArrayRecord writer, then the
metadata index) with 8x8 images, 5,000 videos x 30 frames in train/dev/test (1,800 / 1,350 /
1,850 videos), written once into --data_dir (default: a folder under the system's temporary
directory) and reused. Each measurement is a fresh process running the real CLI,
`pyramid-fas train --config=CONFIG` (default: the tests' tiny ResNet at 32x32, batch 8) on that
build (TFDS_DATA_DIR), timed from just before the process is launched; the process reports its
phases (wall and CPU seconds) and exits when the first step returns (block_until_ready).

Three runs per measurement: "cold" with an empty JAX persistent compilation cache (every XLA
program compiled, as on a first run), "warm" with the cache the cold run filled
(JAX_COMPILATION_CACHE_DIR, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0: what a repeated
start-up of the same model costs), and the scan: `--full_scan` runs it (warm, index ignored);
without it, it is estimated as the warm start-up - its metadata load + 150k x the per-record
scan cost measured on 10k records here. The machine's load average is printed with the
figures: on a shared machine wall time is a multiple of CPU time.
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_NAME = "startup150k"
VIDEOS = {"train": 1800, "dev": 1350, "test": 1850}
FRAMES_PER_VIDEO = 30
SCAN_SAMPLE = 10_000


def _builder_class():
  """SynthFAS's builder, writing tiny generated records instead of rendered faces."""
  import numpy as np

  from pyramid_fas_jax.data import builders, features
  from pyramid_fas_jax.protocols import synth_fas

  synth = builders.load_builder("synth_fas")

  def template(live: bool) -> dict:
    image = np.full((8, 8, 3), 120, np.uint8)
    image[2:6, 2:6] = 200
    example = features.make_example(
        image=image, depth=np.full((8, 8), 160 if live else 0, np.uint8),
        mask=np.full((8, 8), 255 if live else 0, np.uint8), face_box=(0.2, 0.2, 0.8, 0.8),
        label=int(live), species="live", video_id="", subject="", domain="", device="", frame=0)
    return {k: v.getvalue() if hasattr(v, "getvalue") else v for k, v in example.items()}

  class StartupBench(synth, skip_registration=True):
    """150k 8x8 records under the synth_fas name, so its protocols and the pipeline apply."""
    name = "synth_fas"
    pkg_dir_path = synth._get_pkg_dir_path()  # its CITATIONS.bib, not this script's folder
    BUILDER_CONFIGS = [synth.BUILDER_CONFIGS[0].__class__(
        name=CONFIG_NAME, crop_size=8, description="start-up benchmark: 150k 8x8 records")]

    def _split_generators(self, dl_manager):
      del dl_manager
      return {split: self._generate_examples(split) for split in VIDEOS}

    def _generate_examples(self, split):
      templates = {True: template(True), False: template(False)}
      splits = list(VIDEOS)
      first = sum(VIDEOS[s] for s in splits[:splits.index(split)])  # videos numbered over splits
      for v in range(first, first + VIDEOS[split]):
        species = synth_fas.SPECIES[v % len(synth_fas.SPECIES)]
        domain = synth_fas.DOMAINS[(v // 5) % len(synth_fas.DOMAINS)]
        video_id = f"s{v // 5:04d}_{domain}_{species}_{v % 2}"
        for frame in range(FRAMES_PER_VIDEO):
          yield f"{video_id}/{frame}", dict(
              templates[species == "live"], species=species, video_id=video_id,
              subject=f"s{v // 5:04d}", domain=domain, device=f"{domain}_cam{v % 2}",
              frame=frame)

  return StartupBench


def build(data_dir: str) -> None:
  import tensorflow_datasets as tfds

  builder = _builder_class()(config=CONFIG_NAME, data_dir=data_dir, file_format="array_record")
  if builder.is_prepared():
    print(f"reusing the build in {builder.data_dir}")
    return
  start = time.perf_counter()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  n = sum(s.num_examples for s in builder.info.splits.values())
  print(f"built {n} records in {builder.data_dir} in {time.perf_counter() - start:.0f} s "
        "(ArrayRecord writer + the metadata index's scan)")


def scan_cost(data_dir: str) -> tuple[float, float]:
  """(wall, CPU) seconds per record of the metadata scan (the pre-index start-up), over
  SCAN_SAMPLE records."""
  import tensorflow_datasets as tfds

  from pyramid_fas_jax.data import metadata_index

  source = tfds.data_source(f"synth_fas/{CONFIG_NAME}", data_dir=data_dir,
                            decoders=metadata_index.SKIP_IMAGES)["train"]

  class First:  # the first SCAN_SAMPLE records of the split
    dataset_info = source.dataset_info

    def __len__(self):
      return SCAN_SAMPLE

    def __getitem__(self, i):
      return source[i]

  start, cpu = time.perf_counter(), time.process_time()
  metadata_index.scan(First(), "synth_fas", "train")
  return ((time.perf_counter() - start) / SCAN_SAMPLE,
          (time.process_time() - cpu) / SCAN_SAMPLE)


def measure(data_dir: str, config: str, jax_cache: str, scan: bool = False) -> dict:
  """Phases ((wall seconds since launch, CPU seconds) marks, and spans) of one fresh
  `pyramid-fas train` process."""
  with tempfile.TemporaryDirectory() as workdir:
    env = dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_COMPILATION_CACHE_DIR=jax_cache,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get(
                   "PYTHONPATH")] if p]))
    launched = time.time()
    out = subprocess.run(
        [sys.executable, __file__, "--child", f"--launched={launched!r}", f"--config={config}",
         f"--workdir={workdir}"] + (["--scan"] if scan else []),
        cwd=REPO, capture_output=True, text=True, check=False, env=env)
  lines = [line for line in out.stdout.splitlines() if line.startswith("STARTUP ")]
  if out.returncode or not lines:
    sys.exit(f"the measured process failed ({out.returncode}):\n{out.stderr[-3000:]}")
  return json.loads(lines[-1][len("STARTUP "):])


def _median_run(runs: list[dict]) -> dict:
  total = statistics.median(r["marks"]["first step returned"][0] for r in runs)
  return min(runs, key=lambda r: abs(r["marks"]["first step returned"][0] - total))


def _table(named: dict[str, dict]) -> None:
  names = list(named)
  print(f"  {'seconds (wall / CPU)':<28}" + "".join(f"{n:>16}" for n in names))
  first = next(iter(named.values()))
  for section, title in (("marks", "since launch"), ("spans", "inside")):
    print(f"  {title}:")
    for key in first[section]:
      cells = (named[n][section].get(key) for n in names)
      print(f"    {key:<26}" + "".join(f"{c[0]:>9.2f} /{c[1]:>5.1f}" if c else f"{'':>16}"
                                         for c in cells))


# --- the measured process -------------------------------------------------------------------

def child(args) -> None:
  """`pyramid-fas train` with timers around its start-up phases; exits at the first step."""
  marks = {"interpreter up": (time.time(), time.process_time())}
  spans = {}
  import jax

  from pyramid_fas_jax import cli
  from pyramid_fas_jax.data import metadata_index, pipeline, splits
  from pyramid_fas_jax.training import train_step
  marks["imports"] = (time.time(), time.process_time())

  def timed(name, fn):
    def wrapper(*a, **k):
      start, cpu = time.time(), time.process_time()
      try:
        return fn(*a, **k)
      finally:
        wall, used = spans.get(name, (0.0, 0.0))
        spans[name] = (wall + time.time() - start, used + time.process_time() - cpu)
    return wrapper

  if args.scan:
    metadata_index.load = lambda source, dataset, split: (
        metadata_index.scan(source, dataset, split), [])
  splits._stored = timed("metadata (index or scan)", splits._stored)
  splits._split_videos = timed("protocol selection", splits._split_videos)
  pipeline.make_train_iterator = timed("train iterator", pipeline.make_train_iterator)
  splits.steps_per_epoch = timed("steps_per_epoch", splits.steps_per_epoch)
  train_step.create_model_and_optimizer = timed("model + optimizer",
                                                train_step.create_model_and_optimizer)
  to_global_batch = pipeline.to_global_batch

  def first_batch(batch, mesh, *a, **k):
    marks.setdefault("first batch", (time.time(), time.process_time()))
    return to_global_batch(batch, mesh, *a, **k)

  pipeline.to_global_batch = first_batch
  jit_train_step = train_step.jit_train_step

  def jit_and_stop(*a, **k):
    step = jit_train_step(*a, **k)

    def first_step(state, batch):
      marks["step called"] = (time.time(), time.process_time())
      out = jax.block_until_ready(step(state, batch))
      marks["first step returned"] = (time.time(), time.process_time())
      report = {"marks": {k: (t - args.launched, cpu) for k, (t, cpu) in marks.items()},
                "spans": spans}
      print("STARTUP " + json.dumps(report), flush=True)
      os._exit(0)  # the run itself is not measured
      return out

    return first_step

  train_step.jit_train_step = jit_and_stop
  # As the command line gives it: config_flags finds the --config.* overrides in sys.argv.
  sys.argv = ["pyramid-fas", "train", f"--config={args.config}", f"--workdir={args.workdir}",
              f"--config.data.builder_config={CONFIG_NAME}", "--config.num_steps=1"]
  cli.main(sys.argv)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(),
                                                         "pyramid_fas_jax_startup"))
  parser.add_argument("--config", default="tests/tiny_train_config.py",
                      help="experiment config (relative to the repository)")
  parser.add_argument("--runs", type=int, default=1, help="measurements of each; the median")
  parser.add_argument("--full_scan", action="store_true",
                      help="measure the pre-index scan start-up instead of estimating it")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--scan", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--launched", type=float, help=argparse.SUPPRESS)
  parser.add_argument("--workdir", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    child(args)
    return
  build(args.data_dir)
  n = sum(VIDEOS.values()) * FRAMES_PER_VIDEO
  named = {}
  with tempfile.TemporaryDirectory() as jax_cache:
    cold, warm, scans = [], [], []
    for _ in range(args.runs):
      shutil.rmtree(jax_cache)
      os.mkdir(jax_cache)
      cold.append(measure(args.data_dir, args.config, jax_cache))
      warm.append(measure(args.data_dir, args.config, jax_cache))
      if args.full_scan:
        scans.append(measure(args.data_dir, args.config, jax_cache, scan=True))
  named["index, cold"], named["index, warm"] = _median_run(cold), _median_run(warm)
  if scans:
    named["scan, warm"] = _median_run(scans)
  load = os.getloadavg()[0]
  print(f"\n{n} records, {args.config}, {args.runs} run(s) each, {os.cpu_count()} cores, load "
        f"average {load:.1f}")
  _table(named)
  for name, run in named.items():
    print(f"start-up ({name} JAX cache): {run['marks']['first step returned'][0]:.1f} s")
  if not scans:
    warm_run = named["index, warm"]
    (wall, cpu), (meta_wall, meta_cpu) = scan_cost(args.data_dir), warm_run["spans"][
        "metadata (index or scan)"]
    end_wall, end_cpu = warm_run["marks"]["first step returned"]
    print(f"start-up (scan, warm JAX cache), estimated from {SCAN_SAMPLE} records: "
          f"{end_wall - meta_wall + wall * n:.0f} s wall / {end_cpu - meta_cpu + cpu * n:.0f} s "
          f"CPU; the scan: {1e3 * wall:.2f} / {1e3 * cpu:.2f} ms per record x {n} = "
          f"{wall * n:.0f} / {cpu * n:.0f} s instead of the index's {meta_wall:.2f} / "
          f"{meta_cpu:.2f} s")


if __name__ == "__main__":
  main()
