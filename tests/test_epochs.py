"""What an epoch is (data.epoch_unit): every training video once at a random stored frame, or
every stored frame; steps per epoch; exact resume and process independence of the video stream;
the frame stream unchanged; and the README's table of paper-run steps."""

import collections
import pathlib

import grain
import numpy as np
import pytest
from scipy import stats

from pyramid_fas_jax.data import pipeline, splits
from pyramid_fas_jax.experiment import config as data_config
from pyramid_fas_jax.experiment import paper_runs

REPO = pathlib.Path(__file__).resolve().parents[1]
# Frames per video of the in-memory stream tests: unequal, so per-frame and per-video weighting
# differ, with a long video for the uniformity check.
FRAME_COUNTS = (1, 2, 3, 5, 8, 13, 30)


def _fake_split(counts=FRAME_COUNTS):
  """(examples, videos) as _train_stream takes them: example = (video, frame)."""
  examples, videos = [], []
  for v, n in enumerate(counts):
    videos.append(tuple(range(len(examples), len(examples) + n)))
    examples += [(v, f) for f in range(n)]
  return examples, videos


def _identity(example, rng):
  del rng
  return example


def _epochs(stream, per_epoch, n):
  return [[stream[e * per_epoch + j] for j in range(per_epoch)] for e in range(n)]


def test_a_video_epoch_visits_every_video_once_then_fills_the_last_batch():
  examples, videos = _fake_split()
  stream = pipeline._train_stream(examples, _identity, seed=3, global_batch=4, videos=videos)
  per_epoch = 8  # ceil(7 videos / 4) = 2 batches; the 8th row repeats the epoch's first video
  orders = []
  for epoch in _epochs(stream, per_epoch, 6):
    order = [v for v, _ in epoch]
    assert sorted(order[:7]) == list(range(7))
    assert order[7] == order[0]
    orders.append(tuple(order[:7]))
  assert len(set(orders)) == 6  # reshuffled every epoch


def test_the_remainder_rule_when_the_batch_exceeds_the_videos():
  examples, videos = _fake_split((2, 2, 2))
  stream = pipeline._train_stream(examples, _identity, seed=0, global_batch=8, videos=videos)
  for epoch in _epochs(stream, 8, 4):
    order = [v for v, _ in epoch]
    assert order == order[:3] * 2 + order[:2] and sorted(order[:3]) == [0, 1, 2]


def test_frames_are_drawn_uniformly_within_each_video_and_anew_every_epoch():
  # 90 videos of each length: a few epochs give every length hundreds of draws (grain's
  # index_shuffle costs about the same per epoch whatever its size, so many videos are cheap).
  counts = FRAME_COUNTS * 90
  examples, videos = _fake_split(counts)
  stream = pipeline._train_stream(examples, _identity, seed=0, global_batch=4, videos=videos)
  drawn = collections.defaultdict(list)
  for epoch in _epochs(stream, 632, 4):  # ceil(630 / 4) * 4 rows per epoch
    for v, f in epoch:
      drawn[v].append(f)
  for n in sorted(set(counts)):
    of_length = [v for v, c in enumerate(counts) if c == n]
    assert all(max(drawn[v]) < n for v in of_length)  # only the video's own frames
    if n > 1:
      # Pooled over the videos of that length; always the first frame, or a skewed draw,
      # gives p ~ 0.
      frames = np.bincount([f for v in of_length for f in drawn[v]], minlength=n)
      assert stats.chisquare(frames).pvalue > 1e-3, (n, frames)
    if n >= 13:  # four epochs, four draws: rarely all the same frame
      assert sum(len(set(drawn[v])) > 1 for v in of_length) >= 85
  # The same position draws the same frame.
  assert [stream[t] for t in range(20)] == [stream[t] for t in range(20)]


