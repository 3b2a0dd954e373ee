"""A seconds-long training config on SynthFAS 'tiny' for the training tests.

  --config=tests/tiny_train_config.py:<data_dir>
"""

from pyramid_fas_jax.experiment import config as fas


def get_config(arg=None):
  config = fas.base_config("synth_fas", "intra", runlocal=True)
  config.data.builder_config = "tiny"
  config.data.data_dir = arg
  config.input.size = 32
  config.batch_size = 8
  config.eval_batch_size = 8
  config.model = fas.model_config(backbone="resnet_tiny", head="pyramid_mask", scales=(4, 2, 1))
  config.optim = fas.sgd_config(lr=0.01)
  config.num_steps = 8
  config.log_every_steps = 2
  config.checkpoint_every_steps = 2
  config.eval.bootstrap = 20
  return config
