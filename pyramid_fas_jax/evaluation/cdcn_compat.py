"""What the official CDCN evaluation, `performances(val_file, test_file)` in its utils.py, returns.

Its rules, on scikit-learn's `roc_curve` as the official code calls it:
- The EER threshold of a set is the one, among the thresholds that
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
from sklearn import metrics as skm

from pyramid_fas_jax.evaluation.scorefile import ScoreSet

KEYS = ("dev_threshold", "test_threshold", "dev_acc", "dev_acer", "test_acc", "test_apcer",
        "test_bpcer", "test_acer", "test_acer_at_test_threshold")


def eer_threshold(scores: ScoreSet) -> float:
  """The roc_curve threshold minimising |TPR + FPR - 1|, the first one on a tie."""
  fpr, tpr, thresholds = skm.roc_curve(scores.labels, scores.scores, pos_label=1)
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
