"""Model structure: parameter counts against the reference implementations, output names and shapes
of every head at 256x256 (traced, not run) and at a small size (run), and the heads' arithmetic."""

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch_reference as ref
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.experiment import checks
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.models import densenet, heads, layers, mobilenet, resnet, shufflenet, vgg
from pyramid_fas_jax.training import losses, train_step

# torchvision.models.resnet50().parameters(), summed: a published, well-known figure.
TORCHVISION_RESNET50_PARAMS = 25_557_032
# The same for the other networks of Fig. 5, as torchvision's weight tables publish them
# (num_params of VGG16_Weights, DenseNet121_Weights, ShuffleNet_V2_X1_0_Weights,
# MobileNet_V2_Weights), each with its 1000-class ImageNet classifier.
TORCHVISION_PARAMS = [
    (vgg.VGG16, ref.vgg16_state_dict_shapes, 138_357_544),
    (densenet.DenseNet121, ref.densenet121_state_dict_shapes, 7_978_856),
    (shufflenet.ShuffleNetV2X10, ref.shufflenet_v2_state_dict_shapes, 2_278_604),
    (mobilenet.MobileNetV2X10, ref.mobilenet_v2_state_dict_shapes, 3_504_872),
]


def n_params(module):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(module, nnx.Param)))


def test_resnet50_parameter_count_equals_torchvision():
  m = nnx.eval_shape(lambda: resnet.ResNet50(num_classes=1000, rngs=nnx.Rngs(0)))
  assert n_params(m) == TORCHVISION_RESNET50_PARAMS
  # And key-for-key: every tensor of torchvision's state dict has a variable of the same size.
  shapes = ref.resnet50_state_dict_shapes()
  want = sum(int(np.prod(s)) for k, s in shapes.items()
             if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
  assert want == TORCHVISION_RESNET50_PARAMS


@pytest.mark.parametrize("make,shapes,published", TORCHVISION_PARAMS,
                         ids=["vgg16", "densenet121", "shufflenet_v2_x1_0", "mobilenet_v2"])
def test_parameter_count_equals_torchvision(make, shapes, published):
  m = nnx.eval_shape(lambda: make(num_classes=1000, rngs=nnx.Rngs(0)))
  assert n_params(m) == published
  # The independent key-by-key shape list of the reference gives the same total.
  assert ref.count_params(shapes()) == published


# The official networks as CVPR2020_paper_codes/models/CDCNs.py of ZitongYu/CDCN (commit
# fd8370e) builds them (its CDCN() and CDCNpp() have 2,245,016 and 2,257,352 parameters):
# every 3x3 Conv2d_cd (bias=False) as (in, out, followed by a BatchNorm2d(out)), in order;
# CDCNpp's widths are its int(128 * 1.6 / 1.2 / 1.4) = 204 / 153 / 179, and its three
# SpatialAttention blocks are 2->1 convs of kernel 7, 5, 3 without bias.
_BLOCK = [(128, 128, True), (128, 196, True), (196, 128, True)]
OFFICIAL_CDCN = ([(3, 64, True), (64, 128, True), (128, 196, True), (196, 128, True)]
                 + _BLOCK + _BLOCK + [(384, 128, True), (128, 64, True), (64, 1, False)])
OFFICIAL_CDCNPP = [(3, 64, True), (64, 128, True), (128, 204, True), (204, 128, True),
                   (128, 153, True), (153, 128, True), (128, 179, True), (179, 128, True),
                   (128, 128, True), (128, 153, True), (153, 128, True),
                   (384, 128, True), (128, 1, False)]
OFFICIAL_CDCNPP_ATTENTION_KERNELS = (7, 5, 3)


def official_count(convs, attention_kernels=()):
  """Trainable parameters: 3x3 kernels, BN scale and bias, attention kernels."""
  return (sum(9 * i * o + (2 * o if bn else 0) for i, o, bn in convs)
          + sum(2 * k * k for k in attention_kernels))


def test_cdcnpp_parameter_count_equals_official():
  cfg = fas.model_config(backbone="cdcnpp", head="pyramid_depth", scales=(32, 16),
                         predictor_widths=(128,))
  m = nnx.eval_shape(lambda: models.build_model(cfg, nnx.Rngs(0)))
  want = official_count(OFFICIAL_CDCNPP, OFFICIAL_CDCNPP_ATTENTION_KERNELS)
  assert n_params(m) == want == 2_257_352
  assert ref.count_params(ref.cdcnpp_state_dict_shapes()) == want  # the import tests' shapes


def test_cdcn_parameter_count_equals_official():
  cfg = fas.model_config(backbone="cdcn", head="pyramid_depth", scales=(32, 16))
  m = nnx.eval_shape(lambda: models.build_model(cfg, nnx.Rngs(0)))
  want = official_count(OFFICIAL_CDCN)
  assert n_params(m) == want == 2_245_016
  assert ref.count_params(ref.cdcn_state_dict_shapes()) == want  # the import tests' shapes


def _abstract_outputs(cfg, size, batch=2):
  model = nnx.eval_shape(lambda: models.build_model(cfg, nnx.Rngs(0)))
  graphdef, state = nnx.split(model)
  x = jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32)
  return jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x)


