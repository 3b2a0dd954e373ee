"""Shared pieces of the ml_collections configs in configs/: every field's default (data, input,
augmentation, model, optimizer, schedule, evaluation) and the config argument."""

import ml_collections
from ml_collections import config_dict

from pyramid_fas_jax.weights import pretrained

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_data_config() -> ml_collections.ConfigDict:
  """Defaults for every field the pipeline reads; experiment configs override a few.

  data.name            TFDS dataset name (synth_fas, oulu_npu, casia_mfsd, replay_attack,
                       msu_mfsd, siw_m) or a virtual cross-dataset one (ocim, casia_replay);
                       also names the protocol module (pyramid_fas_jax/protocols/<name>.py)
  data.builder_config  TFDS builder config ('tiny', 'small', 'default'; a virtual dataset
                       reads that config of each of its sources)
  data.data_dir        TFDS data dir; None = TFDS's default (~/tensorflow_datasets or
                       $TFDS_DATA_DIR). A str placeholder, None until set, so that
                       `--config.data.data_dir=DIR` can set it (a plain None field cannot
                       be overridden from the command line)
  data.protocol        protocol string, e.g. 'intra', 'cross_domain/lowlight',
                       'Protocol_4_2', 'leave_out/partial_paper', 'to_msu_mfsd' (see the
                       protocol module's PROTOCOLS)
  data.epoch_unit      what an epoch is, for num_epochs, steps_per_epoch and the lr schedule:
                       'video' (default, as the official CDCN training and the paper's
                       epochs): every training video once, at one of its stored frames drawn
                       at random, ceil(videos / batch_size) steps; 'frame': every stored frame
                       once, floor(frames / batch_size) steps (about 30x more on real data)
  data.num_workers     grain worker processes per JAX process; 0 decodes in-process (with
                       threads); -1 (default) = from the cores this process may use: one per
                       core but one, none on 2 cores or fewer (pipeline.auto_workers). The
                       saved iterator state depends on it, so a run stores the count it
                       resolved to in its config.json and resumes with that on any machine
  data.prefetch        batches read ahead, by each worker and by the process itself (with
                       one reading thread per core, shared among the workers, at most 16);
                       -1 (default) = about 4 in all, shared among the workers
                       (pipeline.auto_prefetch), stored like num_workers
  input.size           side of the square network input, pixels (depth and mask too)
  input.mean, input.std  per-channel RGB normalisation of [0, 1] pixels; ImageNet
                       statistics suit ImageNet-initialised backbones, (0.5,)*3 maps to [-1, 1].
                       Applied on the device, to the uint8 images the host sends
                       (data/normalize.py), as the colour jitter is
  input.eval_scale     face-box scale of the deterministic evaluation crop
  aug.scale_range      training crop side = U(scale_range) x the face box's longer side,
                       centred on the box (the paper's 0.8-1.3)
  aug.flip             random horizontal flip
  aug.brightness, aug.contrast, aug.saturation
                       colour jitter strengths: factors drawn from U(1 - s, 1 + s)
  aug.cutout           probability of one Cutout square on the image (labels untouched, as
                       in CDCN: the network must still infer what is under it)
  aug.cutout_size      the square's side as a fraction of input.size, drawn from U(0.1, s)
  batch_size           global training batch (all processes); must divide by process count
  eval_batch_size      global evaluation batch
  seed                 data order and augmentation seed; resume restores the iterator
                       state instead of reseeding
  """
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict(dict(
      name="synth_fas", builder_config="small", data_dir=config_dict.placeholder(str),
      protocol="intra", epoch_unit="video", num_workers=-1, prefetch=-1))
  c.input = ml_collections.ConfigDict(dict(
      size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, eval_scale=1.0))
  c.aug = ml_collections.ConfigDict(dict(
      scale_range=(0.8, 1.3), flip=True, brightness=0.2, contrast=0.2, saturation=0.2,
      cutout=0.5, cutout_size=0.4))
  c.batch_size = 32
  c.eval_batch_size = 64
  c.seed = 0
  return c


def parse_options(arg: str | None, allowed=("runlocal",),
                  default_dataset: str = "synth_fas/intra"):
  """'dataset/protocol[,option,...]' -> (dataset, protocol, {option: present?} for each allowed)."""
  parts = [p for p in (arg or "").split(",") if p]
  options = {p for p in parts if "/" not in p}
  unknown = options - set(allowed)
  if unknown:
    raise ValueError(f"unknown config option(s) {sorted(unknown)} in {arg!r}; "
                     f"expected 'dataset/protocol[,option]' with options from {sorted(allowed)}")
  specs = [p for p in parts if "/" in p]
  if len(specs) > 1:
    raise ValueError(f"more than one dataset/protocol in {arg!r}")
  dataset, protocol = (specs[0] if specs else default_dataset).split("/", 1)
  return dataset, protocol, {o: o in options for o in allowed}


