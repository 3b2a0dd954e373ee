"""Metrics against hand-worked cases and scikit-learn; bootstrap intervals; evaluate_scores."""

import numpy as np
import pytest
from sklearn import metrics as skm

from pyramid_fas_jax.evaluation import acquisition, bootstrap, metrics, report
from pyramid_fas_jax.evaluation.report import evaluate_scores
from pyramid_fas_jax.evaluation.scorefile import ScoreError, ScoreSet

# Hand-worked set: 4 bona fide, 3 print and 3 replay attacks.
LIVE = [0.9, 0.8, 0.7, 0.4]
PRINT = [0.1, 0.2, 0.6]
REPLAY = [0.3, 0.5, 0.45]


def hand_set() -> ScoreSet:
  return ScoreSet.from_arrays(LIVE + PRINT + REPLAY, [1] * 4 + [0] * 6,
                              ["live"] * 4 + ["print"] * 3 + ["replay"] * 3)


def random_set(rng, n_live, n_attack, decimals=None) -> ScoreSet:
  scores = np.concatenate([rng.normal(1.0, 1.0, n_live), rng.normal(0.0, 1.0, n_attack)])
  if decimals is not None:
    scores = np.round(scores, decimals)  # many ties
  return ScoreSet.from_arrays(scores, [1] * n_live + [0] * n_attack)


def test_error_rates_by_hand_with_a_tie_and_a_species_never_accepted():
  rates = metrics.error_rates(hand_set(), 0.5)
  # Accepted (score > 0.5): live 0.9, 0.8, 0.7; print 0.6. Replay 0.5 ties the threshold: rejected.
  assert rates["APCER_per_species"] == {"print": pytest.approx(1 / 3), "replay": 0.0}
  assert rates["APCER"] == pytest.approx(1 / 3)
  assert rates["APCER_pooled"] == pytest.approx(1 / 6)
  assert rates["BPCER"] == pytest.approx(1 / 4)
  assert rates["ACER"] == pytest.approx((1 / 3 + 1 / 4) / 2)
  assert rates["HTER"] == pytest.approx((1 / 6 + 1 / 4) / 2)


def test_a_bona_fide_score_equal_to_the_threshold_is_rejected():
  rates = metrics.error_rates(hand_set(), 0.4)
  assert rates["BPCER"] == pytest.approx(1 / 4)  # the live 0.4
  assert rates["APCER_per_species"] == {"print": pytest.approx(1 / 3),
                                       "replay": pytest.approx(2 / 3)}
  assert rates["APCER_pooled"] == pytest.approx(1 / 2)


def test_iso_apcer_is_the_worst_species_not_the_pooled_rate():
  # 10 "print" attacks of which 5 pass; 90 "mask" attacks that never pass.
  scores = [0.9] * 10 + [0.9] * 5 + [0.1] * 5 + [0.1] * 90
  labels = [1] * 10 + [0] * 100
  species = ["live"] * 10 + ["print"] * 10 + ["mask"] * 90
  rates = metrics.error_rates(ScoreSet.from_arrays(scores, labels, species), 0.5)
  assert rates["APCER_per_species"] == {"mask": 0.0, "print": 0.5}
  assert rates["APCER"] == 0.5
  assert rates["APCER_pooled"] == pytest.approx(0.05)
  assert rates["ACER"] == pytest.approx(0.25)
  assert rates["HTER"] == pytest.approx(0.025)


def test_eer_by_hand_tie_in_gap_broken_by_hter():
  # |APCER - BPCER| is 1/12 at both 0.45 (1/3 vs 1/4) and 0.5 (1/6 vs 1/4); 0.5 has the lower HTER.
  value, threshold = metrics.eer(hand_set())
  assert threshold == 0.5
  assert value == pytest.approx((1 / 6 + 1 / 4) / 2)


def test_eer_by_hand_where_the_rates_meet():
  s = ScoreSet.from_arrays([0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.65], [1] * 4 + [0] * 4)
  # At 0.6 one live sample (0.6) is rejected and one attack (0.65) accepted.
  assert metrics.eer(s) == (0.25, 0.6)


