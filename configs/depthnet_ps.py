r"""DepthNet-PS: DepthNet with two-scale pyramid depth supervision (paper Fig. 5).

DepthNet is the multi-scale FCN that CDCN is built on: CDCN's architecture with plain
convolutions (theta = 0), as the official CDCN code's baseline. 256x256 input -> D32 (32x32 depth,
ReLU); D16 = AvgPool2(D32); L = sum_{s in 32,16} MSE + CDL. Adam lr 1e-4, wd 5e-5, batch 8, 800
epochs, lr halved from the 500th epoch, from scratch. An epoch is one random stored frame of every
training video (data.epoch_unit 'video'): on OULU-NPU Protocol_4_1 (600 videos) 75 steps per
epoch, 60,000 in all, lr halved from step 37,425.

  pyramid-fas train --config=configs/depthnet_ps.py:oulu_npu/Protocol_4_1 --workdir=runs/depthnet_ps

Weights of the official code's CDCN(theta=0) import with `--format=official-cdcn`. Paper (Fig. 5,
OULU-NPU Protocol 4): two scales lower both the mean and the standard deviation of DepthNet's
ACER against 32x32 depth alone (`,single_scale`). `,runlocal` uses a quarter-width DepthNet at
64x64 input with 8x8 and 4x4 depth maps.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 8.0 +- 3.6%,
HTER 4.9 +- 1.3%, AUC 99.1 +- 0.5% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  # cdcn_tiny with theta 0 is the quarter-width DepthNet.
  return fas.fcn_config(arg, "depthnet", "cdcn_tiny", theta=0.0,
                                  predictor_widths=(128, 64))
