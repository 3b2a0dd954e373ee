"""Idiap Replay-Attack (Chingovska et al., BIOSIG 2012) protocols, pure functions of the names.

A video is named by its path in the archive without extension:
  <set>/real/client<NNN>_session01_webcam_authenticate_<light>_<take>
  <set>/attack/<support>/attack_<device>_client<NNN>_session01_<sample device>_<sample>_<light>
with set train, devel or test (15, 15 and 20 clients; stored as our splits train, dev, test),
light controlled or adverse, support fixed or hand, attack device print (a printed high-def
photo), mobile (iPhone screen) or highdef (iPad screen), showing a photo or a video. Per
client: 4 real videos and 20 attacks. The enrolment videos (enroll/) are not part of the
anti-spoofing protocols.

Species: live, print, replay (mobile and highdef screens, photo or video).

Protocols (Idiap's names; every real video of the split in each):
  grandtest     all attacks: 60+300 / 60+300 / 80+400 (real + attack, train/dev/test)
  print         attack device print: attacks 60 / 60 / 80
  mobile, highdef   one screen: attacks 120 / 120 / 160
  photo         printed or displayed photos: attacks 180 / 180 / 240
  video         displayed videos: attacks 120 / 120 / 160
  digitalphoto  photos on a screen: attacks 120 / 120 / 160
(counts from the tests of Idiap's bob.db.replay: 200 real, 1000 attack videos)
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common

SPLITS = common.SPLITS
SPECIES = ("live", "print", "replay")
PROTOCOLS = ("grandtest", "print", "mobile", "highdef", "photo", "video", "digitalphoto")
ARCHIVE_SETS = {"train": "train", "devel": "dev", "test": "test"}
LIGHTS = ("controlled", "adverse")
SUPPORTS = ("fixed", "hand")
ATTACK_DEVICES = ("print", "mobile", "highdef")
# (attack device, sample device, sample type) of the five attacks per light and support.
ATTACKS = (("print", "highdef", "photo"), ("mobile", "mobile", "photo"),
           ("mobile", "mobile", "video"), ("highdef", "highdef", "photo"),
           ("highdef", "highdef", "video"))

_REAL = "<set>/real/client<NNN>_session01_webcam_authenticate_<light>_<take>"
_ATTACK = ("<set>/attack/<fixed|hand>/attack_<print|mobile|highdef>_client<NNN>_session01_"
           "<highdef|mobile>_<photo|video>_<light>")


def _client(token: str, name: str) -> int:
  if not (token.startswith("client") and token[6:].isdigit() and len(token) == 9):
    raise common.bad_name("Replay-Attack", name, "a client token like 'client001'")
  return int(token[6:])


def parse(name: str) -> dict:
  """Path name -> split, client, light, kind ('real' or 'attack'), attack fields, species."""
  parts = name.split("/")
  if len(parts) < 3 or parts[0] not in ARCHIVE_SETS:
    raise common.bad_name("Replay-Attack", name, f"{_REAL} or {_ATTACK}")
  split = ARCHIVE_SETS[parts[0]]
  fields = parts[-1].split("_")
  if parts[1] == "real" and len(parts) == 3:
    if (len(fields) != 6 or fields[1:4] != ["session01", "webcam", "authenticate"]
        or fields[4] not in LIGHTS or fields[5] not in ("1", "2")):
      raise common.bad_name("Replay-Attack", name, _REAL)
    return dict(split=split, client=_client(fields[0], name), light=fields[4], kind="real",
                support=None, device=None, sample=None, species="live")
  if parts[1] == "attack" and len(parts) == 4 and parts[2] in SUPPORTS:
    if (len(fields) != 7 or fields[0] != "attack" or fields[3] != "session01"
        or (fields[1], fields[4], fields[5]) not in ATTACKS or fields[6] not in LIGHTS):
      raise common.bad_name("Replay-Attack", name, _ATTACK)
    return dict(split=split, client=_client(fields[2], name), light=fields[6], kind="attack",
                support=parts[2], device=fields[1], sample=fields[5],
                species="print" if fields[1] == "print" else "replay")
  raise common.bad_name("Replay-Attack", name, f"{_REAL} or {_ATTACK}")


def client_videos(archive_set: str, client: int) -> list[str]:
  """The 24 names (4 real, 20 attacks) of one client in set train, devel or test."""
  c = f"client{client:03d}"
  real = [f"{archive_set}/real/{c}_session01_webcam_authenticate_{light}_{take}"
          for light in LIGHTS for take in (1, 2)]
  attacks = [f"{archive_set}/attack/{support}/attack_{dev}_{c}_session01_{sdev}_{sample}_{light}"
             for support in SUPPORTS for dev, sdev, sample in ATTACKS for light in LIGHTS]
  return real + attacks


def _keep(protocol: str):
  if protocol == "grandtest":
    return lambda v: True
  if protocol in ATTACK_DEVICES:
    return lambda v: v["kind"] == "real" or v["device"] == protocol
  if protocol in ("photo", "video"):
    return lambda v: v["kind"] == "real" or v["sample"] == protocol
  if protocol == "digitalphoto":
    return lambda v: v["kind"] == "real" or (v["sample"] == "photo" and v["device"] != "print")
  raise common.unknown_protocol("Replay-Attack", protocol, PROTOCOLS)


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """Names of split `split` under `protocol`, sorted."""
  return common.select(videos, split, parse, _keep(protocol))
