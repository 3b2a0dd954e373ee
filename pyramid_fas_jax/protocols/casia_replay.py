"""CASIA-MFSD <-> Replay-Attack: train on one dataset's training set, test on the other's test
set (the paper's Table V: protocols CR and RC). A virtual dataset: `data.name =
"casia_replay"` reads the two stored datasets named in SOURCES.

  to_replay_attack   C -> I (CR): train 240 videos, test 480
  to_casia_mfsd      I -> C (RC): train 360, test 360
  <any>/source_dev   with the source's dev split as dev (Replay-Attack's devel, 360 videos;
                     CASIA-MFSD has none)

No dev set otherwise: the paper's HTER uses the test set's EER threshold (`test_eer`).
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common
from pyramid_fas_jax.protocols import _cross_dataset

SPLITS = common.SPLITS
SOURCES = ("casia_mfsd", "replay_attack")
TRAIN_TEST = {"to_replay_attack": (("casia_mfsd",), "replay_attack"),
              "to_casia_mfsd": (("replay_attack",), "casia_mfsd")}
PROTOCOLS = tuple(TRAIN_TEST) + tuple(f"{p}/source_dev" for p in TRAIN_TEST)


has_dev = _cross_dataset.has_dev


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """'<dataset>:<name>' of split `split` under `protocol`, from metadata dicts carrying
  'dataset' and 'video_id' (or such qualified names)."""
  return _cross_dataset.split_videos(TRAIN_TEST, SOURCES, protocol, split, videos)
