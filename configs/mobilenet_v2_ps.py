r"""MobileNetV2-PS: MobileNetV2 with four-scale pyramid binary-mask supervision (paper Fig. 5).

MobileNetV2's `features` (ending in the 1x1 conv to 1280 channels: 1280x8x8 at 256x256 input) ->
the pyramid mask head of ResNet50-PS: masks 8x8, 4x4, 2x2, 1x1 and a binary logit. SGD lr 1e-3,
momentum 0.9, wd 5e-5, batch 32, 80 epochs, ImageNet initialisation.
An epoch is one random stored frame of every training video (data.epoch_unit 'video'): on
OULU-NPU Protocol_4_1 (600 videos) 19 steps per epoch, 1,520 in all (README, "Steps of a
paper run").

  pyramid-fas train --config=configs/mobilenet_v2_ps.py:oulu_npu/Protocol_4_1 \
      --workdir=runs/mobilenet_v2_ps

The backbone starts from torchvision's ImageNet weights (mobilenet_v2-b0353104.pth,
IMAGENET1K_V1, fetched on first use and cached), the head from scratch;
`--config.init_from=''` trains it all from scratch.

Paper (Fig. 5, OULU-NPU Protocol 4): the pyramid lowers MobileNetV2's ACER against 8x8 mask
supervision alone (`,single_scale`). `,runlocal` swaps in a CPU-sized MobileNetV2 (4 stages of
width 8-32, a stride-1 stem: stride 8) at 64x64 input, keeping the 8x8 map and every scale.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 27.2 +- 1.3%,
HTER 17.9 +- 1.3%, AUC 92.0 +- 0.0% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "mobilenet_v2", "mobilenet_v2_tiny")
