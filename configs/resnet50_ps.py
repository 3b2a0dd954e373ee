r"""ResNet50-PS: ResNet50 with four-scale pyramid binary-mask supervision (paper sec. III-A).

F8 (2048x8x8 at 256x256 input) -> AvgPool 1/2/4/8 -> unshared 1x1 conv + sigmoid per scale ->
masks 8x8, 4x4, 2x2, 1x1 -> concatenated -> linear -> binary logit. L = sum_s BCE_s + BCE_binary,
BCE_s the mean over the s*s positions (`--config.model.loss_reduction=sum`: their sum, eq. 2
read literally).
SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80 epochs, ImageNet initialisation.
An epoch is one random stored frame of every training video (data.epoch_unit 'video'): on
OULU-NPU Protocol_4_1 (600 videos) 19 steps per epoch, 1,520 in all (README, "Steps of a
paper run").

  pyramid-fas train --config=configs/resnet50_ps.py:oulu_npu/Protocol_4_1 --workdir=runs/r50ps

The backbone starts from torchvision's ImageNet weights (resnet50-0676ba61.pth, IMAGENET1K_V1,
fetched on first use and cached: pyramid_fas_jax/weights/pretrained.py), the head from scratch;
`--config.init_from=''` trains it all from scratch.

Paper (OULU-NPU Protocol 4, Table II/III): the four-scale pyramid lowers ACER by 1.9 +- 1.0
points against single-scale 8x8 mask supervision, which `:oulu_npu/Protocol_4_1,single_scale`
trains (ResNet50_8x8). `,runlocal` swaps in a CPU-sized ResNet at 64x64 input that keeps the 8x8
feature map and every pyramid scale.

SynthFAS, CPU scale (`python benchmarks/synth_results.py`, README "Table II in miniature": this
config's runlocal model, Adam 1e-3 throughout with an evaluation every 400 steps (the demo's recipe
until December 2026), 6000 steps, SynthFAS `bench` (intra), `bench_cross` (cross_domain/lowlight)):
test ACER per video at the dev-EER threshold, mean (min-max): intra 4.2 (3.1-5.5)% over 5 seeds;
cross_domain/lowlight 21.5 (21.5-21.5)% over 1 seed; `,single_scale` intra 7.5 (5.3-9.7)% over 5
seeds; `,single_scale` cross_domain/lowlight 38.8 (38.8-38.8)% over 1 seed.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "resnet50", "resnet_tiny")
