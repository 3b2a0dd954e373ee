"""BlazeFace's face boxes against MTCNN's on real frames: fits faces/blazeface.py's CALIBRATION,
reports the IoU with MTCNN's boxes before and after it on frames held out of the fit, and the
detection speed of each detector.

  python benchmarks/blazeface_calibration.py --videos=DIR [--fit=NAME] [--frame_step=10]
                                             [--threads=1]

DIR holds the real (live) MSU-MFSD phone videos that ship in the `bob.db.msu_mfsd_mod==2.2.9`
sdist on PyPI (test_images/real/*.mp4, two subjects; one carries a 180-degree rotation tag,
which video.read_frames applies). The sdist cannot build its metadata (it needs bob.extension),
so pip stops after downloading it; `--no-clean` leaves it unpacked:
  pip download --no-deps --no-binary :all: --no-clean bob.db.msu_mfsd_mod==2.2.9 -d /tmp/msu
  find "${TMPDIR:-/tmp}" -path '*test_images/real/*.mp4'
Runs offline given DIR. Frames: every --frame_step-th of each video, and scikit-image's
astronaut where skimage is installed; each with 6 variants: rescaled to 1080 and 360 pixels
high, mirrored, two crops around the face (sides 1.3-3.5 x the face, random position) and
turned 4-12 degrees either way (seeded).

The fit uses the frames of one video (--fit: a file name prefix, default the first video) and
its variants, where both detectors found a face: least squares in units of BlazeFace's box,
cx' = cx + a w, cy' = cy + b h, w' = c w, h' = d h. Everything else is held out. Printed per
set: mean / median / 5th percentile IoU with MTCNN's box of BlazeFace's box as drawn, after the
affine map, and after the affine map and MTCNN's O-Net (blazeface.BlazeFaceDetector.detect);
MTCNN's own repeatability (its box on the mirrored frame, mirrored back, against its box on the
frame) for scale; the fitted constants, to paste into blazeface.CALIBRATION; ms per frame of
each detector's detect() over all the frames, one thread each (--threads) as a build worker
runs.
"""

import argparse
import pathlib
import time

import cv2
import numpy as np

from pyramid_fas_jax.faces import blazeface, face, video

RESCALES = (1080, 360)


def variants(rgb: np.ndarray, box, rng) -> list[tuple[str, np.ndarray]]:
  """The frame and its variants (module docstring), placed around its face `box`."""
  h, w = rgb.shape[:2]
  out = [("frame", rgb)]
  for height in RESCALES:
    s = height / h
    out.append((f"{height}p", cv2.resize(rgb, (round(w * s), height), interpolation=(
        cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR))))
  out.append(("mirrored", np.ascontiguousarray(rgb[:, ::-1])))
  x0, y0, x1, y1 = box
  side, cx, cy = max(x1 - x0, y1 - y0), (x0 + x1) / 2, (y0 + y1) / 2
  for k in range(2):
    crop_w, crop_h = side * rng.uniform(1.3, 3.5), side * rng.uniform(1.3, 3.5)
    left = int(max(cx - crop_w * rng.uniform(0.3, 0.7), 0))
    top = int(max(cy - crop_h * rng.uniform(0.3, 0.7), 0))
    out.append((f"crop{k}", np.ascontiguousarray(
        rgb[top:int(min(top + crop_h, h)), left:int(min(left + crop_w, w))])))
  angle = rng.uniform(4, 12) * rng.choice([-1, 1])
  turn = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
  out.append(("turned", cv2.warpAffine(rgb, turn, (w, h), borderMode=cv2.BORDER_REPLICATE)))
  return out


def source_frames(videos: pathlib.Path, frame_step: int) -> list[tuple[str, np.ndarray]]:
  """(group: video file name or 'astronaut', RGB frame) of every source frame."""
  files = sorted(p for p in videos.iterdir() if video.is_video(p))
  if not files:
    raise SystemExit(f"--videos={videos}: no video in it")
  out = [(p.name, rgb) for p in files for _, rgb in video.read_frames(p, frame_step)]
  try:
    from skimage import data
    out.append(("astronaut", data.astronaut()))
  except ImportError:
    print("skimage is not installed: no astronaut frames")
  return out


def fit(raw: np.ndarray, ref: np.ndarray) -> dict:
  """Least-squares a, b, c, d (each its own mean ratio) of raw -> ref (n, 4) boxes."""
  g = np.array([face.box_geometry(b) for b in raw])
  m = np.array([face.box_geometry(b) for b in ref])
  return {"a": float(np.mean((m[:, 0] - g[:, 0]) / g[:, 2])),
          "b": float(np.mean((m[:, 1] - g[:, 1]) / g[:, 3])),
          "c": float(np.mean(m[:, 2] / g[:, 2])), "d": float(np.mean(m[:, 3] / g[:, 3]))}


def ious(boxes, ref) -> np.ndarray:
  return np.array([blazeface.iou(b, r)[0] for b, r in zip(boxes, ref)])


def summary(values: np.ndarray) -> str:
  if not len(values):
    return "-"
  return (f"{values.mean():.3f} / {np.median(values):.3f} / "
          f"{np.percentile(values, 5):.3f}")