def test_eer_of_constant_scores_is_a_half():
  assert metrics.eer(ScoreSet.from_arrays([0.5] * 4, [1, 1, 0, 0])) == (0.5, 0.5)


def test_auc_by_hand():
  assert metrics.auc(hand_set()) == pytest.approx(21 / 24)  # the live 0.4 beats 3 of 6 attacks
  ties = ScoreSet.from_arrays([0.5, 0.7, 0.5, 0.3], [1, 1, 0, 0])
  assert metrics.auc(ties) == pytest.approx(3.5 / 4)  # the 0.5 / 0.5 pair counts one half


def test_bpcer_at_apcer_by_hand():
  s = hand_set()
  for x in (0.01, 0.05, 0.10, 0.2):
    assert metrics.bpcer_at_apcer(s, x) == pytest.approx(1 / 4)  # APCER 0 first at 0.6
  assert metrics.bpcer_at_apcer(s, 0.4) == pytest.approx(1 / 4)  # 2 of 6 attacks at 0.45
  assert metrics.bpcer_at_apcer(s, 0.5) == 0.0  # 3 of 6 at 0.3, every live accepted
  assert metrics.bpcer_at_apcer(s, 1.0) == 0.0


def test_bpcer_at_apcer_counts_an_exact_hit_despite_rounding():
  # 29 of 100 attacks score 1.0; 0.29 * 100 is 28.999999999999996 in floating point.
  s = ScoreSet.from_arrays([0.5, 2.0] + [1.0] * 29 + [0.0] * 71, [1, 1] + [0] * 100)
  assert metrics.bpcer_at_apcer(s, 0.29) == 0.0


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, None), (2, 1), (3, 2)])
def test_auc_is_the_pairwise_win_rate(seed, decimals):
  s = random_set(np.random.default_rng(seed), 300, 500, decimals)
  live, attack = s.scores[s.is_live][:, None], s.scores[~s.is_live][None, :]
  wins = np.mean((live > attack) + 0.5 * (live == attack))
  assert metrics.auc(s) == pytest.approx(wins, abs=1e-12)


def _sklearn_eer(s: ScoreSet) -> float:
  """Where FPR and FNR cross on the ROC, linearly interpolated."""
  fpr, tpr, _ = skm.roc_curve(s.labels, s.scores)
  fnr = 1 - tpr
  i = np.flatnonzero(fnr <= fpr)[0]  # first point past the crossing
  a, b = fpr[i - 1] - fnr[i - 1], fpr[i] - fnr[i]
  t = a / (a - b)
  return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


@pytest.mark.parametrize("seed,n_live,n_attack",
                         [(0, 200, 300), (1, 1000, 1000), (2, 50, 400), (3, 2000, 500)])
def test_eer_matches_sklearn_interpolated_eer(seed, n_live, n_attack):
  s = random_set(np.random.default_rng(seed), n_live, n_attack)
  value, threshold = metrics.eer(s)
  # The discrete EER and the interpolated one differ by at most about one step of the finer rate.
  assert value == pytest.approx(_sklearn_eer(s), abs=1 / min(n_live, n_attack))
  rates = metrics.error_rates(s, threshold)
  assert abs(rates["APCER_pooled"] - rates["BPCER"]) <= 1 / min(n_live, n_attack)


def test_operating_points_match_sklearn_roc():
  s = random_set(np.random.default_rng(4), 100, 150, decimals=1)
  points = metrics.OperatingPoints.of(s)
  apcer, bpcer = points.apcer_pooled, points.bpcer
  fpr, tpr, _ = skm.roc_curve(s.labels, s.scores, drop_intermediate=False)
  # Ours go from accept-all to reject-all; sklearn's from reject-all to accept-all.
  np.testing.assert_allclose(apcer[::-1], fpr)
  np.testing.assert_allclose(1 - bpcer[::-1], tpr)


