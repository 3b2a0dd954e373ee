"""MSU-MFSD: the MSU mobile face spoofing database (Wen, Han and Jain, TIFS 2015).

280 videos of 35 subjects: 2 real accesses each (MacBook Air webcam, 640x480 .mov; Google
Nexus 5 camera, 720x480 .mp4) and 6 attacks (printed photo, iPad and iPhone video replay, each
captured with both cameras). Licensed: request it from Michigan State University, extract it
(layout in MANUAL_DOWNLOAD_INSTRUCTIONS), then

  python -m pyramid_fas_jax.data.builders msu_mfsd --manual_dir=/data/MSU-MFSD
  # or, with TensorFlow installed:
  tfds build datasets/msu_mfsd --manual_dir=/data/MSU-MFSD --file_format=array_record

Splits train/test are the release's train_sub_list.txt (15 subjects) and test_sub_list.txt
(20); there is no dev set. Six real Android videos are listed as stored upside down (ROTATED)
and turned 180 degrees, but only if their container carries no rotation tag: a tagged one is
shown as its tag says, the fix is skipped, and the log and face_report.json say so
(pyramid_fas_jax/faces/video.py). Protocol (official): pyramid_fas_jax/protocols/msu_mfsd.py.
"""

import pathlib

import tensorflow_datasets as tfds

from pyramid_fas_jax.data import real_builder
from pyramid_fas_jax.protocols import msu_mfsd

# Stored rotated by 180 degrees according to Idiap's bob.db.msu_mfsd_mod (rotated_videos.txt),
# whose FFmpeg reader, as far as we know, ignored rotation tags: so either these files have
# upside-down pixels and no tag (the fix applies) or a 180-degree tag that a tag-aware reader
# already honours (the fix is skipped: turning them again would put them upside down).
ROTATED = tuple(f"scene01/real/real_client{c:03d}_android_SD_scene01"
                for c in (3, 5, 6, 7, 8, 9))
SUBJECT_LISTS = {"train_sub_list.txt": msu_mfsd.TRAIN_SUBJECTS,
                 "test_sub_list.txt": msu_mfsd.TEST_SUBJECTS}


def subject_list_problems(root: pathlib.Path) -> list[str]:
  """Where the release's subject lists disagree with pyramid_fas_jax.protocols.msu_mfsd."""
  problems = []
  for file, ours in SUBJECT_LISTS.items():
    path = root / file
    if not path.is_file():
      problems.append(f"{path}: missing")
      continue
    tokens = path.read_text().split()
    if not all(t.isdigit() for t in tokens):
      problems.append(f"{path}: expected subject numbers, one a line")
    elif sorted(int(t) for t in tokens) != sorted(ours):
      problems.append(f"{path}: lists subjects {sorted(int(t) for t in tokens)}, expected "
                      f"{sorted(ours)}")
  return problems


class Builder(real_builder.Builder):
  """MSU-MFSD dataset builder."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "MTCNN context crops, face-mesh pseudo depth, official names; "
                            "six upside-down Android videos turned upright.",
                   "1.1.0": real_builder.RELEASE_1_1_0}
  SPECIES = msu_mfsd.SPECIES
  SPLITS = ("train", "test")
  HOMEPAGE = "https://biometrics.cse.msu.edu/Publications/Databases/MSUMobileFaceSpoofing/"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request MSU-MFSD from Michigan State University and extract it into one folder, passed as
--manual_dir (or put it at <manual_dir>/msu_mfsd/):

  scene01/real/real_client002_laptop_SD_scene01.mov, real_client002_android_SD_scene01.mp4, ...
  scene01/attack/attack_client002_laptop_SD_<attack>_scene01.mov,
                 attack_client002_android_SD_<attack>_scene01.mp4, ...
                 (<attack>: ipad_video, iphone_video, printed_photo)
  train_sub_list.txt, test_sub_list.txt

(35 subjects x 8 videos; laptop videos are .mov, Android ones .mp4.)
"""

  def _videos(self, root: pathlib.Path) -> list[real_builder.Video]:
    out = []
    for name in msu_mfsd.all_videos():
      v = msu_mfsd.parse(name)
      out.append(real_builder.Video(
          path=root / f"{name}{msu_mfsd.EXTENSIONS[v['camera']]}", video_id=name,
          split=v["split"], species=v["species"], subject=f"{v['subject']:03d}",
          domain="msu_mfsd", device=v["camera"],
          fix="rotate_180" if name in ROTATED else None))
    return out

  def _archive_problems(self, root: pathlib.Path, videos) -> list[str]:
    return subject_list_problems(root)
