"""The grain input pipeline on SynthFAS 'tiny': batch contract, joint augmentation,
sharding, evaluation padding, exact resume, and the global jax.Array."""

import jax
import numpy as np
import pytest

from pyramid_fas_jax.data import augment, normalize, pipeline
from pyramid_fas_jax.experiment import config as data_config


def _config(data_dir, **overrides):
  c = data_config.default_data_config()
  c.data.builder_config = "tiny"
  c.data.data_dir = data_dir
  c.input.size = 32
  c.batch_size = 8
  c.eval_batch_size = 10
  c.update_from_flattened_dict(overrides)
  return c


def _ids(batch):
  return [(v, int(f)) for v, f, ok in zip(batch["video_id"], batch["frame"], batch["valid"]) if ok]


def test_train_batch_contract(synth_tiny):
  config = _config(synth_tiny)
  batch = next(pipeline.make_train_iterator(config, process_index=0, process_count=1))
  # The maps leave the host as uint8, with the draws of the default jitter and Cutout.
  assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.uint8
  assert batch["depth"].shape == (8, 32, 32) and batch["depth"].dtype == np.uint8
  assert batch["mask"].shape == (8, 32, 32) and batch["mask"].dtype == np.uint8
  assert batch["jitter"].shape == (8, 3) and batch["jitter"].dtype == np.float32
  assert batch["jitter_order"].shape == (8, 3) and batch["jitter_order"].dtype == np.int32
  assert batch["cutout"].shape == (8, 4) and batch["cutout"].dtype == np.int32
  assert (np.abs(batch["jitter"] - 1) <= 0.2).all()
  np.testing.assert_array_equal(np.sort(batch["jitter_order"], 1), [[0, 1, 2]] * 8)
  assert batch["label"].dtype == np.int32 and batch["species"].dtype == np.int32
  # SynthFAS renders exact depth for every frame: every sample's depth is a label.
  assert batch["depth_valid"].dtype == np.float32 and batch["depth_valid"].shape == (8,)
  assert (batch["depth_valid"] == 1.0).all()
  assert set(np.unique(batch["mask"])) <= {0, 1}
  attack = batch["label"] == 0
  assert (batch["depth"][attack] == 0).all()
  np.testing.assert_array_equal(batch["label"], (batch["species"] == 0).astype(np.int32))
  names = ("live", "print", "replay", "mask3d", "partial")
  assert list(batch["species_name"]) == [names[s] for s in batch["species"]]
  assert batch["valid"].all()
  floats = normalize.device_batch({k: batch[k] for k in pipeline.DEVICE_KEYS
                                   + normalize.AUGMENT_KEYS}, config.input)
  assert floats["image"].dtype == floats["depth"].dtype == floats["mask"].dtype == np.float32
  assert float(floats["depth"].min()) >= 0 and float(floats["depth"].max()) <= 1
  # ImageNet normalisation: pixel values no longer in [0, 1].
  assert float(floats["image"].min()) < -0.5


def _marker_example(size=80):
  """A crop whose image, depth and mask carry the same asymmetric L-shaped marker."""
  marker = np.zeros((size, size), bool)
  marker[20:50, 24:32] = True   # vertical bar, left of centre
  marker[42:50, 24:48] = True   # foot to the right: mirrored by a flip
  image = np.full((size, size, 3), 40, np.uint8)
  image[marker] = 250
  depth = np.where(marker, 200, 0).astype(np.uint8)[..., None]
  mask = np.where(marker, 0, 255).astype(np.uint8)[..., None]
  return dict(image=image, depth=depth, mask=mask, face_box=np.array([0.25, 0.25, 0.75, 0.75]),
              label=0, species=1, video_id=b"marker", frame=0), marker


