"""uint8 batches normalised on the device (data/normalize.py) against the host computation they
replace, kept here as the reference: bitwise without colour jitter, within float rounding with
it; and data.num_workers / data.prefetch -1 resolved from the cores, once per run."""

import types

import jax
import numpy as np
import pytest

from pyramid_fas_jax.data import augment, cpus, normalize, pipeline, pixel_table
from pyramid_fas_jax.experiment import config as data_config
from pyramid_fas_jax.training import changes, train

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PARAMS = types.SimpleNamespace(mean=MEAN, std=STD)


# --- the host computation before the maps went to the device as uint8 (commit a29bd22) ----------

def _to_unit(image):
  return image.astype(np.float32) / 255.0


def _normalise(image):
  return ((image - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)).astype(np.float32)


def _colour_jitter(image, rng, p):
  ops = []
  if p.brightness > 0:
    f = rng.uniform(1 - p.brightness, 1 + p.brightness)
    ops.append(lambda x, f=f: x * f)
  if p.contrast > 0:
    f = rng.uniform(1 - p.contrast, 1 + p.contrast)
    ops.append(lambda x, f=f: (x - x.mean()) * f + x.mean())
  if p.saturation > 0:
    f = rng.uniform(1 - p.saturation, 1 + p.saturation)
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    ops.append(lambda x, f=f: (x - (g := x @ weights)[..., None]) * f + g[..., None])
  for i in rng.permutation(len(ops)):
    image = np.clip(ops[i](image), 0.0, 1.0)
  return image


