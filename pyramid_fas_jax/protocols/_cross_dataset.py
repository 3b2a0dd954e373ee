"""Cross-dataset protocols: train on the training sets of some datasets, test on the test set of
another. Used by the virtual datasets `ocim` and `casia_replay` (their modules name the stored
datasets they read in SOURCES; the input pipeline loads all of them).

Each dataset contributes its training and testing sets as one of its own protocols defines them
(BASE: OULU-NPU 'all', CASIA-MFSD and MSU-MFSD 'official', Replay-Attack 'grandtest').
Videos are named '<dataset>:<official name>', e.g. 'msu_mfsd:scene01/real/real_client001_...',
so names never collide across datasets. The input records carry 'dataset' and the official
'video_id'.

The paper has no dev set in these protocols: the HTER threshold is the EER threshold of the
test set (`test_eer`). `<protocol>/source_dev` adds a dev set, the dev splits of the source
datasets that have one (OULU-NPU's Dev_files, Replay-Attack's devel set), so a threshold can be
chosen without the test set.
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax import protocols
from pyramid_fas_jax.protocols import _common as common

BASE = {"oulu_npu": "all", "casia_mfsd": "official", "replay_attack": "grandtest",
        "msu_mfsd": "official"}


def _by_dataset(videos: Iterable[Mapping], sources) -> dict[str, list[str]]:
  out = {d: [] for d in sources}
  for v in videos:
    if isinstance(v, str):
      dataset, sep, name = v.partition(":")
      if not sep:
        raise ValueError(f"cross-dataset video name {v!r} has no '<dataset>:' prefix")
    else:
      dataset, name = v["dataset"], v["video_id"]
    if dataset not in out:
      raise ValueError(f"video {name!r} comes from {dataset!r}, which is not one of the "
                       f"source datasets {list(sources)}")
    out[dataset].append(name)
  return out


def has_dev(protocol: str) -> bool:
  """Only the `/source_dev` variants have a dev set (the sources' dev splits)."""
  return protocol.endswith("/source_dev")


def split_videos(train_test: Mapping[str, tuple[tuple[str, ...], str]], sources,
                 protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """Qualified names of `split` under `protocol` of a cross-dataset module.

  `train_test` maps each protocol name to (training datasets, test dataset).
  """
  common.check_split(split)
  name, _, option = protocol.partition("/")
  if name not in train_test or option not in ("", "source_dev"):
    known = [p for n in train_test for p in (n, f"{n}/source_dev")]
    raise common.unknown_protocol("cross-dataset", protocol, known)
  train_sets, test_set = train_test[name]
  if split == "test":
    parts = [(test_set, "test")]
  elif split == "train":
    parts = [(d, "train") for d in train_sets]
  else:
    parts = [(d, "dev") for d in train_sets] if option else []
  names = _by_dataset(videos, sources)
  out = []
  for dataset, dataset_split in parts:
    chosen = protocols.for_dataset(dataset).split_videos(BASE[dataset], dataset_split,
                                                         names[dataset])
    out += [protocols.qualified(dataset, n) for n in chosen]
  return sorted(out)
