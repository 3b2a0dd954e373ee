"""OULU-NPU: mobile face presentation attacks (Boulkenafet et al., FG 2017).

4950 videos (1920x1080, front cameras of 6 phones) of 55 subjects in 3 sessions: real accesses,
print (2 printers) and video-replay (2 displays) attacks. Licensed: request it from the
University of Oulu (https://sites.google.com/site/oulunpudatabase/), extract the archives into
one folder (layout in MANUAL_DOWNLOAD_INSTRUCTIONS), then

  python -m pyramid_fas_jax.data.builders oulu_npu --manual_dir=/data/Oulu_NPU --num_workers=8
  # or, with TensorFlow installed:
  tfds build datasets/oulu_npu --manual_dir=/data/Oulu_NPU --file_format=array_record

Splits train/dev/test are the archive's Train_files/Dev_files/Test_files (users 1-20, 21-35,
36-55); the protocols (Protocol_1, Protocol_2, Protocol_3_k, Protocol_4_k, all) select within
them at load time: pyramid_fas_jax/protocols/oulu_npu.py, checked against the archive's
Protocols/ files when the archive is complete.
"""

import pathlib

import tensorflow_datasets as tfds

from pyramid_fas_jax.data import real_builder
from pyramid_fas_jax.protocols import oulu_npu

FOLDERS = {"train": "Train_files", "dev": "Dev_files", "test": "Test_files"}
# Protocol -> {split: protocol file(s) under Protocols/}.
_PROTOCOL_FILES = {
    "Protocol_1": {s: f"Protocol_1/{s.capitalize()}.txt" for s in oulu_npu.SPLITS},
    "Protocol_2": {s: f"Protocol_2/{s.capitalize()}.txt" for s in oulu_npu.SPLITS},
    **{f"Protocol_{p}_{k}": {s: f"Protocol_{p}/{s.capitalize()}_{k}.txt" for s in oulu_npu.SPLITS}
       for p in (3, 4) for k in range(1, 7)},
}


def protocol_file_problems(protocols_dir: pathlib.Path) -> list[str]:
  """Where the official protocol files disagree with pyramid_fas_jax.protocols.oulu_npu."""
  universe = oulu_npu.all_videos()
  problems = []
  for protocol, files in _PROTOCOL_FILES.items():
    for split, rel in files.items():
      path = protocols_dir / rel
      if not path.is_file():
        problems.append(f"{path}: missing")
        continue
      listed = {}
      for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
          continue
        label, _, name = line.strip().partition(",")
        if label.strip() not in ("+1", "-1", "-2") or not name.strip():
          problems.append(f"{path}:{n}: expected '<+1|-1|-2>,<video name>', got {line!r}")
          continue
        listed[name.strip()] = label.strip()
      ours = set(oulu_npu.split_videos(protocol, split, universe))
      for name in sorted(set(listed) - ours):
        problems.append(f"{path}: lists {name}, which {protocol}/{split} here does not")
      for name in sorted(ours - set(listed)):
        problems.append(f"{path}: does not list {name}, which {protocol}/{split} here does")
      for name, label in listed.items():
        if name in ours and (label == "+1") != (oulu_npu.parse(name)["species"] == "live"):
          problems.append(f"{path}: label {label} of {name} disagrees with its file number")
  return problems


class Builder(real_builder.Builder):
  """OULU-NPU dataset builder."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "MTCNN context crops, face-mesh pseudo depth, official names.",
                   "1.1.0": real_builder.RELEASE_1_1_0}
  SPECIES = oulu_npu.SPECIES
  SPLITS = ("train", "dev", "test")
  HOMEPAGE = "https://sites.google.com/site/oulunpudatabase/"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request OULU-NPU from https://sites.google.com/site/oulunpudatabase/ and extract the archives
into one folder, passed as --manual_dir (or put it at <manual_dir>/oulu_npu/):

  Train_files/1_1_01_1.avi ... 6_3_20_5.avi    (1800 videos, users 01-20)
  Dev_files/1_1_21_1.avi ... 6_3_35_5.avi      (1350 videos, users 21-35)
  Test_files/1_1_36_1.avi ... 6_3_55_5.avi     (1800 videos, users 36-55)
  Protocols/Protocol_1/{Train,Dev,Test}.txt, Protocol_2/..., Protocol_3/{Train,Dev,Test}_{1-6}.txt,
  Protocol_4/{Train,Dev,Test}_{1-6}.txt

Names are Phone_Session_User_File (phone 1-6, session 1-3, user 01-55, file 1 real, 2-3 print,
4-5 replay). The *.txt eye-position files next to the videos are not needed.
"""

  def _videos(self, root: pathlib.Path) -> list[real_builder.Video]:
    out = []
    for name in oulu_npu.all_videos():
      v = oulu_npu.parse(name)
      out.append(real_builder.Video(
          path=root / FOLDERS[v["split"]] / f"{name}.avi", video_id=name, split=v["split"],
          species=v["species"], subject=f"{v['user']:02d}", domain=f"session{v['session']}",
          device=f"phone{v['phone']}"))
    return out

  def _archive_problems(self, root: pathlib.Path, videos) -> list[str]:
    return protocol_file_problems(root / "Protocols")