def parse_arg(arg: str | None, default_dataset: str = "synth_fas/intra"):
  """'dataset/protocol[,runlocal]' -> (dataset, protocol, runlocal)."""
  dataset, protocol, options = parse_options(arg, ("runlocal",), default_dataset)
  return dataset, protocol, options["runlocal"]


def model_config(**fields) -> ml_collections.ConfigDict:
  """`config.model`: what models.build_model builds and losses.total_loss supervises.

  backbone, head     models.BACKBONES and models.HEADS
  scales             the head's map (or SPP bin) sizes, largest first; a dense map head's first
                     scale is the map the backbone produces (8 for classification backbones at
                     256x256, map_size for FCNs)
  theta              CDC's theta; 0 = plain convolution
  map_size           FCNs: the blocks are resized to this before the map predictor
  predictor_widths   FCNs: CDCN's lastconv1/lastconv2 widths
  num_classes        multiclass_mask: live + attack species
  spp_pool           head 'spp': 'max' (He et al.'s SPP; configs/resnet50_spp.py) or 'avg'
                     (non-overlapping average pools). 'avg' here and wherever the field is
                     absent, so configs and checkpoints written before it keep their model.
  loss_reduction     mask BCE per scale (eq. 2): 'mean' over its s*s positions and the batch
                     (default), or 'sum' over the positions, mean over the batch (eq. 2 read
                     literally; weighs scale s by s*s). Depth MSE + CDL (eq. 3) are means
                     either way, and 'sum' is refused for depth heads; losses.py says why.
  """
  cfg = ml_collections.ConfigDict({
      "backbone": "resnet50",
      "head": "pyramid_mask",
      "scales": (8, 4, 2, 1),
      "theta": 0.7,                    # CDC's theta; 0 = plain convolution
      "map_size": 32,                  # CDCN: blocks are resized to this before the map predictor
      "predictor_widths": (128, 64),   # CDCN's lastconv1/lastconv2 widths
      "num_classes": 3,                # multiclass_mask: live + attack species
      "spp_pool": "avg",
      "loss_reduction": "mean",
      # How convolutions are computed (models/conv_ops.py): 'auto' = the fastest measured
      # formulation on CPU, XLA's own convolution on GPU/TPU; 'xla' = XLA's everywhere.
      "conv_impl": "auto",
  })
  cfg.update(fields)
  return cfg


def sgd_config(**fields) -> ml_collections.ConfigDict:
  """Classification backbones (sec. IV-B): SGD lr 1e-3, momentum 0.9, wd 5e-5."""
  cfg = ml_collections.ConfigDict({"name": "sgd", "lr": 1e-3, "momentum": 0.9,
                                   "weight_decay": 5e-5, "schedule": "constant",
                                   "lr_decay": 1.0, "lr_step_epochs": 1})
  cfg.update(fields)
  return cfg


def adam_config(**fields) -> ml_collections.ConfigDict:
  """CDCN / DepthNet (sec. IV-B): Adam lr 1e-4, wd 5e-5, lr halved at epoch 500."""
  cfg = ml_collections.ConfigDict({"name": "adam", "lr": 1e-4, "momentum": 0.0,
                                   "weight_decay": 5e-5, "schedule": "step",
                                   "lr_decay": 0.5, "lr_step_epochs": 500})
  cfg.update(fields)
  return cfg


