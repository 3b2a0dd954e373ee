r"""ResNet50 with (pyramid) depth-map supervision (Table II, 2nd block): a 1x1 conv + sigmoid on
F8 predicts an 8x8 depth map; coarser maps are its average pools; MSE + CDL per scale. (The paper
does not name the activation; CDCN's ReLU dies on this bare 1x1 conv: models/heads.py.)

  pyramid-fas train --config=configs/resnet50_depth.py:oulu_npu/Protocol_4_1 --workdir=runs/r50d
  # the pyramid rows of Table II: --config.model.scales='(8,4)' or '(8,4,2)'
  # (the 2x2 map has MSE only: CDL compares 3x3 neighbourhoods, losses.py)

SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80 epochs, ImageNet-initialised as resnet50_ps
(torchvision's weights, fetched on first use; the head from scratch); an epoch is one random
stored frame of every training video (data.epoch_unit 'video'): on OULU-NPU Protocol_4_1 (600
videos) 19 steps per epoch, 1,520 in all (README, "Steps of a paper run").

Paper (OULU-NPU Protocol 4): depth supervision is the worst of ResNet50's supervisions; 8x8+4x4
and 8x8+4x4+2x2 are slightly (<1 point ACER) better than 8x8 alone.

SynthFAS, CPU scale (`python benchmarks/synth_results.py`, README "Table II in miniature": this
config's runlocal model, Adam 1e-3 throughout with an evaluation every 400 steps (the demo's recipe
until December 2026), 6000 steps, SynthFAS `bench` (intra), `bench_cross` (cross_domain/lowlight)):
test ACER per video at the dev-EER threshold, mean (min-max): intra 33.3 (31.8-35.1)% over 5 seeds;
cross_domain/lowlight 32.0 (32.0-32.0)% over 1 seed.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "resnet50", "resnet_tiny", head="pyramid_depth",
                                   scales=(8,))
