"""The per-split metadata index a build writes next to its records, and the scan it replaces.

Protocols select examples by their metadata (video, species, subject, domain, device, ...), so
the input pipeline needs the metadata of every stored example before the first step. Reading
it from the records means deserialising each one (about 0.3 ms for a 64-pixel SynthFAS record
on one core, more for larger ones), minutes for OULU-NPU's ~150k frames, in every process of
every run. So every build writes, per split, `metadata-<split>.json` beside the ArrayRecord
shards, and the pipeline reads only that.

TFDS writes examples in the order of a hash of their keys, not in the order the builder yields
them, so a record's position is known only once its split is written: the index is made by one
metadata-only scan of the stored records, at the end of the build (`write`, called from the
builders' `_download_and_prepare`, which both `python -m pyramid_fas_jax.data.builders` and
`tfds build` run).

Format (format_version 1), compact JSON:
  {"format": "pyramid_fas_jax.metadata_index", "format_version": 1, "dataset", "config",
   "version", "split", "num_examples", "shard_lengths",
   "columns": {"video_id" | "subject" | "domain" | "device" | "species":
                   {"values": [distinct strings], "codes": [one index into values per record]},
               "frame" | "label" | "depth_valid": [one int per record]},
   "unacquired": [{"video_id", "species", "label", "subject", "domain", "device"}, ...]}
Record i of the split is position i of every column. `unacquired` lists the split's videos that
yielded no stored frame (no face in any sampled frame): evaluation counts them as failures to
acquire. An index whose format, version, example count or shard lengths disagree with the
stored split is stale, and one that is not valid JSON or lacks a column is unreadable; `load`
then warns, naming the file, and scans the records instead, as it does for builds made before
the index existed (whose unacquired videos are not known); a record the scan cannot read is
splits.UnreadableRecordError, naming its file.
"""

import json
import pathlib

import tensorflow_datasets as tfds
from absl import logging

from pyramid_fas_jax.data import splits
from pyramid_fas_jax.files import atomic

FORMAT = "pyramid_fas_jax.metadata_index"
FORMAT_VERSION = 1
TEXT_COLUMNS = ("video_id", "subject", "domain", "device", "species")
INT_COLUMNS = ("frame", "label", "depth_valid")
UNACQUIRED_KEYS = ("video_id", "species", "label", "subject", "domain", "device")
SKIP_IMAGES = {k: tfds.decode.SkipDecoding() for k in ("image", "depth", "mask")}


def path(data_dir, split: str) -> pathlib.Path:
  """Where a build keeps the index of `split`: next to its records."""
  return pathlib.Path(data_dir) / f"metadata-{split}.json"


def _text(x) -> str:
  return x.decode() if isinstance(x, bytes) else str(x)


def scan(source, dataset: str, split: str) -> list[dict]:
  """Metadata of every record of `source` (a TFDS data source opened with SKIP_IMAGES), in
  storage order: dataset, split, index, video_id, subject, domain, device, species (name),
  frame, label, depth_valid (True for builds made before the feature existed)."""
  names = source.dataset_info.features["species"].names
  records = []
  for index in range(len(source)):
    ex = splits.read_example(source, index, dataset)
    records.append(dict(
        dataset=dataset, split=split, index=index, video_id=_text(ex["video_id"]),
        subject=_text(ex["subject"]), domain=_text(ex["domain"]), device=_text(ex["device"]),
        species=names[ex["species"]], frame=int(ex["frame"]), label=int(ex["label"]),
        depth_valid=bool(ex.get("depth_valid", True))))
  return records


def _encode(records: list[dict], key: str) -> dict:
  values, codes = {}, []
  for r in records:
    codes.append(values.setdefault(r[key], len(values)))
  return {"values": list(values), "codes": codes}


