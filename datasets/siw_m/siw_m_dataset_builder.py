"""SiW-M: Spoof in the Wild with Multiple attack types (Liu et al., CVPR 2019).

Live videos and 13 attack types (replay, print, five masks, three makeups, three partial
attacks) in 1080p. Licensed: request it from Michigan State University's CVLab
(http://cvlab.cse.msu.edu/siw-m-spoof-in-the-wild-with-multiple-attacks-database.html),
extract it (layout in MANUAL_DOWNLOAD_INSTRUCTIONS), then

  python -m pyramid_fas_jax.data.builders siw_m --manual_dir=/data/SiW-M --num_workers=8
  # or, with TensorFlow installed:
  tfds build datasets/siw_m --manual_dir=/data/SiW-M --file_format=array_record

Everything is stored in one split, `full`: the leave-one-attack-out protocols
(pyramid_fas_jax/protocols/siw_m.py) choose train and test from the names (Live/Train and
Live/Test, and the attack type's folder). Liveness masks are filled from the label (all 0 for
every attack, partial ones included): the paper used SiW-M's annotated masks, which this builder
does not read. File names carry no subject, so `subject` is empty.
"""

import pathlib

import tensorflow_datasets as tfds
from absl import logging

from pyramid_fas_jax.data import real_builder
from pyramid_fas_jax.protocols import siw_m

SUFFIXES = (".mov", ".mp4")


class Builder(real_builder.Builder):
  """SiW-M dataset builder."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "MTCNN context crops, face-mesh pseudo depth, official names; "
                            "masks filled from the label.",
                   "1.1.0": real_builder.RELEASE_1_1_0}
  SPECIES = siw_m.SPECIES
  SPLITS = ("full",)
  HOMEPAGE = "http://cvlab.cse.msu.edu/siw-m-spoof-in-the-wild-with-multiple-attacks-database.html"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request SiW-M from MSU's CVLab and extract it into one folder, passed as --manual_dir (or put
it at <manual_dir>/siw_m/):

  Live/Train/Live_<n>.mov, Live/Test/Live_<n>.mov
  Replay/Replay_<n>.mov, Paper/Paper_<n>.mov
  Mask/{HalfMask/Mask_Half,SiliconeMask/Mask_Silicone,TransparentMask/Mask_Trans,
        PaperMask/Mask_Paper,MannequinHead/Mask_Mann}_<n>.mov
  Makeup/{Obfuscation/Makeup_Ob,Impersonation/Makeup_Im,Cosmetic/Makeup_Co}_<n>.mov
  Partial/{FunnyeyeGlasses/Partial_Funnyeye,PaperGlasses/Partial_Paperglass}_<n>.mov,
  Partial/PaperCut/Partial_Eye_<n>.mov and Partial_Mouth_<n>.mov

The numbering has gaps, so missing videos cannot be named; the build compares the number of
videos per attack type with the paper's table and warns where they differ.
"""

  def _videos(self, root: pathlib.Path) -> list[real_builder.Video]:
    folders = list(siw_m.LIVE_FOLDERS) + [path for path, _ in siw_m.FOLDERS.values()]
    out = []
    for folder in folders:
      for path in sorted(p for p in (root / folder).glob("*") if p.suffix.lower() in SUFFIXES):
        name = path.relative_to(root).with_suffix("").as_posix()
        v = siw_m.parse(name)  # raises on a name outside the official scheme
        out.append(real_builder.Video(path=path, video_id=name, split="full",
                                      species=v["species"], subject="", domain="siw_m",
                                      device=""))
    return out

  def _archive_problems(self, root: pathlib.Path, videos) -> list[str]:
    counts = {s: 0 for s in siw_m.SPECIES}
    for v in videos:
      counts[v.species] += 1
    expected = dict(siw_m.PUBLISHED_COUNTS, live=siw_m.LIVE_VIDEOS)
    for species, count in counts.items():
      if count != expected[species]:
        logging.warning("siw_m: %d %s videos under %s; the SiW-M paper lists %d", count,
                        species, root, expected[species])
    return []
