"""Shared pieces of the ml_collections configs in configs/ (defaults, the config argument)."""

import ml_collections

# ImageNet statistics (RGB, [0, 1] pixels), used with ImageNet-initialised backbones.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
  cfg = ml_collections.ConfigDict({
      "backbone": "resnet50",
      "head": "pyramid_mask",
      "scales": (8, 4, 2, 1),
      "theta": 0.7,                    # CDC's theta; 0 = plain convolution
      "map_size": 32,                  # CDCN: blocks are resized to this before the map predictor
      "predictor_widths": (128, 64),   # CDCN's lastconv1/lastconv2 widths
      "num_classes": 3,                # multiclass_mask: live + attack species
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


def mask_pyramid_config(arg, backbone: str, runlocal_backbone: str) -> ml_collections.ConfigDict:
  """An ImageNet-initialised classification backbone with pyramid binary-mask supervision, as the
  paper trains them (sec. IV-B): masks 8, 4, 2, 1 on the stride-32 map of a 256x256 input, SGD,
  batch 32, 80 epochs.

  Options: `single_scale` keeps the 8x8 mask alone (the '_8x8' baselines of Table III and Fig. 5);
  `runlocal` swaps in `runlocal_backbone`, a CPU-sized stride-8 variant, at 64x64 input, which
  keeps the 8x8 map and so every scale.
  """
  dataset, protocol, options = parse_options(arg, ("runlocal", "single_scale"))
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = ml_collections.ConfigDict({"name": dataset, "protocol": protocol})
  config.input = ml_collections.ConfigDict({"size": 256, "mean": IMAGENET_MEAN,
                                            "std": IMAGENET_STD})
  scales = (8,) if options["single_scale"] else (8, 4, 2, 1)
  config.model = model_config(backbone=backbone, head="pyramid_mask", scales=scales)
  config.optim = sgd_config()
  config.batch_size = 32
  config.num_epochs = 80
  config.init_from = ""
  if options["runlocal"]:
    config.model.backbone = runlocal_backbone
    config.input.size = 64
    config.batch_size = 8
    config.num_epochs = 2
  return config


def depth_pyramid_config(arg, backbone: str, runlocal_backbone: str, *, theta: float,
                         predictor_widths) -> ml_collections.ConfigDict:
  """A multi-scale FCN (CDCN, CDCN++, DepthNet) with pyramid depth supervision, as the paper trains
  them (sec. IV-B): depth maps 32 and 16, Adam, batch 8, 800 epochs, from scratch, inputs scaled to
  [-1, 1] as the official CDCN code does.

  Options: `single_scale` keeps the 32x32 depth map alone; `runlocal` swaps in
  `runlocal_backbone` (a quarter of the channels) at 64x64 input with 8x8 and 4x4 maps (the blocks
  are resized to map_size 8 instead of 32).
  """
  dataset, protocol, options = parse_options(arg, ("runlocal", "single_scale"))
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = ml_collections.ConfigDict({"name": dataset, "protocol": protocol})
  # The official CDCN code feeds images scaled to [-1, 1]: (x - 127.5) / 128.
  config.input = ml_collections.ConfigDict({
      "size": 256, "mean": (127.5 / 255,) * 3, "std": (128 / 255,) * 3})
  scales = (32,) if options["single_scale"] else (32, 16)
  config.model = model_config(backbone=backbone, head="pyramid_depth", scales=scales, theta=theta,
                              map_size=32, predictor_widths=tuple(predictor_widths))
  config.optim = adam_config()
  config.batch_size = 8
  config.num_epochs = 800
  config.init_from = ""
  if options["runlocal"]:
    config.model.backbone = runlocal_backbone
    config.model.map_size = 8
    config.model.scales = tuple(s // 4 for s in scales)
    config.model.predictor_widths = tuple(w // 4 for w in predictor_widths)
    config.input.size = 64
    config.batch_size = 4
    config.num_epochs = 2
  return config