def _cutout(image, rng, p, fill):
  if p.cutout <= 0 or rng.random() >= p.cutout:
    return image
  size = image.shape[0]
  side = int(round(rng.uniform(0.1, max(p.cutout_size, 0.1)) * size))
  cy, cx = rng.integers(0, size, 2)
  y0, x0 = max(cy - side // 2, 0), max(cx - side // 2, 0)
  image = image.copy()
  image[y0:y0 + side, x0:x0 + side] = fill
  return image


def _host_row(example, size, aug, rng):
  """The float32 image, depth and mask the host used to put in a batch row."""
  if aug is None:
    matrix = augment.crop_matrix(example["face_box"], example["image"].shape[:2], 1.0, size,
                                 flip=False)
  else:
    scale = rng.uniform(*aug.scale_range)
    flip = bool(aug.flip and rng.random() < 0.5)
    matrix = augment.crop_matrix(example["face_box"], example["image"].shape[:2], scale, size,
                                 flip)
  image, depth, mask = augment.warp(example, matrix, size)
  image = _to_unit(image)
  if aug is not None:
    image = _colour_jitter(image, rng, aug)
    image = _cutout(image, rng, aug, np.asarray(MEAN, np.float32))
  return _normalise(image), depth.astype(np.float32) / 255.0, mask.astype(np.float32)


# ---------------------------------------------------------------------------------------------

def _example(seed, h=90, w=80):
  """A crop with smooth structure plus noise (so contrast and saturation have work to do)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:h, :w]
  base = np.stack([127 + 100 * np.sin(xx / 7 + c) * np.cos(yy / 11) for c in range(3)], -1)
  image = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
  return dict(image=image, depth=rng.integers(0, 256, (h, w, 1), dtype=np.uint8),
              mask=np.where(rng.random((h, w, 1)) < 0.5, 255, 0).astype(np.uint8),
              face_box=np.array([0.2, 0.25, 0.75, 0.8]), label=1, species=0, video_id=b"v",
              frame=0)


def _rows(aug, n=12, size=48):
  """(batch as the host now sends it, the host's old float rows) of n examples, same seeds."""
  transform = pipeline._Transform(species=("live",), size=size, mean=MEAN, std=STD,
                                  eval_scale=1.0, aug=aug)
  new, old = [], []
  for i in range(n):
    example = _example(i)
    new.append(transform(example, np.random.default_rng(100 + i)))
    old.append(_host_row(example, size, aug, np.random.default_rng(100 + i)))
  keys = pipeline.DEVICE_KEYS + tuple(k for k in normalize.AUGMENT_KEYS if k in new[0])
  batch = {k: np.stack([r[k] for r in new]) for k in keys}
  want = [np.stack([o[j] for o in old]) for j in range(3)]
  return batch, want


def _on_device(batch):
  return jax.device_get(jax.jit(lambda b: normalize.device_batch(b, PARAMS))(batch))


def test_eval_batch_on_device_is_bitwise_the_host_normalised_one():
  batch, (image, depth, mask) = _rows(aug=None)
  assert batch["image"].dtype == batch["depth"].dtype == batch["mask"].dtype == np.uint8
  assert not set(normalize.AUGMENT_KEYS) & set(batch)
  got = _on_device(batch)
  for key, want in (("image", image), ("depth", depth), ("mask", mask)):
    assert got[key].dtype == np.float32, key
    np.testing.assert_array_equal(got[key], want, err_msg=key)
  # Every uint8 value, every channel, on the device and in numpy (the host's eval_image).
  values = np.broadcast_to(np.arange(256, dtype=np.uint8)[:, None], (256, 3))
  reference = _normalise(_to_unit(values))
  np.testing.assert_array_equal(jax.jit(lambda x: normalize.normalise(x, MEAN, STD))(values),
                                reference)
  np.testing.assert_array_equal(normalize.normalise(values, MEAN, STD), reference)


def test_eval_image_is_bitwise_evaluations_crop():
  """The JAX-free crop that predict and the runtime (exported models) feed the network is what
  evaluation feeds it."""
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
  params = types.SimpleNamespace(size=32, eval_scale=1.2, mean=MEAN, std=STD)
  box = (0.2, 0.15, 0.8, 0.9)
  want = _normalise(_to_unit(augment.warp_image(
      image, augment.crop_matrix(box, image.shape[:2], 1.2, 32, flip=False), 32)))
  got = augment.eval_image(params, image, box)
  assert got.dtype == np.float32 and got.shape == (32, 32, 3)
  np.testing.assert_array_equal(got, want)
  # The table is built once per (mean, std), and a caller cannot write into the shared copy.
  table = pixel_table.image_table(list(MEAN), np.asarray(STD))
  assert table is pixel_table.image_table(MEAN, STD) and not table.flags.writeable


def test_training_without_jitter_is_bitwise_the_host_batch():
  """Scale, flip and Cutout (the square set to 0 on the device, where the host filled it with
  the mean): no float rounding in between, so bitwise."""
  aug = augment.AugmentParams(scale_range=(0.8, 1.3), flip=True, cutout=0.7, cutout_size=0.5)
  batch, (image, depth, mask) = _rows(aug)
  assert "cutout" in batch and "jitter" not in batch
  assert (batch["cutout"][:, 1] > batch["cutout"][:, 0]).sum() >= 4  # some rows are cut
  got = _on_device(batch)
  np.testing.assert_array_equal(got["image"], image)
  np.testing.assert_array_equal(got["depth"], depth)
  np.testing.assert_array_equal(got["mask"], mask)


def test_colour_jitter_on_device_matches_the_host_to_float_rounding():
  """The default strengths (0.2 each) and Cutout: the same random draws as the host's, so the
  same images to rounding; labels bitwise; the cut squares exactly 0 in both."""
  aug = augment.AugmentParams(scale_range=(0.8, 1.3), flip=True, brightness=0.2, contrast=0.2,
                              saturation=0.2, cutout=0.5, cutout_size=0.4)
  batch, (image, depth, mask) = _rows(aug, n=16)
  assert len({tuple(o) for o in batch["jitter_order"]}) > 1  # several orders are exercised
  got = _on_device(batch)
  assert np.abs(got["image"] - image).max() <= 1e-5
  np.testing.assert_array_equal(got["image"] == 0, image == 0)
  np.testing.assert_array_equal(got["depth"], depth)
  np.testing.assert_array_equal(got["mask"], mask)
  # The jitter changed the images: without it they would be far from the host's.
  plain = _on_device({k: v for k, v in batch.items() if k not in ("jitter", "jitter_order")})
  assert np.abs(plain["image"] - image).max() > 0.05


def test_one_jitter_op_by_hand():
  """Brightness alone by 1.5 on a 2x2 image, then clipped: hand-worked values."""
  image = np.array([[[[0, 51, 102], [153, 204, 255]], [[10, 20, 30], [40, 50, 60]]]], np.uint8)
  batch = {"image": image, "jitter": np.array([[1.5, 1.0, 1.0]], np.float32),
           "jitter_order": np.array([[0, -1, -1]], np.int32)}
  ones = types.SimpleNamespace(mean=(0.0,) * 3, std=(1.0,) * 3)
  got = jax.device_get(jax.jit(lambda b: normalize.device_batch(b, ones))(batch))["image"]
  want = np.minimum(image.astype(np.float64) * 1.5 / 255, 1.0)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_predict_on_uint8_images_is_predict_on_their_host_normalisation():
  """inference.predict normalises uint8 images on the device with the config's input.mean/std:
  the same outputs, bitwise, as on the host-normalised floats (a padded last batch included)."""
  import tiny_train_config
  from flax import nnx

  from pyramid_fas_jax import models
  from pyramid_fas_jax.models import inference
  config = tiny_train_config.get_config(None)
  model = models.build_model(config.model, nnx.Rngs(0))
  images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
  got = inference.predict(model, images, batch_size=2, input_params=config.input)
  want = inference.predict(model, normalize.normalise(images, config.input.mean,
                                                      config.input.std), batch_size=2)
  assert got.keys() == want.keys()
  for key in want:
    np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  with pytest.raises(ValueError, match="input.mean and input.std"):
    inference.predict(model, images, batch_size=2)


def test_uint8_images_without_the_normalisation_are_refused():
  with pytest.raises(ValueError, match="input.mean and input.std"):
    normalize.device_batch({"image": np.zeros((1, 2, 2, 3), np.uint8)}, None)


# --- data.num_workers / data.prefetch -1 ------------------------------------------------------

@pytest.mark.parametrize("cores,workers,prefetch", [(1, 0, 4), (2, 0, 4), (3, 2, 2), (8, 7, 1),
                                                    (64, 16, 1)])
def test_auto_workers_and_prefetch_from_the_cores(monkeypatch, cores, workers, prefetch):
  monkeypatch.setattr(cpus, "cores", lambda: cores)
  config = data_config.default_data_config()
  assert config.data.num_workers == config.data.prefetch == pipeline.AUTO
  resolved = pipeline.resolve_auto(config)
  assert (resolved.data.num_workers, resolved.data.prefetch) == (workers, prefetch)
  assert config.data.num_workers == pipeline.AUTO  # the caller's config is left alone
  # A stored run's values win over this machine's; explicit values are kept.
  stored = {"data": {"num_workers": 5, "prefetch": 3}}
  again = pipeline.resolve_auto(config, stored)
  assert (again.data.num_workers, again.data.prefetch) == (5, 3)
  config.data.num_workers = 1
  assert pipeline.resolve_auto(config, stored).data.num_workers == 1


def test_a_run_started_with_auto_resumes_with_its_worker_count(synth_tiny, tmp_path,
                                                               monkeypatch):
  """Started where -1 means 1 worker; resumed where it means none: the run goes on with its
  stored 1 (grain restores its iterator state only with the count that saved it), and an
  explicit other count is refused as before. Evaluation is skipped: its worker processes would
  only cost time here."""
  import tiny_train_config
  workdir = tmp_path / "run"
  monkeypatch.setattr(train.evaluator, "evaluate_model",
                      lambda config, model, workdir, step, mesh, **kw: {"step": step})

  def config(steps):
    c = tiny_train_config.get_config(synth_tiny)
    c.num_steps, c.checkpoint_every_steps, c.eval_every_steps = steps, 2, 0
    assert c.data.num_workers == pipeline.AUTO
    return c

  monkeypatch.setattr(pipeline, "auto_workers", lambda cores: 1)
  train.train_and_evaluate(config(2), workdir)
  stored = changes.stored_config(workdir)
  assert (stored["data"]["num_workers"], stored["data"]["prefetch"]) == (1, 4)
  monkeypatch.setattr(pipeline, "auto_workers", lambda cores: 0)
  results = train.train_and_evaluate(config(4), workdir)  # num_steps may change on a resume
  assert results["step"] == 4
  assert changes.stored_config(workdir)["data"]["num_workers"] == 1
  explicit = config(4)
  explicit.data.num_workers = 0
  with pytest.raises(changes.ConfigChangedError, match=r"data.num_workers: 1 -> 0"):
    train.train_and_evaluate(explicit, workdir)
