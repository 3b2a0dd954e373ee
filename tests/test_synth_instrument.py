"""SynthFAS as an instrument (benchmarks/synth_results.py): paired bootstrap differences,
localisation of partial attacks, the rows' configs and the README's results block."""

import json
import pathlib
import sys

import numpy as np
import pytest

from pyramid_fas_jax.evaluation import bootstrap, localisation, metrics
from pyramid_fas_jax.evaluation.scorefile import ScoreSet

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import demo_seeds  # noqa: E402
import synth_report  # noqa: E402
import synth_results  # noqa: E402

SPECIES = ("live", "print", "replay")


def _videos(scores, per=(6, 3, 3), order=None):
  species = [s for s, n in zip(SPECIES, per) for _ in range(n)]
  ids = [f"v{i:02d}" for i in range(len(species))]
  labels = [int(s == "live") for s in species]
  idx = np.arange(len(species)) if order is None else np.asarray(order)
  return ScoreSet.from_arrays(np.asarray(scores, float)[idx], np.asarray(labels)[idx],
                              np.asarray(species)[idx], np.asarray(ids)[idx])


# live (6): scores 0.9 except where noted; print (3) and replay (3) 0.1 except where noted.
BASE = [0.9] * 6 + [0.1] * 6


def _with(changes):
  s = list(BASE)
  for i, v in changes.items():
    s[i] = v
  return s


def test_paired_difference_point_is_the_acer_difference():
  a = _videos(_with({0: 0.2, 6: 0.8}))            # 1/6 live rejected, 1/3 print accepted
  b = _videos(_with({9: 0.8, 10: 0.8}))           # 2/3 replay accepted
  got = bootstrap.paired_acer_difference([(a, 0.5)], [(b, 0.5)], n_resamples=500)
  want = metrics.error_rates(a, 0.5)["ACER"] - metrics.error_rates(b, 0.5)["ACER"]
  assert got["difference"] == pytest.approx(want)
  assert want == pytest.approx((1 / 3 + 1 / 6) / 2 - (2 / 3) / 2)
  for key in ("videos", "seeds"):
    assert got[key][0] <= got["difference"] <= got[key][1]


def test_same_runs_in_another_order_differ_by_exactly_zero():
  scores = _with({0: 0.2, 6: 0.8, 9: 0.7})
  a = _videos(scores)
  b = _videos(scores, order=np.random.default_rng(1).permutation(12))
  got = bootstrap.paired_acer_difference([(a, 0.5)], [(b, 0.5)], n_resamples=300)
  assert got["difference"] == 0 and got["videos"] == [0, 0] and got["seeds"] == [0, 0]


def test_pairing_cancels_what_the_arms_share():
  # Both arms err on the same 3 live videos; A errs on one print video more. Resampling the
  # videos together, the difference is only that video's share: never negative, and at most
  # half of the whole print stratum.
  shared = {0: 0.1, 1: 0.1, 2: 0.1}
  a = _videos(_with({**shared, 6: 0.9}))
  b = _videos(_with(shared))
  got = bootstrap.paired_acer_difference([(a, 0.5)], [(b, 0.5)], n_resamples=2000)
  assert got["difference"] == pytest.approx((1 / 3) / 2)
  assert 0 <= got["videos"][0] < got["videos"][1] <= 0.5


def test_seed_spread_widens_the_interval():
  good = _videos(BASE)
  bad = _videos(_with({0: 0.1, 1: 0.1, 6: 0.9, 7: 0.9, 8: 0.9}))
  got = bootstrap.paired_acer_difference([(good, 0.5), (bad, 0.5)], [(good, 0.5)],
                                         n_resamples=2000)
  acer_bad = metrics.error_rates(bad, 0.5)["ACER"]
  assert got["difference"] == pytest.approx(acer_bad / 2)
  # Drawing A's seeds can give two good runs (difference 0) or two bad ones (acer_bad).
  assert got["seeds"][0] == pytest.approx(0, abs=1e-12)
  assert got["seeds"][1] > got["videos"][1]