def demo_recipe(config: ml_collections.ConfigDict, num_steps: int = 2400,
                lr_drop_epoch: int | None = 52,
                eval_every_steps: int = 600) -> ml_collections.ConfigDict:
  """The demo's from-scratch CPU budget, applied to a `runlocal` config: `configs/demo.py` is
  ResNet50-PS with it, and `benchmarks/synth_results.py` trains every Table II head with it
  (Table II at a constant lr: lr_drop_epoch=None) so that rows differ in their supervision alone.

  Adam lr 1e-3, not the paper's ImageNet-initialised SGD, which learns nothing from scratch in a few
  thousand steps. At a constant 1e-3 the test ACER of successive checkpoints swings by 5-7 points
  (SynthFAS budget study, README), so which checkpoint the dev EER picks decides a seed's figure;
  dividing the lr by 10 at `lr_drop_epoch` lets the last evaluations settle (optim 'step' schedule:
  it counts epochs, never the total, so extending a run keeps its schedule; None keeps 1e-3 to the
  end). The default drops at epoch 52 of SynthFAS `bench`'s 33-step epochs (step 1683) and leaves
  717 steps at 1e-4 before step 2400: 10.2 minutes of `pyramid-fas demo` on 2 AMD EPYC cores at
  5.5-7 steps/s (2700 steps: 10.6), the demo's 10-minute aim within a few percent, and 13.6 on a day
  the same cores ran 3.6-4.4 steps/s (README "The demo"). Before the drop a later checkpoint is
  often a worse one, so evaluating every 600 steps rather than 400 loses little and saves two
  evaluations. A few thousand steps underfit the training videos, so the colour jitter and Cutout
  that help the paper's long runs only slow this one down (the crop scale and flip stay). Batch 16
  takes twice the steps of batch 32 in the same time and learns more from them. The checkpoint with
  the best dev EER is the model.
  """
  if lr_drop_epoch is None:
    config.optim = adam_config(lr=1e-3, schedule="constant")
  else:
    config.optim = adam_config(lr=1e-3, schedule="step", lr_decay=0.1,
                               lr_step_epochs=lr_drop_epoch)
  config.aug.brightness = config.aug.contrast = config.aug.saturation = 0.0
  config.aug.cutout = 0.0
  config.batch_size = 16
  config.eval_batch_size = 32
  config.num_steps = num_steps
  config.log_every_steps = 25
  config.eval_every_steps = eval_every_steps
  config.checkpoint_every_steps = eval_every_steps
  config.eval.bootstrap = 1000
  return config


def base_config(dataset: str, protocol: str, runlocal: bool = False) -> ml_collections.ConfigDict:
  """Every field but `model` and `optim`: data, input, augmentation (default_data_config
  documents them), the training schedule, checkpointing, logging and evaluation.

  num_epochs / num_steps   length of training; num_steps > 0 overrides num_epochs. An epoch
                           is data.epoch_unit's: every training video once by default
  log_every_steps          console + metrics.jsonl + TensorBoard cadence
  eval_every_steps         dev/test evaluation cadence (0: only at the end)
  checkpoint_every_steps   checkpoint cadence (also at the end and on SIGTERM)
  keep_checkpoints         latest checkpoints kept (the best-on-dev model is kept apart)
  init_from                what the model starts from: "imagenet" = the backbone's torchvision
                           ImageNet weights (IMAGENET1K_V1, fetched on first use and cached; the
                           head starts from scratch: pyramid_fas_jax/weights/pretrained.py), a model
                           checkpoint directory (import-weights output, or a step directory of
                           another run), or "" = random initialisation (seed)
  dtype                    compute dtype of the train step: 'float32' (the default, and the
                           fast choice on CPU), or 'bfloat16', the choice on GPU and TPU: the
                           model computes in bfloat16 while parameters, gradients, optimizer
                           state, BatchNorm statistics and the loss stay float32
  eval.threshold           'dev_eer' (default where the protocol has a dev split), 'test_eer'
                           (chosen on the test set: the paper's cross-dataset HTER, the default
                           without a dev split; reports say so) or a number
  eval.video_agg           'mean' / 'median' frame scores per video, or None for frame level
  eval.mode                'iso' metrics, or 'cdcn' (the official CDCN performances())
  eval.bootstrap           bootstrap resamples for the test intervals (0 = none)
  eval.best_metric         dev metric (lower is better) that picks the best checkpoint
  eval.failure_to_acquire  videos without a face in any sampled frame (so no stored frame, no
                           score): 'reject' (default) counts each as a presentation classified
                           as an attack at every threshold (a bona fide one is a BPCER error,
                           an attack one a correct rejection); 'exclude' leaves them out of the
                           rates. Either way results.json and the report give their counts and
                           BPNRR/APNRR, and the threshold, EER and AUC use the scored videos only
                           (pyramid_fas_jax/evaluation/acquisition.py)

  `runlocal` shrinks the run to a CPU smoke test: SynthFAS 'small', 20 steps.
  """
  config = default_data_config()
  config.data.name = dataset
  config.data.protocol = protocol
  config.data.builder_config = "small" if runlocal else "default"
  config.num_epochs = 80
  config.num_steps = 20 if runlocal else 0
  config.log_every_steps = 5 if runlocal else 50
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.init_from = ""
  config.dtype = "float32"
  # The dev-EER threshold wherever the protocol has a dev set; else the test set's own EER
  # threshold, as the paper does for cross-dataset HTER (reports label it as chosen on test).
  from pyramid_fas_jax import protocols
  threshold = "dev_eer" if protocols.has_dev(dataset, protocol) else "test_eer"
  config.eval = ml_collections.ConfigDict({
      "threshold": threshold, "video_agg": "mean", "mode": "iso",
      "bootstrap": 200 if runlocal else 1000, "best_metric": "EER",
      "failure_to_acquire": "reject",
      # False: the evaluations during training score dev alone, and training ends by scoring
      # test once, for the checkpoint dev chose (evaluator.evaluate_chosen); a threshold chosen
      # on test, or mode cdcn, still scores it each time (evaluator.tests_while_training).
      "test_while_training": True})
  if runlocal:
    config.eval_batch_size = 32
  return config


