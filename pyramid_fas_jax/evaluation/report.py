"""`evaluate_scores`, the one entry point of evaluation; its printed report and its JSON file.

Rates are fractions in the returned dict and the JSON file (0.05), percentages in the printed
report (5.00).
"""

import math
import os

from pyramid_fas_jax.evaluation import acquisition, bootstrap, cdcn_compat, metrics
from pyramid_fas_jax.evaluation.scorefile import (
  VIDEO_AGGREGATIONS,
  ScoreError,
  ScoreSet,
  aggregate_videos,
)
from pyramid_fas_jax.files import atomic

MODES = ("iso", "cdcn")
THRESHOLD_SOURCES = {
    "dev_eer": "dev_eer (EER threshold of the dev set)",
    "test_eer": "test_eer (threshold chosen on the test set)",
}
# The thresholds `evaluate_scores` chooses itself; any other is a fixed number.
THRESHOLD_RULES = tuple(THRESHOLD_SOURCES)
def threshold_value(threshold):
  """config.eval.threshold as evaluation takes it: 'dev_eer', 'test_eer' or a float (the command
  line gives `--config.eval.threshold=0.5` as the string '0.5')."""
  if isinstance(threshold, str) and threshold not in THRESHOLD_RULES:
    try:
      return float(threshold)
    except ValueError:
      return threshold
  return threshold


def video_agg_value(video_agg):
  """config.eval.video_agg as evaluation takes it: 'mean', 'median' or None (frame level; the
  command line can only give a string: `--config.eval.video_agg=none`)."""
  return None if isinstance(video_agg, str) and video_agg.lower() == "none" else video_agg


_TEST_EER_NOTE = ("NOTE: the threshold was chosen on the test set (test_eer), as the paper does "
                  "for its cross-dataset HTER; these are not unbiased test error rates.")
_FTA_NOTES = {
    "reject": ["not acquired (no face in any sampled frame, so no score): rule 'reject', counted "
               "as attacks at", "every threshold in APCER, BPCER, ACER and HTER; the threshold, "
               "EER, AUC and BPCER@APCER", "are of the scored presentations only"],
    "exclude": ["not acquired (no face in any sampled frame, so no score): rule 'exclude', left "
                "out of every rate, only counted"],
}


def _per_video(scores: ScoreSet, how: str | None) -> ScoreSet:
  return scores if how is None or scores.video_ids is None else aggregate_videos(scores, how)


def _check_same_unit(dev: ScoreSet | None, test: ScoreSet, video_agg: str | None) -> None:
  """Per-video scoring of one set and per-frame of the other would apply a threshold chosen on
  video means to single frames (or the reverse), and the report would claim one unit for both."""
  if video_agg is None or dev is None or (dev.video_ids is None) == (test.video_ids is None):
    return
  without, other = (dev, test) if dev.video_ids is None else (test, dev)
  raise ScoreError(f"{without.source} has no video ids but {other.source} has, so one set would "
                   "be scored per video and the other per frame; add the video ids (a 4th "
                   "column) to every line, or score both per frame (--video_agg=none)")


def _choose_threshold(threshold, dev: ScoreSet | None, test: ScoreSet) -> tuple[float, str]:
  if threshold == "dev_eer":
    if dev is None:
      raise ScoreError("threshold 'dev_eer' needs a dev set; choose the threshold on the test set "
                       "only by asking for 'test_eer', or give a fixed value")
    return metrics.eer(dev)[1], THRESHOLD_SOURCES["dev_eer"]
  if threshold == "test_eer":
    return metrics.eer(test)[1], THRESHOLD_SOURCES["test_eer"]
  if isinstance(threshold, str) or not math.isfinite(threshold):
    raise ScoreError(f"threshold {threshold!r} is not 'dev_eer', 'test_eer' or a finite number")
  return float(threshold), f"fixed value {float(threshold)!r}"


def _set_report(scores: ScoreSet, rated: ScoreSet, video_agg: str | None, threshold: float,
                source: str, unacquired: acquisition.Unacquired | None, rule: str) -> dict:
  unit = "video" if video_agg and scores.video_ids is not None else "sample"
  report = {"source": scores.source, "unit": unit, "threshold": threshold,
            "threshold_source": source, **metrics.summary(scores, threshold, rated)}
  if unacquired is not None:
    report["failure_to_acquire"] = acquisition.summary(scores, unacquired, rule)
  return report


