"""FAS metrics in plain Python, one loop each, for tests to check the package's reported values.

Independent of pyramid_fas_jax.evaluation: its own score-file reader, exact fractions. Label 1 is
bona fide, a sample is accepted iff score > threshold, APCER is the worst species (ISO/IEC
30107-3), and the EER threshold is the candidate (-inf or a score) with the smallest
|APCER_pooled - BPCER|, then the smallest HTER, then the highest threshold: the definitions of
evaluation/metrics.py's docstring.
"""

import collections
import fractions
import math


def read(path, per_video=False):
  """[(score, label, species)] from a score file; per_video: one row per video, its mean."""
  rows = []
  for line in open(path):
    tokens = line.split()
    if tokens and not tokens[0].startswith("#"):
      species = tokens[2] if len(tokens) > 2 else ("live" if tokens[1] == "1" else "attack")
      video = tokens[3] if len(tokens) > 3 else None
      rows.append((float(tokens[0]), int(tokens[1]), species, video))
  if not per_video:
    return [row[:3] for row in rows]
  videos = collections.defaultdict(list)
  for score, label, species, video in rows:
    videos[(video, label, species)].append(score)
  return [(sum(s) / len(s), label, species) for (_, label, species), s in videos.items()]


def rates(rows, threshold):
  """APCER (worst species), APCER_pooled, BPCER, ACER as exact fractions."""
  live = [s for s, y, _ in rows if y == 1]
  attacks = collections.defaultdict(list)
  for s, y, species in rows:
    if y == 0:
      attacks[species].append(s)
  accepted = {k: fractions.Fraction(sum(s > threshold for s in v), len(v))
              for k, v in attacks.items()}
  n_attack = sum(len(v) for v in attacks.values())
  pooled = fractions.Fraction(sum(s > threshold for v in attacks.values() for s in v), n_attack)
  bpcer = fractions.Fraction(sum(s <= threshold for s in live), len(live))
  apcer = max(accepted.values())
  return {"APCER": apcer, "APCER_pooled": pooled, "BPCER": bpcer, "ACER": (apcer + bpcer) / 2}


def eer(rows):
  """(EER, its threshold)."""
  def key(t):
    r = rates(rows, t)
    return abs(r["APCER_pooled"] - r["BPCER"]), r["APCER_pooled"] + r["BPCER"], -t
  threshold = min([-math.inf, *{s for s, _, _ in rows}], key=key)
  r = rates(rows, threshold)
  return (r["APCER_pooled"] + r["BPCER"]) / 2, threshold


def auc(rows):
  """The share of (bona fide, attack) pairs the bona fide one outscores, ties counting half."""
  live = [s for s, y, _ in rows if y == 1]
  attack = [s for s, y, _ in rows if y == 0]
  wins = sum((a < b) + fractions.Fraction(a == b, 2) for b in live for a in attack)
  return wins / (len(live) * len(attack))
