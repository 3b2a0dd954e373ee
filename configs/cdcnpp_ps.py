r"""CDCN++-PS: CDCN++ (theta 0.7) with two-scale pyramid depth supervision.

CDCN++ (Yu et al., CVPR 2020) is CDCN with NAS-searched block widths and a spatial attention map
on each block's output before the multi-level fusion; its map predictor is CDC 128 -> CDC 1.
256x256 input -> D32; D16 = AvgPool2(D32); L = sum_{s in 32,16} MSE + CDL. Trained as CDCN-PS:
Adam lr 1e-4, wd 5e-5, batch 8, 800 epochs of one random stored frame per training video
(data.epoch_unit 'video'), lr halved from the 500th epoch: on OULU-NPU Protocol_1 150 steps per
epoch, 120,000 in all, lr halved from step 74,850.

  pyramid-fas import-weights --format=official-cdcnpp --input=CDCNpp.pth \
      --config=configs/cdcnpp_ps.py --output=weights/cdcnpp
  pyramid-fas train --config=configs/cdcnpp_ps.py:oulu_npu/Protocol_1 --workdir=runs/cdcnpp_ps

The paper does not train CDCN++; this config extends its CDCN-PS recipe. `,single_scale` trains
32x32 depth alone, as the official code does. `,runlocal` uses a quarter-width CDCN++ at 64x64
input with 8x8 and 4x4 depth maps.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 20.1 +- 2.2%,
HTER 12.5 +- 0.4%, AUC 93.7 +- 1.1% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.fcn_config(arg, "cdcnpp", "cdcnpp_tiny", theta=0.7, predictor_widths=(128,))
