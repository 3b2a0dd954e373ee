r"""ShuffleNetV2-PS: ShuffleNetV2 1.0x with four-scale pyramid binary-mask supervision (Fig. 5).

ShuffleNetV2 up to conv5 (1024x8x8 at 256x256 input) -> the pyramid mask head of ResNet50-PS:
masks 8x8, 4x4, 2x2, 1x1 and a binary logit. SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80
epochs, ImageNet initialisation.
An epoch is one random stored frame of every training video (data.epoch_unit 'video'): on
OULU-NPU Protocol_4_1 (600 videos) 19 steps per epoch, 1,520 in all (README, "Steps of a
paper run").

  pyramid-fas train --config=configs/shufflenet_v2_ps.py:oulu_npu/Protocol_4_1 \
      --workdir=runs/shufflenet_v2_ps

The backbone starts from torchvision's ImageNet weights (shufflenetv2_x1-5666bf0f80.pth,
IMAGENET1K_V1, fetched on first use and cached), the head from scratch;
`--config.init_from=''` trains it all from scratch.

Paper (Fig. 5, OULU-NPU Protocol 4): the pyramid lowers ShuffleNetV2's ACER against 8x8 mask
supervision alone (`,single_scale`). `,runlocal` swaps in a CPU-sized ShuffleNetV2 (widths
8-16-32-64-128, no stem downsampling: stride 8) at 64x64 input, keeping the 8x8 map and every
scale.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 29.9 +- 2.2%,
HTER 19.0 +- 1.6%, AUC 89.1 +- 0.7% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "shufflenet_v2_x1_0", "shufflenet_v2_tiny")