def test_bootstrap_interval_holds_the_point_estimate_and_shrinks_with_more_data():
  widths = []
  for n in (100, 1600):
    rng = np.random.default_rng(n)
    s = ScoreSet.from_arrays(np.concatenate([rng.normal(1, 1, n), rng.normal(0, 1, 2 * n)]),
                             [1] * n + [0] * 2 * n, ["live"] * n + ["print", "replay"] * n)
    threshold = 0.5
    point = metrics.error_rates(s, threshold)
    ci = bootstrap.bootstrap_intervals(s, threshold, n_resamples=500, seed=0)
    for key in bootstrap.RATES:
      assert ci[key][0] <= point[key] <= ci[key][1], key
    widths.append({key: ci[key][1] - ci[key][0] for key in ("ACER", "HTER")})
  for key in ("ACER", "HTER"):
    assert widths[1][key] < widths[0][key] / 2  # 16x the data: about 1/4 the width


def test_bootstrap_resamples_whole_videos():
  # Two live videos: one all accepted, one all rejected, 10 frames each. Resampling videos gives
  # BPCER in {0, 0.5, 1}; resampling frames would give many more values.
  scores = [0.9] * 10 + [0.1] * 10 + [0.1] * 4
  labels = [1] * 20 + [0] * 4
  videos = ["a"] * 10 + ["b"] * 10 + ["c", "c", "d", "d"]
  s = ScoreSet.from_arrays(scores, labels, video_ids=videos)
  ci = bootstrap.bootstrap_intervals(s, 0.5, n_resamples=200, confidence=0.5, seed=1)
  assert ci["unit"] == "video"
  assert set(ci["BPCER"]) <= {0.0, 0.5, 1.0}
  assert ci == bootstrap.bootstrap_intervals(s, 0.5, n_resamples=200, confidence=0.5, seed=1)


def test_evaluate_scores_dev_eer_threshold_applies_to_test():
  dev = hand_set()
  test = ScoreSet.from_arrays([0.95, 0.55, 0.52, 0.2], [1, 1, 0, 0],
                              ["live", "live", "print", "print"])
  result = evaluate_scores(dev, test, n_bootstrap=0)
  assert result["mode"] == "iso" and result["threshold_strategy"] == "dev_eer"
  for name in ("dev", "test"):
    assert result[name]["threshold"] == 0.5
    assert result[name]["threshold_source"] == "dev_eer (EER threshold of the dev set)"
  assert result["dev"]["ACER"] == pytest.approx((1 / 3 + 1 / 4) / 2)
  assert result["test"]["APCER"] == 0.5 and result["test"]["BPCER"] == 0.0
  assert "bootstrap" not in result["test"]


def test_evaluate_scores_test_eer_is_labelled_as_chosen_on_test():
  result = evaluate_scores(None, hand_set(), threshold="test_eer", n_bootstrap=50)
  assert result["test"]["threshold"] == 0.5
  assert "chosen on the test set" in result["test"]["threshold_source"]
  assert "dev" not in result
  assert result["test"]["bootstrap"]["n_resamples"] == 50


def test_evaluate_scores_of_dev_alone_is_the_dev_half_of_a_full_evaluation():
  """test=None (training's evaluations under eval.test_while_training=False): dev's entry is the
  one a full evaluation gives, at dev's EER threshold or a fixed one; nothing of test, no
  bootstrap; the report prints dev alone. A threshold that needs test, or cdcn mode, cannot."""
  dev = hand_set()
  test = ScoreSet.from_arrays([0.95, 0.55, 0.52, 0.2], [1, 1, 0, 0],
                              ["live", "live", "print", "print"])
  for threshold in ("dev_eer", 0.65):
    alone = evaluate_scores(dev, None, threshold=threshold, n_bootstrap=100)
    full = evaluate_scores(dev, test, threshold=threshold, n_bootstrap=0)
    assert set(alone) == {"mode", "video_agg", "threshold_strategy", "dev"}
    assert alone["dev"] == full["dev"]
  # At 0.65 the live 0.4 is rejected, and every attack (at most 0.6) too.
  assert alone["dev"]["threshold"] == 0.65 and alone["dev"]["BPCER"] == 0.25
  assert alone["dev"]["APCER"] == 0.0
  text = report.format_report(alone)
  assert "threshold 0.65: fixed value 0.65" in text and "test" not in text
  for bad in ({"threshold": "test_eer"}, {"mode": "cdcn"}):
    with pytest.raises(ScoreError, match="without a test set only dev is reported"):
      evaluate_scores(dev, None, **bad)
  with pytest.raises(ScoreError, match="without a test set"):
    evaluate_scores(None, None)