def evaluate_scores(dev: ScoreSet | None, test: ScoreSet | None, threshold="dev_eer",
                    mode: str = "iso",
                    video_agg: str | None = "auto", n_bootstrap: int = 1000,
                    confidence: float = 0.95, seed: int = 0,
                    plots_dir: str | os.PathLike | None = None,
                    unacquired: dict | None = None, failure_to_acquire: str = "reject") -> dict:
  """Every metric the paper reports, at a threshold that says where it came from.

  Args:
    dev: the dev (validation) set, or None where the protocol has none.
    test: the test set; None reports dev alone (an evaluation during training that leaves the
      test set to the checkpoint dev chooses: iso mode, a threshold of dev or a fixed one, no
      bootstrap or plots, which are of the test set).
    threshold: "dev_eer" (the EER threshold of dev, applied to both sets), "test_eer" (the EER
      threshold of the test set itself: the paper's cross-dataset HTER; reports label it as
      chosen on the test set) or a number. A sample is bona fide iff score > threshold.
    mode: "iso" (ISO/IEC 30107-3 metrics) or "cdcn" (exactly what the official CDCN
      `performances()` returns; it fixes its own thresholds, so `threshold` must stay "dev_eer").
    video_agg: "mean" or "median" scores each video by its frames; None keeps one score per
      sample; "auto" is "mean" in iso mode and None in cdcn mode (which reproduces CDCN on the
      rows as given). Applies only to sets with video ids.
    n_bootstrap: resamples for the test set's confidence intervals (bootstrap.py); 0 for none.
    confidence: the intervals' confidence level.
    seed: seeds the resampling.
    plots_dir: where to write ROC, DET and histogram PNGs (plots.py) of the sets as scored; None
      for no plots.
    unacquired: {"dev": acquisition.Unacquired, "test": ...}: each set's videos that were never
      scored (no face in any sampled frame), or None where that is not known (score files).
    failure_to_acquire: how those count (acquisition.py): "reject" (as attacks at every
      threshold, in APCER, BPCER, ACER, HTER and the bootstrap) or "exclude" (only reported).
      The threshold, EER, AUC and BPCER@APCER are of the scored presentations under both.
      cdcn mode reproduces CDCN on the scored presentations: it reports them as "exclude".

  Returns:
    iso: {"mode": "iso", "video_agg", "threshold_strategy", "test": {...}, "dev": {...} (with a
    dev set)}; each set entry holds source, unit, threshold, threshold_source, n_bona_fide,
    n_attack, APCER (max over species), APCER_pooled, APCER_per_species, BPCER, ACER, HTER, EER,
    EER_threshold, AUC, BPCER@APCER={1%,5%,10%}, for test "bootstrap" (intervals), and with
    `unacquired` "failure_to_acquire" (acquisition.summary: rule, n_bona_fide, n_attack,
    BPNRR, APNRR, APNRR_per_species, videos). n_bona_fide and n_attack count the presentations
    of the error rates: the scored ones, plus the unacquired ones under "reject".
    cdcn: {"mode": "cdcn", "video_agg", and cdcn_compat.KEYS; with `unacquired`,
    "failure_to_acquire": {set: summary}}. All rates are fractions.
    With plots_dir, "plots" lists the PNG files written.

  Raises:
    ScoreError: a set lacks a class, a video mixes labels, or the request is inconsistent.
  """
  if mode not in MODES:
    raise ScoreError(f"mode {mode!r} is not one of {MODES}")
  acquisition.check_rule(failure_to_acquire)
  unknown = set(unacquired or {}) - {"dev", "test"}
  if unknown:
    raise ScoreError(f"unacquired has sets {sorted(unknown)}; expected 'dev' and/or 'test'")
  if test is None:
    if dev is None or mode != "iso" or threshold == "test_eer":
      raise ScoreError("without a test set only dev is reported: that needs a dev set, mode "
                       "'iso' and a threshold of dev ('dev_eer') or a fixed one")
    n_bootstrap, plots_dir = 0, None
  if video_agg == "auto":
    video_agg = "mean" if mode == "iso" else None
  if video_agg not in (None, *VIDEO_AGGREGATIONS):
    raise ScoreError(f"video_agg {video_agg!r} is not 'auto', 'mean', 'median' or None")
  has_videos = any(s is not None and s.video_ids is not None for s in (dev, test))
  if not has_videos:
    video_agg = None  # nothing to aggregate: say so in the result rather than claim "mean"
  dev_scores = None if dev is None else _per_video(dev, video_agg)
  test_scores = None if test is None else _per_video(test, video_agg)
  for scores in (dev_scores, test_scores):
    if scores is not None:
      scores.require_both_classes()
  if test is not None:
    _check_same_unit(dev, test, video_agg)

  if mode == "cdcn":
    if dev is None:
      raise ScoreError("mode 'cdcn' needs a dev set: CDCN's performances() takes its threshold "
                       "from it")
    if threshold != "dev_eer":
      raise ScoreError(f"mode 'cdcn' fixes its own thresholds (dev EER, and test EER for "
                       f"test_acer_at_test_threshold); threshold {threshold!r} does not apply")
    result = {"mode": "cdcn", "video_agg": video_agg,
              **cdcn_compat.performances(dev_scores, test_scores)}
    value, source = result["dev_threshold"], "dev_threshold (CDCN rules)"
    if unacquired is not None:
      scored = {"dev": dev_scores, "test": test_scores}
      result["failure_to_acquire"] = {
          name: acquisition.summary(scored[name], u, "exclude") for name, u in unacquired.items()}
  else:
    value, source = _choose_threshold(threshold, dev_scores, test_scores)
    result = {"mode": "iso", "video_agg": video_agg,
              "threshold_strategy": threshold if isinstance(threshold, str) else "fixed"}
    for name, scores in (("dev", dev_scores), ("test", test_scores)):
      if scores is None:
        continue
      missed = None if unacquired is None else unacquired.get(name)
      rated = acquisition.rated(scores, missed, failure_to_acquire)
      result[name] = _set_report(scores, rated, video_agg, value, source, missed,
                                 failure_to_acquire)
    if n_bootstrap:
      test_rated = acquisition.rated(test_scores, None if unacquired is None
                                     else unacquired.get("test"), failure_to_acquire)
      result["test"]["bootstrap"] = bootstrap.bootstrap_intervals(
          test_rated, value, n_bootstrap, confidence, seed)
  if plots_dir is not None:
    # Imported here: matplotlib adds half a second to every start-up that draws nothing.
    from pyramid_fas_jax.evaluation import plots

    result["plots"] = plots.write_plots(plots_dir, test_scores, value, dev_scores, source)
  return result


