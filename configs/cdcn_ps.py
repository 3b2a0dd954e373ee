r"""CDCN-PS: CDCN (theta 0.7) with two-scale pyramid depth supervision (paper sec. III-B).

256x256 input -> CDCN -> D32 (32x32 depth, ReLU); D16 = AvgPool2(D32). Labels: pseudo depth
(live, [0, 1] over the face; attacks all 0) average-pooled to 32 and 16.
L = sum_{s in 32,16} MSE(D_s, Y_s) + CDL(D_s, Y_s); test score = mean of the predicted maps.
Adam lr 1e-4, wd 5e-5, batch 8, 800 epochs, lr halved from the 500th epoch, from scratch. An
epoch is one random stored frame of every training video (data.epoch_unit 'video', as the official
code): on OULU-NPU Protocol_1 (1,200 videos) 150 steps per epoch, 120,000 in all, lr halved
from step 74,850 (README, "Steps of a paper run").

  pyramid-fas train --config=configs/cdcn_ps.py:oulu_npu/Protocol_1 --workdir=runs/cdcn_ps

Paper (OULU-NPU Protocol 4, Table II/III): two scales lower ACER by 2.1 +- 1.1 points against
32x32-only depth supervision, which `,single_scale` trains. `,runlocal` uses a quarter-width CDCN
at 64x64 input with 8x8 and 4x4 depth maps (the same architecture, resized to map_size 8).

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 27.7 +- 4.5%,
HTER 14.3 +- 3.6%, AUC 92.1 +- 1.6% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.fcn_config(arg, "cdcn", "cdcn_tiny", theta=0.7, predictor_widths=(128, 64))