FULL_SIZE_CASES = [
    ("resnet50", "pyramid_mask", (8, 4, 2, 1), {"mask_8": (8, 8), "mask_4": (4, 4),
                                                "mask_2": (2, 2), "mask_1": (1, 1), "logit": ()}),
    ("resnet50", "pyramid_mask", (8,), {"mask_8": (8, 8), "logit": ()}),
    ("resnet50", "pyramid_depth", (8, 4), {"depth_8": (8, 8), "depth_4": (4, 4)}),
    ("resnet50", "binary", (1,), {"logit": ()}),
    ("resnet50", "spp", (8, 4, 2, 1), {"logit": ()}),
    ("resnet50", "multiclass_mask", (8,), {"mask_8": (8, 8), "class_logits_8": (8, 8, 3)}),
    ("cdcn", "pyramid_depth", (32, 16), {"depth_32": (32, 32), "depth_16": (16, 16)}),
    ("cdcn", "pyramid_depth", (32,), {"depth_32": (32, 32)}),
    ("cdcn", "dense_mask", (32, 16, 8), {"mask_32": (32, 32), "mask_16": (16, 16),
                                         "mask_8": (8, 8)}),
    ("vgg16", "pyramid_mask", (8, 4, 2, 1), {"mask_8": (8, 8), "mask_1": (1, 1), "logit": ()}),
    ("densenet121", "pyramid_mask", (8, 4, 2, 1), {"mask_8": (8, 8), "mask_1": (1, 1)}),
    ("shufflenet_v2_x1_0", "pyramid_mask", (8, 4, 2, 1), {"mask_8": (8, 8), "mask_1": (1, 1)}),
    ("mobilenet_v2", "pyramid_mask", (8, 4, 2, 1), {"mask_8": (8, 8), "mask_1": (1, 1)}),
    ("depthnet", "pyramid_depth", (32, 16), {"depth_32": (32, 32), "depth_16": (16, 16)}),
    ("cdcnpp", "pyramid_depth", (32, 16), {"depth_32": (32, 32), "depth_16": (16, 16)}),
]

# The backbone's `features` at 256x256: stride 32 for classification networks, 32x32 for FCNs.
FEATURES_AT_256 = {"resnet50": (8, 8, 2048), "vgg16": (8, 8, 512), "densenet121": (8, 8, 1024),
                   "shufflenet_v2_x1_0": (8, 8, 1024), "mobilenet_v2": (8, 8, 1280),
                   "cdcn": (32, 32, 384), "depthnet": (32, 32, 384), "cdcnpp": (32, 32, 384)}


