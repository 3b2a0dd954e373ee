"""pyramid-fas import-weights --format=FORMAT --input=FILE --config=CONFIG --output=DIR

FORMAT: torchvision-resnet50, torchvision-vgg16, torchvision-densenet121,
torchvision-shufflenet_v2_x1_0, torchvision-mobilenet_v2 (ImageNet weights; the classifier is
dropped), official-cdcn (CDCN, or DepthNet: the same code with theta = 0), official-cdcnpp.

Builds the model of CONFIG, loads the PyTorch weights into it (every tensor mapped, or a clear
failure), and writes a model checkpoint that `train --config.init_from=DIR` and `predict` use.
An existing non-empty DIR is refused (exit 2, nothing written) unless --overwrite, which
replaces DIR's model/ and config.json; a training run's workdir or checkpoint step is refused
even then (checkpoint.check_model_output says why).
"""

from absl import flags
from flax import nnx
from ml_collections import config_flags

from pyramid_fas_jax import models
from pyramid_fas_jax.commands import exit_codes
from pyramid_fas_jax.training import checkpoint
from pyramid_fas_jax.weights import convert

# This run's flags: define_flags binds them.
_CONFIG = _FORMAT = _INPUT = _OUTPUT = _OVERWRITE = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _CONFIG, _FORMAT, _INPUT, _OUTPUT, _OVERWRITE
  _CONFIG = config_flags.DEFINE_config_file(
      "config", None, "model config, e.g. configs/resnet50_ps.py", flag_values=flag_values,
      lock_config=True)
  _FORMAT = flags.DEFINE_enum("format", None, list(convert.FORMATS), "layout of the input weights",
                              flag_values=flag_values)
  _INPUT = flags.DEFINE_string("input", None, "PyTorch state dict (.pth/.pt, .safetensors, .npz)",
                               flag_values=flag_values)
  _OUTPUT = flags.DEFINE_string("output", None, "directory for the model checkpoint (new or "
                                "empty)", flag_values=flag_values)
  _OVERWRITE = flags.DEFINE_bool("overwrite", False, "replace the model/ and config.json of an "
                                 "existing --output (never a training run's workdir or step)",
                                 flag_values=flag_values)
  flags.mark_flags_as_required(["config", "format", "input", "output"], flag_values=flag_values)


def main(argv):
  del argv
  config = _CONFIG.value
  exit_codes.exit_if_outputs_clash("pyramid-fas import-weights", {"input": _INPUT.value},
                                   {"output": _OUTPUT.value})
  try:
    replacing = checkpoint.check_model_output(_OUTPUT.value, _OVERWRITE.value)
    state_dict = convert.read_state_dict(_INPUT.value)
    model = models.build_model(config.model, nnx.Rngs(config.seed))
    report = convert.import_state_dict(model, state_dict, _FORMAT.value)
  except (ValueError, FileNotFoundError, ModuleNotFoundError) as e:
    exit_codes.usage_error("pyramid-fas import-weights", e)
  out = checkpoint.save_model(_OUTPUT.value, model, config)
  n = len(state_dict) - len(report["dropped"])
  replaced = " (replacing its model/ and config.json: --overwrite)" if replacing else ""
  print(f"imported {n} tensors from {_INPUT.value} ({_FORMAT.value}) into {out}{replaced}")
  if report["dropped"]:
    print(f"dropped by design ({len(report['dropped'])}): " + ", ".join(report["dropped"][:6])
          + (" ..." if len(report["dropped"]) > 6 else ""))
  if report["initialised"]:
    initialised = report["initialised"]
    print(f"left at initialisation (seed {config.seed}, {len(initialised)} variables): "
          + ", ".join(initialised[:6]) + (" ..." if len(initialised) > 6 else ""))