def test_paired_difference_refuses_unpaired_sets():
  a = _videos(BASE)
  other = ScoreSet.from_arrays(a.scores, a.labels, a.species, [f"w{i}" for i in range(12)])
  with pytest.raises(ValueError, match="other videos"):
    bootstrap.paired_acer_difference([(a, 0.5)], [(other, 0.5)])
  frames = ScoreSet.from_arrays(np.r_[a.scores, a.scores], np.r_[a.labels, a.labels],
                                np.r_[a.species, a.species], np.r_[a.video_ids, a.video_ids])
  with pytest.raises(ValueError, match="one score per video"):
    bootstrap.paired_acer_difference([(frames, 0.5)], [(frames, 0.5)])
  with pytest.raises(ValueError, match="at least one run"):
    bootstrap.paired_acer_difference([], [(a, 0.5)])


def test_one_attack_pixel_marks_its_cell_at_every_scale():
  mask = np.ones((1, 8, 8), np.uint8)
  mask[0, 5, 2] = 0
  cells = {s: localisation.spoof_cells(mask, s)[0] for s in (8, 4, 2, 1)}
  assert cells[8].sum() == 1 and cells[8][5, 2]
  assert cells[4].sum() == 1 and cells[4][2, 1]
  assert cells[2].sum() == 1 and cells[2][1, 0]
  assert cells[1].all()
  with pytest.raises(ValueError, match="cannot be pooled"):
    localisation.spoof_cells(mask, 3)


def test_localisation_by_hand():
  # Two frames with a patch over their top half (4x4 masks), maps at 2x2 and 1x1.
  masks = np.ones((2, 4, 4), np.uint8)
  masks[:, :2] = 0
  perfect = np.array([[[0.1, 0.2], [0.9, 0.8]]] * 2)
  inverted = 1 - perfect
  # Frame 0 right, frame 1 calls its bottom-left (live) cell spoof too: IoU 2/3.
  half = perfect.copy()
  half[1, 1, 0] = 0.15
  got = localisation.localise({2: perfect, 1: np.full((2, 1, 1), 0.2)}, masks)
  assert got[2] == {"pixel_auc": 1.0, "iou": 1.0, "frames": 2, "spoof_cells": 4,
                    "live_cells": 4}
  assert got[1]["pixel_auc"] is None and got[1]["iou"] == 1.0  # one kind of cell only
  assert localisation.localise({2: inverted}, masks)[2]["pixel_auc"] == 0.0
  assert localisation.localise({2: inverted}, masks)[2]["iou"] == 0.0
  assert localisation.localise({2: half}, masks)[2]["iou"] == pytest.approx((1 + 2 / 3) / 2)
  # That live cell's spoofness 0.85 outranks the two spoof cells at 0.8: 2 of 16 pairs wrong.
  assert localisation.localise({2: half}, masks)[2]["pixel_auc"] == pytest.approx(
      1 - 2 / 16)
  with pytest.raises(ValueError, match="scale 2"):
    localisation.localise({2: np.zeros((2, 3, 3))}, masks)


@pytest.mark.parametrize("kind,interval,want", [
    ("better", (-0.05, -0.01), "supports"), ("better", (0.01, 0.05), "contradicts"),
    ("better", (-0.05, 0.01), "cannot separate"), ("no_gain", (-0.05, -0.01), "contradicts"),
    ("no_gain", (-0.02, 0.03), "consistent")])
def test_verdicts(kind, interval, want):
  assert synth_report.verdict(kind, interval) == want


def plain(value):
  return value.to_dict() if hasattr(value, "to_dict") else value