def test_augmentation_keeps_image_depth_and_mask_aligned():
  example, _ = _marker_example()
  aug = augment.AugmentParams(scale_range=(0.8, 1.3), flip=True, brightness=0.2, contrast=0.2,
                              saturation=0.2, cutout=0.0)
  transform = pipeline._Transform(species=("live", "print"), size=48, mean=(0.5,) * 3,
                                  std=(0.25,) * 3, eval_scale=1.0, aug=aug)
  feet = []
  for seed in range(24):
    out = transform(example, np.random.default_rng(seed))
    from_mask = out["mask"] == 0
    from_depth = out["depth"] > 0.4 * 255
    from_image = out["image"].mean(-1) > out["image"].mean()
    for other in (from_depth, from_image):
      iou = (from_mask & other).sum() / (from_mask | other).sum()
      assert iou > 0.8, (seed, iou)
    ys, xs = np.nonzero(from_mask)
    foot = xs[ys >= ys.max() - 1].mean() - xs.mean()
    feet.append(np.sign(foot))
  assert {-1.0, 1.0} <= set(feet)  # both flipped and unflipped crops occurred


def test_crop_scale_follows_the_face_box():
  example, marker = _marker_example()
  base = dict(species=("live", "print"), size=40, mean=(0.0,) * 3, std=(1.0,) * 3, aug=None)
  near = pipeline._Transform(eval_scale=0.8, **base)(example)
  far = pipeline._Transform(eval_scale=1.6, **base)(example)
  # Twice the crop side: the marker covers a quarter of the pixels.
  ratio = (far["mask"] == 0).sum() / (near["mask"] == 0).sum()
  assert 0.2 < ratio < 0.3, ratio
  # Without flip the output is the source region resized: marker pixels land where expected.
  at_scale_2 = pipeline._Transform(eval_scale=2.0, **base)(example)
  expect = marker[::2, ::2]
  agree = ((at_scale_2["mask"] == 0) == expect).mean()
  assert agree > 0.97, agree


def test_cutout_leaves_labels_alone():
  example, _ = _marker_example()
  aug = augment.AugmentParams(scale_range=(1.0, 1.0), flip=False, cutout=1.0, cutout_size=0.5)
  base = dict(species=("live", "print"), size=48, mean=(0.5,) * 3, std=(0.25,) * 3,
              eval_scale=1.0)
  plain = pipeline._Transform(aug=None, **base)(example)
  cut = pipeline._Transform(aug=aug, **base)(example, np.random.default_rng(3))
  np.testing.assert_array_equal(cut["image"], plain["image"])  # the device cuts it out
  image = normalize.device_batch({"image": cut["image"][None], "cutout": cut["cutout"][None]},
                                 pipeline._Transform(aug=None, **base))["image"][0]
  assert (image == 0).all(-1).sum() >= (0.1 * 48) ** 2  # the mean colour -> 0
  np.testing.assert_array_equal(cut["depth"], plain["depth"])
  np.testing.assert_array_equal(cut["mask"], plain["mask"])


def test_eval_shards_are_disjoint_cover_the_split_and_pad(synth_tiny):
  config = _config(synth_tiny)
  seen, batches = [], []
  for pi in range(2):
    bs = list(pipeline.make_eval_iterator(config, "test", process_index=pi, process_count=2))
    batches.append(len(bs))
    for b in bs:
      assert len(b["valid"]) == 5
      seen.append(_ids(b))
  flat = [i for ids in seen for i in ids]
  assert batches[0] == batches[1] == 3  # 24 examples in global batches of 10
  assert len(flat) == len(set(flat)) == 24
  first = list(pipeline.make_eval_iterator(config, "test", process_index=0, process_count=1,
                                           batch_size=24))
  assert set(flat) == set(_ids(first[0]))


def test_train_shards_are_disjoint_and_cover_the_split(synth_tiny):
  config = _config(synth_tiny, batch_size=4)
  per_process = []
  for pi in range(2):
    it = pipeline.make_train_iterator(config, process_index=pi, process_count=2)
    per_process.append([i for _ in range(6) for i in _ids(next(it))])  # 6 x 2 = one epoch
  a, b = map(set, per_process)
  assert len(a) == len(b) == 12 and not a & b
  videos = {v for v, _ in a | b}
  assert len(videos) == 24


