"""No label-dependent filtering: a real builder on a fake Replay-Attack archive with a live video
whose face mesh fails and two videos without a face (tests/fake_trees.py). Every cropped frame
is stored with the right depth_valid, the faceless videos are listed in the metadata index, the
pipeline hands them to evaluation and evaluation counts them as failures to acquire."""

import json
import pathlib

import fake_trees
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from pyramid_fas_jax import evaluation
from pyramid_fas_jax.data import builders, metadata_index, pipeline, real_builder, splits
from pyramid_fas_jax.evaluation import evaluator
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.training import distributed

NAME = "replay_attack"


class _Brightness(nnx.Module):
  """A stand-in for a trained model that compiles in milliseconds: the score is the mean of the
  normalised image."""

  def __call__(self, images):
    return {"score": images.mean(axis=(1, 2, 3))}


class _MeshFailsOn:
  """A preprocessor whose face mesh rejects every frame of one video (depth None)."""

  def __init__(self, inner, video: str):
    self._inner, self._video = inner, video

  def __getattr__(self, name):  # everything else as the real preprocessor does it
    return getattr(self._inner, name)

  def frames(self, path, **kwargs):
    for frame in self._inner.frames(path, **kwargs):
      if pathlib.Path(path).with_suffix("").as_posix().endswith(self._video):
        frame.depth = None
      yield frame


@pytest.fixture(scope="module")
def fta_build(tmp_path_factory):
  """data_dir of the fake archive with failures, built with config 'tiny'."""
  root = tmp_path_factory.mktemp("archive_fta")
  fake_trees.replay_attack_fta_tree(root)
  data_dir = str(tmp_path_factory.mktemp("tfds_fta"))
  original = real_builder._preprocessor
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(real_builder, "_preprocessor",
               lambda settings: _MeshFailsOn(original(settings), fake_trees.NO_MESH_VIDEO))
    # In this process: the patched preprocessor does not reach worker processes.
    builder = builders.build(NAME, data_dir, config="tiny", manual_dir=str(root), partial=True,
                             num_workers=1)
  return data_dir, pathlib.Path(builder.data_dir)


def _config(data_dir, rule="reject"):
  config = fas.base_config(NAME, "grandtest", runlocal=True)
  config.data.builder_config, config.data.data_dir = "tiny", data_dir
  config.input.size = 32
  config.batch_size, config.eval_batch_size = 4, 4
  config.eval.bootstrap = 0
  config.eval.failure_to_acquire = rule
  return config


def test_every_cropped_frame_is_stored_with_its_depth_valid(fta_build):
  data_dir, path = fta_build
  sources = tfds.data_source(f"{NAME}/tiny", data_dir=data_dir)
  frames = {}
  for split, source in sources.items():
    for i in range(len(source)):
      ex = source[i]
      frames[(split, ex["video_id"].decode(), int(ex["frame"]))] = ex
  no_mesh = [ex for (_, v, _), ex in frames.items() if v == fake_trees.NO_MESH_VIDEO]
  assert len(no_mesh) == 2  # frames 0 and 2, kept although the mesh failed on both
  for ex in no_mesh:
    assert ex["label"] == 1 and not ex["depth_valid"]
    assert (ex["depth"] == 0).all() and (ex["mask"] == 255).all()
  others = [ex for (_, v, _), ex in frames.items() if v != fake_trees.NO_MESH_VIDEO]
  assert all(ex["depth_valid"] for ex in others)
  assert all(ex["depth"].max() > 200 for ex in others if ex["label"] == 1)
  # 15 videos with a face x 2 frames; the two faceless videos store nothing.
  assert len(frames) == 30
  assert not {v for _, v, _ in frames} & {fake_trees.FTA_BONA_FIDE, fake_trees.FTA_ATTACK}

  report = json.loads((path / "face_report.json").read_text())
  test = report["test"]
  assert test["frames_without_depth"] == 2 and test["frames_without_face"] == 2
  assert test["frames_stored"] == test["frames_sampled"] - test["frames_without_face"] == 10
  stats = dict(test["per_video"][fake_trees.NO_MESH_VIDEO])
  assert stats.pop("cpu_s") > 0
  assert stats == dict(sampled=2, stored=2, no_face=[], no_depth=[0, 2], live=True)
  assert test["videos_without_frames"] == [fake_trees.FTA_BONA_FIDE]
  assert report["dev"]["videos_without_frames"] == [fake_trees.FTA_ATTACK]


def test_index_gives_the_scan_and_lists_the_faceless_videos(fta_build):
  data_dir, path = fta_build
  sources = tfds.data_source(f"{NAME}/tiny", data_dir=data_dir,
                             decoders=metadata_index.SKIP_IMAGES)
  unacquired = {}
  for split, source in sources.items():
    assert (path / f"metadata-{split}.json").is_file()
    records, unacquired[split] = metadata_index.load(source, NAME, split)
    assert records == metadata_index.scan(source, NAME, split), split
  assert unacquired["train"] == []
  assert unacquired["test"] == [dict(
      video_id=fake_trees.FTA_BONA_FIDE, species="live", label=1, subject="client007",
      domain="controlled", device="webcam", dataset=NAME, split="test")]
  assert [(v["video_id"], v["species"], v["label"]) for v in unacquired["dev"]] == [
      (fake_trees.FTA_ATTACK, "print", 0)]


