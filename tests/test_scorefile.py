"""Score files: parsing, the errors that name file and line, and video aggregation."""

import numpy as np
import pytest

from pyramid_fas_jax.evaluation.scorefile import (
  ScoreError,
  ScoreSet,
  aggregate_videos,
  read_scores,
  write_scores,
)


def _write(tmp_path, text, name="scores.txt"):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_read_scores_fills_species_and_skips_comments(tmp_path):
  path = _write(tmp_path, "# score label species\n0.9 1\n\n0.2 0\n0.4 0 print\n0.7 1.0 live\n")
  s = read_scores(path)
  np.testing.assert_array_equal(s.scores, [0.9, 0.2, 0.4, 0.7])
  np.testing.assert_array_equal(s.labels, [1, 0, 0, 1])
  assert s.species.tolist() == ["live", "attack", "print", "live"]
  assert s.video_ids is None and s.source == path
  assert s.attack_species == ["attack", "print"]


def test_write_then_read_round_trips(tmp_path):
  s = ScoreSet.from_arrays([0.1 / 3, 2.5e-17, 1.0], [0, 1, 1], ["replay", "live", "live"],
                           ["v1", "v2", "v2"])
  path = str(tmp_path / "out.txt")
  write_scores(path, s)
  back = read_scores(path)
  np.testing.assert_array_equal(back.scores, s.scores)
  assert back.species.tolist() == s.species.tolist()
  assert back.video_ids.tolist() == s.video_ids.tolist()


@pytest.mark.parametrize("text,line,message", [
    ("0.9 1\n0.1 0\nabc 0\n", 3, "score 'abc' is not a number"),
    ("0.9 1\nnan 0\n", 2, "score 'nan' is not finite"),
    ("0.9 1\n0.1 2\n", 2, "label '2' is not 0"),
    ("0.9 live\n", 1, "label 'live' is not 0"),
    ("0.9 1\n0.1 0.5\n", 2, "label '0.5' is not 0"),
    ("0.9\n", 1, "expected 'score label"),
    ("0.9 1 live v1 extra\n", 1, "expected 'score label"),
    ("0.9 1 live v1\n0.1 0 print\n", 2, "a video id is on line 1 but not on line 2"),
    ("0.9 1\n0.1 0 print v2\n", 2, "a video id is on line 2 but not on line 1"),
    ("0.9 1 print\n", 1, "label 1 (bona fide) with species 'print'"),
    ("0.9 1\n0.1 0 live\n", 2, "label 0 (attack) with species 'live'"),
    ("0.9 1 live v1\n0.1 0 print v1\n", 2,
     "video 'v1' is label 0 'print' here but label 1 'live' on line 1"),
    ("0.1 0 print v1\n0.2 0 replay v1\n", 2, "video 'v1' is label 0 'replay' here"),
    ("1_0 1\n", 1, "score '1_0' is not a number"),
    ("1e400 1\n", 1, "score '1e400' is not finite"),
    ("0.9 \u0661\n", 1, "label '\u0661' is not 0"),
])
def test_bad_lines_name_file_and_line(tmp_path, text, line, message):
  path = _write(tmp_path, text)
  with pytest.raises(ScoreError, match=f"^{path}:{line}: ") as error:
    read_scores(path)
  assert message in str(error.value)


def test_an_empty_file_is_an_error(tmp_path):
  path = _write(tmp_path, "# nothing here\n\n")
  with pytest.raises(ScoreError, match=f"^{path}: no scores"):
    read_scores(path)


def test_a_binary_file_is_an_error(tmp_path):
  path = tmp_path / "scores.npy"
  path.write_bytes(b"0.5 1\n\x93NUMPY\xff")
  with pytest.raises(ScoreError, match=f"^{path}:2: not UTF-8 text"):
    read_scores(path)


def test_from_arrays_names_the_bad_index():
  with pytest.raises(ScoreError, match="label at index 1 is 3"):
    ScoreSet.from_arrays([0.1, 0.2], [0, 3])
  with pytest.raises(ScoreError, match="label 1 .bona fide. with species 'print'.* at index 1"):
    ScoreSet.from_arrays([0.1, 0.2], [0, 1], ["print", "print"])
  with pytest.raises(ScoreError, match="2 scores but 3 labels"):
    ScoreSet.from_arrays([0.1, 0.2], [0, 1, 1])


def test_aggregate_videos_mean_and_median_keep_file_order():
  s = ScoreSet.from_arrays([0.2, 0.9, 0.4, 0.8, 0.1, 0.3], [0, 1, 0, 1, 0, 1],
                           ["print", "live", "print", "live", "print", "live"],
                           ["z", "a", "z", "a", "z", "m"])
  mean = aggregate_videos(s, "mean")
  assert mean.video_ids.tolist() == ["z", "a", "m"]
  np.testing.assert_allclose(mean.scores, [0.7 / 3, 0.85, 0.3])
  np.testing.assert_array_equal(mean.labels, [0, 1, 1])
  assert mean.species.tolist() == ["print", "live", "live"]
  np.testing.assert_allclose(aggregate_videos(s, "median").scores, [0.2, 0.85, 0.3])


def test_a_video_with_two_labels_is_an_error():
  s = ScoreSet.from_arrays([0.2, 0.9], [0, 1], video_ids=["v", "v"], source="test.txt")
  with pytest.raises(ScoreError, match="test.txt: video 'v' mixes labels"):
    aggregate_videos(s)