def timed(detector, frames) -> tuple[list, float]:
  """Each frame's detection, and the mean seconds per frame."""
  start = time.perf_counter()
  found = [detector.detect(rgb) for _, _, rgb in frames]
  return found, (time.perf_counter() - start) / len(frames)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--videos", required=True, type=pathlib.Path)
  parser.add_argument("--fit", default=None, help="file name prefix of the video to fit on")
  parser.add_argument("--frame_step", type=int, default=10)
  parser.add_argument("--threads", type=int, default=1)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  cv2.setNumThreads(args.threads)
  rng = np.random.default_rng(args.seed)
  mtcnn = face.FaceDetector()
  sources = source_frames(args.videos, args.frame_step)
  fit_group = next(g for g, _ in sources if g.startswith(args.fit or ""))
  frames = []   # (group, variant, rgb)
  for group, rgb in sources:
    found = mtcnn.detect(rgb)
    if found is None:
      print(f"{group}: MTCNN finds no face in a source frame; skipped")
      continue
    frames += [(group, name, v) for name, v in variants(rgb, found.box, rng)]
  print(f"{len(frames)} frames ({len(sources)} sources x {len(frames) // len(sources)}), fit on "
        f"{fit_group}, one thread per detector\n")

  reference, mtcnn_s = timed(mtcnn, frames)
  raw_detector = blazeface.BlazeFaceDetector(num_threads=args.threads)
  start = time.perf_counter()
  raw = [max(d, key=lambda x: x.area) if d else None
         for d in (raw_detector.raw_detections(rgb) for _, _, rgb in frames)]
  raw_s = (time.perf_counter() - start) / len(frames)
  both = [i for i, (r, b) in enumerate(zip(reference, raw)) if r is not None and b is not None]
  fitted = fit(np.array([raw[i].box for i in both if frames[i][0] == fit_group]),
               np.array([reference[i].box for i in both if frames[i][0] == fit_group]))
  affine, affine_s = timed(blazeface.BlazeFaceDetector(num_threads=args.threads,
                                                       constants=fitted, refine=False), frames)
  refined, refined_s = timed(blazeface.BlazeFaceDetector(num_threads=args.threads,
                                                         constants=fitted), frames)

  print("IoU with MTCNN's box, mean / median / 5th percentile:\n")
  print("| frames | n | BlazeFace box | affine map | affine map + O-Net |")
  print("|---|---:|---|---|---|")
  sets = {f"fit: {fit_group} (+ variants)": lambda g, v: g == fit_group,
          "held out: all": lambda g, v: g != fit_group}
  sets |= {f"held out: {g}": (lambda g0: lambda g, v: g == g0)(g)
           for g in dict.fromkeys(g for g, _, _ in frames) if g != fit_group}
  sets |= {f"held out: {v}": (lambda v0: lambda g, v: g != fit_group and v == v0)(v)
           for v in dict.fromkeys(v for _, v, _ in frames)}
  for name, chosen in sets.items():
    rows = [i for i in both if chosen(*frames[i][:2]) and affine[i] is not None]
    ref = [reference[i].box for i in rows]
    print(f"| {name} | {len(rows)} | {summary(ious([raw[i].box for i in rows], ref))} | "
          f"{summary(ious([affine[i].box for i in rows], ref))} | "
          f"{summary(ious([refined[i].box for i in rows], ref))} |")
  mirrored = []
  for i, (_, name, rgb) in enumerate(frames):
    if name == "mirrored" and reference[i] is not None and reference[i - 3] is not None:
      x0, y0, x1, y1 = reference[i].box      # frames[i - 3] is the frame it mirrors
      mirrored.append(blazeface.iou((rgb.shape[1] - x1, y0, rgb.shape[1] - x0, y1),
                                    reference[i - 3].box)[0])
  print(f"\nMTCNN against itself (its box on the mirrored frame, mirrored back), all "
        f"{len(mirrored)} sources: {summary(np.array(mirrored))}")
  missed = [f"{g}/{v}" for (g, v, _), r, b in zip(frames, reference, refined)
            if r is not None and b is None]
  extra = [f"{g}/{v}" for (g, v, _), r, b in zip(frames, reference, refined)
           if r is None and b is not None]
  print(f"faces MTCNN finds and BlazeFace misses: {len(missed)} {missed[:10]}; the other way: "
        f"{len(extra)} {extra[:10]}")
  print(f"\nfitted: CALIBRATION = {{{', '.join(f'{k!r}: {v:.4f}' for k, v in fitted.items())}}}")
  print(f"in blazeface.py:        {blazeface.CALIBRATION}")
  print("\ndetection alone, ms per frame (frames/s), mean over all frames:")
  for name, seconds in (("MTCNN (detect_size 640)", mtcnn_s), ("BlazeFace, box as drawn", raw_s),
                        ("BlazeFace + affine map", affine_s),
                        ("BlazeFace + affine map + O-Net", refined_s)):
    print(f"  {name}: {seconds * 1000:.1f} ms ({1 / seconds:.0f} frames/s)")


if __name__ == "__main__":
  main()
