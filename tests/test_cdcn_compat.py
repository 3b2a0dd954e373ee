"""--mode=cdcn against scikit-learn and against a rule-by-rule re-implementation written here."""

import numpy as np
import pytest
from sklearn import metrics as skm

from pyramid_fas_jax.evaluation import cdcn_compat
from pyramid_fas_jax.evaluation.report import evaluate_scores
from pyramid_fas_jax.evaluation.scorefile import ScoreError, ScoreSet


def reference_roc(labels, scores):
  """roc_curve(labels, scores, pos_label=1) with drop_intermediate=True, in plain Python."""
  distinct = sorted(set(scores), reverse=True)
  fps = [sum(1 for s, y in zip(scores, labels) if s >= t and y != 1) for t in distinct]
  tps = [sum(1 for s, y in zip(scores, labels) if s >= t and y == 1) for t in distinct]
  if len(distinct) > 2:
    # A point goes when neither count bends there: both second differences are zero.
    keep = [0] + [i for i in range(1, len(distinct) - 1)
                  if fps[i - 1] - 2 * fps[i] + fps[i + 1] or tps[i - 1] - 2 * tps[i] + tps[i + 1]]
    keep.append(len(distinct) - 1)
    fps, tps, distinct = [fps[i] for i in keep], [tps[i] for i in keep], [distinct[i] for i in keep]
  fpr = [0.0] + [f / fps[-1] for f in fps]
  tpr = [0.0] + [t / tps[-1] for t in tps]
  return fpr, tpr, [float("inf")] + distinct


def reference_performances(dev, test, roc=reference_roc):
  """CDCN's performances(): EER threshold minimising |TPR + FPR - 1| (first on a tie), live iff
  score > threshold, APCER pooled."""
  def threshold_of(scores, labels):
    fpr, tpr, thresholds = roc(labels, scores)
    gaps = [abs(t + f - 1.0) for f, t in zip(fpr, tpr)]
    return thresholds[gaps.index(min(gaps))]

  def rates(scores, labels, threshold):
    type1 = sum(1 for s, y in zip(scores, labels) if s <= threshold and y == 1)
    type2 = sum(1 for s, y in zip(scores, labels) if s > threshold and y == 0)
    num_real = sum(1 for y in labels if y == 1)
    num_fake = len(labels) - num_real
    apcer, bpcer = type2 / num_fake, type1 / num_real
    return 1 - (type1 + type2) / len(labels), apcer, bpcer, (apcer + bpcer) / 2.0

  dev_scores, dev_labels = list(dev.scores), list(dev.labels)
  test_scores, test_labels = list(test.scores), list(test.labels)
  dev_threshold = threshold_of(dev_scores, dev_labels)
  test_threshold = threshold_of(test_scores, test_labels)
  dev_acc, _, _, dev_acer = rates(dev_scores, dev_labels, dev_threshold)
  test_acc, test_apcer, test_bpcer, test_acer = rates(test_scores, test_labels, dev_threshold)
  own_acer = rates(test_scores, test_labels, test_threshold)[3]
  values = (dev_threshold, test_threshold, dev_acc, dev_acer, test_acc, test_apcer, test_bpcer,
            test_acer, own_acer)
  return dict(zip(cdcn_compat.KEYS, values))


def sklearn_roc(labels, scores):
  return skm.roc_curve(labels, scores, pos_label=1)


def random_set(seed, n_live, n_attack, decimals) -> ScoreSet:
  rng = np.random.default_rng(seed)
  scores = np.concatenate([rng.normal(0.6, 0.2, n_live), rng.normal(0.4, 0.2, n_attack)])
  return ScoreSet.from_arrays(np.round(scores, decimals), [1] * n_live + [0] * n_attack)


CASES = [(seed, n_live, n_attack, decimals) for seed, (n_live, n_attack, decimals) in enumerate(
    [(40, 80, 1), (40, 80, 2), (100, 300, 2), (7, 5, 1), (200, 200, 3), (60, 120, 6)])]


@pytest.mark.parametrize("seed,n_live,n_attack,decimals", CASES)
def test_reference_roc_is_the_installed_sklearns(seed, n_live, n_attack, decimals):
  # The rules the module docstring states (drop_intermediate, +inf first) hold for this sklearn.
  s = random_set(seed, n_live, n_attack, decimals)
  theirs = skm.roc_curve(s.labels, s.scores, pos_label=1)
  for mine, reference in zip(theirs, reference_roc(list(s.labels), list(s.scores))):
    np.testing.assert_array_equal(mine, reference)


@pytest.mark.parametrize("seed,n_live,n_attack,decimals", CASES)
def test_performances_equal_both_references(seed, n_live, n_attack, decimals):
  dev = random_set(seed, n_live, n_attack, decimals)
  test = random_set(seed + 100, n_live + 3, n_attack, decimals)
  ours = cdcn_compat.performances(dev, test)
  assert ours == reference_performances(dev, test)
  assert ours == reference_performances(dev, test, roc=sklearn_roc)


def test_drop_intermediate_changes_the_threshold():
  # Each score is held by one live and one attack sample, so the ROC is a straight run of equal
  # steps and drop_intermediate keeps only its ends: the EER point (0.8) goes.
  s = ScoreSet.from_arrays([0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.6], [1, 0] * 4)
  result = cdcn_compat.performances(s, s)
  assert result["dev_threshold"] == 0.9
  fpr, tpr, thresholds = skm.roc_curve(s.labels, s.scores, drop_intermediate=False)
  assert thresholds[np.argmin(np.abs(tpr + fpr - 1.0))] == 0.8
  assert result == reference_performances(s, s, roc=sklearn_roc)


def test_all_equal_scores_give_the_infinite_first_threshold():
  s = ScoreSet.from_arrays([0.5] * 4, [1, 1, 0, 0])
  result = cdcn_compat.performances(s, s)
  assert result["dev_threshold"] == float("inf")
  assert result["test_bpcer"] == 1.0 and result["test_apcer"] == 0.0 and result["dev_acc"] == 0.5


def test_evaluate_scores_cdcn_mode():
  dev, test = random_set(0, 30, 60, 2), random_set(1, 30, 60, 2)
  result = evaluate_scores(dev, test, mode="cdcn")
  assert result == {"mode": "cdcn", "video_agg": None, **reference_performances(dev, test)}
  with pytest.raises(ScoreError, match="needs a dev set"):
    evaluate_scores(None, test, mode="cdcn")
  with pytest.raises(ScoreError, match="fixes its own thresholds"):
    evaluate_scores(dev, test, mode="cdcn", threshold="test_eer")
