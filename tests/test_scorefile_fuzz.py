"""A fuzz test of the score-file reader: every file hypothesis makes from a grammar of valid and
broken fields and lines either reads into exactly what a small independent parser of the format
computes, or is refused with a ScoreError of one line that names the file and the first line
the parser finds wrong (or only the file, when it holds no score line).

The format (scorefile.py, DESIGN.md): one sample a line, whitespace separated,
`score label [species [video_id]]`; blank lines and lines whose first field starts with '#'
are skipped; scores are finite decimal numbers; labels are 0 or 1 (as a decimal number: 1.0
too); a given species is 'live' iff the label is 1; a video id is on every score line or on
none, and a video's lines share label and species.
"""

import math
import re
import tempfile

import hypothesis
import pytest
from hypothesis import strategies as st

from pyramid_fas_jax.evaluation.scorefile import ScoreError, read_scores

DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
SEPARATORS = [" ", "  ", "\t", " \t "]
VALID_SCORES = ["0.5", "0", "1", "-3.25", ".75", "7.", "1e-3", "2E5", "+0.125",
                "0.30000000000000004", "1e308", "-0"]
SCORES = VALID_SCORES + ["1e400", "-1e400", "nan", "NaN", "inf", "-inf", "Infinity", "1_0",
                         "0x10", "\u0661\u0662", "abc", "0.5.5", "--1", "#0.5", "1e", "e5",
                         "0,5"]
LIVE_LABELS, ATTACK_LABELS = ["1", "1.0", "+1", "1e0", "01"], ["0", "0.0", "-0", "0e5"]
LABELS = LIVE_LABELS + ATTACK_LABELS + ["2", "-1", "0.5", "live", "\u0661", "1_0", "nan",
                                        "true"]
ATTACKS = ["print", "replay", "mask3d", "attack", "Live", "ünïcødé", "\u4e2d\u6587", "#tag",
           "live\u200b"]
SPECIES = ["live"] + ATTACKS
VIDEOS = ["v1", "v2", "vidé", "#v", "a/b:c"]
NOT_SCORE_LINES = [b"", b"   ", b"\t", b"# a comment", b"  # indented comment 0.5 1",
                   b"#0.9 1 live v1"]
BROKEN_BYTES = [b"\xff\xfe not utf-8", b"0.5 1 live \xe4\xb8"]


def expected(text: str):
  """('ok', scores, labels, species, video ids or None), ('line', n) or ('empty',): what the
  format says of `text`, from its rules alone."""
  rows, first_has_id, videos = [], None, {}
  for n, line in enumerate(text.split("\n"), start=1):
    fields = [f for f in re.split(r"[ \t\r]+", line) if f]
    if not fields or fields[0][0] == "#":
      continue
    if len(fields) < 2 or len(fields) > 4:
      return ("line", n)
    score, label = fields[0], fields[1]
    if not DECIMAL.fullmatch(score) or not math.isfinite(float(score)):
      return ("line", n)
    if not DECIMAL.fullmatch(label) or float(label) not in (0.0, 1.0):
      return ("line", n)
    label = int(float(label))
    species = fields[2] if len(fields) >= 3 else ("live" if label else "attack")
    if (species == "live") != (label == 1):
      return ("line", n)
    has_id = len(fields) == 4
    if first_has_id is None:
      first_has_id = has_id
    if has_id != first_has_id:
      return ("line", n)
    if has_id and videos.setdefault(fields[3], (label, species)) != (label, species):
      return ("line", n)
    rows.append((float(score), label, species, fields[3] if has_id else None))
  if not rows:
    return ("empty",)
  scores, labels, species, ids = map(list, zip(*rows))
  return ("ok", scores, labels, species, ids if first_has_id else None)


def _join(draw, fields) -> bytes:
  text = fields[0]
  for field in fields[1:]:
    text += draw(st.sampled_from(SEPARATORS)) + field
  lead, trail = draw(st.sampled_from(["", " ", "\t"])), draw(st.sampled_from(["", " ", "\t"]))
  return (lead + text + trail).encode("utf-8")