def test_pipeline_keeps_every_frame_and_hands_over_the_failures(fta_build):
  data_dir, _ = fta_build
  config = _config(data_dir)
  test = splits.of(config.data, "test").examples
  assert {m["video_id"] for m in test} == {
      n for n in fake_trees.replay_names() if n.startswith("test/")}
  assert [m["video_id"] for m in splits.of(config.data, "test").unacquired] == [
      fake_trees.FTA_BONA_FIDE]
  assert [m["video_id"] for m in splits.of(config.data, "dev").unacquired] == [
      fake_trees.FTA_ATTACK]
  assert splits.of(config.data, "train").unacquired == []
  # The print-only protocol keeps the print attack and drops nothing else by label.
  config.data.protocol = "print"
  assert [m["video_id"] for m in splits.of(config.data, "dev").unacquired] == [
      fake_trees.FTA_ATTACK]
  config.data.protocol = "mobile"
  assert splits.of(config.data, "dev").unacquired == []
  # Evaluation batches carry depth_valid: 0 on the live frames stored without depth.
  config.data.protocol = "grandtest"
  rows = {}
  for batch in pipeline.make_eval_iterator(config, "test", process_index=0, process_count=1):
    assert batch["depth_valid"].dtype == np.float32
    for v, f, d, ok in zip(batch["video_id"], batch["frame"], batch["depth_valid"],
                           batch["valid"]):
      if ok:
        rows[(v, int(f))] = float(d)
  assert len(rows) == 10
  assert {k: d for k, d in rows.items() if d == 0.0} == {
      (fake_trees.NO_MESH_VIDEO, 0): 0.0, (fake_trees.NO_MESH_VIDEO, 2): 0.0}


def _video_scores(workdir, split):
  return evaluation.read_scores(pathlib.Path(workdir) / "scores" / f"{split}_videos_step0.txt")


@pytest.mark.parametrize("rule", ["reject", "exclude"])
def test_evaluation_counts_failures_to_acquire(fta_build, tmp_path, rule):
  """Test: 3 bona fide videos, one not acquired; dev: 4 attack videos (3 print), one print not
  acquired. The rates are worked from the written video scores and the rule."""
  data_dir, _ = fta_build
  config = _config(data_dir, rule)
  results = evaluator.evaluate_model(config, _Brightness(), tmp_path, 0, distributed.make_mesh(),
                                     checkpoint_path=None)
  saved = json.loads((tmp_path / "results.json").read_text())
  for name in ("dev", "test"):
    assert saved[name]["failure_to_acquire"] == results[name]["failure_to_acquire"]
  test, dev = results["test"], results["dev"]
  t = test["threshold"]
  assert t == dev["threshold"] == dev["EER_threshold"]  # chosen on the scored dev videos

  scored = _video_scores(tmp_path, "test")
  assert fake_trees.FTA_BONA_FIDE not in scored.video_ids  # no score, so no row
  live = scored.scores[scored.is_live]
  assert len(live) == 2
  rejected = int((live <= t).sum())
  fta = test["failure_to_acquire"]
  assert (fta["rule"], fta["n_bona_fide"], fta["n_attack"]) == (rule, 1, 0)
  assert fta["videos"] == [{"video_id": fake_trees.FTA_BONA_FIDE, "label": 1, "species": "live"}]
  assert fta["BPNRR"] == pytest.approx(1 / 3) and fta["APNRR"] == 0.0
  if rule == "reject":
    assert test["n_bona_fide"] == 3
    assert test["BPCER"] == pytest.approx((rejected + 1) / 3) and test["BPCER"] >= 1 / 3
  else:
    assert test["n_bona_fide"] == 2
    assert test["BPCER"] == pytest.approx(rejected / 2)
  # EER and AUC are of the scored videos alone, under both rules.
  plain = evaluation.evaluate_scores(_video_scores(tmp_path, "dev"), scored, n_bootstrap=0,
                                     video_agg=None)
  assert test["EER"] == plain["test"]["EER"] and test["AUC"] == plain["test"]["AUC"]

  dev_scored = _video_scores(tmp_path, "dev")
  prints = dev_scored.scores[dev_scored.species == "print"]
  assert len(prints) == 1
  accepted = int((prints > t).sum())
  assert dev["failure_to_acquire"]["n_attack"] == 1
  assert dev["failure_to_acquire"]["APNRR_per_species"] == {"print": 0.5, "replay": 0.0}
  expected = accepted / 2 if rule == "reject" else accepted / 1
  assert dev["APCER_per_species"]["print"] == pytest.approx(expected)
  assert dev["n_attack"] == (4 if rule == "reject" else 3)

  text = evaluation.format_report(results)
  assert f"rule '{rule}'" in text
  assert [line.split() for line in text.splitlines() if line.startswith("  not acquired")] == [
      ["not", "acquired", "0/1", "1/0"]]
