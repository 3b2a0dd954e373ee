"""`pyramid-fas score` end to end, as a user runs it."""

import json
import os
import pathlib
import subprocess
import sys

import naive_fas
import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_score(*args):
  path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
  env = {**os.environ, "PYTHONPATH": path}
  return subprocess.run([sys.executable, "-m", "pyramid_fas_jax.cli", "score", *map(str, args)],
                        capture_output=True, text=True, env=env, timeout=120, check=False)


def write_video_scores(path, seed, n_videos=30, frames=4):
  """Videos cycling live / print / replay, `frames` noisy frame scores each."""
  rng = np.random.default_rng(seed)
  species = ["live", "print", "replay"]
  with open(path, "w") as f:
    for v in range(n_videos):
      kind = species[v % 3]
      for score in rng.normal({"live": 0.65, "print": 0.4, "replay": 0.3}[kind], 0.15, frames):
        f.write(f"{score:.5f} {int(kind == 'live')} {kind} video{v}\n")
  return path


@pytest.fixture(name="files")
def fixture_files(tmp_path):
  return write_video_scores(tmp_path / "dev.txt", 0), write_video_scores(tmp_path / "test.txt", 1)


def test_iso_report_json_and_plots(files, tmp_path):
  dev, test = files
  out = tmp_path / "result.json"
  done = run_score(f"--dev={dev}", f"--test={test}", f"--json={out}",
                   f"--plots={tmp_path / 'plots'}", "--bootstrap=200")
  assert done.returncode == 0, done.stderr
  assert "dev_eer (EER threshold of the dev set)" in done.stdout
  assert "one score per video: the mean of its frame scores" in done.stdout
  assert "  APCER print " in done.stdout and "test 95% CI" in done.stdout
  result = json.loads(out.read_text())
  assert result["video_agg"] == "mean"
  assert result["test"]["n_bona_fide"] == 10 and result["test"]["n_attack"] == 20
  assert set(result["test"]["APCER_per_species"]) == {"print", "replay"}
  assert result["test"]["bootstrap"]["n_resamples"] == 200
  # The printed and stored rates, recomputed in plain Python from the files: per-video means,
  # the dev EER threshold, the test rates there (tests/naive_fas.py).
  dev_rows, test_rows = naive_fas.read(dev, per_video=True), naive_fas.read(test, per_video=True)
  _, threshold = naive_fas.eer(dev_rows)
  want = naive_fas.rates(test_rows, threshold)
  for key in ("APCER", "BPCER", "ACER"):
    assert result["test"][key] == pytest.approx(float(want[key]), abs=1e-12), key
  # Printed as %: the dev column, the test column (then the 95% CI).
  (acer_line,) = [line.split() for line in done.stdout.splitlines() if line.startswith("ACER ")]
  assert acer_line[1:3] == [f"{100 * float(naive_fas.rates(rows, threshold)['ACER']):.2f}"
                           for rows in (dev_rows, test_rows)]
  for name in ("roc", "det", "hist_dev", "hist_test"):
    assert (tmp_path / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_test_eer_without_dev_is_labelled(files):
  done = run_score(f"--test={files[1]}", "--threshold=test_eer", "--bootstrap=0")
  assert done.returncode == 0, done.stderr
  assert "test_eer (threshold chosen on the test set)" in done.stdout
  assert "NOTE: the threshold was chosen on the test set" in done.stdout


def test_cdcn_mode_prints_and_writes_its_nine_values(files, tmp_path):
  out = tmp_path / "cdcn.json"
  done = run_score(f"--dev={files[0]}", f"--test={files[1]}", "--mode=cdcn", f"--json={out}")
  assert done.returncode == 0, done.stderr
  result = json.loads(out.read_text())
  assert list(result) == [
      "mode", "video_agg", "dev_threshold", "test_threshold", "dev_acc", "dev_acer", "test_acc",
      "test_apcer", "test_bpcer", "test_acer", "test_acer_at_test_threshold", "provenance"]
  assert result["video_agg"] is None  # CDCN's performances() reads the rows as given
  assert "test_acer_at_test_threshold" in done.stdout


@pytest.mark.parametrize("content,expected", [
    ("0.9 1\n0.1 0\n0.x 0\n", "test.txt:3: score '0.x' is not a number"),
    ("0.9 1\n0.1 -1\n", "test.txt:2: label '-1' is not 0 (attack) or 1 (bona fide)"),
    ("0.9 1\n0.8 1\n", "test.txt: no attack samples (label 0)"),
    ("", "test.txt: no scores"),
])
def test_bad_files_give_one_line_naming_file_and_line(files, tmp_path, content, expected):
  bad = tmp_path / "test.txt"
  bad.write_text(content)
  done = run_score(f"--dev={files[0]}", f"--test={bad}")
  assert done.returncode == 2
  lines = done.stderr.strip().splitlines()
  assert len(lines) == 1, done.stderr
  assert lines[0].startswith(f"pyramid-fas score: {bad.parent}/{expected}")


def test_dev_eer_without_dev_asks_instead_of_using_test(files):
  done = run_score(f"--test={files[1]}")
  assert done.returncode == 2
  assert "needs a dev set" in done.stderr and "test_eer" in done.stderr


@pytest.mark.parametrize("without", ["dev", "test"])
def test_a_set_without_video_ids_beside_one_with_is_refused(files, tmp_path, without):
  """Scoring one set per video and the other per frame would apply a threshold chosen on video
  means to frames: refused, naming the file without ids and the way to score both per frame."""
  frames = tmp_path / f"{without}_frames.txt"
  with_ids = files[0] if without == "test" else files[1]
  frames.write_text("".join(" ".join(line.split()[:3]) + "\n"
                            for line in pathlib.Path(with_ids).read_text().splitlines()))
  dev, test = (frames, files[1]) if without == "dev" else (files[0], frames)
  out = tmp_path / "r.json"
  done = run_score(f"--dev={dev}", f"--test={test}", "--bootstrap=0", f"--json={out}")
  assert done.returncode == 2 and "Traceback" not in done.stderr
  (line,) = done.stderr.strip().splitlines()
  assert line.startswith(f"pyramid-fas score: {frames} has no video ids but ")
  assert "--video_agg=none" in line and not out.exists()
  done = run_score(f"--dev={dev}", f"--test={test}", "--bootstrap=0", "--video_agg=none",
                   f"--json={out}")
  assert done.returncode == 0, done.stderr
  result = json.loads(out.read_text())
  assert result["video_agg"] is None
  assert result["dev"]["unit"] == result["test"]["unit"] == "sample"
  assert result["test"]["n_bona_fide"] + result["test"]["n_attack"] == 120  # every frame


def test_species_contradicting_the_label_is_refused(files, tmp_path):
  bad = tmp_path / "test.txt"
  bad.write_text("0.9 1 live\n0.2 0 print\n0.8 1 replay\n")
  done = run_score(f"--dev={files[0]}", f"--test={bad}", "--video_agg=none")
  assert done.returncode == 2
  (line,) = done.stderr.strip().splitlines()
  assert line.startswith(f"pyramid-fas score: {bad}:3: label 1 (bona fide) with species "
                         "'replay'")
