"""Idiap Replay-Attack: photo and video attacks on a laptop webcam (Chingovska et al.,
BIOSIG 2012).

1200 videos (320x240, MacBook webcam) of 50 clients under controlled and adverse light: 200
real accesses and 1000 attacks (printed photos, photos and videos on an iPhone or an iPad,
held by hand or on a fixed support). Licensed: request it from Idiap
(https://www.idiap.ch/en/scientific-research/data/replayattack), extract it (layout in
MANUAL_DOWNLOAD_INSTRUCTIONS), then

  python -m pyramid_fas_jax.data.builders replay_attack --manual_dir=/data/replayattack
  # or, with TensorFlow installed:
  tfds build datasets/replay_attack --manual_dir=/data/replayattack --file_format=array_record

Splits train/dev/test are the archive's train/devel/test (15, 15, 20 clients); the enrolment
videos are not used. Protocols (grandtest, print, mobile, highdef, photo, video,
digitalphoto): pyramid_fas_jax/protocols/replay_attack.py.
"""

import pathlib

import tensorflow_datasets as tfds

from pyramid_fas_jax.data import real_builder
from pyramid_fas_jax.protocols import replay_attack

CLIENTS = {"train": 15, "devel": 15, "test": 20}


class Builder(real_builder.Builder):
  """Replay-Attack dataset builder."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "MTCNN context crops, face-mesh pseudo depth, official names.",
                   "1.1.0": real_builder.RELEASE_1_1_0}
  SPECIES = replay_attack.SPECIES
  SPLITS = ("train", "dev", "test")
  HOMEPAGE = "https://www.idiap.ch/en/scientific-research/data/replayattack"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Request Replay-Attack from Idiap and extract it into one folder, passed as --manual_dir (or
put it at <manual_dir>/replay_attack/):

  {train,devel,test}/real/client001_session01_webcam_authenticate_{controlled,adverse}_{1,2}.mov
  {train,devel,test}/attack/{fixed,hand}/attack_print_client001_session01_highdef_photo_{light}.mov
      attack_mobile_client001_session01_mobile_{photo,video}_{light}.mov
      attack_highdef_client001_session01_highdef_{photo,video}_{light}.mov
  (enroll/ and face-locations/ are not needed)

15 clients in train, 15 in devel, 20 in test; 4 real videos and 20 attacks per client.
"""

  def _videos(self, root: pathlib.Path) -> list[real_builder.Video]:
    """Every video of each client found in the archive (a client's 24 names are fixed)."""
    clients = {archive_set: set() for archive_set in CLIENTS}
    for archive_set in CLIENTS:
      for path in sorted((root / archive_set).glob("**/*.mov")):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name.split("/")[1] in ("real", "attack"):
          clients[archive_set].add(replay_attack.parse(name)["client"])
    out = []
    for archive_set, ids in clients.items():
      for client in sorted(ids):
        for name in replay_attack.client_videos(archive_set, client):
          v = replay_attack.parse(name)
          out.append(real_builder.Video(
              path=root / f"{name}.mov", video_id=name, split=v["split"], species=v["species"],
              subject=f"client{client:03d}", domain=v["light"], device="webcam"))
    return out

  def _archive_problems(self, root: pathlib.Path, videos) -> list[str]:
    problems = []
    for archive_set, count in CLIENTS.items():
      found = {v.subject for v in videos if v.video_id.startswith(archive_set + "/")}
      if len(found) != count:
        problems.append(f"{root / archive_set}: videos of {len(found)} clients, expected {count}")
    return problems
