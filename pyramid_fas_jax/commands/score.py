"""`pyramid-fas score`: ISO/IEC 30107-3 (or official-CDCN) metrics from dev/test score files.

  pyramid-fas score --dev=dev.txt --test=test.txt [--mode=iso|cdcn]
      [--threshold=dev_eer|test_eer|VALUE] [--json=OUT] [--plots=DIR]

Score files hold `score label [species [video_id]]` a line, label 1 = bona fide. The command
prints a table (rates in %) and, with --json, writes every value (rates as fractions).

Score files that `evaluate` wrote carry their provenance (files/provenance.py): dev and test
scores of two models, or scored with other settings, are refused; the JSON records both files'
provenance. A --json file holding other results (or not written by `score`) is refused unless
--overwrite.
"""

import math
import os
import pathlib

from absl import flags

from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.evaluation import report
from pyramid_fas_jax.evaluation.scorefile import ScoreError, read_scores
from pyramid_fas_jax.files import provenance

# This run's flag values: define_flags binds them.
FLAGS = None
_THRESHOLD_HELP = ("dev_eer: the dev set's EER threshold (needs --dev); test_eer: the test set's "
                   "own EER threshold (the paper's cross-dataset HTER; reported as chosen on the "
                   "test set); or a number. Bona fide iff score > threshold.")


def define_flags(flag_values: flags.FlagValues) -> None:
  global FLAGS
  FLAGS = fv = flag_values
  flags.DEFINE_string("dev", None, "dev score file; the dev_eer threshold comes from it",
                      flag_values=fv)
  flags.DEFINE_string("test", None, "test score file", required=True, flag_values=fv)
  flags.DEFINE_enum("mode", "iso", report.MODES,
                    "iso: ISO/IEC 30107-3 metrics; cdcn: exactly what the official CDCN "
                    "performances() returns", flag_values=fv)
  flags.DEFINE_string("threshold", "dev_eer", _THRESHOLD_HELP, flag_values=fv)
  flags.DEFINE_enum("video_agg", "auto", ["auto", "mean", "median", "none"],
                    "score each video by the mean or median of its frames (files with video "
                    "ids); auto: mean in iso mode, none in cdcn mode", flag_values=fv)
  flags.DEFINE_integer("bootstrap", 1000, "bootstrap resamples for the test confidence "
                       "intervals; 0: none", lower_bound=0, flag_values=fv)
  flags.DEFINE_integer("seed", 0, "seed of the bootstrap resampling", flag_values=fv)
  flags.DEFINE_string("json", None, "write all results to this JSON file (rates as fractions)",
                      flag_values=fv)
  flags.DEFINE_string("plots", None, "write ROC, DET and score-histogram PNGs into this "
                      "directory", flag_values=fv)
  flags.DEFINE_bool("overwrite", False, "replace a --json file holding other results",
                    flag_values=fv)
  flags.register_validator("threshold", _is_threshold,
                           "--threshold must be dev_eer, test_eer or a finite number",
                           flag_values=fv)


def _parse_threshold(text: str) -> str | float:
  if text in report.THRESHOLD_SOURCES:
    return text
  value = float(text)
  if not math.isfinite(value):
    raise ValueError(text)
  return value


def _is_threshold(text: str) -> bool:
  try:
    _parse_threshold(text)
  except ValueError:
    return False
  return True


def _output_problem(flag: str, path: str | None, kind: str) -> str | None:
  """Why --json (a file) or --plots (a directory) cannot be written, checked before any work."""
  if path is None:
    return None
  p = pathlib.Path(path)
  if kind == "file" and p.is_dir():
    return f"--{flag}={path} is a directory; name the JSON file to write"
  if kind == "directory" and p.exists() and not p.is_dir():
    return f"--{flag}={path} is a file; name a directory for the plots"
  parent = p.absolute().parent
  while not parent.exists():
    parent = parent.parent
  if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
    return f"--{flag}={path} cannot be written: {parent} is not a writable directory"
  return None


def _provenance() -> dict:
  """The record of this command's output: its score files' records, which must be of one
  model and one scoring config (ProvenanceError otherwise)."""
  files = {flag: FLAGS[flag].value for flag in ("dev", "test") if FLAGS[flag].value}
  of = {flag: provenance.read(path) for flag, path in files.items()}
  if of.get("dev") is not None and of.get("test") is not None:
    provenance.require_same_model(
        of["dev"], of["test"], f"--dev={files['dev']}",
        f"dev and test scores must come from one model (the threshold is chosen on dev and "
        f"applied to test): pass the score files of one evaluation (--test={files['test']})")
    data = [{k: (p.get("data") or {}).get(k) for k in ("dataset", "builder_config", "protocol")}
            for p in (of["dev"], of["test"])]
    if data[0] != data[1]:
      raise provenance.ProvenanceError(
          f"--dev={files['dev']} scores {data[0]} but --test={files['test']} scores {data[1]}: "
          "dev and test must be the two splits of one protocol; pass the score files of one "
          "evaluation")
  owner = "score of " + " and ".join(str(pathlib.Path(p).absolute()) for p in files.values())
  return provenance.record(
      fingerprint=None, owner=owner,
      score_files={flag: {"path": str(pathlib.Path(files[flag]).absolute()),
                          provenance.KEY: of[flag]} for flag in files})


def main(argv) -> None:
  if len(argv) > 1:
    exit_codes.usage_error("pyramid-fas score", f"unexpected arguments: {' '.join(argv[1:])}")
  for flag in ("dev", "test"):
    path = FLAGS[flag].value
    if path is not None and not os.path.isfile(path):
      exit_codes.usage_error("pyramid-fas score", f"--{flag}={path}: " + (
          "is a directory, not a score file" if os.path.isdir(path) else "no such score file"))
  exit_codes.exit_if_outputs_clash("pyramid-fas score", {"dev": FLAGS.dev, "test": FLAGS.test},
                                   {"json": FLAGS.json, "plots": FLAGS.plots})
  for flag, kind in (("json", "file"), ("plots", "directory")):
    problem = _output_problem(flag, FLAGS[flag].value, kind)
    if problem:
      exit_codes.usage_error("pyramid-fas score", problem)
  try:
    prov = _provenance()
    if FLAGS.json:
      provenance.check_replace(FLAGS.json, prov, "json", FLAGS.overwrite)
    dev = read_scores(FLAGS.dev) if FLAGS.dev else None
    test = read_scores(FLAGS.test)
    result = report.evaluate_scores(
        dev, test, threshold=_parse_threshold(FLAGS.threshold), mode=FLAGS.mode,
        video_agg=None if FLAGS.video_agg == "none" else FLAGS.video_agg,
        n_bootstrap=FLAGS.bootstrap, seed=FLAGS.seed, plots_dir=FLAGS.plots)
  except (ScoreError, OSError) as e:
    exit_codes.usage_error("pyramid-fas score", e)
  print(report.format_report(result))
  result[provenance.KEY] = prov
  if FLAGS.json:
    report.write_json(result, FLAGS.json)
    print(f"\nwrote {FLAGS.json}")
  for path in result.get("plots", []):
    print(f"wrote {path}")