@pytest.mark.parametrize("backbone,head,scales,expected", FULL_SIZE_CASES)
def test_output_shapes_at_256(backbone, head, scales, expected):
  widths = (128,) if backbone == "cdcnpp" else (128, 64)
  cfg = fas.model_config(backbone=backbone, head=head, scales=scales, predictor_widths=widths)
  out = _abstract_outputs(cfg, 256)
  for name, shape in expected.items():
    assert out[name].shape == (2,) + shape, name
  assert out["score"].shape == (2,)
  assert out["features"].shape == (2,) + FEATURES_AT_256[backbone]


@pytest.mark.parametrize("backbone,head,scales,map_size", [
    ("resnet_tiny", "pyramid_mask", (8, 4, 2, 1), 32),
    ("resnet_tiny", "spp", (2, 1), 32),
    ("resnet_tiny", "multiclass_mask", (4,), 32),
    ("cdcn_tiny", "pyramid_depth", (8, 4), 8),
    ("depthnet", "pyramid_depth", (16, 8), 16),
])
def test_heads_run_at_small_size(backbone, head, scales, map_size):
  cfg = fas.model_config(backbone=backbone, head=head, scales=scales, map_size=map_size,
                         predictor_widths=(16, 8))
  model = models.build_model(cfg, nnx.Rngs(0))
  model.eval()
  x = jax.random.normal(jax.random.key(0), (2, 64, 64, 3))
  out = nnx.jit(lambda m, x: m(x))(model, x)
  assert out["score"].shape == (2,)
  assert np.all(np.isfinite(np.asarray(out["score"])))
  for s in scales:
    key = {"pyramid_depth": "depth", "multiclass_mask": "mask", "pyramid_mask": "mask"}.get(head)
    if key:
      assert out[f"{key}_{s}"].shape == (2, s, s)


# Scales every head can take on an 8x8 map (resnet_tiny at 64x64, cdcn_tiny with map_size 8):
# a dense map's first scale is the map itself.
_SPEC_SCALES = {True: (8, 4), False: (4, 2, 1)}


@pytest.mark.parametrize("head", sorted(models.HEADS))
@pytest.mark.parametrize("backbone", ["resnet_tiny", "cdcn_tiny"])
def test_every_head_builds_what_its_spec_declares(head, backbone):
  spec = models.HEADS[head]
  scales = _SPEC_SCALES[spec.dense_map]
  cfg = fas.model_config(backbone=backbone, head=head, scales=scales, map_size=8,
                         predictor_widths=(8, 4), num_classes=5)
  out = _abstract_outputs(cfg, 64)
  assert set(out) == spec.output_names(scales) | {"features"}
  assert out["score"].shape == (2,)
  # '{s0}' is the first scale alone, '{s}' every scale.
  if head == "multiclass_mask":
    assert set(out) == {"class_logits_4", "mask_4", "score", "features"}
    assert out["class_logits_4"].shape == (2, 4, 4, 5)
  if head == "pyramid_depth":
    assert set(out) == {"depth_8", "depth_4", "score", "features"}


def _loss_batch():
  n = 2
  return {"mask": jnp.ones((n, 8, 8)), "depth": jnp.ones((n, 8, 8)), "label": np.ones(n),
          "species": np.zeros(n, np.int32)}


