"""Finding and running the TFDS builders in the repository's datasets/ folder.

datasets/ is not an installed package (TFDS convention: `tfds build datasets/<name>`), so its
builders are imported by path, as the tfds CLI does: with datasets/ on sys.path, the module
is `<name>.<name>_dataset_builder`.

Every build of a dataset config into a data_dir holds a lock (`<data_dir>/<name>/.<config>.lock`),
so two processes never build it at once: the second waits and reuses the first's build. TFDS
writes a build into `<config>/incomplete.XXXXXX_<version>/` and renames it to `<version>/` when
it is complete, so a killed build never looks built; the next build removes what it left.
`build_on_first_use` builds SynthFAS, which needs no download, wherever a command needs it and
it is missing.
"""

import contextlib
import os
import pathlib
import shutil
import time

import filelock
import tensorflow_datasets as tfds
from absl import logging

from pyramid_fas_jax.data import cpus
from pyramid_fas_jax.data.synth import generate

# Datasets a command builds by itself where they are missing: generated, nothing to download.
# The real datasets are built from the user's licensed archive, by the user.
BUILT_ON_FIRST_USE = ("synth_fas",)
# For the first-use estimate, from SynthFAS `small` (2,592 frames of 128x128) on the 2-core
# development machine: about 1 minute with 2 workers on the idle machine, 19 MB on disk.
_PIXELS_PER_S_PER_WORKER = 330_000
_BYTES_PER_PIXEL = 0.45


def datasets_dir() -> pathlib.Path:
  """The repository's datasets/ folder (a source checkout, editable install or CI clone)."""
  path = pathlib.Path(__file__).resolve().parents[2] / "datasets"
  if not path.is_dir():
    raise FileNotFoundError(
        f"no datasets/ folder at {path}: dataset builders live in the source repository; "
        "install pyramid-fas-jax from a checkout (pip install -e .) to build datasets")
  return path


def load_builder(name: str) -> type[tfds.core.DatasetBuilder]:
  """The builder class of datasets/<name>/<name>_dataset_builder.py."""
  root = datasets_dir()
  module = root / name / f"{name}_dataset_builder.py"
  if not module.is_file():
    known = sorted(p.name for p in root.iterdir() if (p / f"{p.name}_dataset_builder.py").is_file())
    raise ValueError(f"unknown dataset {name!r}: {module} does not exist; known: {known}")
  with tfds.core.utils.add_sys_path(root):
    return tfds.core.community.builder_cls_from_module(f"{name}.{name}_dataset_builder")


def worker_count(num_workers: int) -> int:
  """Processes a build uses: `num_workers`, or one per core this process may run on for -1
  (cpus.cores)."""
  if num_workers == -1:
    return cpus.cores()
  if num_workers < 1:
    raise ValueError(f"num_workers={num_workers}: give a count >= 1, or -1 for one per core")
  return num_workers


def build(name: str, data_dir: str | None = None, config=None, *, num_workers: int = -1,
          overwrite: bool = False, manual_dir: str | None = None,
          partial: bool = False) -> tfds.core.DatasetBuilder:
  """Builds (or reuses) dataset `name`/`config` as ArrayRecord under `data_dir`; returns it.

  `config` is a builder config name or a BuilderConfig (e.g. real_builder.RealFasConfig with
  your own frame sampling). `num_workers` processes videos (or renders) in that many processes,
  -1 (the default) in one per core; the output does not depend on it. A real dataset's build
  killed part way resumes from the videos it finished (real_builder: its video cache). The
  real datasets read their official archive
  from `manual_dir` (default: <data_dir>/downloads/manual, or its <name>/ subfolder);
  `partial` builds from the videos present instead of refusing an incomplete archive.
  """
  workers = worker_count(num_workers)

  def make():
    builder = load_builder(name)(config=config, data_dir=data_dir, file_format="array_record")
    if hasattr(builder, "num_workers"):
      builder.num_workers = workers
    if hasattr(builder, "require_complete"):
      builder.require_complete = not partial
    return builder

  with _build_lock(make()) as waited:
    # Made again under the lock: another process may have finished the build meanwhile.
    builder = make()
    if waited and _is_built(builder) and not overwrite:
      logging.info("%s was built meanwhile by the process waited for: reusing %s",
                   builder.info.full_name, builder.data_dir)
      return builder
    _remove_incomplete(builder)
    if overwrite and hasattr(builder, "cache_dir"):
      shutil.rmtree(builder.cache_dir, ignore_errors=True)   # a rebuild redoes every video
    mode = (tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS if not overwrite
            else tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
    if overwrite and builder.is_prepared():
      # TFDS would refuse to regenerate an existing version in place.
      tfds.core.Path(builder.data_dir).rmtree()
      builder = make()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        download_mode=mode, manual_dir=manual_dir))
  return builder


