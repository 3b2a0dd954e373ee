"""pyramid-fas preprocess --input=VIDEO|IMAGE|DIR --output=DIR [--depth] [--frame_step=K ...]

Runs the dataset builders' face preprocessing on one file (or on every image and video directly
inside a directory, each into DIR/<its file name>/) and writes what training would see:
  DIR/crops/NNNNNN.jpg   the context crop of frame NNNNNN (MTCNN box, smoothed over frames;
                         --face_detector=blazeface: BlazeFace's, calibrated onto MTCNN's)
  DIR/depth/NNNNNN.png   with --depth: its face-mesh pseudo depth (the face treated as live)
  DIR/frames.json        {"frames": [{"index": i, "box": [x0, y0, x1, y1] or null, ...}, ...]}
Boxes are in the pixels of the upright frame (the container's rotation tag applied, then
--fix if the video has no tag); frames without a face have box null and no crop. frames.json
also holds the orientation findings a build reports (`orientation`, `low_face_rate`: see
preprocess.Preprocessor.orientation_checks), and a face in fewer than half the frames is
printed with the quarter turn that finds more. A video that ends before its header's frame
count is reported (`truncated` in frames.json: the frames promised and decoded, and a warning).

frames.json's `provenance` names the input and the settings. An output folder holding another
input's crops (or files preprocess did not write) is refused unless --overwrite; one that is
rewritten has its old crops and depth maps removed first, so two runs' frames never mix.
"""

import dataclasses
import pathlib
import shutil

import cv2
from absl import flags

from pyramid_fas_jax.commands import common, exit_codes
from pyramid_fas_jax.deploy import media as media_lib
from pyramid_fas_jax.faces import preprocess
from pyramid_fas_jax.faces import video as video_lib
from pyramid_fas_jax.files import atomic, provenance

# This run's flags: define_flags binds them.
_INPUT = _OUTPUT = _DEPTH = _STEP = _MAX = _SIZE = _CONTEXT = _SMOOTH = _FIX = _OVERWRITE = None
_DETECTOR = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _INPUT, _OUTPUT, _DEPTH, _STEP, _MAX, _SIZE, _CONTEXT, _SMOOTH, _FIX, _OVERWRITE
  global _DETECTOR
  fv = flag_values
  _INPUT = flags.DEFINE_string("input", None, "a video, an image, or a directory of them",
                               flag_values=fv)
  _OUTPUT = flags.DEFINE_string("output", None, "output directory", flag_values=fv)
  _DEPTH = flags.DEFINE_bool("depth", False, "also write face-mesh pseudo depth (face as live)",
                             flag_values=fv)
  _STEP = flags.DEFINE_integer("frame_step", 1, "keep every k-th frame of a video",
                               lower_bound=1, flag_values=fv)
  _MAX = flags.DEFINE_integer("max_frames", 0, "at most this many frames, spread evenly "
                              "(0 = all)", lower_bound=0, flag_values=fv)
  _SIZE = flags.DEFINE_integer("crop_size", 320, "side of the crops, pixels", lower_bound=1,
                               flag_values=fv)
  _CONTEXT = flags.DEFINE_float("context", 1.5, "crop side / the face box's longer side",
                                lower_bound=0.01, flag_values=fv)
  _SMOOTH = flags.DEFINE_integer("smooth", 5, "median window over detected frames (odd; "
                                 "1 = off)", lower_bound=1, flag_values=fv)
  _FIX = flags.DEFINE_enum("fix", None, sorted(video_lib.FIXES), "undo a stored rotation or "
                           "mirroring (a video without a rotation tag)", flag_values=fv)
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace an output folder holding another "
                                 "input's crops", flag_values=fv)
  _DETECTOR = common.define_face_detector_flag(fv)
  flags.mark_flags_as_required(["input", "output"], flag_values=fv)


def _write_image(path: pathlib.Path, image) -> None:
  # Encoded in memory and written through the atomic path: cv2.imwrite reports a full disk only
  # as False, and would leave a truncated image.
  ok, data = cv2.imencode(path.suffix, image)
  if not ok:
    raise ValueError(f"could not encode {path}")
  atomic.write_bytes(path, data.tobytes())


def _round(values) -> list[float]:
  return [round(float(v), 2) for v in values]


def provenance_of(source: pathlib.Path) -> dict:
  return provenance.record(fingerprint=None, owner=f"preprocess of {source.absolute()}")


def claim(out: pathlib.Path, prov: dict, overwrite: bool, clear: bool = True) -> None:
  """Make `out` ready for the crops of `prov`'s input: refused (ProvenanceError) where it holds
  another input's or files preprocess did not write, unless `overwrite`; a folder being
  rewritten loses its old crops/, depth/ and frames.json first."""
  if not out.is_dir() or not any(out.iterdir()):
    return
  frames = out / "frames.json"
  if not frames.is_file() and not overwrite:
    raise provenance.ProvenanceError(
        f"--output={out} is not empty and holds no frames.json: not a preprocess output; "
        "choose another --output, or pass --overwrite to write into it")
  provenance.check_replace(frames, prov, "output", overwrite)
  if not clear:
    return
  for name in ("crops", "depth"):
    shutil.rmtree(out / name, ignore_errors=True)
  frames.unlink(missing_ok=True)