def test_head_specs_drive_the_loss_and_the_checks(monkeypatch):
  config = fas.classification_config("synth_fas/intra,runlocal", "resnet50", "resnet_tiny",
                                     head="binary", scales=(1,))
  config.model.loss_reduction = "sum"
  assert checks.problems(config) == []
  outputs = {"logit": jnp.zeros(2), "score": jnp.full(2, 0.5)}
  loss, terms = losses.total_loss(outputs, _loss_batch(), config.model)
  assert set(terms) == {"bce_binary"}
  np.testing.assert_allclose(loss, np.log(2), rtol=1e-6)

  # The spec's reductions, not the head's name, refuse 'sum'; its flags ask for num_classes.
  monkeypatch.setitem(models.HEADS, "binary", dataclasses.replace(
      models.HEADS["binary"], reductions=("mean",), num_classes=True))
  config.model.num_classes = 1
  assert checks.problems(config) == [
      "--config.model.num_classes=1: must be an integer >= 2 (live and at least one attack "
      "species)",
      "--config.model.loss_reduction=sum: applies to mask BCE only; model.head 'binary' reduces "
      "by the mean: use mean"]
  with pytest.raises(ValueError, match="'binary' reduces by the mean"):
    losses.total_loss(outputs, _loss_batch(), config.model)
  monkeypatch.setattr(fas, "num_species", lambda dataset: 7)
  assert fas.classification_config("synth_fas/intra,runlocal", "resnet50", "resnet_tiny",
                                   head="binary").model.num_classes == 7
  assert fas.classification_config("synth_fas/intra,runlocal", "resnet50", "resnet_tiny",
                                   head="pyramid_mask").model.num_classes == 3

  # Its loss kind picks the loss: pyramid_depth's spec allowing 'sum' and naming the mask loss.
  monkeypatch.setitem(models.HEADS, "pyramid_depth", dataclasses.replace(
      models.HEADS["pyramid_depth"], loss="pyramid_mask", reductions=("mean", "sum")))
  cfg = fas.model_config(head="pyramid_depth", scales=(2,), loss_reduction="sum")
  _, terms = losses.total_loss({"mask_logit_2": jnp.zeros((2, 2, 2))}, _loss_batch(), cfg)
  assert set(terms) == {"bce_2"}
  np.testing.assert_allclose(terms["bce_2"], 4 * np.log(2), rtol=1e-6)

  # A dense map's scales must divide its first; a pooling head's must divide the backbone's map.
  config = fas.classification_config("synth_fas/intra,runlocal", "resnet50", "resnet_tiny",
                                     head="pyramid_mask", scales=(8, 3))
  (line,) = checks.problems(config)
  assert line.startswith("--config.input.size=64: gives resnet_tiny a 8x8 feature map")
  monkeypatch.setitem(models.HEADS, "pyramid_mask", dataclasses.replace(
      models.HEADS["pyramid_mask"], pooling=None, dense_map=True))
  assert checks.problems(config) == [
      "--config.model.scales='(8,3)': every scale must divide the first, 8 (the coarser maps "
      "are average-pooled from it)"]


def test_pyramid_mask_head_is_eq1():
  """M_s = sigmoid(W_s * AvgPool_s(F) + b_s), logit = V . concat(flatten(M_s)) + c."""
  head = heads.PyramidMaskHead(5, (4, 2, 1), rngs=nnx.Rngs(0))
  f = np.random.default_rng(0).normal(size=(2, 4, 4, 5))
  out = head(jnp.asarray(f, jnp.float32))
  flat = []
  for s, conv in zip((4, 2, 1), head.mask_convs):
    k = 4 // s
    pooled = f.reshape(2, s, k, s, k, 5).mean(axis=(2, 4))
    w, b = np.asarray(conv.kernel[...])[0, 0, :, 0], np.asarray(conv.bias[...])[0]
    m = 1 / (1 + np.exp(-(pooled @ w + b)))
    np.testing.assert_allclose(out[f"mask_{s}"], m, rtol=1e-5, atol=1e-6)
    flat.append(m.reshape(2, -1))
  v, c = np.asarray(head.classifier.kernel[...])[:, 0], np.asarray(head.classifier.bias[...])[0]
  np.testing.assert_allclose(out["logit"], np.concatenate(flat, -1) @ v + c, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["score"], 1 / (1 + np.exp(-np.asarray(out["logit"]))), rtol=1e-6)