def num_species(dataset: str) -> int:
  """Species of a dataset, 'live' included: the classes of a multi-class mask."""
  from pyramid_fas_jax import protocols
  species = getattr(protocols.for_dataset(dataset), "SPECIES", None)
  if species is None:
    raise ValueError(f"the protocol module of {dataset!r} defines no SPECIES list; set "
                     "--config.model.num_classes")
  return len(species)


def classification_config(arg, backbone: str, runlocal_backbone: str, *, head: str = "pyramid_mask",
                          scales=(8, 4, 2, 1)) -> ml_collections.ConfigDict:
  """An ImageNet-initialised classification backbone (ResNet50, VGG16, ...) as the paper trains
  them (sec. IV-B): the backbone from torchvision's ImageNet weights (init_from 'imagenet'), a
  head from scratch on the stride-32 map of a 256x256 input (8x8), SGD lr 1e-3, momentum 0.9,
  wd 5e-5, batch 32, 80 epochs, ImageNet statistics.

  Options: `single_scale` keeps the first scale alone (the '_8x8' baselines of Table III and
  Fig. 5); `runlocal` swaps in `runlocal_backbone`, a CPU-sized stride-8 variant, at 64x64 input,
  which keeps the 8x8 map and so every scale, and has no ImageNet weights: it starts from scratch.
  """
  dataset, protocol, options = parse_options(arg, ("runlocal", "single_scale"))
  config = base_config(dataset, protocol, options["runlocal"])
  config.input.mean, config.input.std = IMAGENET_MEAN, IMAGENET_STD
  scales = tuple(scales)[:1] if options["single_scale"] else tuple(scales)
  config.model = model_config(backbone=backbone, head=head, scales=scales)
  # Lazy: importing this module stays JAX-free (paper_runs, configs/ at import); the head's spec
  # (models import JAX) is needed only once a config is built, to be run.
  from pyramid_fas_jax import models
  if models.HEADS[head].num_classes:
    config.model.num_classes = num_species(dataset)
  config.optim = sgd_config()
  config.batch_size = 32
  config.num_epochs = 80
  config.init_from = pretrained.IMAGENET
  if options["runlocal"]:
    config.init_from = ""
    config.model.backbone = runlocal_backbone
    config.input.size = 64
    config.batch_size = 8
  return config


def fcn_config(arg, backbone: str, runlocal_backbone: str, *, theta: float, predictor_widths,
               head: str = "pyramid_depth", scales=(32, 16)) -> ml_collections.ConfigDict:
  """A multi-scale FCN (CDCN, CDCN++, DepthNet) as the paper trains them (sec. IV-B): maps at
  32x32 and coarser scales, Adam lr 1e-4, wd 5e-5, batch 8, 800 epochs with lr halved at epoch
  500, from scratch, inputs scaled to [-1, 1] as the official CDCN code does.

  Options: `single_scale` keeps the 32x32 map alone; `runlocal` swaps in `runlocal_backbone` (a
  quarter of the channels) at 64x64 input with maps a quarter the size (the blocks are resized to
  map_size 8 instead of 32).
  """
  dataset, protocol, options = parse_options(arg, ("runlocal", "single_scale"))
  config = base_config(dataset, protocol, options["runlocal"])
  # The official CDCN code feeds images scaled to [-1, 1]: (x - 127.5) / 128.
  config.input.mean, config.input.std = (127.5 / 255,) * 3, (128 / 255,) * 3
  scales = tuple(scales)[:1] if options["single_scale"] else tuple(scales)
  config.model = model_config(backbone=backbone, head=head, scales=scales, theta=theta,
                              map_size=32, predictor_widths=tuple(predictor_widths))
  config.optim = adam_config()
  config.batch_size = 8
  config.num_epochs = 800
  if options["runlocal"]:
    config.model.backbone = runlocal_backbone
    config.model.map_size = 8
    config.model.scales = tuple(max(s // 4, 1) for s in scales)
    config.model.predictor_widths = tuple(w // 4 for w in predictor_widths)
    config.input.size = 64
    config.batch_size = 4
  return config
