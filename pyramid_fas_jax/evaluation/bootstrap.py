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


def _errors(scores: ScoreSet, threshold: float) -> np.ndarray:
  """Per sample, 1 where it is wrong at `threshold`: a rejected bona fide sample or an accepted
  attack (metrics: accepted iff score > threshold)."""
  return np.where(scores.is_live, scores.scores <= threshold, scores.scores > threshold)


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
  wrong = _errors(scores, threshold)
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


def _aligned_errors(runs, video_ids) -> np.ndarray:
  """(runs, videos) 0/1 errors of video-level score sets at their thresholds, in `video_ids`'s
  order; every set must hold exactly those videos."""
  rows = []
  for scores, threshold in runs:
    ids = np.asarray(scores.video_ids if scores.video_ids is not None else [])
    if len(ids) != len(scores) or len(set(ids.tolist())) != len(ids):
      raise ValueError(f"{scores.source}: a paired comparison needs one score per video")
    if set(ids.tolist()) != set(video_ids.tolist()):
      raise ValueError(f"{scores.source}: holds other videos than the first run's; runs are "
                       "paired only over the same test videos")
    position = {v: i for i, v in enumerate(ids.tolist())}
    order = np.array([position[v] for v in video_ids.tolist()])
    rows.append(_errors(scores, threshold)[order].astype(np.float64))
  return np.stack(rows)


def paired_acer_difference(runs_a, runs_b, n_resamples: int = 2000, confidence: float = 0.95,
                           seed: int = 0) -> dict:
  """Mean test ACER of arm A's runs minus arm B's, with two percentile intervals.

  `runs_a`, `runs_b`: (video-level ScoreSet, threshold) per seed, all over the same test videos.
  Videos are resampled once per resample for every run of both arms (stratified by bona fide
  and attack species, as `bootstrap_intervals`): the arms are paired by video, so what the
  difference shares, the test videos' difficulty, cancels. "videos" keeps every run; "seeds"
  also resamples each arm's runs with replacement, so the interval covers training's
  seed-to-seed spread too. A negative difference means arm A errs less.

  Returns:
    {"difference": d, "videos": [low, high], "seeds": [low, high], "n_a": ..., "n_b": ...,
     "confidence", "n_resamples", "seed"}, fractions.
  """
  if not runs_a or not runs_b:
    raise ValueError("each arm needs at least one run")
  first = runs_a[0][0]
  first.require_both_classes()
  video_ids = np.asarray(first.video_ids)
  errors = _aligned_errors(list(runs_a) + list(runs_b), video_ids)
  live, species = first.is_live, first.species  # video_ids is the first run's own order
  rng = np.random.default_rng(seed)
  strata = [np.flatnonzero(live)] + [np.flatnonzero(~live & (species == s))
                                     for s in first.attack_species]

  def acer(rates):  # rates: [bona fide, species...] each (runs, resamples)
    return (np.max(rates[1:], axis=0) + rates[0]) / 2

  full = acer([errors[:, s].mean(axis=1)[:, None] for s in strata])[:, 0]
  drawn = [errors[:, s[rng.integers(0, s.size, size=(n_resamples, s.size))]].mean(axis=2)
           for s in strata]
  per_run = acer(drawn)  # (runs, resamples)
  na = len(runs_a)
  a, b = per_run[:na], per_run[na:]
  by_videos = a.mean(axis=0) - b.mean(axis=0)
  pick_a = rng.integers(0, na, size=(n_resamples, na))
  pick_b = rng.integers(0, len(runs_b), size=(n_resamples, len(runs_b)))
  cols = np.arange(n_resamples)[:, None]
  by_seeds = a[pick_a, cols].mean(axis=1) - b[pick_b, cols].mean(axis=1)
  tail = (1 - confidence) / 2 * 100
  return {"difference": float(full[:na].mean() - full[na:].mean()),
          "videos": [float(v) for v in np.percentile(by_videos, [tail, 100 - tail])],
          "seeds": [float(v) for v in np.percentile(by_seeds, [tail, 100 - tail])],
          "n_a": na, "n_b": len(runs_b), "confidence": confidence,
          "n_resamples": n_resamples, "seed": seed}
