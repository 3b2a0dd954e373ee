"""OCIM leave-one-dataset-out: train on the training sets of three of OULU-NPU (O), CASIA-MFSD
(C), Replay-Attack (I, Idiap) and MSU-MFSD (M), test on the test set of the fourth (the paper's
Table IV, after Shao et al., CVPR 2019). A virtual dataset: `data.name = "ocim"` reads the four
stored datasets named in SOURCES.

  to_msu_mfsd        O&C&I -> M: train 1800 + 240 + 360 = 2400 videos, test 160
  to_casia_mfsd      O&M&I -> C: train 1800 + 120 + 360 = 2280, test 360
  to_replay_attack   O&C&M -> I: train 1800 + 240 + 120 = 2160, test 480
  to_oulu_npu        I&C&M -> O: train 360 + 240 + 120 = 720, test 1800
  <any>/source_dev   the same, with the sources' dev splits as dev (OULU-NPU 1350 videos,
                     Replay-Attack 360; CASIA-MFSD and MSU-MFSD have none)

No dev set otherwise: the paper's HTER uses the test set's EER threshold (`test_eer`).
Counts follow from each dataset's training/testing set (see _cross_dataset.BASE and the
dataset modules).
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common
from pyramid_fas_jax.protocols import _cross_dataset

SPLITS = common.SPLITS
SOURCES = ("oulu_npu", "casia_mfsd", "replay_attack", "msu_mfsd")
TRAIN_TEST = {f"to_{target}": (tuple(s for s in SOURCES if s != target), target)
              for target in SOURCES}
PROTOCOLS = tuple(TRAIN_TEST) + tuple(f"{p}/source_dev" for p in TRAIN_TEST)


has_dev = _cross_dataset.has_dev


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """'<dataset>:<name>' of split `split` under `protocol`, from metadata dicts carrying
  'dataset' and 'video_id' (or such qualified names)."""
  return _cross_dataset.split_videos(TRAIN_TEST, SOURCES, protocol, split, videos)
