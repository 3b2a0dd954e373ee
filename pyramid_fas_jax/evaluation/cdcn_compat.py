"""What the official CDCN evaluation, `performances(val_file, test_file)` in its utils.py, returns.

Its rules, reproduced here without scikit-learn:
- The EER threshold of a set is the one, among the thresholds that scikit-learn's
  `roc_curve(labels, scores, pos_label=1)` returns with its defaults, that minimises
  |TPR + FPR - 1| (the first such threshold in roc_curve's order). The default
  drop_intermediate=True removes some thresholds and so can change the answer; roc_curve's
  first threshold is +inf (scikit-learn >= 1.3).
- A sample is live iff score > threshold (roc_curve itself counts score >= threshold).
- APCER pools all attacks; ACC = 1 - errors / samples; ACER = (APCER + BPCER) / 2.
- The dev EER threshold gives dev_acc, dev_acer and the test_* rates; the test set's own EER
  threshold gives test_acer_at_test_threshold.
"""

import numpy as np

from pyramid_fas_jax.evaluation.scorefile import ScoreSet

KEYS = ("dev_threshold", "test_threshold", "dev_acc", "dev_acer", "test_acc", "test_apcer",
        "test_bpcer", "test_acer", "test_acer_at_test_threshold")


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(fpr, tpr, thresholds) as scikit-learn's roc_curve with pos_label=1 and its defaults."""
  order = np.argsort(scores, kind="stable")[::-1]
  scores = np.asarray(scores, dtype=np.float64)[order]
  positive = (np.asarray(labels) == 1)[order]
  # Last index of each run of equal scores, in descending score order.
  ends = np.append(np.flatnonzero(np.diff(scores)), scores.size - 1)
  tps = np.cumsum(positive, dtype=np.float64)[ends]
  fps = 1.0 + ends - tps
  thresholds = scores[ends]
  # drop_intermediate: keep the two ends and every point where the curve bends, i.e. where the
  # second difference of fps or tps is non-zero.
  if fps.size > 2:
    keep = np.concatenate([[True], (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), [True]])
    fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
  fps = np.concatenate([[0.0], fps])
  tps = np.concatenate([[0.0], tps])
  thresholds = np.concatenate([[np.inf], thresholds])
  return fps / fps[-1], tps / tps[-1], thresholds


def eer_threshold(scores: ScoreSet) -> float:
  """The roc_curve threshold minimising |TPR + FPR - 1|, the first one on a tie."""
  fpr, tpr, thresholds = roc_curve(scores.labels, scores.scores)
  return float(thresholds[np.argmin(np.abs(tpr + fpr - 1.0))])


def _rates(scores: ScoreSet, threshold: float) -> tuple[float, float, float]:
  """(ACC, APCER, BPCER) with live iff score > threshold and APCER pooled."""
  # Not metrics.error_rates: ACC needs the raw counts, and this module follows CDCN's arithmetic
  # step by step so that its floats come out bit for bit the same.
  live = scores.is_live
  live_rejected = int(np.sum((scores.scores <= threshold) & live))
  attacks_accepted = int(np.sum((scores.scores > threshold) & ~live))
  acc = 1 - (live_rejected + attacks_accepted) / len(scores)
  return acc, attacks_accepted / scores.n_attack, live_rejected / scores.n_bona_fide


def performances(dev: ScoreSet, test: ScoreSet) -> dict:
  """The nine values of CDCN's `performances()`, keyed by `KEYS`; rates are fractions."""
  dev.require_both_classes()
  test.require_both_classes()
  dev_threshold = eer_threshold(dev)
  test_threshold = eer_threshold(test)
  dev_acc, dev_apcer, dev_bpcer = _rates(dev, dev_threshold)
  test_acc, test_apcer, test_bpcer = _rates(test, dev_threshold)
  _, own_apcer, own_bpcer = _rates(test, test_threshold)
  values = (dev_threshold, test_threshold, dev_acc, (dev_apcer + dev_bpcer) / 2, test_acc,
            test_apcer, test_bpcer, (test_apcer + test_bpcer) / 2, (own_apcer + own_bpcer) / 2)
  return dict(zip(KEYS, values))
