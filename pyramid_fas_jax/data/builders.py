"""Finding and running the TFDS builders in the repository's datasets/ folder.

datasets/ is not an installed package (TFDS convention: `tfds build datasets/<name>`), so its
builders are imported by path, as the tfds CLI does: with datasets/ on sys.path, the module
is `<name>.<name>_dataset_builder`.
"""

import pathlib

import tensorflow_datasets as tfds


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


def build(name: str, data_dir: str | None = None, config=None, *, num_workers: int = 1,
          overwrite: bool = False, manual_dir: str | None = None,
          partial: bool = False) -> tfds.core.DatasetBuilder:
  """Builds (or reuses) dataset `name`/`config` as ArrayRecord under `data_dir`; returns it.

  `config` is a builder config name or a BuilderConfig (e.g. real_builder.RealFasConfig with
  your own frame sampling). `num_workers` > 1 processes videos (or renders) in that many
  processes; the output does not depend on it. The real datasets read their official archive
  from `manual_dir` (default: <data_dir>/downloads/manual, or its <name>/ subfolder);
  `partial` builds from the videos present instead of refusing an incomplete archive.
  """
  def make():
    builder = load_builder(name)(config=config, data_dir=data_dir, file_format="array_record")
    if hasattr(builder, "num_workers"):
      builder.num_workers = num_workers
    if hasattr(builder, "require_complete"):
      builder.require_complete = not partial
    return builder

  builder = make()
  mode = (tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS if not overwrite
          else tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
  if overwrite and builder.is_prepared():
    # TFDS would refuse to regenerate an existing version in place.
    tfds.core.Path(builder.data_dir).rmtree()
    builder = make()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      download_mode=mode, manual_dir=manual_dir))
  return builder


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
  parser.add_argument("--num_workers", type=int, default=1,
                      help="processes (videos or renders in parallel)")
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
