r"""ResNet50-PS: ResNet50 with four-scale pyramid binary-mask supervision (paper sec. III-A).

F8 (2048x8x8 at 256x256 input) -> AvgPool 1/2/4/8 -> unshared 1x1 conv + sigmoid per scale ->
masks 8x8, 4x4, 2x2, 1x1 -> concatenated -> linear -> binary logit. L = sum_s BCE_s + BCE_binary.
SGD lr 1e-3, momentum 0.9, wd 5e-5, batch 32, 80 epochs, ImageNet initialisation.

  pyramid-fas import-weights --format=torchvision-resnet50 --input=resnet50-11ad3fa6.pth \
      --config=configs/resnet50_ps.py --output=weights/resnet50_imagenet
  pyramid-fas train --config=configs/resnet50_ps.py:oulu_npu/Protocol_4 --workdir=runs/r50ps \
      --config.init_from=weights/resnet50_imagenet

Paper (OULU-NPU Protocol 4, Table II/III): the four-scale pyramid lowers ACER by 1.9 +- 1.0
points against single-scale 8x8 mask supervision. `:<dataset>/<protocol>,runlocal` swaps in a
CPU-sized ResNet at 64x64 input that keeps the 8x8 feature map and every pyramid scale.
"""

import ml_collections

from pyramid_fas_jax import config as fas


def get_config(arg=None):
  dataset, protocol, runlocal = fas.parse_arg(arg)
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = ml_collections.ConfigDict({"name": dataset, "protocol": protocol})
  config.input = ml_collections.ConfigDict({
      "size": 256, "mean": fas.IMAGENET_MEAN, "std": fas.IMAGENET_STD})
  config.model = fas.model_config(backbone="resnet50", head="pyramid_mask", scales=(8, 4, 2, 1))
  config.optim = fas.sgd_config()
  config.batch_size = 32
  config.num_epochs = 80
  config.init_from = ""
  if runlocal:
    config.model.backbone = "resnet_tiny"
    config.input.size = 64
    config.batch_size = 8
    config.num_epochs = 2
  return config
