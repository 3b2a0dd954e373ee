r"""The demo (`make demo`, `pyramid-fas demo`): a CPU-sized pyramid-mask model on SynthFAS.

ResNet (1-1-1-1 bottlenecks, width 16, stride 8) at 64x64 input, so its last feature map is 8x8
and the paper's four mask scales (8, 4, 2, 1) all exist; trained from scratch with Adam on
SynthFAS 'small' (intra protocol), evaluated with the dev-EER threshold per video.

  pyramid-fas demo --workdir=runs/demo
  pyramid-fas train --config=configs/demo.py --workdir=runs/demo   # the same training alone

800 steps of batch 32 are 47 epochs of the 528 training videos (data.epoch_unit 'video': 17
steps per epoch, each visiting every video at one random stored frame).

Measured with these defaults (2 idle CPU cores, December 2026; 5.7 minutes in all): test ACER
23.2% (bootstrap 95% interval 16.1-33.0), HTER 15.2%, AUC 0.927 per video at the dev-EER
threshold; print and replay APCER 0%, 3-D mask 21%, partial 29%. The frame stream
(`--config.data.epoch_unit=frame`) measured 20.5% (13.4-29.5) before this week's changes.
"""

from pyramid_fas_jax import config as fas


def get_config(arg=None):
  config = fas.classification_config(arg or "synth_fas/intra,runlocal", "resnet50", "resnet_tiny")
  # From scratch in a few hundred steps: Adam, not the paper's ImageNet-initialised SGD.
  config.optim = fas.adam_config(lr=1e-3, schedule="constant")
  config.batch_size = 32
  config.num_steps = 800
  config.log_every_steps = 25
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 200
  config.eval.bootstrap = 1000
  return config
