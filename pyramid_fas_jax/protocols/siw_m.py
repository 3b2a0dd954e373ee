"""SiW-M (Liu et al., "Deep Tree Learning for Zero-shot Face Anti-Spoofing", CVPR 2019)
leave-one-attack-out protocols, pure functions of the names.

A video is named by its path in the archive without extension, e.g. 'Live/Train/Live_12',
'Mask/HalfMask/Mask_Half_3', 'Paper/Paper_8', 'Partial/PaperCut/Partial_Eye_6'. Live videos
come split into Live/Train and Live/Test by the release; every attack type sits in its own
folder (`FOLDERS`). The 13 attack types are the species.

  leave_out/<type>   train: Live/Train + the 12 other types; test: Live/Test + <type>.
                     No dev set: the paper reports EER and ACER on test (`test_eer`).

Attack videos per type, from the SiW-M paper's table: replay 99, print 118, half_mask 72,
silicone_mask 27, transparent_mask 88, paper_mask 17, mannequin 40, obfuscation_makeup 23,
impersonation_makeup 61, cosmetic_makeup 50, funny_eye 160, paper_glasses 127,
partial_paper 86 (968 in all, with 660 live videos). So leave_out/<type> tests on the
Live/Test videos plus that type's count and trains on Live/Train plus 968 minus it.
"""

from collections.abc import Iterable, Mapping

from pyramid_fas_jax.protocols import _common as common

SPLITS = common.SPLITS
HAS_DEV = False  # the official protocols have train and test only
# Species (the folder of each attack type, the file-name prefix) in the paper's table order.
FOLDERS = {
    "replay": ("Replay", "Replay"),
    "print": ("Paper", "Paper"),
    "half_mask": ("Mask/HalfMask", "Mask_Half"),
    "silicone_mask": ("Mask/SiliconeMask", "Mask_Silicone"),
    "transparent_mask": ("Mask/TransparentMask", "Mask_Trans"),
    "paper_mask": ("Mask/PaperMask", "Mask_Paper"),
    "mannequin": ("Mask/MannequinHead", "Mask_Mann"),
    "obfuscation_makeup": ("Makeup/Obfuscation", "Makeup_Ob"),
    "impersonation_makeup": ("Makeup/Impersonation", "Makeup_Im"),
    "cosmetic_makeup": ("Makeup/Cosmetic", "Makeup_Co"),
    "funny_eye": ("Partial/FunnyeyeGlasses", "Partial_Funnyeye"),
    "paper_glasses": ("Partial/PaperGlasses", "Partial_Paperglass"),
    "partial_paper": ("Partial/PaperCut", ("Partial_Eye", "Partial_Mouth")),
}
ATTACKS = tuple(FOLDERS)
SPECIES = ("live",) + ATTACKS
PROTOCOLS = tuple(f"leave_out/{a}" for a in ATTACKS)
PUBLISHED_COUNTS = {
    "replay": 99, "print": 118, "half_mask": 72, "silicone_mask": 27, "transparent_mask": 88,
    "paper_mask": 17, "mannequin": 40, "obfuscation_makeup": 23, "impersonation_makeup": 61,
    "cosmetic_makeup": 50, "funny_eye": 160, "paper_glasses": 127, "partial_paper": 86,
}
LIVE_VIDEOS = 660
LIVE_FOLDERS = {"Live/Train": "train", "Live/Test": "test"}


def _numbered(stem: str, prefixes) -> bool:
  prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
  return any(stem.startswith(p + "_") and stem[len(p) + 1:].isdigit() for p in prefixes)


def parse(name: str) -> dict:
  """Path name -> species, and for live videos the release's split ('train' or 'test')."""
  folder, _, stem = name.rpartition("/")
  if folder in LIVE_FOLDERS and _numbered(stem, "Live"):
    return dict(species="live", live_split=LIVE_FOLDERS[folder])
  for species, (path, prefixes) in FOLDERS.items():
    if folder == path and _numbered(stem, prefixes):
      return dict(species=species, live_split=None)
  expected = ", ".join([f"{f}/Live_<n>" for f in LIVE_FOLDERS]
                       + [f"{p}/{x if isinstance(x, str) else '|'.join(x)}_<n>"
                          for p, x in FOLDERS.values()])
  raise common.bad_name("SiW-M", name, f"one of {expected}")


def split_videos(protocol: str, split: str, videos: Iterable[str | Mapping]) -> list[str]:
  """Names of split `split` under `protocol`, sorted; 'dev' is empty (no dev set)."""
  common.check_split(split)
  kind, _, held_out = protocol.partition("/")
  if kind != "leave_out" or held_out not in ATTACKS:
    raise common.unknown_protocol("SiW-M", protocol, PROTOCOLS)
  out = []
  for name in common.video_names(videos):
    v = parse(name)
    if v["species"] == "live":
      keep = v["live_split"] == split
    else:
      keep = (v["species"] == held_out) == (split == "test") and split != "dev"
    if keep:
      out.append(name)
  return sorted(out)
