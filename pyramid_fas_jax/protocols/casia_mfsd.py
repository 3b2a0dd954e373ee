"""CASIA-MFSD (CASIA-FASD; Zhang et al., ICB 2012) protocols, pure functions of the names.

A video is named by its path in the archive without extension, '<set>_release/<subject>/<file>':
set train (subjects 1-20) or test (numbered 1-30 again; subjects 21-50 of the database),
12 files per subject. Files, as in Idiap's bob.db.casia_fasd:

  quality   real   warped photo   cut photo   video replay
  low       2      4              6           8
  normal    1      3              5           7
  high      HR_1   HR_2           HR_3        HR_4

Species: live, print (warped and cut photos: one PAI, a printed photo), replay. The database
has no dev set: `official` trains on train_release and tests on test_release (the HTER
threshold then comes from the test set, `test_eer`, as in the literature).

  official                       train 60+180, test 90+270 (real + attack videos; 600 in all)
  quality/{low,normal,high}      the paper's tests 1-3: train and test on one camera quality,
                                 train 20+60, test 30+90
  attack/{warped,cut,video}      the paper's tests 4-6: real videos plus one attack type,
                                 train 60+60, test 90+90
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common

SPLITS = common.SPLITS
HAS_DEV = False  # the official protocols have train and test only
SPECIES = ("live", "print", "replay")
QUALITIES = ("low", "normal", "high")
ATTACKS = ("warped", "cut", "video")
PROTOCOLS = (("official",) + tuple(f"quality/{q}" for q in QUALITIES)
             + tuple(f"attack/{a}" for a in ATTACKS))
# file -> (quality, kind); kind is 'real' or an attack type.
FILES = {"1": ("normal", "real"), "2": ("low", "real"), "HR_1": ("high", "real"),
         "3": ("normal", "warped"), "4": ("low", "warped"), "HR_2": ("high", "warped"),
         "5": ("normal", "cut"), "6": ("low", "cut"), "HR_3": ("high", "cut"),
         "7": ("normal", "video"), "8": ("low", "video"), "HR_4": ("high", "video")}
SUBJECTS = {"train": 20, "test": 30}
_KIND_SPECIES = {"real": "live", "warped": "print", "cut": "print", "video": "replay"}


def parse(name: str) -> dict:
  """'train_release/3/HR_2' -> split, subject (1-50), file, quality, kind, species."""
  parts = name.split("/")
  expected = "'<train|test>_release/<subject>/<file>', e.g. 'train_release/1/HR_1'"
  if len(parts) != 3 or parts[0] not in ("train_release", "test_release") or (
      parts[2] not in FILES) or not parts[1].isdigit():
    raise common.bad_name("CASIA-MFSD", name, expected)
  split = parts[0].split("_")[0]
  number = int(parts[1])
  if not 1 <= number <= SUBJECTS[split]:
    raise common.bad_name("CASIA-MFSD", name, f"subjects 1-{SUBJECTS[split]} in {parts[0]}")
  quality, kind = FILES[parts[2]]
  subject = number if split == "train" else SUBJECTS["train"] + number
  return dict(split=split, subject=subject, file=parts[2], quality=quality, kind=kind,
              species=_KIND_SPECIES[kind])


def all_videos() -> list[str]:
  """The 600 names of the full release."""
  return [f"{split}_release/{n}/{f}" for split, count in SUBJECTS.items()
          for n in range(1, count + 1) for f in FILES]


def _keep(protocol: str):
  if protocol == "official":
    return lambda v: True
  kind, _, value = protocol.partition("/")
  if kind == "quality" and value in QUALITIES:
    return lambda v: v["quality"] == value
  if kind == "attack" and value in ATTACKS:
    return lambda v: v["kind"] in ("real", value)
  raise common.unknown_protocol("CASIA-MFSD", protocol, PROTOCOLS)


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """Names of split `split` under `protocol`, sorted; 'dev' is empty (no dev set)."""
  return common.select(videos, split, parse, _keep(protocol))