def test_rows_differ_from_the_demo_in_their_supervision_alone(tmp_path):
  """Under the demo's recipe a row is the demo but for its head; Table II's recipe (the
  default) differs from it in the lr schedule and evaluation cadence alone."""
  from pyramid_fas_jax.experiment import demo
  demo_config = demo.load_config(REPO / "configs" / "demo.py")
  heads = {}
  for row in synth_report.ROWS:
    config = synth_results.run_config(row, "intra", 3, 2400, tmp_path, "lr_drop")
    assert (config.seed, config.num_steps, config.data.builder_config) == (3, 2400, "bench")
    for key in ("optim", "aug", "input", "batch_size", "eval_every_steps", "init_from"):
      assert plain(config[key]) == plain(demo_config[key]), (row, key)
    # The demo scores test once, for the checkpoint dev chose; a row scores it at every
    # evaluation, for its budget curves (which checkpoint is best within 2400 steps).
    assert config.eval.test_while_training and not demo_config.eval.test_while_training
    with config.unlocked():
      config.eval.test_while_training = False
    assert plain(config.eval) == plain(demo_config.eval), row
    assert config.model.backbone == demo_config.model.backbone
    heads[row] = (config.model.head, tuple(config.model.scales))
  # A held-out domain tests on bench_cross (4x the test subjects); nothing else changes.
  cross = synth_results.run_config("pyramid", "cross_domain/lowlight", 3, 2400, tmp_path)
  intra = synth_results.run_config("pyramid", "intra", 3, 2400, tmp_path)
  assert (cross.data.builder_config, cross.data.protocol) == ("bench_cross",
                                                              "cross_domain/lowlight")
  with cross.unlocked():
    cross.data.builder_config, cross.data.protocol = "bench", "intra"
  assert plain(cross) == plain(intra)
  assert heads["pyramid"] == (demo_config.model.head, tuple(demo_config.model.scales))
  assert heads["single_scale"] == ("pyramid_mask", (8,))
  assert len(set(heads.values())) == len(heads)  # every row its own supervision
  assert synth_report.RECIPE == "constant_lr"
  assert (intra.optim.schedule, intra.optim.lr, intra.eval_every_steps) == ("constant", 1e-3, 400)
  assert (demo_config.optim.schedule, demo_config.optim.lr_decay,
          demo_config.eval_every_steps) == ("step", 0.1, 600)
  with intra.unlocked():
    intra.optim = demo_config.optim
    intra.eval_every_steps = intra.checkpoint_every_steps = demo_config.eval_every_steps
  assert plain(intra) == plain(synth_results.run_config("pyramid", "intra", 3, 2400, tmp_path,
                                                        "lr_drop"))


def test_readme_block_is_rendered_from_the_committed_results():
  data = json.loads(synth_report.RESULTS.read_text())
  readme = (REPO / "README.md").read_text()
  assert synth_report.replace_block(readme, synth_report.render(data)) == readme
  every = {(r["row"], r["protocol"], r["seed"]) for r in data["runs"]}
  assert len(every) == len(data["runs"])  # one record per run
  # The claims at the table's budget, and at the longer one on the runs it has so far.
  for runs, claims in ((data["runs"], data["comparisons"]),
                       (data["budget"]["runs"], data["budget"]["comparisons"])):
    assert claims
    for c in claims:
      arms = [[r["test"]["ACER"] for r in runs
               if (r["row"], r["protocol"]) == (row, c["protocol"])] for row in (c["a"], c["b"])]
      assert (c["n_a"], c["n_b"]) == tuple(map(len, arms))
      assert c["difference"] == pytest.approx(np.mean(arms[0]) - np.mean(arms[1]), abs=1e-9)
      assert c["seeds"][0] <= c["difference"] <= c["seeds"][1]
      assert c["verdict"] == synth_report.verdict(c["kind"], c["seeds"])
      assert c["provisional"] == (min(c["n_a"], c["n_b"]) < synth_report.MIN_SEEDS)


def test_table_ii_configs_quote_their_rows():
  data = json.loads(synth_report.RESULTS.read_text())
  sources = synth_report.config_docstrings(data)
  assert {p.stem for p in sources} == {r["entry"].split("+")[0] for r in data["runs"]
                                       for r in [synth_report.ROWS[r["row"]]]}
  for path, want in sources.items():
    assert path.read_text() == want, f"{path}: run benchmarks/synth_results.py report"


def _curve(auc, loss):
  return [{"step": 400 * (i + 1), "dev_AUC": a, "dev_log_loss": x}
          for i, (a, x) in enumerate(zip(auc, loss))]


@pytest.mark.parametrize("auc, loss, want", [
    # AUC within 0.005 of its best from 1200 on, loss within 0.02 of its lowest from 800 on.
    ([0.90, 0.95, 0.975, 0.978, 0.979], [0.5, 0.30, 0.29, 0.30, 0.285], (1200, False)),
    # The loss is what still improves: 0.25 at 1600 is 0.05 below everything before.
    ([0.90, 0.98, 0.98, 0.98], [0.5, 0.35, 0.30, 0.25], (1600, True)),
    # A later dip does not move it: the running best is what counts.
    ([0.95, 0.97, 0.90, 0.972], [0.3, 0.28, 0.6, 0.29], (800, False)),
])
def test_plateau_by_hand(auc, loss, want):
  assert synth_report.plateau(_curve(auc, loss)) == want