def test_a_frame_epoch_is_every_stored_frame_once():
  examples, _ = _fake_split()
  stream = pipeline._train_stream(examples, _identity, seed=0, global_batch=4)
  for e in range(3):
    epoch = [stream[e * len(examples) + i] for i in range(len(examples))]
    assert sorted(epoch) == sorted(examples)


def _config(data_dir, builder_config="frames3", **overrides):
  c = data_config.default_data_config()
  c.data.builder_config = builder_config
  c.data.data_dir = data_dir
  c.input.size = 32
  c.batch_size = 10
  c.update_from_flattened_dict(overrides)
  return c


def _pairs(batch):
  return [(v, int(f)) for v, f in zip(batch["video_id"], batch["frame"])]


def test_video_epochs_of_a_stored_split(synth_frames):
  config = _config(synth_frames)
  assert config.data.epoch_unit == "video"  # the default
  stored = {(r["video_id"], r["frame"]) for r in splits.of(config.data, "train").examples}
  videos = {v for v, _ in stored}
  assert len(videos) == 24 and len(stored) == 72
  assert splits.epoch_size(config) == 24
  assert splits.steps_per_epoch(config) == 3  # ceil(24 / 10), as the official DataLoader
  frame_config = _config(synth_frames, **{"data.epoch_unit": "frame"})
  assert (splits.epoch_size(frame_config), splits.steps_per_epoch(frame_config)) == (72, 7)

  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  frames_of = collections.defaultdict(set)
  for _ in range(4):
    rows = [p for _ in range(3) for p in _pairs(next(it))]
    assert set(rows) <= stored  # a stored frame of the video named
    seen = collections.Counter(v for v, _ in rows)
    assert set(seen) == videos
    assert sorted(seen.values()) == [1] * 18 + [2] * 6  # 30 rows: 6 videos again at the end
    for v, f in rows:
      frames_of[v].add(f)
  assert sum(len(f) > 1 for f in frames_of.values()) > 12  # frames change between epochs


def _assert_same(want, got):
  assert len(want) == len(got)
  for a, b in zip(want, got):
    assert set(a) == set(b)
    for key in a:
      np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_video_stream_resumes_mid_epoch(synth_frames):
  config = _config(synth_frames)
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  for _ in range(4):  # into the second epoch (3 steps each)
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(4)]  # across the next epoch boundary
  resumed = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  resumed.set_state(state)
  _assert_same(expected, [next(resumed) for _ in range(4)])


def test_video_stream_global_batch_does_not_depend_on_the_process_count(synth_frames):
  config = _config(synth_frames)
  single = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  parts = [pipeline.make_train_iterator(config, process_index=p, process_count=2)
           for p in range(2)]
  for _ in range(7):  # through two filled-up last batches
    want = next(single)
    got = [next(it) for it in parts]
    for key in want:
      np.testing.assert_array_equal(np.concatenate([g[key] for g in got]), want[key],
                                    err_msg=key)


def test_video_stream_with_worker_processes(synth_frames):
  """The video stream pickles into grain's workers and yields the same batches from them (their
  saved state is the frame unit's: test_input_pipeline resumes one)."""
  plain = pipeline.make_train_iterator(_config(synth_frames), process_index=0, process_count=1)
  config = _config(synth_frames, **{"data.num_workers": 1})
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  _assert_same([next(plain) for _ in range(4)], [next(it) for _ in range(4)])
  del it  # stop the worker before the test ends


def _frame_stream_before_epoch_units(config, pi, pc):
  """make_train_iterator as it was before data.epoch_unit existed (commit da3fa82), frozen
  here: the frame unit must keep giving exactly these batches."""
  per = config.batch_size // pc
  train = splits.of(config.data, "train")
  records, species = train.keys, train.species
  source = splits.Records(splits._load_sources(train.name, train.builder_config, train.data_dir),
                          records, species, False)
  ds = grain.MapDataset.source(source).shuffle(seed=int(config.seed)).repeat(None)
  ds = ds.random_map(pipeline._transform(config, species, train=True), seed=int(config.seed))
  return iter(ds.batch(per, drop_remainder=True)[pi::pc].to_iter_dataset())


