"""Shared pieces of the ml_collections configs in configs/ (defaults, the config argument)."""

import ml_collections

# ImageNet statistics (RGB, [0, 1] pixels), used with ImageNet-initialised backbones.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def parse_arg(arg: str | None, default_dataset: str = "synth_fas/intra"):
  """'dataset/protocol[,runlocal]' -> (dataset, protocol, runlocal)."""
  parts = [p for p in (arg or "").split(",") if p]
  options = {p for p in parts if "/" not in p}
  unknown = options - {"runlocal"}
  if unknown:
    raise ValueError(f"unknown config option(s) {sorted(unknown)} in {arg!r}; "
                     "expected 'dataset/protocol[,runlocal]'")
  specs = [p for p in parts if "/" in p]
  if len(specs) > 1:
    raise ValueError(f"more than one dataset/protocol in {arg!r}")
  dataset, protocol = (specs[0] if specs else default_dataset).split("/", 1)
  return dataset, protocol, "runlocal" in options


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
