"""ISO/IEC 30107-3 error rates, EER, AUC and BPCER at fixed APCER, as the FAS literature uses them.

Conventions (DESIGN.md): label 1 = bona fide, 0 = attack; a higher score is more live; a sample
is accepted as bona fide iff score > threshold, so a score equal to the threshold is rejected.
All rates are fractions (0.05 means 5%).

- APCER(species) = attacks of that species accepted / attacks of that species.
- APCER = max over species (ISO/IEC 30107-3, OULU-NPU); APCER_pooled = all attacks together.
- BPCER = bona fide rejected / bona fide. ACER = (APCER + BPCER) / 2.
- HTER = (APCER_pooled + BPCER) / 2.
- EER: over the candidate thresholds (every distinct score, and -inf, which accepts all), the
  one that minimises |APCER_pooled - BPCER|; ties go to the lower HTER, then the higher
  threshold (the one that accepts fewer attacks). EER = (APCER_pooled + BPCER) / 2 there, which
  is exact when the two rates meet and otherwise the midpoint of the closest pair.
- AUC: area under the ROC with bona fide as the positive class, i.e. the probability that a
  bona fide sample outscores an attack, ties counting one half (the trapezoidal ROC area).
- BPCER@APCER=x: the smallest BPCER over all thresholds where APCER_pooled <= x.

AUC is scikit-learn's roc_auc_score. EER and BPCER@APCER are computed here (OperatingPoints):
roc_curve accepts score >= threshold and picks no EER, and the FAS tie rule above is ours.
"""

import dataclasses

import numpy as np
from sklearn import metrics as skm

from pyramid_fas_jax.evaluation.scorefile import ScoreSet

BPCER_AT_APCER = (0.01, 0.05, 0.10)
# Keys of `summary` that are error rates (lower is better): the dev metrics that can pick the
# best checkpoint (config.eval.best_metric; evaluator.dev_metric reads it).
BEST_METRICS = ("EER", "ACER", "HTER", "APCER", "APCER_pooled", "BPCER")


def error_rates(scores: ScoreSet, threshold: float) -> dict:
  """APCER (max over species), APCER_pooled, per-species APCER, BPCER, ACER, HTER at `threshold`."""
  scores.require_both_classes()
  accepted = scores.scores > threshold
  live = scores.is_live
  per_species = {name: float(accepted[~live & (scores.species == name)].mean())
                 for name in scores.attack_species}
  apcer = max(per_species.values())
  apcer_pooled = float(accepted[~live].mean())
  bpcer = float((~accepted[live]).mean())
  return {
      "APCER": apcer,
      "APCER_pooled": apcer_pooled,
      "APCER_per_species": per_species,
      "BPCER": bpcer,
      "ACER": (apcer + bpcer) / 2,
      "HTER": (apcer_pooled + bpcer) / 2,
  }


@dataclasses.dataclass(frozen=True)
class OperatingPoints:
  """Every operating point of a score set, as counts, for thresholds ascending.

  The thresholds are -inf followed by the distinct scores; between two consecutive ones no
  decision changes, so these are all the operating points there are.
  """

  thresholds: np.ndarray
  attacks_accepted: np.ndarray
  live_rejected: np.ndarray
  n_attack: int
  n_live: int

  @classmethod
  def of(cls, scores: ScoreSet) -> "OperatingPoints":
    scores.require_both_classes()
    thresholds = np.concatenate([[-np.inf], np.unique(scores.scores)])
    attack = np.sort(scores.scores[~scores.is_live])
    live = np.sort(scores.scores[scores.is_live])
    return cls(thresholds, attack.size - np.searchsorted(attack, thresholds, side="right"),
               np.searchsorted(live, thresholds, side="right"), attack.size, live.size)

  @property
  def apcer_pooled(self) -> np.ndarray:
    return self.attacks_accepted / self.n_attack

  @property
  def bpcer(self) -> np.ndarray:
    return self.live_rejected / self.n_live

  def eer(self) -> tuple[float, float]:
    """(EER, its threshold), as defined in the module docstring."""
    # Integer cross-multiplied forms of |APCER - BPCER| and HTER, so that ties are exact.
    gap = np.abs(self.attacks_accepted * self.n_live - self.live_rejected * self.n_attack)
    total = self.attacks_accepted * self.n_live + self.live_rejected * self.n_attack
    best = np.lexsort((-self.thresholds, total, gap))[0]
    return float((self.apcer_pooled[best] + self.bpcer[best]) / 2), float(self.thresholds[best])

  def bpcer_at_apcer(self, max_apcer: float) -> float:
    """The smallest BPCER over thresholds where APCER_pooled <= max_apcer."""
    # The slack keeps e.g. 29 / 100 <= 0.29 true although 0.29 * 100 = 28.999999999999996.
    feasible = self.attacks_accepted <= max_apcer * self.n_attack + 1e-9
    return float(self.bpcer[feasible].min())


def eer(scores: ScoreSet) -> tuple[float, float]:
  """(EER, its threshold), as defined in the module docstring."""
  return OperatingPoints.of(scores).eer()


def bpcer_at_apcer(scores: ScoreSet, max_apcer: float) -> float:
  """The smallest BPCER over thresholds where APCER_pooled <= max_apcer."""
  return OperatingPoints.of(scores).bpcer_at_apcer(max_apcer)


def auc(scores: ScoreSet) -> float:
  """ROC area with bona fide positive (ties count one half)."""
  scores.require_both_classes()
  return float(skm.roc_auc_score(scores.is_live, scores.scores))


def summary(scores: ScoreSet, threshold: float, rated: ScoreSet | None = None) -> dict:
  """`error_rates` at `threshold`, and the threshold-free EER (with its threshold), AUC and
  BPCER@APCER.

  `rated` (default `scores`) is the set the error rates and the counts n_bona_fide / n_attack
  are of: `scores` plus the failures to acquire a rule counts (acquisition.rated); the
  threshold-free metrics are always over the scored presentations, `scores`.
  """
  rated = scores if rated is None else rated
  points = OperatingPoints.of(scores)
  eer_value, eer_threshold = points.eer()
  result = {"n_bona_fide": rated.n_bona_fide, "n_attack": rated.n_attack,
            **error_rates(rated, threshold)}
  result.update(EER=eer_value, EER_threshold=eer_threshold, AUC=auc(scores))
  for x in BPCER_AT_APCER:
    result[f"BPCER@APCER={x:.0%}"] = points.bpcer_at_apcer(x)
  return result
