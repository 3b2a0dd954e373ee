"""SynthFAS protocols.

The stored splits hold disjoint subjects (60/20/20). Protocols, chosen at load time:

  intra                      every domain and species; train/dev/test = the stored splits
  cross_domain/<domain>      leave one capture domain out, as OCIM leaves one dataset out:
                             train and dev on the other domains, test on the held-out one
  cross_attack/<species>     leave one attack species out, as SiW-M: train and dev without
                             it, test on bona fide plus the unseen species

Domains: studio, office, lowlight, outdoor. Species: print, replay, mask3d, partial.
"""

from collections.abc import Mapping, Sequence

SPLITS = ("train", "dev", "test")
DOMAINS = ("studio", "office", "lowlight", "outdoor")
SPECIES = ("live", "print", "replay", "mask3d", "partial")
PROTOCOLS = (("intra",) + tuple(f"cross_domain/{d}" for d in DOMAINS)
             + tuple(f"cross_attack/{s}" for s in SPECIES[1:]))


def _keep(protocol: str, split: str):
  kind, _, held_out = protocol.partition("/")
  if kind == "intra" and not held_out:
    return lambda v: True
  if kind == "cross_domain" and held_out in DOMAINS:
    if split == "test":
      return lambda v: v["domain"] == held_out
    return lambda v: v["domain"] != held_out
  if kind == "cross_attack" and held_out in SPECIES[1:]:
    if split == "test":
      return lambda v: v["species"] in ("live", held_out)
    return lambda v: v["species"] != held_out
  raise ValueError(f"unknown SynthFAS protocol {protocol!r}; expected one of {list(PROTOCOLS)}")


def split_videos(protocol: str, split: str, videos: Sequence[Mapping]) -> list[str]:
  """Video ids of `split` ('train', 'dev' or 'test') under `protocol`."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
  keep = _keep(protocol, split)
  return sorted({v["video_id"] for v in videos if v["split"] == split and keep(v)})
