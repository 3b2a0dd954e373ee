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


def build(name: str, data_dir: str | None = None, config: str | None = None, *,
          num_workers: int = 1, overwrite: bool = False) -> tfds.core.DatasetBuilder:
  """Builds (or reuses) dataset `name`/`config` as ArrayRecord under `data_dir`; returns it.

  `num_workers` > 1 renders in that many processes where the builder supports it
  (SynthFAS does); the output does not depend on it.
  """
  builder = load_builder(name)(config=config, data_dir=data_dir, file_format="array_record")
  if hasattr(builder, "num_workers"):
    builder.num_workers = num_workers
  mode = (tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS if not overwrite
          else tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
  if overwrite and builder.is_prepared():
    # TFDS would refuse to regenerate an existing version in place.
    tfds.core.Path(builder.data_dir).rmtree()
    builder = load_builder(name)(config=config, data_dir=data_dir, file_format="array_record")
    if hasattr(builder, "num_workers"):
      builder.num_workers = num_workers
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(download_mode=mode))
  return builder
