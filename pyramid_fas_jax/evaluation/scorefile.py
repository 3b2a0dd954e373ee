"""Score sets: arrays of scores with their labels, read from and written to score files.

A score file has one sample a line, whitespace separated: `score label [species [video_id]]`.
Label 1 = bona fide, 0 = attack; a higher score means more live. Blank lines and lines starting
with `#` are skipped. Attacks without a species are of species "attack", bona fide samples of
species "live"; a species column, where given, must agree with the label (a bona fide row is
"live", an attack row anything else), so a swapped column cannot pass as a result. A video id
is on every line of a file or on none. The files `evaluate` writes begin with a
`# provenance {json}` line (files/provenance.py) saying which model and data the scores are of.
"""

import dataclasses
import math
import os
import re

import numpy as np

from pyramid_fas_jax.files import atomic, provenance

LIVE = "live"
ATTACK = "attack"
VIDEO_AGGREGATIONS = ("mean", "median")


class ScoreError(ValueError):
  """Bad scores or a bad request about them; the message names the file and line, or the option."""


@dataclasses.dataclass(frozen=True, eq=False)
class ScoreSet:
  """Scores of one evaluation set (dev or test). Build with `from_arrays` or `read_scores`.

  Attributes:
    scores: (N,) float64, higher = more live.
    labels: (N,) int64, 1 = bona fide, 0 = attack.
    species: (N,) str, the attack species of each sample ("live" for bona fide by default).
    video_ids: (N,) str or None; samples sharing an id are frames of one video.
    source: where the scores came from (a file path), named in error messages.
  """

  scores: np.ndarray
  labels: np.ndarray
  species: np.ndarray
  video_ids: np.ndarray | None = None
  source: str = "<arrays>"

  @classmethod
  def from_arrays(cls, scores, labels, species=None, video_ids=None,
                  source: str = "<arrays>") -> "ScoreSet":
    """Validates and copies the arrays; `species` defaults to "live" / "attack" by label."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    raw_labels = np.asarray(labels).reshape(-1)
    n = scores.shape[0]
    if n == 0:
      raise ScoreError(f"{source}: no scores")
    for name, arr in (("labels", raw_labels), ("species", species), ("video_ids", video_ids)):
      if arr is not None and np.asarray(arr).reshape(-1).shape[0] != n:
        raise ScoreError(f"{source}: {n} scores but {np.asarray(arr).size} {name}")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
      raise ScoreError(f"{source}: score at index {bad[0]} is {scores[bad[0]].item()}; "
                       "scores must be finite")
    bad = np.flatnonzero((raw_labels != 0) & (raw_labels != 1))
    if bad.size:
      raise ScoreError(f"{source}: label at index {bad[0]} is {raw_labels[bad[0]].item()!r}; "
                       "labels are 0 (attack) or 1 (bona fide)")
    labels = raw_labels.astype(np.int64)
    if species is None:
      species = np.where(labels == 1, LIVE, ATTACK)
    species = np.asarray(species, dtype=str).reshape(-1)
    bad = np.flatnonzero((labels == 1) != (species == LIVE))
    if bad.size:
      raise ScoreError(f"{source}: {_species_mismatch(labels[bad[0]], species[bad[0]])} at "
                       f"index {bad[0]}")
    if video_ids is not None:
      video_ids = np.asarray(video_ids, dtype=str).reshape(-1)
    return cls(scores, labels, species, video_ids, source)

  def __len__(self) -> int:
    return self.scores.shape[0]

  @property
  def is_live(self) -> np.ndarray:
    return self.labels == 1

  @property
  def n_bona_fide(self) -> int:
    return int(self.is_live.sum())

  @property
  def n_attack(self) -> int:
    return len(self) - self.n_bona_fide

  @property
  def attack_species(self) -> list[str]:
    """The attack species present, sorted."""
    return sorted(set(self.species[~self.is_live].tolist()))

  def require_both_classes(self) -> None:
    """Every error rate needs bona fide and attack samples; say which class is missing."""
    if self.n_attack == 0:
      raise ScoreError(f"{self.source}: no attack samples (label 0); "
                       "the metrics need both classes")
    if self.n_bona_fide == 0:
      raise ScoreError(f"{self.source}: no bona fide samples (label 1); "
                       "the metrics need both classes")


def _species_mismatch(label: int, species: str) -> str:
  if label == 1:
    return (f"label 1 (bona fide) with species {str(species)!r}: a bona fide sample's species "
            f"is {LIVE!r}; is the label or the species column wrong?")
  return (f"label 0 (attack) with species {LIVE!r}: an attack's species names the attack "
          "(print, replay, ...); is the label or the species column wrong?")


# A decimal number as score files write them (what float() reads, less its extras: digit
# separators "1_0", non-ASCII digits, "infinity" and "nan"; those get their own messages).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _parse_score(token: str, where: str) -> float:
  try:
    value = float(token)
  except ValueError:
    value = None
  if value is not None and not math.isfinite(value):
    raise ScoreError(f"{where}: score {token!r} is not finite")
  if value is None or not _NUMBER.fullmatch(token):
    raise ScoreError(f"{where}: score {token!r} is not a number")
  return value


def _parse_label(token: str, where: str) -> int:
  value = float(token) if _NUMBER.fullmatch(token) else math.nan
  if value not in (0.0, 1.0):
    raise ScoreError(f"{where}: label {token!r} is not 0 (attack) or 1 (bona fide)")
  return int(value)


def read_scores(path: str | os.PathLike) -> ScoreSet:
  """Reads a score file (`score label [species [video_id]]` a line) into a ScoreSet.

  Raises:
    ScoreError: naming file:line for a malformed line, a non-numeric or non-finite score, a label
      other than 0/1, a species that contradicts the label, a video id on some lines but not
      others, or a video whose frames differ in label or species; naming the file when it holds
      no scores. Always one line.
  """
  path = os.fspath(path)
  scores, labels, species, video_ids = [], [], [], []
  first_line = None            # the first score line: whether it has a video id decides
  videos = {}                  # video id -> (its first line, label, species)
  with open(path, "rb") as f:
    data = f.read()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line_no = data.count(b"\n", 0, e.start) + 1
    raise ScoreError(f"{path}:{line_no}: not UTF-8 text; is this a score file?") from None
  for line_no, line in enumerate(text.split("\n"), start=1):
    tokens = line.split()
    if not tokens or tokens[0].startswith("#"):
      continue
    where = f"{path}:{line_no}"
    if not 2 <= len(tokens) <= 4:
      raise ScoreError(
          f"{where}: expected 'score label [species [video_id]]', got {line.strip()!r}")
    score = _parse_score(tokens[0], where)
    label = _parse_label(tokens[1], where)
    kind = tokens[2] if len(tokens) > 2 else (LIVE if label == 1 else ATTACK)
    if (label == 1) != (kind == LIVE):
      raise ScoreError(f"{where}: {_species_mismatch(label, kind)}")
    if first_line is None:
      first_line = (line_no, len(tokens) == 4)
    elif first_line[1] != (len(tokens) == 4):
      with_id, without = (first_line[0], line_no) if first_line[1] else (line_no, first_line[0])
      raise ScoreError(f"{where}: a video id is on line {with_id} but not on line {without}; "
                       "give it on every line or none")
    if len(tokens) == 4:
      first, *seen = videos.setdefault(tokens[3], (line_no, label, kind))
      if seen != [label, kind]:
        raise ScoreError(f"{where}: video {tokens[3]!r} is label {label} {kind!r} here but "
                         f"label {seen[0]} {seen[1]!r} on line {first}; a video's frames "
                         "share one label and species")
      video_ids.append(tokens[3])
    scores.append(score)
    labels.append(label)
    species.append(kind)
  if not scores:
    raise ScoreError(f"{path}: no scores (the file has no score lines)")
  return ScoreSet.from_arrays(scores, labels, species, video_ids or None, source=path)


def write_scores(path: str | os.PathLike, scores: ScoreSet, prov: dict | None = None) -> None:
  """Writes a score file that `read_scores` reads back to the same set (scores to 17 digits);
  `prov`, the provenance of the scores, goes on its first line (a comment to readers of the
  format, provenance.read to this package)."""
  lines = [provenance.header_line(prov) + "\n"] if prov is not None else []
  for i in range(len(scores)):
    fields = [repr(float(scores.scores[i])), str(scores.labels[i]), str(scores.species[i])]
    if scores.video_ids is not None:
      fields.append(str(scores.video_ids[i]))
    lines.append(" ".join(fields) + "\n")
  atomic.write_text(path, "".join(lines))


def video_groups(scores: ScoreSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(sorted video ids, index of each video's first frame, each frame's video index).

  Raises:
    ScoreError: if the set has no video ids, or a video mixes labels or species.
  """
  if scores.video_ids is None:
    raise ScoreError(f"{scores.source}: no video ids to group frames by")
  ids, first, inverse = np.unique(scores.video_ids, return_index=True, return_inverse=True)
  for name, values in (("labels", scores.labels), ("species", scores.species)):
    expected = values[first][inverse]
    mixed = np.flatnonzero(values != expected)
    if mixed.size:
      i = mixed[0]
      raise ScoreError(f"{scores.source}: video {str(scores.video_ids[i])!r} mixes {name} "
                       f"{expected[i].item()!r} and {values[i].item()!r}")
  return ids, first, inverse


def aggregate_videos(scores: ScoreSet, how: str = "mean") -> ScoreSet:
  """One score per video: the mean (or median) of its frame scores, videos in first-seen order.

  Raises:
    ScoreError: if the set has no video ids, or a video mixes labels or species.
  """
  if how not in VIDEO_AGGREGATIONS:
    raise ScoreError(f"video aggregation {how!r} is not one of {VIDEO_AGGREGATIONS}")
  ids, first, inverse = video_groups(scores)
  order = np.argsort(first)  # np.unique sorts ids; keep the file's order instead
  if how == "mean":
    video_scores = np.bincount(inverse, weights=scores.scores) / np.bincount(inverse)
  else:
    by_video = np.argsort(inverse, kind="stable")
    groups = np.split(scores.scores[by_video], np.cumsum(np.bincount(inverse))[:-1])
    video_scores = np.array([np.median(g) for g in groups])
  return ScoreSet(video_scores[order], scores.labels[first][order], scores.species[first][order],
                  ids[order], scores.source)