def test_dense_depth_head_pools_and_scores_mean():
  pred = heads.Conv1x1MapPredictor(3, rngs=nnx.Rngs(0))
  head = heads.DenseMapHead(pred, "depth", (8, 4, 2))
  out = head(jax.random.normal(jax.random.key(1), (2, 8, 8, 3)))
  d8 = np.asarray(out["depth_8"])
  assert d8.min() >= 0
  np.testing.assert_allclose(out["depth_4"], d8.reshape(2, 4, 2, 4, 2).mean(axis=(2, 4)), rtol=1e-6)
  want = np.mean([np.asarray(out[f"depth_{s}"]).mean(axis=(1, 2)) for s in (8, 4, 2)], axis=0)
  np.testing.assert_allclose(out["score"], want, rtol=1e-6)
  with pytest.raises(ValueError, match="first scale"):
    heads.DenseMapHead(pred, "depth", (4, 2))(jnp.zeros((1, 8, 8, 3)))


def test_spp_feature_dimension():
  # The paper: 2-, 3- and 4-scale SPP embeddings are 4, 20 and 84 times larger than GAP's (C).
  for scales, extra in (((2, 1), 4), ((4, 2, 1), 20), ((8, 4, 2, 1), 84)):
    head = nnx.eval_shape(lambda: heads.SPPHead(2048, scales, rngs=nnx.Rngs(0)))
    assert head.fc.kernel.shape == (2048 * (1 + extra), 1)


