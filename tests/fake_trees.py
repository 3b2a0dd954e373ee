"""Small fake archives of the five real datasets, in their official layouts, for the builder
tests: tiny videos of a real face (scikit-image's astronaut) pasted on a plain background, a
few official names per split and species."""

import functools
import pathlib

import cv2
import numpy as np

from pyramid_fas_jax.protocols import casia_mfsd, msu_mfsd, replay_attack

FRAME = (120, 160)   # height, width
FRAMES = 3


@functools.lru_cache(maxsize=1)
def face_patch() -> np.ndarray:
  """The astronaut's head and shoulders, RGB, 64 pixels tall."""
  from skimage import data

  head = data.astronaut()[20:230, 130:320]
  return cv2.resize(head, (58, 64), interpolation=cv2.INTER_AREA)


def write_video(path: pathlib.Path, seed: int, frames: int = FRAMES, upside_down: bool = False,
                face: bool = True):
  """A few frames of the face on a plain background, drifting a little between frames (or,
  with face=False, the background alone: a video in which no face can be found)."""
  rng = np.random.default_rng(seed)
  h, w = FRAME
  patch = face_patch()
  ph, pw = patch.shape[:2]
  background = rng.integers(60, 200, size=3)
  y, x = int(rng.integers(10, h - ph - 10)), int(rng.integers(10, w - pw - 10))
  path.parent.mkdir(parents=True, exist_ok=True)
  fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (w, h))
  if not writer.isOpened():
    raise RuntimeError(f"OpenCV cannot write {path}")
  for i in range(frames):
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = background
    dy, dx = y + i, x + 2 * i
    if face:
      frame[dy:dy + ph, dx:dx + pw] = patch
    if upside_down:
      frame = cv2.rotate(frame, cv2.ROTATE_180)
    writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
  writer.release()


def _write_all(root: pathlib.Path, rel_paths, upside_down=()) -> list[str]:
  for i, rel in enumerate(rel_paths):
    write_video(root / rel, seed=i, upside_down=rel in upside_down)
  return [pathlib.Path(r).with_suffix("").as_posix() for r in rel_paths]


OULU_NAMES = [f"{p}_{s}_{u:02d}_{f}" for u in (1, 21, 36) for p in (1, 2) for s in (1, 3)
              for f in range(1, 6)]


def oulu_npu(root: pathlib.Path) -> list[str]:
  """60 videos: users 1, 21, 36 (one per split), phones 1-2, sessions 1 and 3, files 1-5."""
  folder = {1: "Train_files", 21: "Dev_files", 36: "Test_files"}
  return _write_all(root, [f"{folder[int(n.split('_')[2])]}/{n}.avi" for n in OULU_NAMES])


def casia_mfsd_tree(root: pathlib.Path) -> list[str]:
  """36 videos: train subjects 1 and 2, test subject 1, all 12 files each."""
  names = [n for n in casia_mfsd.all_videos()
           if n.split("/")[0] == "train_release" and n.split("/")[1] in ("1", "2")
           or n.split("/")[0] == "test_release" and n.split("/")[1] == "1"]
  return _write_all(root, [f"{n}.avi" for n in names])


REPLAY_CLIENTS = {"train": 1, "devel": 3, "test": 7}


def replay_names() -> list[str]:
  """15 videos: one client per set, 2 real videos and 3 attacks (print, mobile, highdef)."""
  names = []
  for archive_set, client in REPLAY_CLIENTS.items():
    every = replay_attack.client_videos(archive_set, client)
    real = [n for n in every if "/real/" in n and n.endswith("_1")]
    attacks = [n for n in every if "/attack/" in n and n.endswith("_controlled")]
    names += real + [attacks[0], attacks[3], attacks[6]]
  return names


def replay_attack_tree(root: pathlib.Path) -> list[str]:
  return _write_all(root, [f"{n}.mov" for n in replay_names()])


# Replay-Attack with failures to acquire (replay_attack_fta_tree): a blank bona fide video in
# the test set and a blank print attack in the devel set; the builder test makes the face mesh
# fail on every frame of NO_MESH_VIDEO, so it is stored without depth.
FTA_BONA_FIDE = "test/real/client007_session01_webcam_authenticate_controlled_2"
FTA_ATTACK = "devel/attack/fixed/attack_print_client003_session01_highdef_photo_adverse"
NO_MESH_VIDEO = "test/real/client007_session01_webcam_authenticate_adverse_1"


def replay_attack_fta_tree(root: pathlib.Path) -> list[str]:
  """The 15 videos of replay_attack_tree and the two blank ones: 3 bona fide + 3 attack
  videos in test, 2 + 4 in devel."""
  names = replay_attack_tree(root)
  for i, name in enumerate((FTA_BONA_FIDE, FTA_ATTACK)):
    write_video(root / f"{name}.mov", seed=100 + i, face=False)
  return names + [FTA_BONA_FIDE, FTA_ATTACK]


MSU_SUBJECTS = (3, 1)   # train, test; client 3's Android real video is stored upside down


def msu_mfsd_tree(root: pathlib.Path) -> list[str]:
  """16 videos of subjects 3 (train) and 1 (test), with the subject lists."""
  names = [n for s in MSU_SUBJECTS for n in msu_mfsd.subject_videos(s)]
  rel = [f"{n}{msu_mfsd.EXTENSIONS['android' if '_android_' in n else 'laptop']}" for n in names]
  upside_down = {"scene01/real/real_client003_android_SD_scene01.mp4"}
  (root / "train_sub_list.txt").parent.mkdir(parents=True, exist_ok=True)
  (root / "train_sub_list.txt").write_text(
      "\n".join(f"{s:02d}" for s in msu_mfsd.TRAIN_SUBJECTS))
  (root / "test_sub_list.txt").write_text("\n".join(f"{s:02d}" for s in msu_mfsd.TEST_SUBJECTS))
  return _write_all(root, rel, upside_down)


SIW_M_FILES = ("Live/Train/Live_1.mov", "Live/Test/Live_2.mov", "Replay/Replay_1.mov",
               "Paper/Paper_1.mov", "Mask/HalfMask/Mask_Half_1.mov",
               "Partial/PaperCut/Partial_Eye_1.mov", "Partial/PaperCut/Partial_Mouth_1.mov")


def siw_m_tree(root: pathlib.Path) -> list[str]:
  """7 videos: one live per release split, print, replay, half mask, two partial paper."""
  return _write_all(root, SIW_M_FILES)


TREES = {"oulu_npu": oulu_npu, "casia_mfsd": casia_mfsd_tree,
         "replay_attack": replay_attack_tree, "msu_mfsd": msu_mfsd_tree, "siw_m": siw_m_tree}