@contextlib.contextmanager
def _build_lock(builder):
  """Holds the lock of `builder`'s dataset config in its data_dir; yields whether it had to
  wait for another process, and says so when it does. The OS releases the lock when its holder
  dies: a killed build leaves no stale lock."""
  config_dir = builder.data_path.parent
  if "://" in os.fspath(config_dir):  # an object store (gs://) has no file locks
    yield False
    return
  config_dir.mkdir(parents=True, exist_ok=True)
  lock = filelock.FileLock(os.fspath(config_dir.parent / f".{config_dir.name}.lock"))
  waited = False
  try:
    lock.acquire(timeout=0)
  except filelock.Timeout:
    logging.info("waiting for another process building %s in %s (lock %s)",
                 builder.info.full_name, builder.data_dir_root, lock.lock_file)
    lock.acquire()
    waited = True
  try:
    yield waited
  finally:
    lock.release()


def _is_built(builder) -> bool:
  # TFDS's own test (download_and_prepare reuses an existing version folder): the folder only
  # appears by renaming a finished build. is_prepared() would also warn about a missing one.
  return builder.data_path.exists()


def _remove_incomplete(builder) -> None:
  """Removes what killed builds of this version left (TFDS's incomplete.*_<version>/ folders):
  with the lock held, no build is writing them."""
  suffix = f"_{builder.version}"
  for path in builder.data_path.parent.glob(f"{tfds.core.constants.INCOMPLETE_PREFIX}*"):
    if path.name.endswith(suffix) and path.is_dir():
      logging.warning("removing %s, left by a build that did not finish", path)
      path.rmtree()


def build_on_first_use(name: str, builder_config: str | None, data_dir: str | None) -> None:
  """Builds dataset `name`/`builder_config` into `data_dir` where it is one of
  BUILT_ON_FIRST_USE, a config its builder knows, and not built there yet, saying what it
  builds, where, and about how long and how big it is. Anything else is left to the caller's
  not-found error."""
  if name not in BUILT_ON_FIRST_USE:
    return
  builder_cls = load_builder(name)
  if builder_config not in builder_cls.builder_configs:
    return
  builder = builder_cls(config=builder_config, data_dir=data_dir)
  if _is_built(builder):
    return
  synth = builder.builder_config.synth()
  frames = len(generate.videos(synth)) * synth.frames_per_video
  pixels = frames * synth.crop_size ** 2
  # A build the user did not ask for, run inside another command: one process per core, but at
  # most 8. SynthFAS's first-use configs are small (`small`: about a minute on 2 workers), so
  # more processes would mostly add their start-up and memory, and a command should not fork a
  # process per core of a large shared machine unasked. An explicit build
  # (`python -m pyramid_fas_jax.data.builders`, --num_workers=-1) uses every core.
  workers = cpus.cores(at_most=8)
  minutes = pixels / (_PIXELS_PER_S_PER_WORKER * workers) / 60
  # Warnings: the commands log INFO only once their checks pass (commands/common.log_start),
  # and this build runs within those checks (splits.require_built).
  logging.warning("%s is not built in %s: building it now, once (the embedded dataset, %d frames "
               "of %dx%d, about %d MB; %s with %d worker processes)",
               builder.info.full_name, builder.data_dir_root, frames, synth.crop_size,
               synth.crop_size, max(1, round(pixels * _BYTES_PER_PIXEL / 1e6)),
               "under a minute" if minutes < 1 else f"about {minutes:.0f} minute(s)", workers)
  start = time.perf_counter()
  builder = build(name, data_dir, builder_config, num_workers=workers)
  logging.warning("%s ready after %.0f s in %s", builder.info.full_name,
               time.perf_counter() - start, builder.data_dir)


def main(argv=None) -> None:
  """python -m pyramid_fas_jax.data.builders NAME [--config=C] [--data_dir=D] [--num_workers=N]
  [--manual_dir=ARCHIVE] [--partial]

  Same result as `tfds build datasets/NAME --file_format=array_record`, whose CLI needs
  TensorFlow installed.
  """
  import argparse

  parser = argparse.ArgumentParser(prog="python -m pyramid_fas_jax.data.builders",
                                   description="Build a dataset of datasets/ as ArrayRecord.")
  parser.add_argument("name", help="dataset folder under datasets/, e.g. synth_fas, oulu_npu")
  parser.add_argument("--config", default=None, help="builder config, e.g. tiny, small, default")
  parser.add_argument("--data_dir", default=None, help="TFDS data dir (default: TFDS's)")
  parser.add_argument("--num_workers", type=int, default=-1,
                      help="processes (videos or renders in parallel); -1: one per core")
  parser.add_argument("--overwrite", action="store_true", help="rebuild an existing version")
  parser.add_argument("--manual_dir", default=None,
                      help="the dataset's official archive, extracted (real datasets)")
  parser.add_argument("--partial", action="store_true",
                      help="build from the videos present in an incomplete archive")
  args = parser.parse_args(argv)
  builder = build(args.name, args.data_dir, args.config, num_workers=args.num_workers,
                  overwrite=args.overwrite, manual_dir=args.manual_dir, partial=args.partial)
  print(f"{builder.info.full_name} in {builder.data_dir}:")
  for split, info in builder.info.splits.items():
    print(f"  {split}: {info.num_examples} examples")


if __name__ == "__main__":
  main()
