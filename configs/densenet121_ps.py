r"""DenseNet121-PS: DenseNet121 with four-scale pyramid binary-mask supervision (paper Fig. 5).

relu(DenseNet121 `features`) (1024x8x8 at 256x256 input, after norm5) -> the pyramid mask head
of ResNet50-PS: masks 8x8, 4x4, 2x2, 1x1 and a binary logit. SGD lr 1e-3, momentum 0.9, wd 5e-5,
batch 32, 80 epochs, ImageNet initialisation.
An epoch is one random stored frame of every training video (data.epoch_unit 'video'): on
OULU-NPU Protocol_4_1 (600 videos) 19 steps per epoch, 1,520 in all (README, "Steps of a
paper run").

  pyramid-fas train --config=configs/densenet121_ps.py:oulu_npu/Protocol_4_1 \
      --workdir=runs/densenet121_ps

The backbone starts from torchvision's ImageNet weights (densenet121-a639ec97.pth,
IMAGENET1K_V1, fetched on first use and cached), the head from scratch;
`--config.init_from=''` trains it all from scratch. The importer reads both key styles
(torchvision's hosted file has `denselayer1.norm.1.weight`, current torchvision
`denselayer1.norm1.weight`). Paper (Fig. 5, OULU-NPU Protocol 4): the pyramid
lowers DenseNet121's ACER against 8x8 mask supervision alone (`,single_scale`). `,runlocal` swaps
in a CPU-sized DenseNet (growth 8, 2 layers per block, no stem downsampling: stride 8) at 64x64
input, keeping the 8x8 map and every scale.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 32.6 +- 0.4%,
HTER 19.0 +- 1.1%, AUC 87.5 +- 1.5% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "densenet121", "densenet_tiny")
