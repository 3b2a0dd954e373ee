r"""ResNet50 with spatial pyramid pooling (Table II, SPP rows): F8 max-pooled to every scale's
bins as He et al.'s SPP does, concatenated (5x, 21x or 85x GAP's 2048 features) into one linear
layer; binary label only.

  pyramid-fas train --config=configs/resnet50_spp.py:oulu_npu/Protocol_4_1 --workdir=runs/spp
  # the other SPP rows: --config.model.scales='(4,2,1)' or '(8,4,2,1)'
  # average pooling instead of max: --config.model.spp_pool=avg

SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80 epochs, ImageNet-initialised as resnet50_ps
(torchvision's weights, fetched on first use; the head from scratch); an epoch is one random
stored frame of every training video (data.epoch_unit 'video'): on OULU-NPU Protocol_4_1 (600
videos) 19 steps per epoch, 1,520 in all (README, "Steps of a paper run").

Paper (OULU-NPU Protocol 4): 2x2+1x1 SPP helps slightly, more scales hurt (overfitting); the
pyramid mask with the same scales beats SPP by 1.0, 2.4 and 4.5 points ACER.

SynthFAS, CPU scale (`python benchmarks/synth_results.py`, README "Table II in miniature": this
config's runlocal model, Adam 1e-3 throughout with an evaluation every 400 steps (the demo's recipe
until December 2026), 6000 steps, SynthFAS `bench` (intra), `bench_cross` (cross_domain/lowlight)):
test ACER per video at the dev-EER threshold, mean (min-max): intra 11.4 (9.4-13.8)% over 5 seeds;
cross_domain/lowlight 37.7 (37.7-37.7)% over 1 seed.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  config = fas.classification_config(arg, "resnet50", "resnet_tiny", head="spp", scales=(2, 1))
  config.model.spp_pool = "max"
  return config
