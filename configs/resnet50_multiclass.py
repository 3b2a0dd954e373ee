r"""ResNet50 with a multi-class mask (Table II): every 8x8 position is classified as live or as
the sample's attack species (OULU-NPU: live / print / replay); score = mean live probability.

  pyramid-fas train --config=configs/resnet50_multiclass.py:oulu_npu/Protocol_4_1 --workdir=runs/mc

SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80 epochs, ImageNet-initialised as resnet50_ps
(torchvision's weights, fetched on first use; the head from scratch); an epoch is one random
stored frame of every training video (data.epoch_unit 'video'): on OULU-NPU Protocol_4_1 (600
videos) 19 steps per epoch, 1,520 in all (README, "Steps of a paper run").

Paper (OULU-NPU Protocol 4): no gain over the binary 8x8 mask. `model.num_classes` is the
dataset's species count (SynthFAS: 5).

SynthFAS, CPU scale (`python benchmarks/synth_results.py`, README "Table II in miniature": this
config's runlocal model, Adam 1e-3 throughout with an evaluation every 400 steps (the demo's recipe
until December 2026), 6000 steps, SynthFAS `bench` (intra), `bench_cross` (cross_domain/lowlight)):
test ACER per video at the dev-EER threshold, mean (min-max): intra 29.1 (28.3-30.9)% over 5 seeds;
cross_domain/lowlight 44.1 (44.1-44.1)% over 1 seed.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "resnet50", "resnet_tiny", head="multiclass_mask",
                                   scales=(8,))