def write(builder, unacquired: dict[str, list[dict]] | None = None) -> None:
  """Writes the index of every split `builder` has just written (call it after the splits are
  written, from `_download_and_prepare`). `unacquired` maps a split to its videos without any
  stored frame, each a dict with UNACQUIRED_KEYS."""
  info = builder.info
  if info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
    logging.warning("%s: no metadata index for file format %s (the input pipeline reads "
                    "ArrayRecord builds)", builder.name, info.file_format)
    return
  for split, split_info in info.splits.items():
    source = builder.as_data_source(split=split, decoders=SKIP_IMAGES)
    records = scan(source, builder.name, split)
    columns = {k: _encode(records, k) for k in TEXT_COLUMNS}
    columns.update({k: [int(r[k]) for r in records] for k in INT_COLUMNS})
    videos = [{k: v[k] for k in UNACQUIRED_KEYS}
              for v in sorted((unacquired or {}).get(split, ()), key=lambda v: v["video_id"])]
    index = dict(format=FORMAT, format_version=FORMAT_VERSION, dataset=builder.name,
                 config=builder.builder_config.name if builder.builder_config else None,
                 version=str(builder.version), split=split, num_examples=len(records),
                 shard_lengths=list(split_info.shard_lengths), columns=columns,
                 unacquired=videos)
    atomic.write_json(path(builder.data_dir, split), index, separators=(",", ":"))
    logging.info("%s %s: metadata index of %d examples; %d videos without a stored frame, "
                 "which evaluation counts as failures to acquire", builder.name, split,
                 len(records), len(videos))


def _problem(index: dict, source, split: str) -> str | None:
  """Why `index` does not describe the stored split, or None."""
  split_info = source.dataset_info.splits[split]
  expected = dict(format=FORMAT, format_version=FORMAT_VERSION, split=split,
                  version=str(source.dataset_info.version), num_examples=len(source),
                  shard_lengths=list(split_info.shard_lengths))
  for key, want in expected.items():
    if index.get(key) != want:
      return f"{key} is {index.get(key)!r}, the stored split has {want!r}"
  columns = index.get("columns", {})
  for key in TEXT_COLUMNS + INT_COLUMNS:
    column = columns.get(key)
    column = column.get("codes") if isinstance(column, dict) else column
    if not isinstance(column, list) or len(column) != len(source):
      return f"column {key!r} does not hold one value per stored example"
  return None


def _records(index: dict, dataset: str, split: str) -> list[dict]:
  columns = index["columns"]
  text = [[c["values"][i] for i in c["codes"]] for c in (columns[k] for k in TEXT_COLUMNS)]
  rows = zip(*text, *(columns[k] for k in INT_COLUMNS))
  return [dict(dataset=dataset, split=split, index=i, video_id=video_id, subject=subject,
               domain=domain, device=device, species=species, frame=frame, label=label,
               depth_valid=bool(depth_valid))
          for i, (video_id, subject, domain, device, species, frame, label, depth_valid)
          in enumerate(rows)]


def load(source, dataset: str, split: str) -> tuple[list[dict], list[dict]]:
  """(records as `scan` gives them, unacquired videos with dataset and split added) of one
  stored split, from its index; from a scan, with a warning, where the index is missing or
  stale."""
  file = path(source.dataset_info.data_dir, split)
  why = None
  if not file.is_file():
    why = "missing (a build made before the index existed?)"
  else:
    try:
      index = json.loads(file.read_text())
    except (OSError, ValueError) as e:
      why = f"unreadable ({type(e).__name__}: {e})"
    else:
      why = _problem(index, source, split)
  if why is None:
    try:
      unacquired = [dict(v, dataset=dataset, split=split) for v in index["unacquired"]]
      return _records(index, dataset, split), unacquired
    except (KeyError, TypeError, IndexError, ValueError) as e:  # edited or garbled by hand
      why = f"unreadable ({type(e).__name__}: {e})"
  logging.warning("metadata index %s is %s: scanning the %d stored examples of %s/%s instead "
                  "(slow at scale; videos without a stored frame are unknown, so evaluation "
                  "cannot count them); rebuild the dataset to write the index", file,
                  why if why.startswith(("missing", "unreadable")) else f"stale: {why}",
                  len(source), dataset, split)
  return scan(source, dataset, split), []
