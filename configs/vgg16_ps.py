r"""VGG16-PS: VGG16 with four-scale pyramid binary-mask supervision (paper Fig. 5).

VGG16's `features` (13 3x3 convs, five 2x2 max pools: 512x8x8 at 256x256 input) -> the pyramid
mask head of ResNet50-PS: masks 8x8, 4x4, 2x2, 1x1 and a binary logit. SGD lr 1e-3, momentum
0.9, wd 5e-5, batch 32, 80 epochs, ImageNet initialisation.
An epoch is one random stored frame of every training video (data.epoch_unit 'video'): on
OULU-NPU Protocol_4_1 (600 videos) 19 steps per epoch, 1,520 in all (README, "Steps of a
paper run").

  pyramid-fas train --config=configs/vgg16_ps.py:oulu_npu/Protocol_4_1 --workdir=runs/vgg16_ps

The backbone starts from torchvision's ImageNet weights (vgg16-397923af.pth, IMAGENET1K_V1,
fetched on first use and cached), the head from scratch; `--config.init_from=''` trains it all
from scratch.

Paper (Fig. 5, OULU-NPU Protocol 4): the pyramid lowers VGG16's ACER against 8x8 mask
supervision alone, which `:oulu_npu/Protocol_4_1,single_scale` trains. `,runlocal` swaps in a
CPU-sized VGG (4 convs, 3 pools: stride 8) at 64x64 input, keeping the 8x8 map and every scale.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 34.4 +- 1.3%,
HTER 22.8 +- 0.4%, AUC 85.5 +- 2.4% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "vgg16", "vgg_tiny")