@st.composite
def valid_line(draw, with_ids: bool):
  """A line the format accepts, given whether the file's lines carry video ids: a video's id
  is made from its species, so all its lines agree."""
  live = draw(st.booleans())
  species = "live" if live else draw(st.sampled_from(ATTACKS[:-1]))  # not the look-alike
  fields = [draw(st.sampled_from(VALID_SCORES)),
            draw(st.sampled_from(LIVE_LABELS if live else ATTACK_LABELS))]
  if with_ids:
    fields += [species, draw(st.sampled_from(VIDEOS)) + "-" + species]
  elif draw(st.booleans()):
    fields.append(species)
  return _join(draw, fields)


@st.composite
def any_line(draw):
  """Fields drawn at random from valid and broken ones: missing and extra columns, bad numbers,
  labels, species and video ids, a species contradicting the label, a video mixing labels."""
  n = draw(st.sampled_from([1, 2, 3, 4, 5]))
  fields = [draw(st.sampled_from(SCORES)), draw(st.sampled_from(LABELS)),
            draw(st.sampled_from(SPECIES)), draw(st.sampled_from(VIDEOS)), "extra"][:n]
  return _join(draw, fields)


@st.composite
def score_file(draw):
  """Mostly valid lines (with or without video ids), comments and blank lines, and up to two
  broken lines; CRLF or LF endings, with or without a final newline."""
  with_ids = draw(st.booleans())
  lines = draw(st.lists(st.one_of(valid_line(with_ids), valid_line(with_ids),
                                  st.sampled_from(NOT_SCORE_LINES)), max_size=10))
  for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
    broken = draw(st.one_of(any_line(), any_line(), valid_line(not with_ids),
                            st.sampled_from(BROKEN_BYTES)))
    lines.insert(draw(st.integers(0, len(lines))), broken)
  ending = draw(st.sampled_from([b"\n", b"\r\n"]))
  data = ending.join(lines)
  return data + ending if lines and draw(st.booleans()) else data


@hypothesis.settings(max_examples=300, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(score_file())
def test_every_file_reads_exactly_or_fails_on_one_line_naming_the_line(data):
  with tempfile.TemporaryDirectory() as directory:
    path = f"{directory}/scores.txt"
    with open(path, "wb") as f:
      f.write(data)
    try:
      text = data.decode("utf-8")
    except UnicodeDecodeError as e:
      want = ("line", data.count(b"\n", 0, e.start) + 1)
    else:
      want = expected(text)
    try:
      got = read_scores(path)
    except ScoreError as error:
      message = str(error)
      assert len(message.splitlines()) == 1, message
      if want[0] == "line":
        assert message.startswith(f"{path}:{want[1]}: "), (message, want)
      else:
        assert want == ("empty",) and message.startswith(f"{path}: no scores"), (message, want)
      return
    assert want[0] == "ok", f"read although line {want[1:]} is bad: {data!r}"
    assert got.scores.tolist() == want[1]  # exactly float() of the token
    assert got.labels.tolist() == want[2]
    assert got.species.tolist() == want[3]
    assert (None if got.video_ids is None else got.video_ids.tolist()) == want[4]
    assert got.source == path


@pytest.mark.parametrize("text,want", [
    ("0.5 1\n0.25 0 print\n", ("ok", [0.5, 0.25], [1, 0], ["live", "print"], None)),
    ("0.5 1 live v\r\n0.4 1 live v\r\n", ("ok", [0.5, 0.4], [1, 1], ["live", "live"], ["v", "v"])),
    ("#x\n\n0.5\t1.0\n", ("ok", [0.5], [1], ["live"], None)),
    ("0.5 1 print\n", ("line", 1)),
    ("0.5 0 live\n", ("line", 1)),
    ("0.5 1 live v\n0.5 0 print v\n", ("line", 2)),
    ("0.5 1\n0.5 0 print v\n", ("line", 2)),
    ("1_0 1\n", ("line", 1)),
    ("0.5 \u0661\n", ("line", 1)),
    ("# only\n", ("empty",)),
])
def test_the_reference_parser_on_hand_worked_files(text, want):
  # The oracle itself, on cases worked out by hand from the format's rules.
  assert expected(text) == want
