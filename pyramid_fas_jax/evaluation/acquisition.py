"""Failures to acquire: presentations that never reached the PAD model, and how they count.

A video in whose sampled frames the face detector finds no face has no stored frame, so the
model never scores it: the capture and preprocessing stage (the data capture subsystem, in
ISO/IEC 30107-3's terms) failed to acquire it. Leaving such videos out silently would flatter
the system (a bona fide user who cannot be acquired is still turned away), so evaluation
counts them, by one of two rules (config eval.failure_to_acquire):

  reject   (default) each such video is one presentation classified as an attack at every
           threshold, as a deployed system that acquires no face accepts no one: a bona fide
           one is a BPCER error, an attack one a correct rejection in its species' APCER
           denominator. APCER, BPCER, ACER, HTER and their bootstrap intervals then describe
           capture and PAD together.
  exclude  left out of the error rates (PAD alone, on what it was given), only reported.

Under either rule the threshold is chosen on the scored presentations only (a presentation
without a score is at no threshold), and EER, AUC, BPCER@APCER, the ROC/DET plots and the score
files are over the scored presentations only. Each set's report holds the counts and ISO/IEC
30107-3's non-response rates, whatever the rule:
  BPNRR = bona fide presentations not acquired / bona fide presentations
  APNRR(species) = attack presentations of that species not acquired / those presentations;
  APNRR = the maximum over species, as APCER.
A failure to acquire is one presentation, the video; at frame level (video_agg None) it still
counts once, beside the scored frames.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from pyramid_fas_jax.evaluation.scorefile import ScoreError, ScoreSet

RULES = ("reject", "exclude")


@dataclasses.dataclass(frozen=True, eq=False)
class Unacquired:
  """The videos of one evaluation set that were not acquired (no score).

  Attributes:
    labels: (M,) int64, 1 = bona fide.
    species: (M,) str.
    video_ids: (M,) str.
  """

  labels: np.ndarray
  species: np.ndarray
  video_ids: np.ndarray

  @classmethod
  def from_videos(cls, videos: Sequence[Mapping]) -> "Unacquired":
    """From dicts with video_id, label and species (splits.Split.unacquired gives them)."""
    labels = np.asarray([int(v["label"]) for v in videos], np.int64)
    if np.any((labels != 0) & (labels != 1)):
      raise ScoreError(f"unacquired videos have labels {sorted(set(labels.tolist()))}; labels "
                       "are 0 (attack) or 1 (bona fide)")
    return cls(labels, np.asarray([str(v["species"]) for v in videos], dtype=str),
               np.asarray([str(v["video_id"]) for v in videos], dtype=str))

  def __len__(self) -> int:
    return self.labels.shape[0]

  @property
  def n_bona_fide(self) -> int:
    return int((self.labels == 1).sum())

  @property
  def n_attack(self) -> int:
    return len(self) - self.n_bona_fide


def check_rule(rule: str) -> None:
  if rule not in RULES:
    raise ScoreError(f"failure_to_acquire rule {rule!r} is not one of {RULES}")


def rated(scores: ScoreSet, unacquired: Unacquired | None, rule: str) -> ScoreSet:
  """The presentations the error rates count: `scores`, and under 'reject' one more per
  unacquired video, with score -inf, which no threshold accepts (acceptance is score >
  threshold, and -inf > -inf is false too)."""
  check_rule(rule)
  if unacquired is None or not len(unacquired) or rule == "exclude":
    return scores
  if scores.video_ids is not None:
    clash = sorted(set(scores.video_ids.tolist()) & set(unacquired.video_ids.tolist()))
    if clash:
      raise ScoreError(f"{scores.source}: video {clash[0]!r} is both scored and unacquired")
  video_ids = None if scores.video_ids is None else np.concatenate(
      [scores.video_ids, unacquired.video_ids])
  # Built directly: from_arrays refuses non-finite scores, which only this rule may add.
  return ScoreSet(np.concatenate([scores.scores, np.full(len(unacquired), -np.inf)]),
                  np.concatenate([scores.labels, unacquired.labels]),
                  np.concatenate([scores.species, unacquired.species]), video_ids,
                  scores.source)


def summary(scores: ScoreSet, unacquired: Unacquired, rule: str) -> dict:
  """The report of one set's failures to acquire: the rule, counts, BPNRR and APNRR (module
  docstring; denominators = scored + unacquired presentations) and the videos."""
  check_rule(rule)
  live, species = unacquired.labels == 1, unacquired.species
  n_live = scores.n_bona_fide + unacquired.n_bona_fide
  attack_species = sorted(set(scores.attack_species) | set(species[~live].tolist()))
  apnrr = {}
  for name in attack_species:
    total = int((~scores.is_live & (scores.species == name)).sum()
                + (~live & (species == name)).sum())
    apnrr[name] = float((~live & (species == name)).sum() / total)
  return {
      "rule": rule,
      "n_bona_fide": unacquired.n_bona_fide,
      "n_attack": unacquired.n_attack,
      "BPNRR": unacquired.n_bona_fide / n_live if n_live else 0.0,
      "APNRR": max(apnrr.values(), default=0.0),
      "APNRR_per_species": apnrr,
      "videos": [{"video_id": str(v), "label": int(y), "species": str(s)}
                 for v, y, s in zip(unacquired.video_ids, unacquired.labels, species)],
  }
