"""Shared pieces of the ml_collections configs in configs/ (defaults, the config argument)."""

import ml_collections

from pyramid_fas_jax.data.config import IMAGENET_MEAN, IMAGENET_STD, default_data_config


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


def base_config(dataset: str, protocol: str, runlocal: bool = False) -> ml_collections.ConfigDict:
  """Every field but `model` and `optim`: data, input, augmentation (data/config.py documents
  them), the training schedule, checkpointing, logging and evaluation.

  num_epochs / num_steps   length of training; num_steps > 0 overrides num_epochs
  log_every_steps          console + metrics.jsonl + TensorBoard cadence
  eval_every_steps         dev/test evaluation cadence (0: only at the end)
  checkpoint_every_steps   checkpoint cadence (also at the end and on SIGTERM)
  keep_checkpoints         latest checkpoints kept (the best-on-dev model is kept apart)
  init_from                model checkpoint to start from (import-weights output, or a step
                           directory of another run); "" = random initialisation
  eval.threshold           'dev_eer' (default), 'test_eer' (chosen on the test set: the paper's
                           cross-dataset HTER; reports say so) or a number
  eval.video_agg           'mean' / 'median' frame scores per video, or None for frame level
  eval.mode                'iso' metrics, or 'cdcn' (the official CDCN performances())
  eval.bootstrap           bootstrap resamples for the test intervals (0 = none)
  eval.best_metric         dev metric (lower is better) that picks the best checkpoint
  """
  config = default_data_config()
  config.data.name = dataset
  config.data.protocol = protocol
  if dataset == "synth_fas":
    config.data.builder_config = "small" if runlocal else "default"
  else:
    config.data.builder_config = ""
  config.num_epochs = 80
  config.num_steps = 0
  config.log_every_steps = 10 if runlocal else 50
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.init_from = ""
  config.eval = ml_collections.ConfigDict({
      "threshold": "dev_eer", "video_agg": "mean", "mode": "iso", "bootstrap": 1000,
      "best_metric": "EER"})
  return config
