"""The per-split metadata index: written by the build, equal to the scan it replaces, and
refused (with a warning naming the file, then the scan) when missing, unreadable or stale."""

import json
import logging
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from pyramid_fas_jax.data import metadata_index, pipeline, splits
from pyramid_fas_jax.experiment import config as data_config


def _warnings(caplog) -> list[str]:
  # Other tests may leave absl at INFO, whose records caplog then sees too.
  return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _sources(data_dir):
  return tfds.data_source("synth_fas/tiny", data_dir=data_dir,
                          decoders=metadata_index.SKIP_IMAGES)


def _selection(config, split: str) -> tuple:
  """What the protocol picks of `split`: the examples' keys and the species list."""
  chosen = splits.of(config.data, split)
  return chosen.keys, chosen.species


def _copy(synth_tiny, tmp_path) -> tuple[str, pathlib.Path]:
  """A copy of the SynthFAS 'tiny' build to spoil; (data_dir, version dir)."""
  data_dir = tmp_path / "tfds"
  shutil.copytree(synth_tiny, data_dir)
  version_dir, = (data_dir / "synth_fas" / "tiny").iterdir()
  return str(data_dir), version_dir


def test_index_equals_the_scan(synth_tiny, caplog):
  for split, source in _sources(synth_tiny).items():
    with caplog.at_level(logging.WARNING):
      records, unacquired = metadata_index.load(source, "synth_fas", split)
    assert not _warnings(caplog)
    assert records == metadata_index.scan(source, "synth_fas", split)
    assert len(records) == 24 and unacquired == []
    assert [r["index"] for r in records] == list(range(24))
    assert all(r["depth_valid"] for r in records)


@pytest.mark.parametrize("spoil,why", [
    ("delete", "missing"),
    ("garbage", "unreadable"),
    ("count", "stale: num_examples is 23, the stored split has 24"),
    ("shards", "stale: shard_lengths is [12, 12], the stored split has [24]"),
    ("format", "stale: format_version is 0"),
    ("column", "stale: column 'frame' does not hold one value per stored example"),
])
def test_a_bad_index_falls_back_to_the_scan_with_a_warning(synth_tiny, tmp_path, caplog,
                                                           spoil, why):
  data_dir, version_dir = _copy(synth_tiny, tmp_path)
  file = version_dir / "metadata-test.json"
  index = json.loads(file.read_text())
  if spoil == "delete":
    file.unlink()
  elif spoil == "garbage":
    file.write_text("{not json")
  else:
    key, value = {"count": ("num_examples", 23), "shards": ("shard_lengths", [12, 12]),
                  "format": ("format_version", 0)}.get(spoil, (None, None))
    if key:
      index[key] = value
    else:
      index["columns"]["frame"] = index["columns"]["frame"][:-1]
    file.write_text(json.dumps(index))
  source = _sources(data_dir)["test"]
  with caplog.at_level(logging.WARNING):
    records, unacquired = metadata_index.load(source, "synth_fas", "test")
  assert records == metadata_index.scan(source, "synth_fas", "test") and unacquired == []
  message, = _warnings(caplog)
  assert str(file) in message and why in message and "scanning the 24 stored examples" in message


def test_pipeline_selects_the_same_from_a_scan(synth_tiny, tmp_path, caplog):
  data_dir, version_dir = _copy(synth_tiny, tmp_path)
  for file in version_dir.glob("metadata-*.json"):
    file.unlink()
  configs = []
  for d in (synth_tiny, data_dir):
    c = data_config.default_data_config()
    c.data.builder_config, c.data.data_dir = "tiny", d
    c.data.protocol = "cross_domain/office"
    configs.append(c)
  with caplog.at_level(logging.WARNING):
    for split in ("train", "dev", "test"):
      assert _selection(configs[0], split) == _selection(configs[1], split)
  assert len(_warnings(caplog)) == 3  # one per stored split, once per process
  assert splits.of(configs[1].data, "test").unacquired == []


class _OldSource:
  """A data source of a build made before depth_valid existed."""

  def __init__(self, examples):
    self._examples = examples
    self.dataset_info = type("Info", (), {"features": {"species": type(
        "Label", (), {"names": ["live", "print"]})()}})()

  def __len__(self):
    return len(self._examples)

  def __getitem__(self, i):
    return self._examples[i]


def test_builds_without_depth_valid_read_as_valid():
  old = dict(video_id=b"v", subject=b"s", domain=b"d", device=b"c", species=1, frame=3, label=0)
  records = metadata_index.scan(_OldSource([old]), "x", "test")
  assert records == [dict(dataset="x", split="test", index=0, video_id="v", subject="s",
                          domain="d", device="c", species="print", frame=3, label=0,
                          depth_valid=True)]
  row = pipeline._Transform(species=("live", "print"), size=8, mean=(0.5,) * 3, std=(0.5,) * 3,
                            eval_scale=1.0, aug=None)
  example = dict(image=np.zeros((16, 16, 3), np.uint8), depth=np.zeros((16, 16, 1), np.uint8),
                 mask=np.zeros((16, 16, 1), np.uint8), face_box=np.array([0.2, 0.2, 0.8, 0.8]),
                 label=0, species=1, video_id=b"v", frame=0)
  assert row(example)["depth_valid"] == np.float32(1.0)
  assert row(dict(example, label=1, depth_valid=False))["depth_valid"] == np.float32(0.0)