def run(source: pathlib.Path, out: pathlib.Path, settings: preprocess.Settings, depth: bool,
        fix: str | None = None, pre: preprocess.Preprocessor | None = None) -> dict:
  """Writes crops, depth maps and frames.json for `source` into `out`; returns the json."""
  pre = pre or preprocess.Preprocessor(settings, depth=depth)
  folders = [out / "crops"] + ([out / "depth"] if depth else [])

  def make_folders():
    for folder in folders:
      folder.mkdir(parents=True, exist_ok=True)

  frames, truncated = [], []
  for frame in pre.frames(source, live=depth, fix=fix, on_truncated=truncated.append):
    entry = {"index": frame.index, "box": _round(frame.box) if frame.box else None}
    det = frame.detection
    if det is not None:
      entry["detection"] = {"box": _round(det.box), "confidence": round(det.confidence, 4),
                            "keypoints": {k: _round(v) for k, v in det.keypoints.items()}}
    if frame.crop is not None:
      make_folders()  # only once a frame decoded: an unreadable input leaves nothing behind
      name = f"{frame.index:06d}"
      _write_image(out / "crops" / f"{name}.jpg",
                   cv2.cvtColor(frame.crop.image, cv2.COLOR_RGB2BGR))
      entry["crop"] = f"crops/{name}.jpg"
      entry["face_box_in_crop"] = _round(frame.crop.face_box)  # ymin, xmin, ymax, xmax in [0, 1]
      if frame.depth is not None:
        _write_image(out / "depth" / f"{name}.png", frame.depth)
        entry["depth"] = f"depth/{name}.png"
    frames.append(entry)
  missing = [f["index"] for f in frames if f["box"] is None]
  summary = {
      provenance.KEY: provenance_of(source),
      "source": str(source),
      "settings": dataclasses.asdict(settings) | {"depth": depth, "fix": fix},
      "frames": frames,
      "frames_without_face": missing,
      "frames_without_depth": [f["index"] for f in frames
                               if depth and "crop" in f and "depth" not in f],
      **pre.orientation_checks(source, fix, len(frames), len(frames) - len(missing)),
  }
  if truncated:
    summary["truncated"] = {"promised": truncated[0].promised, "decoded": truncated[0].decoded,
                            "message": str(truncated[0])}
  make_folders()
  atomic.write_json(out / "frames.json", summary, indent=1)
  return summary


def _report(source, out, summary) -> None:
  n, missing = len(summary["frames"]), summary["frames_without_face"]
  print(f"wrote {out}: {n - len(missing)} of {n} frames cropped"
        + (f"; no face in frames {missing}" if missing else "")
        + (f"; no depth in frames {summary['frames_without_depth']}"
           if summary["frames_without_depth"] else ""))
  if "truncated" in summary:
    print(f"warning: {summary['truncated']['message']}")
  for line in preprocess.orientation_warnings(str(source), summary):
    print(f"warning: {line}")


def main(argv):
  del argv
  source, out = pathlib.Path(_INPUT.value), pathlib.Path(_OUTPUT.value)
  prog = "pyramid-fas preprocess"
  exit_codes.exit_if_outputs_clash("pyramid-fas preprocess", {"input": _INPUT.value},
                                   {"output": _OUTPUT.value})
  try:
    files = media_lib.media_files(source)
  except (ValueError, OSError) as e:
    exit_codes.usage_error(prog, e)
  if out.exists() and not out.is_dir():
    exit_codes.usage_error(prog, f"--output={out} is a file; name a directory")
  settings = preprocess.Settings(crop_size=_SIZE.value, context=_CONTEXT.value,
                                 frame_step=_STEP.value, max_frames=_MAX.value,
                                 smooth=_SMOOTH.value, face_detector=_DETECTOR.value)
  # A directory's files each get their own folder, named for the whole file name (a.mp4 and
  # a.avi may both be there).
  targets = {file: out / file.name if source.is_dir() else out for file in files}
  try:
    for file, target in targets.items():  # every folder checked before any is written
      claim(target, provenance_of(file), _OVERWRITE.value, clear=False)
    pre = preprocess.Preprocessor(settings, depth=_DEPTH.value)
    for file, target in targets.items():
      claim(target, provenance_of(file), _OVERWRITE.value)
      _report(file, target, run(file, target, settings, _DEPTH.value, _FIX.value, pre))
  except (ValueError, OSError) as e:
    exit_codes.usage_error(prog, e)
