"""MSU-MFSD (Wen, Han and Jain, TIFS 2015) protocols, pure functions of the names.

A video is named by its path in the archive without extension:
  scene01/real/real_client<NNN>_<laptop|android>_SD_scene01
  scene01/attack/attack_client<NNN>_<laptop|android>_SD_<attack>_scene01
with <attack> ipad_video, iphone_video or printed_photo.
35 subjects, each with 2 real videos (laptop webcam .mov, Android phone .mp4) and 6 attacks:
280 videos. The official split is by subject, as listed in the archive's train_sub_list.txt
(15 subjects) and test_sub_list.txt (20); there is no dev set.

Species: live, print (printed_photo), replay (ipad_video, iphone_video).

  official   train 30+90, test 40+120 (real + attack videos)
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common

SPLITS = common.SPLITS
HAS_DEV = False  # the official protocols have train and test only
SPECIES = ("live", "print", "replay")
PROTOCOLS = ("official",)
# train_sub_list.txt and test_sub_list.txt of the MSU-MFSD release.
TRAIN_SUBJECTS = (2, 3, 5, 6, 7, 8, 9, 11, 12, 21, 22, 34, 53, 54, 55)
TEST_SUBJECTS = (1, 13, 14, 23, 24, 26, 28, 29, 30, 32, 33, 35, 36, 37, 39, 42, 48, 49, 50, 51)
CAMERAS = ("laptop", "android")
ATTACKS = {"ipad_video": "replay", "iphone_video": "replay", "printed_photo": "print"}
EXTENSIONS = {"laptop": ".mov", "android": ".mp4"}

_EXPECTED = ("scene01/real/real_client<NNN>_<laptop|android>_SD_scene01 or scene01/attack/"
             "attack_client<NNN>_<laptop|android>_SD_<ipad_video|iphone_video|printed_photo>"
             "_scene01")


def parse(name: str) -> dict:
  """Path name -> split, subject, camera, kind ('real' or the attack), species."""
  parts = name.split("/")
  if len(parts) != 3 or parts[0] != "scene01" or parts[1] not in ("real", "attack"):
    raise common.bad_name("MSU-MFSD", name, _EXPECTED)
  fields = parts[2].split("_")
  kind = parts[1]
  if kind == "real":
    ok = len(fields) == 5 and fields[0] == "real"
    attack = None
  else:
    ok = len(fields) == 7 and fields[0] == "attack" and "_".join(fields[4:6]) in ATTACKS
    attack = "_".join(fields[4:6])
  if not (ok and fields[1].startswith("client") and fields[1][6:].isdigit()
          and fields[2] in CAMERAS and fields[3] == "SD" and fields[-1] == "scene01"):
    raise common.bad_name("MSU-MFSD", name, _EXPECTED)
  subject = int(fields[1][6:])
  if subject in TRAIN_SUBJECTS:
    split = "train"
  elif subject in TEST_SUBJECTS:
    split = "test"
  else:
    raise common.bad_name("MSU-MFSD", name, "a subject of train_sub_list.txt or test_sub_list.txt")
  return dict(split=split, subject=subject, camera=fields[2], kind=attack or "real",
              species="live" if kind == "real" else ATTACKS[attack])


def subject_videos(subject: int) -> list[str]:
  """The 8 names of one subject."""
  c = f"client{subject:03d}"
  return ([f"scene01/real/real_{c}_{cam}_SD_scene01" for cam in CAMERAS]
          + [f"scene01/attack/attack_{c}_{cam}_SD_{a}_scene01" for cam in CAMERAS
             for a in ATTACKS])


def all_videos() -> list[str]:
  """The 280 names of the full release."""
  return [n for s in sorted(TRAIN_SUBJECTS + TEST_SUBJECTS) for n in subject_videos(s)]


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """Names of split `split` under `protocol`, sorted; 'dev' is empty (no dev set)."""
  common.check_split(split)
  if protocol not in PROTOCOLS:
    raise common.unknown_protocol("MSU-MFSD", protocol, PROTOCOLS)
  return sorted(n for n in common.video_names(videos) if parse(n)["split"] == split)
