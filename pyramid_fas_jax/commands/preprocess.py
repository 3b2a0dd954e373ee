"""pyramid-fas preprocess --input=VIDEO_OR_IMAGE --output=DIR [--depth] [--frame_step=K ...]

Runs the dataset builders' face preprocessing on one file and writes what training would see:
  DIR/crops/NNNNNN.jpg   the context crop of frame NNNNNN (MTCNN box, smoothed over frames)
  DIR/depth/NNNNNN.png   with --depth: its face-mesh pseudo depth (the face treated as live)
  DIR/frames.json        {"frames": [{"index": i, "box": [x0, y0, x1, y1] or null, ...}, ...]}
Boxes are in the pixels of the upright frame (the container's rotation tag applied, then
--fix if the video has no tag); frames without a face have box null and no crop. frames.json
also holds the orientation findings a build reports (`orientation`, `low_face_rate`: see
preprocess.Preprocessor.orientation_checks), and a face in fewer than half the frames is
printed with the quarter turn that finds more.
"""

import dataclasses
import json
import pathlib
import sys

import cv2
from absl import flags

from pyramid_fas_jax.data import preprocess
from pyramid_fas_jax.data import video as video_lib

_INPUT = flags.DEFINE_string("input", None, "a video or an image")
_OUTPUT = flags.DEFINE_string("output", None, "output directory")
_DEPTH = flags.DEFINE_bool("depth", False, "also write face-mesh pseudo depth (face as live)")
_STEP = flags.DEFINE_integer("frame_step", 1, "keep every k-th frame of a video")
_MAX = flags.DEFINE_integer("max_frames", 0, "at most this many frames, spread evenly (0 = all)")
_SIZE = flags.DEFINE_integer("crop_size", 320, "side of the crops, pixels")
_CONTEXT = flags.DEFINE_float("context", 1.5, "crop side / the face box's longer side")
_SMOOTH = flags.DEFINE_integer("smooth", 5, "median window over detected frames (odd; 1 = off)")
_FIX = flags.DEFINE_enum("fix", None, sorted(video_lib.FIXES),
                         "undo a stored rotation or mirroring (a video without a rotation tag)")
flags.mark_flags_as_required(["input", "output"])


def _round(values) -> list[float]:
  return [round(float(v), 2) for v in values]


def run(source: pathlib.Path, out: pathlib.Path, settings: preprocess.Settings, depth: bool,
        fix: str | None = None) -> dict:
  """Writes crops, depth maps and frames.json for `source` into `out`; returns the json."""
  pre = preprocess.Preprocessor(settings, depth=depth)
  (out / "crops").mkdir(parents=True, exist_ok=True)
  if depth:
    (out / "depth").mkdir(exist_ok=True)
  frames = []
  for frame in pre.frames(source, live=depth, fix=fix):
    entry = {"index": frame.index, "box": _round(frame.box) if frame.box else None}
    det = frame.detection
    if det is not None:
      entry["detection"] = {"box": _round(det.box), "confidence": round(det.confidence, 4),
                            "keypoints": {k: _round(v) for k, v in det.keypoints.items()}}
    if frame.crop is not None:
      name = f"{frame.index:06d}"
      cv2.imwrite(str(out / "crops" / f"{name}.jpg"),
                  cv2.cvtColor(frame.crop.image, cv2.COLOR_RGB2BGR))
      entry["crop"] = f"crops/{name}.jpg"
      entry["face_box_in_crop"] = _round(frame.crop.face_box)  # ymin, xmin, ymax, xmax in [0, 1]
      if frame.depth is not None:
        cv2.imwrite(str(out / "depth" / f"{name}.png"), frame.depth)
        entry["depth"] = f"depth/{name}.png"
    frames.append(entry)
  missing = [f["index"] for f in frames if f["box"] is None]
  summary = {
      "source": str(source),
      "settings": dataclasses.asdict(settings) | {"depth": depth, "fix": fix},
      "frames": frames,
      "frames_without_face": missing,
      "frames_without_depth": [f["index"] for f in frames
                               if depth and "crop" in f and "depth" not in f],
      **pre.orientation_checks(source, fix, len(frames), len(frames) - len(missing)),
  }
  (out / "frames.json").write_text(json.dumps(summary, indent=1))
  return summary


def main(argv):
  del argv
  source, out = pathlib.Path(_INPUT.value), pathlib.Path(_OUTPUT.value)
  if not source.is_file():
    print(f"preprocess: input {source} does not exist", file=sys.stderr)
    sys.exit(2)
  settings = preprocess.Settings(crop_size=_SIZE.value, context=_CONTEXT.value,
                                 frame_step=_STEP.value, max_frames=_MAX.value,
                                 smooth=_SMOOTH.value)
  try:
    summary = run(source, out, settings, _DEPTH.value, _FIX.value)
  except (ValueError, IOError) as e:
    print(f"preprocess: {e}", file=sys.stderr)
    sys.exit(2)
  n, missing = len(summary["frames"]), summary["frames_without_face"]
  print(f"wrote {out}: {n - len(missing)} of {n} frames cropped"
        + (f"; no face in frames {missing}" if missing else "")
        + (f"; no depth in frames {summary['frames_without_depth']}"
           if summary["frames_without_depth"] else ""))
  for line in preprocess.orientation_warnings(str(source), summary):
    print(f"warning: {line}")