def _np_he_max_pool(x, n):
  """He et al.'s SPP bins by hand: window ceil(a / n), stride floor(a / n), max over each."""
  a = x.shape[1]
  win, stride = -(-a // n), a // n
  out = np.empty((x.shape[0], n, n, x.shape[3]))
  for i in range(n):
    for j in range(n):
      out[:, i, j] = x[:, i * stride:i * stride + win, j * stride:j * stride + win].max(axis=(1, 2))
  return out


def test_spp_max_pool_is_he_et_als_bins():
  rng = np.random.default_rng(8)
  x = rng.normal(size=(2, 8, 8, 3))
  for n in (4, 2, 1):  # divides 8: exact blocks
    blocks = x.reshape(2, n, 8 // n, n, 8 // n, 3).max(axis=(2, 4))
    got = heads.spp_max_pool(jnp.asarray(x, jnp.float32), n)
    np.testing.assert_allclose(got, blocks, rtol=1e-6)
    np.testing.assert_allclose(got, _np_he_max_pool(x, n), rtol=1e-6)
  # Non-dividing: 7x7 to 2 bins (rows 0-3 and 3-6: the windows overlap); SPP-net's own case,
  # 13x13 conv5 to 3x3 bins (window 5, stride 4: rows 0-4, 4-8, 8-12).
  for a, n in ((7, 2), (13, 3), (10, 4)):
    x = rng.normal(size=(2, a, a, 3))
    np.testing.assert_allclose(heads.spp_max_pool(jnp.asarray(x, jnp.float32), n),
                               _np_he_max_pool(x, n), rtol=1e-6)
  x = np.zeros((1, 13, 13, 1), np.float32)
  x[0, 4, 12] = 1  # in the overlap of row bins 0 and 1, the last column bin
  np.testing.assert_array_equal(heads.spp_max_pool(jnp.asarray(x), 3)[0, :, :, 0],
                                [[0, 0, 1], [0, 0, 1], [0, 0, 0]])
  # 6x6 to 4 bins: window 2 at stride 1 makes 5 bins, not 4; 2x2 to 4: no stride at all.
  for a, n in ((6, 4), (2, 4)):
    with pytest.raises(ValueError, match=f"cannot max-pool a {a}x{a} map to {n}x{n}"):
      heads.spp_max_pool(jnp.zeros((1, a, a, 1)), n)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_spp_head_is_pooled_concat_linear(pool):
  head = heads.SPPHead(3, (4, 2, 1), pool, rngs=nnx.Rngs(0))
  f = np.random.default_rng(9).normal(size=(2, 8, 8, 3))
  out = head(jnp.asarray(f, jnp.float32))
  reduce = np.max if pool == "max" else np.mean
  flat = [reduce(f.reshape(2, s, 8 // s, s, 8 // s, 3), axis=(2, 4)).reshape(2, -1)
          for s in (4, 2, 1)]
  w, b = np.asarray(head.fc.kernel[...])[:, 0], np.asarray(head.fc.bias[...])[0]
  np.testing.assert_allclose(out["logit"], np.concatenate(flat, -1) @ w + b, rtol=1e-5, atol=1e-6)
  if pool == "avg":  # average pooling still refuses a scale that does not divide the map
    with pytest.raises(ValueError, match="cannot be pooled"):
      heads.SPPHead(3, (3,), "avg", rngs=nnx.Rngs(0))(jnp.zeros((1, 8, 8, 3)))
  with pytest.raises(ValueError, match="SPP pool must be one of"):
    heads.SPPHead(3, (1,), "min", rngs=nnx.Rngs(0))


def test_spp_pool_defaults():
  # He et al.'s max for resnet50_spp; average where the field is absent (configs and checkpoints
  # written before it: checkpoint.migrate fills it in), which is also model_config's default.
  import test_configs

  from pyramid_fas_jax.training import checkpoint
  config = test_configs.load("resnet50_spp", "synth_fas/intra,runlocal")
  assert config.model.spp_pool == "max"
  assert models.build_model(config.model, nnx.Rngs(0)).head.pool == "max"
  assert fas.model_config(head="spp").spp_pool == "avg"
  old = fas.model_config(backbone="resnet_tiny", head="spp", scales=(2, 1), spp_pool="max")
  old = old.to_dict()
  del old["spp_pool"]
  migrated = ml_collections.ConfigDict(checkpoint.migrate({"model": old})["model"])
  assert models.build_model(migrated, nnx.Rngs(0)).head.pool == "avg"


@pytest.mark.parametrize("src,dst", [(128, 32), (64, 32), (32, 32), (16, 32), (8, 32), (13, 32),
                                     (40, 32)])
def test_resize_matches_pytorch_bilinear(src, dst):
  x = np.random.default_rng(src).normal(size=(2, 3, src, src))
  got = layers.resize_bilinear(jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32), dst)
  want = ref.interpolate_bilinear(x, dst).transpose(0, 2, 3, 1)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_batchnorm_train_mode_matches_pytorch():
  """BatchNorm2d.train(): normalise with the biased batch variance, update the running variance
  with the unbiased one, momentum 0.1."""
  x = np.random.default_rng(0).normal(2.0, 3.0, size=(4, 3, 3, 2))
  bn = layers.BatchNorm(2)
  y = np.asarray(bn(jnp.asarray(x, jnp.float32)))
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-5)
  np.testing.assert_allclose(bn.mean[...], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(bn.var[...], 0.9 + 0.1 * var * 36 / 35, rtol=1e-5)


@pytest.mark.parametrize("src,dst", [(8, 7), (13, 7), (7, 7), (4, 7), (9, 4)])
def test_adaptive_avg_pool_matches_pytorch(src, dst):
  x = np.random.default_rng(src).normal(size=(2, 3, src, src))
  got = layers.adaptive_avg_pool(jnp.asarray(x.transpose(0, 2, 3, 1), jnp.float32), dst)
  want = ref.adaptive_avg_pool2d(x, dst).transpose(0, 2, 3, 1)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_vgg_classifier_matches_torchvision():
  """Adaptive 7x7 pool, flattened in PyTorch's (C, H, W) order, three linear layers: checked on a
  narrow VGG whose 32x32 input leaves a 4x4 map (so the 7x7 pool windows overlap)."""
  cfg = (8, "M", 16)
  sd = ref.random_state_dict(ref.vgg16_state_dict_shapes(cfg, num_classes=5, width=12), seed=5)
  model = vgg.VGG(cfg, num_classes=5, classifier_width=12, rngs=nnx.Rngs(0))
  for i, layer in enumerate(model.features):
    if isinstance(layer, layers.Conv):
      layer.kernel[...] = sd[f"features.{i}.weight"].transpose(2, 3, 1, 0)
      layer.bias[...] = sd[f"features.{i}.bias"]
  for i in (0, 3, 6):
    model.classifier[i].kernel[...] = sd[f"classifier.{i}.weight"].T
    model.classifier[i].bias[...] = sd[f"classifier.{i}.bias"]
  model.eval()
  x = np.random.default_rng(6).normal(size=(2, 32, 32, 3))
  features, logits = model(jnp.asarray(x, jnp.float32))
  want = ref.vgg16_features(x.transpose(0, 3, 1, 2), sd, cfg)
  np.testing.assert_allclose(features, want.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(logits, ref.vgg16_logits(want, sd), rtol=1e-4, atol=1e-4)


def test_channel_shuffle_is_torchvisions():
  x = np.arange(2 * 3 * 3 * 8, dtype=np.float32).reshape(2, 3, 3, 8)
  got = np.asarray(shufflenet.channel_shuffle(jnp.asarray(x), 2))
  want = ref.channel_shuffle(x.transpose(0, 3, 1, 2), 2).transpose(0, 2, 3, 1)
  np.testing.assert_array_equal(got, want)
  np.testing.assert_array_equal(got[0, 0, 0], [0, 4, 1, 5, 2, 6, 3, 7])


def test_classification_depth_head_keeps_learning():
  # With a ReLU after the bare 1x1 conv, a few Adam steps on mostly-attack batches (zero
  # targets) push every position negative: the map is dead, the score constant (AUC 0.5). The
  # sigmoid map keeps its gradient: on fresh images the live ones (a brighter face, as the
  # training ones) outscore the attacks.
  config = fas.classification_config("synth_fas/intra,runlocal", "resnet50", "resnet_tiny",
                                     head="pyramid_depth", scales=(8, 4))
  config.optim = fas.adam_config(lr=1e-3, schedule="constant")
  graphdef, state = train_step.create_train_state(config)
  step = train_step.jit_train_step(graphdef, config.model)
  rng = np.random.default_rng(0)

  def images(label):
    return (rng.normal(size=(label.size, 64, 64, 3)) + label[:, None, None, None]).astype(
        np.float32)

  label = np.array([1, 0, 0, 0] * 2, np.int32)
  depth = np.broadcast_to(label[:, None, None] * 0.6, (8, 64, 64)).astype(np.float32)
  for _ in range(12):
    batch = {"image": images(label), "mask": depth > 0, "depth": depth, "label": label,
             "species": 1 - label}
    state, _ = step(state, batch)
  model, _ = nnx.merge(graphdef, state)
  model.eval()
  held_out = np.array([1, 0] * 16)
  scores = np.asarray(model(images(held_out))["score"])
  live, attack = scores[held_out == 1][:, None], scores[held_out == 0][None, :]
  assert np.mean(live > attack) > 0.9, scores  # AUC; a dead map ties every pair (AUC 0.5)
  fcn = models.build_model(fas.model_config(backbone="cdcn_tiny", head="pyramid_depth",
                                            scales=(8, 4), map_size=8,
                                            predictor_widths=(32, 16)), rngs=nnx.Rngs(0))
  # CDCN's official last layer is a ReLU: its maps are >= 0 with exact zeros, unlike a sigmoid.
  maps = np.asarray(fcn(jnp.asarray(images(held_out[:4])))["depth_8"])
  assert maps.min() == 0.0 and maps.max() > 0


def test_dense_head_rejects_unknown_depth_activation():
  with pytest.raises(ValueError, match="depth_activation"):
    heads.DenseMapHead(heads.Conv1x1MapPredictor(3, rngs=nnx.Rngs(0)), "depth", (8,), "tanh")
