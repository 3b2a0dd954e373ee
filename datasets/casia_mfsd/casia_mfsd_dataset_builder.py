"""CASIA-MFSD (CASIA-FASD): face anti-spoofing with diverse attacks (Zhang et al., ICB 2012).

600 videos of 50 subjects, 12 each: real accesses and warped-photo, cut-photo and video-replay
attacks, each at three camera qualities (low and normal quality USB cameras, a Sony NEX-5).
Licensed: request it from CASIA (Institute of Automation, Chinese Academy of Sciences), extract
it (layout in MANUAL_DOWNLOAD_INSTRUCTIONS), then

  python -m pyramid_fas_jax.data.builders casia_mfsd --manual_dir=/data/CASIA_faceAntisp
  # or, with TensorFlow installed:
  tfds build datasets/casia_mfsd --manual_dir=/data/CASIA_faceAntisp --file_format=array_record

Splits train/test are train_release (20 subjects) and test_release (30); there is no dev set.
Protocols (official, quality/<q>, attack/<a>): pyramid_fas_jax/protocols/casia_mfsd.py.
"""

import pathlib

import tensorflow_datasets as tfds

from pyramid_fas_jax.data import real_builder
from pyramid_fas_jax.protocols import casia_mfsd


class Builder(real_builder.Builder):
  """CASIA-MFSD dataset builder."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "MTCNN context crops, face-mesh pseudo depth, official names.",
                   "1.1.0": real_builder.RELEASE_1_1_0}
  SPECIES = casia_mfsd.SPECIES
  SPLITS = ("train", "test")
  HOMEPAGE = "http://www.cbsr.ia.ac.cn/english/FaceAntiSpoofDatabases.asp"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request CASIA-FASD (CASIA-MFSD) from the Center for Biometrics and Security Research, CASIA,
and extract it into one folder, passed as --manual_dir (or put it at
<manual_dir>/casia_mfsd/):

  train_release/1/ ... train_release/20/     1.avi ... 8.avi, HR_1.avi ... HR_4.avi each
  test_release/1/ ... test_release/30/       the same 12 files each

Files 1, 2, HR_1 are real accesses (normal, low, high quality), 3, 4, HR_2 warped photos,
5, 6, HR_3 cut photos, 7, 8, HR_4 video replays.
"""

  def _videos(self, root: pathlib.Path) -> list[real_builder.Video]:
    out = []
    for name in casia_mfsd.all_videos():
      v = casia_mfsd.parse(name)
      out.append(real_builder.Video(
          path=root / f"{name}.avi", video_id=name, split=v["split"], species=v["species"],
          subject=str(v["subject"]), domain="casia_mfsd", device=f"{v['quality']}_quality"))
    return out