def test_a_longer_budget_is_another_record_and_keeps_its_first_steps(tmp_path, monkeypatch):
  """A run continued past the table's budget: its 2400-step record reads the evaluations up
  to 2400 only, and the two budgets never share a record."""
  assert (synth_report.record_dir("pyramid", "intra", 0, 2400)
          != synth_report.record_dir("pyramid", "intra", 0, 6000))
  assert (synth_report.record_dir("pyramid", "intra", 0, 2400, "lr_drop")
          != synth_report.record_dir("pyramid", "intra", 0, 2400, "constant_lr"))
  _finished_run(tmp_path)
  got = synth_report.collect_run(tmp_path, 800)
  assert [c["step"] for c in got["curve"]] == [400, 800]
  assert got["best_step"] == 800  # not 1200, which is past this budget
  assert synth_report.collect_run(tmp_path, 1200)["best_step"] == 1200
  with pytest.raises(ValueError, match="no evaluation at step 1000"):
    synth_report.collect_run(tmp_path, 1000)


def _finished_run(path, steps=(400, 800, 1200), eers=(0.3, 0.1, 0.05)):
  """A run's eval/ and scores/ as training leaves them (4 dev videos, 4 test videos)."""
  (path / "eval").mkdir(parents=True)
  (path / "scores").mkdir()
  lines = "".join(f"{0.9 if i < 2 else 0.1} {int(i < 2)} {'live' if i < 2 else 'print'} v{i}\n"
                  for i in range(4))
  for step, eer in zip(steps, eers):
    split = {"AUC": 1 - eer, "EER": eer, "ACER": 0.0, "HTER": 0.0, "APCER": 0.0, "BPCER": 0.0,
             "APCER_per_species": {"print": 0.0}, "threshold": 0.5}
    (path / "eval" / f"step_{step}.json").write_text(json.dumps(
        {"dev": split, "test": split, "wall_time_s": step / 10}))
    (path / "scores" / f"dev_frames_step{step}.txt").write_text(lines)
    (path / "scores" / f"test_videos_step{step}.txt").write_text(lines)


def test_a_finished_run_is_recorded_under_its_budget(tmp_path, monkeypatch, capsys):
  """train --one on a run whose evaluations exist records it (no training) where `recorded`
  finds it, apart from the same run's record at another budget."""
  import argparse
  monkeypatch.setattr(synth_report, "RECORDS", tmp_path / "records")
  workdir = tmp_path / "work"
  _finished_run(synth_results.run_dir(workdir, "binary", "intra", 0))
  args = argparse.Namespace(one="binary:intra:0", steps=800, workdir=workdir,
                            data_dir=str(tmp_path / "tfds"), recipe=synth_report.RECIPE)
  synth_results.train_one(args)
  args.steps = 1200
  synth_results.train_one(args)
  short, long = (synth_report.recorded("binary", "intra", 0, n) for n in (800, 1200))
  assert (short["best_step"], long["best_step"]) == (800, 1200)
  # Today's recipe finds it; a changed one does not reuse it.
  assert synth_report.recorded("binary", "intra", 0, 800, synth_results.digest) == short
  assert synth_report.recorded("binary", "intra", 0, 800, lambda *run: "another") is None
  assert synth_report.recorded("binary", "intra", 0, 400) is None
  assert synth_report.recorded("binary", "intra", 0, 800, recipe="lr_drop") is None
  assert short["recipe"] == synth_report.RECIPE
  said = capsys.readouterr().out
  assert str(synth_report.record_dir("binary", "intra", 0, 800)) in said
  assert "test ACER 0.00% at step 1200" in said


