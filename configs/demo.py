r"""The demo (`make demo`, `pyramid-fas demo`): a CPU-sized pyramid-mask model on SynthFAS.

ResNet (1-1-1-1 bottlenecks, width 16, stride 8) at 64x64 input, so its last feature map is 8x8
and the paper's four mask scales (8, 4, 2, 1) all exist; trained from scratch with Adam on
SynthFAS 'small' (intra protocol), evaluated with the dev-EER threshold per video.

  pyramid-fas demo --workdir=runs/demo
  pyramid-fas train --config=configs/demo.py --workdir=runs/demo   # the same training alone

2400 steps of batch 16 are 73 epochs of the 528 training videos (data.epoch_unit 'video': 33
steps per epoch, each visiting every video at one random stored frame).

Measured with these defaults (2 idle CPU cores, December 2026; 9.6 minutes in all): test ACER
13.4% (bootstrap 95% interval 7.1-21.5), HTER 5.8%, EER 7.1%, AUC 0.988 per video at the dev-EER
threshold (best dev EER at step 2000); print and replay APCER 0%, 3-D mask 14%, partial 25%.
Seeds 1 and 2 (`--config.seed`): test ACER 8.0% and 14.3%, AUC 0.995 and 0.986. The recipe
before (batch 32, 800 steps, jitter and Cutout on) measured 23.2% (16.1-33.0), AUC 0.927.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  config = fas.classification_config(arg or "synth_fas/intra,runlocal", "resnet50", "resnet_tiny")
  return fas.demo_recipe(config)
