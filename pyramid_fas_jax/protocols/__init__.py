"""Protocols: one module per dataset, each a pure function of per-video metadata.

Every module defines `SPLITS` and
  split_videos(protocol, split, videos) -> sorted list of video ids
where `videos` is a sequence of metadata dicts, one per video or frame, each with at least
'video_id' and 'split' (the stored TFDS split it comes from) plus whatever the dataset's
protocols select on ('subject', 'domain', 'device', 'species', ...).
"""

import importlib
import types


def for_dataset(name: str) -> types.ModuleType:
  """The protocol module of dataset `name` (pyramid_fas_jax.protocols.<name>)."""
  try:
    return importlib.import_module(f"{__name__}.{name}")
  except ModuleNotFoundError as e:
    if e.name != f"{__name__}.{name}":
      raise
    raise ValueError(f"no protocols for dataset {name!r}: pyramid_fas_jax/protocols/{name}.py "
                     "does not exist") from None
