r"""CDCN with (pyramid) binary-mask supervision (Table II, second-to-last block): CDCN's map
predictor ends in a sigmoid instead of a ReLU; coarser masks average-pool its logits; BCE per scale.

  pyramid-fas train --config=configs/cdcn_mask.py:oulu_npu/Protocol_4_1 --workdir=runs/cdcn_mask
  # single 32x32 mask: ,single_scale; more scales: --config.model.scales='(32,16,8)'

Paper (OULU-NPU Protocol 4): multi-scale masks help CDCN over 32x32 alone, but depth supervision
(cdcn_ps) remains better for CDCN.
"""

from pyramid_fas_jax import config as fas


def get_config(arg=None):
  return fas.fcn_config(arg, "cdcn", "cdcn_tiny", theta=0.7, predictor_widths=(128, 64),
                        head="dense_mask", scales=(32, 16))