def test_evaluate_scores_never_picks_a_test_threshold_unasked():
  with pytest.raises(ScoreError, match="needs a dev set"):
    evaluate_scores(None, hand_set())


def test_evaluate_scores_fixed_threshold_and_video_means():
  frames = ScoreSet.from_arrays([0.9, 0.1, 0.7, 0.6, 0.2, 0.4], [1, 1, 1, 1, 0, 0],
                                video_ids=["a", "a", "b", "b", "c", "c"])
  result = evaluate_scores(None, frames, threshold=0.55, n_bootstrap=0)
  assert result["video_agg"] == "mean" and result["test"]["unit"] == "video"
  assert result["test"]["threshold_source"] == "fixed value 0.55"
  assert result["test"]["BPCER"] == 0.5  # video a: mean 0.5 <= 0.55; video b: 0.65 > 0.55
  frame_level = evaluate_scores(None, frames, threshold=0.55, video_agg=None, n_bootstrap=0)
  assert frame_level["video_agg"] is None and frame_level["test"]["BPCER"] == 0.25


def test_evaluate_scores_rejects_a_set_with_one_class():
  only_live = ScoreSet.from_arrays([0.1, 0.2], [1, 1], source="dev.txt")
  with pytest.raises(ScoreError, match="dev.txt: no attack samples"):
    evaluate_scores(only_live, hand_set())


# Failures to acquire beside the hand-worked set: one bona fide and one print video unscored.
UNACQUIRED = acquisition.Unacquired.from_videos([
    {"video_id": "no_face_live", "label": 1, "species": "live"},
    {"video_id": "no_face_print", "label": 0, "species": "print"}])


def test_failures_to_acquire_by_hand_under_both_rules():
  kwargs = dict(threshold=0.5, video_agg=None, n_bootstrap=0, unacquired={"test": UNACQUIRED})
  reject = evaluate_scores(None, hand_set(), failure_to_acquire="reject", **kwargs)["test"]
  # Accepted (score > 0.5): live 0.9, 0.8, 0.7 of 4 + 1 unacquired; print 0.6 of 3 + 1.
  assert (reject["n_bona_fide"], reject["n_attack"]) == (5, 7)
  assert reject["BPCER"] == pytest.approx(2 / 5)
  assert reject["APCER_per_species"] == {"print": pytest.approx(1 / 4), "replay": 0.0}
  assert reject["APCER"] == pytest.approx(1 / 4)
  assert reject["APCER_pooled"] == pytest.approx(1 / 7)
  assert reject["ACER"] == pytest.approx((1 / 4 + 2 / 5) / 2)
  assert reject["HTER"] == pytest.approx((1 / 7 + 2 / 5) / 2)
  exclude = evaluate_scores(None, hand_set(), failure_to_acquire="exclude", **kwargs)["test"]
  assert (exclude["n_bona_fide"], exclude["n_attack"]) == (4, 6)
  plain = evaluate_scores(None, hand_set(), threshold=0.5, video_agg=None, n_bootstrap=0)["test"]
  for key in ("BPCER", "APCER", "APCER_pooled", "ACER", "HTER"):
    assert exclude[key] == plain[key], key
  # Threshold-free metrics are of the scored presentations under both rules.
  for key in ("EER", "EER_threshold", "AUC", "BPCER@APCER=5%"):
    assert reject[key] == exclude[key] == plain[key], key
  for result, rule in ((reject, "reject"), (exclude, "exclude")):
    fta = result["failure_to_acquire"]
    assert (fta["rule"], fta["n_bona_fide"], fta["n_attack"]) == (rule, 1, 1)
    assert fta["BPNRR"] == pytest.approx(1 / 5)
    assert fta["APNRR_per_species"] == {"print": pytest.approx(1 / 4), "replay": 0.0}
    assert fta["APNRR"] == pytest.approx(1 / 4)
    assert [v["video_id"] for v in fta["videos"]] == ["no_face_live", "no_face_print"]


