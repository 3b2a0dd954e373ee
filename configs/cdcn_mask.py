r"""CDCN with (pyramid) binary-mask supervision (Table II, second-to-last block): CDCN's map
predictor ends in a sigmoid instead of a ReLU; coarser masks average-pool its logits; BCE per scale.

  pyramid-fas train --config=configs/cdcn_mask.py:oulu_npu/Protocol_4_1 --workdir=runs/cdcn_mask
  # single 32x32 mask: ,single_scale; more scales: --config.model.scales='(32,16,8)'

Trained as cdcn_ps: Adam, batch 8, 800 epochs of one random stored frame per training video
(data.epoch_unit 'video'), lr halved from the 500th epoch: on OULU-NPU Protocol_4_1 75 steps per
epoch, 60,000 in all, lr halved from step 37,425.

Paper (OULU-NPU Protocol 4): multi-scale masks help CDCN over 32x32 alone, but depth supervision
(cdcn_ps) remains better for CDCN.

SynthFAS, CPU scale (README "Every config on SynthFAS at 300 steps": this config's runlocal model,
Adam 1e-3, batch 32, 300 steps, seeds 0 and 1; README): intra test ACER 18.8 +- 3.6%,
HTER 8.3 +- 1.1%, AUC 95.2 +- 0.5% per video at the dev-EER threshold.
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  return fas.fcn_config(arg, "cdcn", "cdcn_tiny", theta=0.7, predictor_widths=(128, 64),
                        head="dense_mask", scales=(32, 16))
