r"""ResNet50 with a multi-class mask (Table II): every 8x8 position is classified as live or as
the sample's attack species (OULU-NPU: live / print / replay); score = mean live probability.

  pyramid-fas train --config=configs/resnet50_multiclass.py:oulu_npu/Protocol_4_1 --workdir=runs/mc

Paper (OULU-NPU Protocol 4): no gain over the binary 8x8 mask. `model.num_classes` is the
dataset's species count (SynthFAS: 5).
"""

from pyramid_fas_jax import config as fas


def get_config(arg=None):
  return fas.classification_config(arg, "resnet50", "resnet_tiny", head="multiclass_mask",
                                   scales=(8,))
