"""Bootstrap confidence intervals for the error rates at a fixed threshold.

What is resampled: videos (all frames of a video together) where the set has video ids,
otherwise single samples, drawn with replacement within each stratum: the bona fide samples and
each attack species separately, so that every resample keeps the class and species counts (and
APCER, a max over species, stays defined). The threshold stays fixed at the one the strategy
chose on the full sets: the interval measures how much the test rates move with the test
sample, not how much a re-chosen threshold would move. Intervals are percentile intervals.
"""

import numpy as np

from pyramid_fas_jax.evaluation.scorefile import ScoreSet, video_groups

RATES = ("APCER", "APCER_pooled", "BPCER", "ACER", "HTER")
# Bounds the (resamples x units) index array drawn at once.
_MAX_DRAWN = 1 << 22


def _stratum_counts(errors: np.ndarray, frames: np.ndarray, n_resamples: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Per resample: (errors, frames) summed over units drawn with replacement."""
  m = errors.size
  err_sums, frame_sums = [], []
  chunk = max(1, _MAX_DRAWN // m)
  for start in range(0, n_resamples, chunk):
    drawn = rng.integers(0, m, size=(min(chunk, n_resamples - start), m))
    err_sums.append(errors[drawn].sum(axis=1))
    frame_sums.append(frames[drawn].sum(axis=1))
  return np.concatenate(err_sums), np.concatenate(frame_sums)


def bootstrap_intervals(scores: ScoreSet, threshold: float, n_resamples: int = 1000,
                        confidence: float = 0.95, seed: int = 0) -> dict:
  """Percentile intervals of APCER, APCER_pooled, BPCER, ACER and HTER at `threshold`.

  Returns:
    {"confidence": 0.95, "n_resamples": 1000, "unit": "video" | "sample", "seed": 0,
     "APCER": [low, high], ...}, the rates as fractions.
  """
  scores.require_both_classes()
  if n_resamples < 1:
    raise ValueError(f"n_resamples must be positive, got {n_resamples}")
  if not 0 < confidence < 1:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")
  if scores.video_ids is None:
    first = unit_of = np.arange(len(scores))
  else:
    _, first, unit_of = video_groups(scores)
  live = scores.is_live
  # An error is a rejected bona fide sample or an accepted attack.
  wrong = np.where(live, scores.scores <= threshold, scores.scores > threshold)
  unit_errors = np.bincount(unit_of, weights=wrong)
  unit_frames = np.bincount(unit_of).astype(np.float64)
  unit_live, unit_species = live[first], scores.species[first]

  rng = np.random.default_rng(seed)
  live_err, live_frames = _stratum_counts(unit_errors[unit_live], unit_frames[unit_live],
                                          n_resamples, rng)
  bpcer = live_err / live_frames
  apcer_by_species, attack_err, attack_frames = [], 0.0, 0.0
  for name in scores.attack_species:
    in_stratum = ~unit_live & (unit_species == name)
    err, frames = _stratum_counts(unit_errors[in_stratum], unit_frames[in_stratum], n_resamples,
                                  rng)
    apcer_by_species.append(err / frames)
    attack_err, attack_frames = attack_err + err, attack_frames + frames
  apcer = np.max(apcer_by_species, axis=0)
  apcer_pooled = attack_err / attack_frames
  samples = dict(zip(RATES, (apcer, apcer_pooled, bpcer, (apcer + bpcer) / 2,
                             (apcer_pooled + bpcer) / 2)))

  tail = (1 - confidence) / 2 * 100
  result = {"confidence": confidence, "n_resamples": n_resamples,
            "unit": "sample" if scores.video_ids is None else "video", "seed": seed}
  for name, values in samples.items():
    result[name] = [float(v) for v in np.percentile(values, [tail, 100 - tail])]
  return result