def test_docstring_paragraph_is_replaced_in_place():
  source = 'r"""Title.\n\nBody.\n\nSynthFAS, CPU scale old\nfigures.\n"""\n\nimport x\n'
  got = synth_report.replace_docstring_paragraph(source, "SynthFAS, CPU scale new.")
  assert got == 'r"""Title.\n\nBody.\n\nSynthFAS, CPU scale new.\n"""\n\nimport x\n'
  with pytest.raises(ValueError, match="SynthFAS, CPU scale"):
    synth_report.replace_docstring_paragraph('"""Title."""\n\nSynthFAS, CPU scale x\n', "y")


def test_committed_records_agree_with_their_scores_and_the_results():
  """Each record (of every recipe) sits where its recipe and budget key it, carries today's
  digest of its run's config, and its test figures are recomputed from its own per-video
  scores; the JSON's runs are exactly its recipe's records (the README block is rendered from
  the JSON)."""
  data = json.loads(synth_report.RESULTS.read_text())
  records = sorted(synth_report.RECORDS.glob("*/*_steps/*/*/seed*/record.json"))
  assert {p.relative_to(synth_report.RECORDS).parts[0] for p in records} <= set(
      synth_report.RECIPES)
  reported = [json.loads(p.read_text()) for p in records
              if p.relative_to(synth_report.RECORDS).parts[0] == data["recipe"]["name"]]
  assert sorted(map(json.dumps, reported)) == sorted(
      map(json.dumps, data["runs"] + data["budget"]["runs"]))
  for path in records:
    rec = json.loads(path.read_text())
    assert rec["curve"][-1]["step"] == rec["steps"]
    assert path.parent == synth_report.record_dir(rec["row"], rec["protocol"], rec["seed"],
                                                  rec["steps"], rec["recipe"])
    # Made under today's config for its row and recipe: any other is retrained, not reused.
    assert rec["config"] == synth_results.digest(rec["row"], rec["protocol"], rec["seed"],
                                                 rec["steps"], rec["recipe"]), path
    got = metrics.error_rates(synth_report.test_videos(rec), rec["threshold"])
    for key in ("ACER", "APCER", "BPCER"):
      assert got[key] == pytest.approx(rec["test"][key], abs=1e-9), (path, key)
    assert rec["best_step"] in [c["step"] for c in rec["curve"]]
    assert min(c["dev_EER"] for c in rec["curve"]) == next(
        c["dev_EER"] for c in rec["curve"] if c["step"] == rec["best_step"])
    best = synth_report.best_within(rec["curve"], rec["steps"])
    assert (best["step"], best["test_ACER"]) == (rec["best_step"], rec["test"]["ACER"])


def test_a_longer_run_scores_the_shorter_budget_from_its_own_curve():
  """Where a longer record grew from the shorter budget's run (seed 0, continued in place), its
  curve up to the shorter budget is that run's, and best_within gives the shorter record's
  figures; a seed trained afresh on another machine is another run, whose own curve is what the
  budget table reads. The table's budget may be either of the two."""
  data = json.loads(synth_report.RESULTS.read_text())
  (short_steps, shorter), (long_steps, longer) = synth_report.budgets(data)
  assert {data["steps"], data["budget"]["steps"]} == {short_steps, long_steps}
  same = 0
  for rec in longer:
    short = next(r for r in shorter if (r["row"], r["protocol"], r["seed"])
                 == (rec["row"], rec["protocol"], rec["seed"]))
    if rec["curve"][:len(short["curve"])] == short["curve"]:
      same += 1
      best = synth_report.best_within(rec["curve"], short_steps)
      assert (best["step"], best["test_ACER"]) == (short["best_step"], short["test"]["ACER"])
  assert same >= len(synth_report.ROWS)  # seed 0 of every row was continued in place