def test_global_batch_does_not_depend_on_the_process_count(synth_tiny):
  """Process p's batch is rows [p * b, (p + 1) * b) of the single-process global batch, pixels and
  augmentation included: multi-host runs train on exactly what one host would."""
  config = _config(synth_tiny, batch_size=4)
  single = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  parts = [pipeline.make_train_iterator(config, process_index=p, process_count=2)
           for p in range(2)]
  for _ in range(8):  # two epochs of 24 examples: across the reshuffle
    want = next(single)
    got = [next(it) for it in parts]
    for key in pipeline.DEVICE_KEYS + ("video_id",):
      np.testing.assert_array_equal(np.concatenate([g[key] for g in got]), want[key],
                                    err_msg=key)


def test_resume_from_iterator_state_yields_the_same_batches(synth_tiny):
  config = _config(synth_tiny)
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  for _ in range(4):  # past the first epoch (24 examples), into the reshuffled second
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  resumed = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  resumed.set_state(state)
  for want, got in zip(expected, [next(resumed) for _ in range(3)]):
    for key in want:
      np.testing.assert_array_equal(want[key], got[key], err_msg=key)
  assert not np.array_equal(expected[0]["image"], next(it)["image"])


def test_resume_with_worker_processes(synth_tiny):
  config = _config(synth_tiny, **{"data.num_workers": 1})
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  next(it)
  state = it.get_state()
  expected = next(it)
  resumed = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  resumed.set_state(state)
  got = next(resumed)
  for key in expected:
    np.testing.assert_array_equal(expected[key], got[key], err_msg=key)
  del it, resumed  # stop the workers before the test ends


def test_protocol_filter_at_load_time(synth_tiny):
  config = _config(synth_tiny, **{"data.protocol": "cross_attack/replay"})
  test_batches = list(pipeline.make_eval_iterator(config, "test", process_index=0,
                                                  process_count=1))
  names = {n for b in test_batches for n, ok in zip(b["species_name"], b["valid"]) if ok}
  assert names == {"live", "replay"}
  it = pipeline.make_train_iterator(config, process_index=0, process_count=1)
  names = {n for _ in range(4) for n in next(it)["species_name"]}
  assert "replay" not in names and "live" in names


def test_to_global_batch_shards_on_the_data_axis(synth_tiny):
  batch = next(pipeline.make_train_iterator(_config(synth_tiny), process_index=0,
                                            process_count=1))
  mesh = jax.make_mesh((4,), ("data",))
  out = pipeline.to_global_batch(batch, mesh)
  assert set(out) == set(pipeline.DEVICE_KEYS + normalize.AUGMENT_KEYS) and "depth_valid" in out
  assert out["cutout"].shape == (8, 4) and out["cutout"].sharding.spec == out["image"].sharding.spec
  assert out["depth_valid"].shape == (8,) and out["depth_valid"].dtype == np.float32
  assert out["image"].shape == (8, 32, 32, 3)
  assert out["image"].sharding.spec == jax.sharding.PartitionSpec("data")
  assert len(out["image"].addressable_shards) == 4
  np.testing.assert_array_equal(np.asarray(out["mask"]), batch["mask"])
  with pytest.raises(ValueError, match="no 'data' axis"):
    pipeline.to_global_batch(batch, jax.make_mesh((4,), ("model",)))


def test_errors_name_the_bad_setting(synth_tiny):
  with pytest.raises(ValueError, match="batch_size=7 must be a positive multiple"):
    pipeline.make_train_iterator(_config(synth_tiny, batch_size=7), process_index=0,
                                 process_count=2)
  with pytest.raises(ValueError, match="unknown SynthFAS protocol 'sideways'"):
    pipeline.make_train_iterator(_config(synth_tiny, **{"data.protocol": "sideways"}),
                                 process_index=0, process_count=1)
  # SynthFAS is built on first use (tests/test_first_use.py); a real dataset never is.
  with pytest.raises(FileNotFoundError, match="casia_mfsd/default.*builders casia_mfsd"):
    pipeline.make_train_iterator(_config(synth_tiny, **{
        "data.name": "casia_mfsd", "data.protocol": "official",
        "data.builder_config": "default"}), process_index=0, process_count=1)
