r"""ResNet50 with binary-score supervision only (Table II, 1st row): GAP + linear + BCE.

  pyramid-fas train --config=configs/resnet50_binary.py:oulu_npu/Protocol_4_1 --workdir=runs/r50bin

ImageNet-initialised as resnet50_ps (torchvision's weights, fetched on first use; the linear
head from scratch).

SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80 epochs, as resnet50_ps; an epoch is one random
stored frame of every training video (data.epoch_unit 'video'): on OULU-NPU Protocol_4_1 (600
videos) 19 steps per epoch, 1,520 in all (README, "Steps of a paper run").

Paper (OULU-NPU Protocol 4): binary mask supervision sharply improves on this baseline
(Table II, 1st vs 5th/8th rows). The SynthFAS comparison against resnet50_ps is in the README.

SynthFAS, CPU scale (`python benchmarks/synth_results.py`, README "Table II in miniature": this
config's runlocal model, Adam 1e-3 throughout with an evaluation every 400 steps (the demo's recipe
until December 2026), 6000 steps, SynthFAS `bench` (intra), `bench_cross` (cross_domain/lowlight)):
test ACER per video at the dev-EER threshold, mean (min-max): intra 6.1 (5.0-7.4)% over 5 seeds;
cross_domain/lowlight 24.8 (24.8-24.8)% over 1 seed.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "resnet50", "resnet_tiny", head="binary", scales=(1,))
