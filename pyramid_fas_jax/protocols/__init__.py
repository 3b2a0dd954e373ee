"""Protocols: one module per dataset, each a pure function of the official video names.

Every module defines `SPLITS`, `PROTOCOLS` and
  split_videos(protocol, split, videos) -> sorted list of video names
where `videos` holds official names (e.g. '1_1_01_1' for OULU-NPU) or per-example metadata
dicts with at least 'video_id' (the input pipeline passes one per stored frame, with 'split',
the stored TFDS split, and 'subject', 'domain', 'device', 'species', ...). Splits are 'train',
'dev' and 'test'; a protocol without a dev set returns [] for 'dev'.

Virtual datasets (`ocim`, `casia_replay`) combine stored datasets: their modules list them in
`SOURCES`; their records carry 'dataset' too, and their names are '<dataset>:<name>'.
"""

import importlib
import types


def for_dataset(name: str) -> types.ModuleType:
  """The protocol module of dataset `name` (pyramid_fas_jax.protocols.<name>)."""
  if not name or name.startswith("_") or not name.isidentifier():
    raise ValueError(f"{name!r} is not a dataset name")
  try:
    module = importlib.import_module(f"{__name__}.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"{__name__}.{name}":
      raise
    raise ValueError(f"no protocols for dataset {name!r}: pyramid_fas_jax/protocols/{name}.py "
                     "does not exist") from None
  return module


def qualified(dataset: str, name: str) -> str:
  """A video's name in a virtual dataset: '<dataset>:<official name>'."""
  return f"{dataset}:{name}"


def sources(name: str) -> tuple[str, ...]:
  """The stored datasets that dataset `name` reads: its own, or a virtual dataset's SOURCES."""
  return tuple(getattr(for_dataset(name), "SOURCES", (name,)))


def has_dev(dataset: str, protocol: str) -> bool:
  """Whether `protocol` of `dataset` has a dev split (which the dev-EER threshold needs)."""
  module = for_dataset(dataset)
  rule = getattr(module, "has_dev", None)
  return rule(protocol) if rule else getattr(module, "HAS_DEV", True)