def test_either_budget_can_be_the_table():
  """`report --steps=6000 --budget_steps=2400` and the other way round show the same runs: the
  per-run budget table and the localisation read the longer and shorter records, not which of
  them is the table's, and the two claims tables trade places."""
  data = json.loads(synth_report.RESULTS.read_text())
  swapped = {**data, "steps": data["budget"]["steps"], "runs": data["budget"]["runs"],
             "comparisons": data["budget"]["comparisons"],
             "budget": {"steps": data["steps"], "runs": data["runs"],
                        "comparisons": data["comparisons"]}}
  assert synth_report.budgets(swapped) == synth_report.budgets(data)
  dashed = " (dashed in the figure)"
  lines, swapped_lines = synth_report._budget_lines(data), synth_report._budget_lines(swapped)
  assert len(lines) > len(synth_report.ROWS)
  assert [line.replace(dashed, "") for line in lines] == [
      line.replace(dashed, "") for line in swapped_lines]
  # Dashed in the figure only where the longer runs are not the table's own.
  assert (dashed in lines[0]) == (data["steps"] < data["budget"]["steps"]) != (
      dashed in swapped_lines[0])
  first, second = synth_report.render(data), synth_report.render(swapped)
  tail = "**Localisation"
  assert first[first.index(tail):] == second[second.index(tail):]
  for claims in (data["comparisons"], data["budget"]["comparisons"]):
    table = "\n".join(synth_report._claims_table(claims))
    assert table in first and table in second


def test_error_table_by_hand():
  """BPCER and each species' APCER, averaged over a row's seeds; a species a protocol's runs
  never met is a dash, not a zero."""
  def run(row, protocol, bpcer, **apcer):
    return {"row": row, "protocol": protocol, "test": {"BPCER": bpcer,
                                                       "APCER_per_species": apcer}}
  data = {"runs": [run("pyramid", "intra", 0.02, print=0.0, partial=0.25),
                   run("pyramid", "intra", 0.04, print=0.1, partial=0.15),
                   run("binary", "intra", 0.10, print=0.5, partial=0.5),
                   run("binary", "cross_domain/lowlight", 0.3, partial=0.75)]}
  lines = synth_report._error_lines(data, ["intra", "cross_domain/lowlight"])
  assert lines[2] == "| protocol | supervision | BPCER | APCER partial | APCER print |"
  assert lines[4:7] == ["| intra | pyramid mask 8/4/2/1 | 3.0 | 20.0 | 5.0 |",
                        "| intra | binary score | 10.0 | 50.0 | 50.0 |",
                        "| cross_domain/lowlight | binary score | 30.0 | 75.0 | - |"]
  # The committed table's runs: each ACER is the mean of its BPCER and worst species' APCER.
  for rec in json.loads(synth_report.RESULTS.read_text())["runs"]:
    worst = max(rec["test"]["APCER_per_species"].values())
    assert rec["test"]["ACER"] == pytest.approx((worst + rec["test"]["BPCER"]) / 2, abs=1e-12)


def test_demo_seeds_block_and_docstring_are_rendered_from_their_records():
  data = json.loads(demo_seeds.RESULTS.read_text())
  assert len(data["seeds"]) >= 5 and len({r["seed"] for r in data["seeds"]}) == len(data["seeds"])
  readme = (REPO / "README.md").read_text()
  assert synth_report.replace_block(readme, demo_seeds.render(data), demo_seeds.BEGIN,
                                    demo_seeds.END) == readme
  config = demo_seeds.CONFIG.read_text()
  assert synth_report.replace_docstring_paragraph(
      config, demo_seeds.docstring_paragraph(data), demo_seeds.DOC_START) == config
  for r in data["seeds"]:
    t = r["test"]
    assert t["ACER"] == pytest.approx((t["APCER"] + t["BPCER"]) / 2)
    assert t["APCER"] == max(t["APCER_per_species"].values())
    assert r["test_ACER_interval"][0] <= t["ACER"] <= r["test_ACER_interval"][1]
  s = demo_seeds.summary(data)
  assert s["min"] <= s["mean"] <= s["max"]
  assert s["within"] == sum(r["test"]["ACER"] <= demo_seeds.TARGET for r in data["seeds"])


def test_demo_seeds_of_another_recipe_are_not_this_demos():
  from pyramid_fas_jax.experiment import demo
  config = demo.load_config(demo_seeds.CONFIG)
  base = demo_seeds.recipe(config)
  config.seed, config.data.data_dir = 7, "/elsewhere"
  assert demo_seeds.recipe(config) == base  # a seed and a place are not a recipe
  config.num_steps = 3000
  assert demo_seeds.recipe(config) != base
  # Every committed record is of today's configs/demo.py.
  data = json.loads(demo_seeds.RESULTS.read_text())
  assert {r["recipe"] for r in data["seeds"]} == {demo_seeds.recipe()}
