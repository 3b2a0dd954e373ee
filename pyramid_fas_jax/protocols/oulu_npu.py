"""OULU-NPU protocols (Boulkenafet et al., FG 2017), pure functions of the official names.

A video is named Phone_Session_User_File, e.g. '1_1_01_1': phones 1-6, sessions 1-3 (each its
own light and background), users 1-55 (1-20 train, 21-35 dev, 36-55 test: the archive's
Train_files/Dev_files/Test_files), file 1 = real access, 2/3 = print with printer 1/2, 4/5 =
video replay on display 1/2.

  Protocol_1     unseen environment: train/dev sessions 1 and 2, test session 3
  Protocol_2     unseen PAI: train/dev print 1 + display 1 (files 1, 2, 4), test print 2 +
                 display 2 (files 1, 3, 5)
  Protocol_3_k   unseen camera (k = 1..6): train/dev the other five phones, test phone k
  Protocol_4_k   all three: train/dev sessions 1-2, phones != k, files 1, 2, 4; test session 3,
                 phone k, files 1, 3, 5
  all            every video, split by user only: the training and testing sets the
                 cross-dataset protocols (OCIM) use

Video counts (real + attack) per split, as in the official protocol files (and the tests of
Idiap's bob.db.oulunpu): Protocol_1 240+960 / 180+720 / 120+480; Protocol_2 360+720 / 270+540 /
360+720; each Protocol_3_k 300+1200 / 225+900 / 60+240; each Protocol_4_k 200+400 / 150+300 /
20+40; all 360+1440 / 270+1080 / 360+1440 (4950 videos).
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common

SPLITS = common.SPLITS
SPECIES = ("live", "print", "replay")
PROTOCOLS = (("Protocol_1", "Protocol_2") + tuple(f"Protocol_3_{k}" for k in range(1, 7))
             + tuple(f"Protocol_4_{k}" for k in range(1, 7)) + ("all",))
USERS = {"train": range(1, 21), "dev": range(21, 36), "test": range(36, 56)}
_FILE_SPECIES = {1: "live", 2: "print", 3: "print", 4: "replay", 5: "replay"}


def parse(name: str) -> dict:
  """'1_1_01_1' -> phone, session, user, file (ints), split (by user), species."""
  parts = name.split("_")
  try:
    phone, session, user, file = map(int, parts)
  except ValueError:
    raise common.bad_name("OULU-NPU", name, "Phone_Session_User_File, e.g. '1_1_01_1'") from None
  if (len(parts) != 4 or len(parts[2]) != 2 or not 1 <= phone <= 6 or not 1 <= session <= 3
      or not 1 <= user <= 55 or file not in _FILE_SPECIES):
    raise common.bad_name("OULU-NPU", name, "phone 1-6, session 1-3, user 01-55, file 1-5")
  split = next(s for s, users in USERS.items() if user in users)
  return dict(phone=phone, session=session, user=user, file=file, split=split,
              species=_FILE_SPECIES[file])


def all_videos() -> list[str]:
  """The 4950 names of the full release."""
  return [f"{p}_{s}_{u:02d}_{f}" for p in range(1, 7) for s in range(1, 4) for u in range(1, 56)
          for f in range(1, 6)]


def _keep(protocol: str, split: str):
  test = split == "test"
  if protocol == "all":
    return lambda v: True
  if protocol == "Protocol_1":
    return lambda v: (v["session"] == 3) == test
  if protocol == "Protocol_2":
    files = (1, 3, 5) if test else (1, 2, 4)
    return lambda v: v["file"] in files
  kind, _, k = protocol.rpartition("_")
  if kind in ("Protocol_3", "Protocol_4") and k in tuple("123456"):
    phone = int(k)
    if kind == "Protocol_3":
      return lambda v: (v["phone"] == phone) == test
    files = (1, 3, 5) if test else (1, 2, 4)
    return lambda v: ((v["phone"] == phone) == test and (v["session"] == 3) == test
                      and v["file"] in files)
  raise common.unknown_protocol("OULU-NPU", protocol, PROTOCOLS)


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """Names (from names or metadata dicts) of split `split` under `protocol`, sorted."""
  common.check_split(split)
  return common.select(videos, split, parse, _keep(protocol, split))