def test_an_unacquired_presentation_is_rejected_at_every_threshold():
  rated = acquisition.rated(hand_set(), UNACQUIRED, "reject")
  for threshold in (-np.inf, 0.0, 0.5, 1.0):
    rates = metrics.error_rates(rated, threshold)
    scored = metrics.error_rates(hand_set(), threshold)
    assert rates["BPCER"] == pytest.approx((4 * scored["BPCER"] + 1) / 5), threshold
    assert rates["APCER_per_species"]["print"] == pytest.approx(
        3 * scored["APCER_per_species"]["print"] / 4), threshold
  assert len(rated) == 12 and np.isneginf(rated.scores[10:]).all()
  assert len(acquisition.rated(hand_set(), UNACQUIRED, "exclude")) == 10


def test_dev_failures_do_not_move_the_dev_eer_threshold():
  dev_unacquired = acquisition.Unacquired.from_videos(
      [{"video_id": f"x{i}", "label": 1, "species": "live"} for i in range(3)])
  with_fta = evaluate_scores(hand_set(), hand_set(), video_agg=None, n_bootstrap=0,
                             unacquired={"dev": dev_unacquired, "test": UNACQUIRED})
  assert with_fta["dev"]["threshold"] == metrics.eer(hand_set())[1] == 0.5
  assert with_fta["dev"]["BPCER"] == pytest.approx((1 + 3) / 7)


def test_bootstrap_resamples_failures_to_acquire_as_errors():
  # Every scored bona fide video is accepted; under 'reject' the unacquired one is an error in
  # the resamples that draw it, under 'exclude' BPCER stays 0.
  test = ScoreSet.from_arrays([0.9, 0.8, 0.7, 0.1], [1, 1, 1, 0], video_ids=list("abcd"))
  unacquired = acquisition.Unacquired.from_videos([{"video_id": "e", "label": 1,
                                                    "species": "live"}])
  results = {rule: evaluate_scores(None, test, threshold=0.5, n_bootstrap=200,
                                   unacquired={"test": unacquired}, failure_to_acquire=rule)
             for rule in acquisition.RULES}
  assert results["exclude"]["test"]["bootstrap"]["BPCER"] == [0.0, 0.0]
  low, high = results["reject"]["test"]["bootstrap"]["BPCER"]
  assert low == 0.0 and high >= 0.25 and results["reject"]["test"]["BPCER"] == 0.25


def test_cdcn_mode_reports_failures_to_acquire_as_excluded():
  dev = hand_set()
  plain = evaluate_scores(dev, hand_set(), mode="cdcn")
  result = evaluate_scores(dev, hand_set(), mode="cdcn", unacquired={"test": UNACQUIRED})
  assert {k: v for k, v in result.items() if k != "failure_to_acquire"} == plain
  assert result["failure_to_acquire"]["test"]["rule"] == "exclude"
  assert "not acquired" in report.format_report(result)


def test_failure_to_acquire_errors_name_the_bad_input():
  with pytest.raises(ScoreError, match="rule 'drop' is not one of"):
    evaluate_scores(None, hand_set(), threshold=0.5, failure_to_acquire="drop")
  with pytest.raises(ScoreError, match="unacquired has sets \\['train'\\]"):
    evaluate_scores(None, hand_set(), threshold=0.5, unacquired={"train": UNACQUIRED})
  clash = acquisition.Unacquired.from_videos([{"video_id": "a", "label": 1, "species": "live"}])
  frames = ScoreSet.from_arrays([0.9, 0.1], [1, 0], video_ids=["a", "b"])
  with pytest.raises(ScoreError, match="video 'a' is both scored and unacquired"):
    acquisition.rated(frames, clash, "reject")