def _pct(value) -> str:
  return "" if value is None else f"{100 * value:.2f}"


def _format_iso(result: dict) -> str:
  sets = [name for name in ("dev", "test") if name in result]
  applied = result[sets[-1]]  # every set is rated at the one threshold
  lines = ["ISO/IEC 30107-3 metrics; rates in %; bona fide iff score > threshold",
           f"threshold {applied['threshold']:.6g}: {applied['threshold_source']}"]
  if result["threshold_strategy"] == "test_eer":
    lines.append(_TEST_EER_NOTE)
  if result["video_agg"]:
    lines.append(f"one score per video: the {result['video_agg']} of its frame scores")
  ci = result.get("test", {}).get("bootstrap")
  ci_title = f"test {ci['confidence']:.0%} CI" if ci else ""
  rows = [("", *sets, ci_title),
          ("bona fide / attacks",
           *(f"{result[s]['n_bona_fide']}/{result[s]['n_attack']}" for s in sets), "")]
  fta = {s: result[s]["failure_to_acquire"] for s in sets if "failure_to_acquire" in result[s]}
  if fta:
    lines += _FTA_NOTES[next(iter(fta.values()))["rule"]]
    rows.append(("  not acquired", *(f"{fta[s]['n_bona_fide']}/{fta[s]['n_attack']}"
                                     if s in fta else "" for s in sets), ""))

  def row(label, key, with_ci=False):
    interval = f"[{_pct(ci[key][0])}, {_pct(ci[key][1])}]" if ci and with_ci else ""
    rows.append((label, *(_pct(result[s].get(key)) for s in sets), interval))

  row("APCER (max species)", "APCER", True)
  species = sorted({name for s in sets for name in result[s]["APCER_per_species"]})
  for name in species:
    per_set = (_pct(result[s]["APCER_per_species"].get(name)) for s in sets)
    rows.append((f"  APCER {name}", *per_set, ""))
  row("APCER pooled", "APCER_pooled", True)
  row("BPCER", "BPCER", True)
  row("ACER", "ACER", True)
  row("HTER", "HTER", True)
  row("EER (at its own threshold)", "EER")
  row("AUC", "AUC")
  for x in metrics.BPCER_AT_APCER:
    row(f"BPCER@APCER={x:.0%}", f"BPCER@APCER={x:.0%}")
  if fta:
    for label, key in (("BPNRR (not acquired)", "BPNRR"), ("APNRR (max species)", "APNRR")):
      rows.append((label, *(_pct(fta[s][key]) if s in fta else "" for s in sets), ""))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  table = ["  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
           .rstrip() for r in rows]
  if ci:
    table.append(f"CI: percentile bootstrap over {ci['n_resamples']} resamples of test "
                 f"{ci['unit']}s (seed {ci['seed']}), threshold fixed")
  return "\n".join(lines + [""] + table)


def _format_cdcn(result: dict) -> str:
  lines = ["Official-CDCN compatible metrics (performances() of CDCN's utils.py); rates in %"]
  width = max(map(len, cdcn_compat.KEYS))
  for key in cdcn_compat.KEYS:
    value = result[key]
    shown = f"{value:.6g}" if key in ("dev_threshold", "test_threshold") else _pct(value)
    lines.append(f"{key.ljust(width)}  {shown}")
  for name, fta in result.get("failure_to_acquire", {}).items():
    lines.append(f"{name}: {fta['n_bona_fide']} bona fide and {fta['n_attack']} attack videos "
                 "not acquired (no face), left out: performances() scores what it is given")
  return "\n".join(lines)


def format_report(result: dict) -> str:
  """The readable table `pyramid-fas score` prints (rates as percentages)."""
  return _format_cdcn(result) if result["mode"] == "cdcn" else _format_iso(result)


def _json_safe(value):
  """Non-finite floats as strings ("inf"), since strict JSON has no Infinity or NaN."""
  if isinstance(value, dict):
    return {k: _json_safe(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_json_safe(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


def write_json(result: dict, path: str | os.PathLike) -> None:
  """Writes `result` as strict JSON (rates as fractions; a +inf threshold as "inf")."""
  atomic.write_json(path, _json_safe(result), indent=2, allow_nan=False)
