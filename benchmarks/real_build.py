"""CPU cost of building the real datasets, measured on a build of real videos.

  python benchmarks/real_build.py --videos=DIR [--num_workers=-1] [--videos_per_class=16]
                                  [--config=default]     # blazeface: BlazeFace's boxes

DIR holds real face videos (e.g. the two MSU-MFSD live phone videos of the
`bob.db.msu_mfsd_mod==2.2.9` sdist, `test_images/real/*.mp4`, 720x480, 300 frames). Each
resolution class a dataset ships in is made from them with the imageio-ffmpeg binary (libx264):
320x240 (Replay-Attack), the videos as they are (CASIA-FASD, MSU-MFSD) and 1920x1080 (OULU-NPU,
SiW-M). For each class an MSU-MFSD archive of `--videos_per_class` videos (links to those files,
under the official names) is built with the project's builder, with `--num_workers` processes,
and the build's own `face_report.json` gives the CPU seconds of every video (decode, detection,
crop, face mesh, JPEG/PNG encoding; measured in the worker that did it).

The table extrapolates CPU-hours per dataset as its video count x the CPU-s per video of its
class, and the wall time on N cores as CPU-hours / N (a build's videos are independent, so it
scales with cores up to one video per core; the archive check and the writing of records add a
few percent). Videos here are 10 s long; every kept frame (every 5th, at most 30) costs the same
whatever the length, but the frames between are decoded too (grab() decodes), so longer videos
cost more: SiW-M's are 20-60 s.
"""

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time

from pyramid_fas_jax.data import builders, real_builder
from pyramid_fas_jax.protocols import msu_mfsd

# (class, ffmpeg scale filter or None for the file as it is, datasets and their video counts)
CLASSES = (
    ("320x240", "scale=320:240", {"replay_attack": 1200}),
    ("as recorded (720x480)", None, {"casia_mfsd": 600, "msu_mfsd": 280}),
    ("1920x1080", "scale=1920:1080", {"oulu_npu": 4950, "siw_m": 1628}),
)
# Subjects whose videos make the archive, train and test in turn, 8 videos each.
SUBJECTS = (2, 1, 3, 9, 5, 6, 7, 8)


def _encode(src: pathlib.Path, dest: pathlib.Path, scale: str) -> pathlib.Path:
  import imageio_ffmpeg

  # -noautorotate keeps the stored pixels and the rotation tag, as the dataset files have them.
  subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-noautorotate",
                  "-i", str(src), "-vf", scale, "-c:v", "libx264", "-preset", "fast",
                  "-an", str(dest)], check=True)
  return dest


def _archive(root: pathlib.Path, sources: list[pathlib.Path], count: int) -> int:
  """An MSU-MFSD tree of `count` videos linking to `sources` in turn; the videos made."""
  # Subjects interleaved, so any count >= 2 holds train and test videos (a split may not be empty).
  names = [n for group in zip(*(msu_mfsd.subject_videos(s) for s in SUBJECTS)) for n in group]
  names = names[:count]
  (root / "train_sub_list.txt").parent.mkdir(parents=True, exist_ok=True)
  (root / "train_sub_list.txt").write_text(
      "\n".join(f"{s:02d}" for s in msu_mfsd.TRAIN_SUBJECTS))
  (root / "test_sub_list.txt").write_text("\n".join(f"{s:02d}" for s in msu_mfsd.TEST_SUBJECTS))
  for i, name in enumerate(names):
    ext = msu_mfsd.EXTENSIONS["android" if "_android_" in name else "laptop"]
    link = root / f"{name}{ext}"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(sources[i % len(sources)])
  return len(names)


def _build(tree: pathlib.Path, data_dir: pathlib.Path, config, workers: int) -> dict:
  start = time.perf_counter()
  builder = builders.build("msu_mfsd", data_dir=str(data_dir), config=config,
                           num_workers=workers, manual_dir=str(tree), partial=True)
  wall = time.perf_counter() - start
  report = json.loads((pathlib.Path(builder.data_path) / "face_report.json").read_text())
  per_video = {v: r for split in report.values() for v, r in split["per_video"].items()}
  return dict(wall_s=wall, videos=len(per_video),
              cpu_s=sum(r["cpu_s"] for r in per_video.values()),
              frames=sum(r["stored"] for r in per_video.values()),
              sampled=sum(r["sampled"] for r in per_video.values()))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--videos", required=True, type=pathlib.Path)
  parser.add_argument("--num_workers", type=int, default=-1)
  parser.add_argument("--videos_per_class", type=int, default=16)
  parser.add_argument("--config", default="default")
  args = parser.parse_args()
  sources = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in (".mp4", ".mov",
                                                                              ".avi"))
  if not sources:
    parser.error(f"no .mp4/.mov/.avi video in {args.videos}")
  config = {c.name: c for c in real_builder.CONFIGS}[args.config]
  workers = builders.worker_count(args.num_workers)
  print(f"{len(sources)} source videos, config {config.name}, {workers} workers "
        f"({os.cpu_count()} cores), detector {config.face_detector}")
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    for name, scale, datasets in CLASSES:
      made = [p if scale is None else _encode(p, tmp / f"{i}_{name[:9]}.mp4", scale)
              for i, p in enumerate(sources)]
      tree = tmp / f"tree_{len(rows)}"
      _archive(tree, made, args.videos_per_class)
      result = _build(tree, tmp / f"data_{len(rows)}", config, workers)
      per_video = result["cpu_s"] / result["videos"]
      print(f"{name}: {result['videos']} videos, {result['frames']} of {result['sampled']} "
            f"sampled frames stored, {per_video:.2f} CPU-s per video, wall {result['wall_s']:.1f}"
            f" s ({result['cpu_s'] / result['wall_s']:.2f} cores busy)", flush=True)
      rows += [(dataset, count, name, per_video) for dataset, count in datasets.items()]
  print("\n| dataset | videos | class | CPU-s per video | CPU-hours | wall on 16 cores |")
  print("|---|---:|---|---:|---:|---:|")
  total = 0.0
  for dataset, count, name, per_video in rows:
    hours = count * per_video / 3600
    total += hours
    print(f"| {dataset} | {count:,} | {name} | {per_video:.2f} | {hours:.2f} | "
          f"{hours / 16 * 60:.0f} min |")
  print(f"| all five | | | | {total:.2f} | {total / 16 * 60:.0f} min |")


if __name__ == "__main__":
  main()