@pytest.mark.parametrize("pc", [1, 2])
def test_frame_unit_keeps_the_stream_bit_for_bit(synth_frames, pc):
  config = _config(synth_frames, seed=5, **{"data.epoch_unit": "frame"})
  for pi in range(pc):
    now = pipeline.make_train_iterator(config, process_index=pi, process_count=pc)
    before = _frame_stream_before_epoch_units(config, pi, pc)
    _assert_same([next(before) for _ in range(9)], [next(now) for _ in range(9)])  # > 1 epoch


def test_unknown_epoch_unit_is_named(synth_frames):
  config = _config(synth_frames, **{"data.epoch_unit": "clip"})
  with pytest.raises(ValueError, match="data.epoch_unit='clip' is not one of"):
    splits.steps_per_epoch(config)


def test_train_videos_of_the_paper_protocols():
  # Counts the protocol modules' docstrings quote (real + attack videos of the train split).
  assert paper_runs.train_videos("oulu_npu", "Protocol_1") == 240 + 960
  assert paper_runs.train_videos("oulu_npu", "Protocol_4_3") == 200 + 400
  assert paper_runs.train_videos("casia_mfsd", "official") == 60 + 180
  assert paper_runs.train_videos("replay_attack", "grandtest") == 60 + 300
  assert paper_runs.train_videos("replay_attack", "print") == 60 + 60
  assert paper_runs.train_videos("msu_mfsd", "official") == 30 + 90
  assert paper_runs.train_videos("ocim", "to_msu_mfsd") == 1800 + 240 + 360
  assert paper_runs.train_videos("casia_replay", "to_casia_mfsd") == 360
  assert paper_runs.train_videos("siw_m", "leave_out/replay") == (
      paper_runs.SIW_M_LIVE_TRAIN + 968 - 99)


def test_paper_run_steps_by_hand():
  row = next(r for r in paper_runs.rows() if r["protocols"] == "Protocol_1")
  sgd, adam = row["recipes"]
  # 1200 videos: ceil(1200 / 32) = 38 SGD steps per epoch; 1200 / 8 = 150 Adam steps.
  assert (sgd["steps_per_epoch"], sgd["steps"], sgd["lr_step"]) == (38, 38 * 80, None)
  assert (adam["steps_per_epoch"], adam["steps"], adam["lr_step"]) == (150, 120_000, 499 * 150)
  labels = [r["protocols"] for r in paper_runs.rows() if r["dataset"] == "oulu_npu"]
  assert labels == ["Protocol_1", "Protocol_2", "Protocol_3_{1,2,3,4,5,6}",
                    "Protocol_4_{1,2,3,4,5,6}", "all"]


def test_readme_table_is_what_paper_runs_computes():
  readme = (REPO / "README.md").read_text()
  assert paper_runs.markdown_table() in readme, (
      "README's 'Steps of a paper run' table is stale: paste `python -m "
      "pyramid_fas_jax.experiment.paper_runs`")
  assert paper_runs.dataset_table() in readme, (
      "README's per-dataset summary is stale: paste `python -m "
      "pyramid_fas_jax.experiment.paper_runs --datasets`")


def test_dataset_summary_by_hand():
  table = paper_runs.dataset_table()
  # OULU-NPU: 6 phones x 3 sessions x 55 users x 5 files; Protocol_1 trains on sessions 1-2 of
  # users 1-20: 6 x 2 x 20 x 5 = 1,200 videos; ceil(1200 / 32) * 80 and 1200 / 8 * 800 steps.
  assert "| 4,950 | <= 148,500 | 1,200 training videos of `Protocol_1`" in table
  assert "| 3,040 / 120,000 |" in table
  # SiW-M: 660 live + 968 attacks.
  assert "| `siw_m` |" in table and "| 1,628 |" in table
