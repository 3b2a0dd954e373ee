"""Every config's runlocal model learns: trained from scratch at one small budget on SynthFAS
`small`, it ranks live above attack on the test split, whose subjects it never saw.

The budget (`budget_config`: Adam 1e-3, batch 32, the frame stream) is the one the README's
"Every config on SynthFAS at 300 steps" table was measured with, at STEPS steps. One short
training run per config (seed 0), 2 to 4 minutes each on 2 cores: IN_CI's are marked slow, the
others `learning`.
"""

import pathlib

import pytest

from pyramid_fas_jax.data import builders
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.experiment import reproduce
from pyramid_fas_jax.training import train

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ("resnet50_binary", "resnet50_ps", "resnet50_depth", "resnet50_multiclass",
           "resnet50_spp", "vgg16_ps", "densenet121_ps", "shufflenet_v2_ps", "mobilenet_v2_ps",
           "cdcn_ps", "cdcn_mask", "depthnet_ps", "cdcnpp_ps")
# At 100 steps vgg16_ps seed 1 still ranked attacks above live (test AUC 0.29; seed 0: 0.79).
STEPS = 200
# Test AUC measured at this budget (2 CPU cores, December 2026): vgg16_ps 0.870 / 0.811 (seeds
# 0 / 1), resnet50_depth 0.820 (seed 1), resnet50_ps 0.804, densenet121_ps 0.794 (seed 0); at
# 300 steps the README's table, seeds 0 and 1, has 0.83 at the lowest. The floor sits 9 points
# below the lowest seed measured and 20 above a model that learned nothing (0.5).
AUC_FLOOR = 0.70


def budget_config(entry, protocol, seed, steps, data_dir):
  """`entry` (a config of configs/, with options: `cdcn_ps+single_scale`) loaded with
  `synth_fas/<protocol>,runlocal`: its own CPU-sized model, input size, head, scales and losses;
  what the smoke run cannot give, a budget that learns from scratch, the same for every entry."""
  name, *options = entry.split("+")
  path = REPO / "configs" / f"{name}.py"
  if not path.exists():
    raise SystemExit(f"no config {path}")
  config = reproduce.load(path, ",".join([f"synth_fas/{protocol}", "runlocal", *options]),
                          data_dir, {"batch_size": 32, "seed": seed, "num_steps": steps,
                                     "log_every_steps": max(steps // 4, 1), "eval_every_steps": 0,
                                     "checkpoint_every_steps": steps, "eval.bootstrap": 0,
                                     "data.epoch_unit": "frame"})
  config.optim = fas.adam_config(lr=1e-3, schedule="constant")
  return config


def test_budget_keeps_each_config_model():
  budget = budget_config("cdcn_ps+single_scale", "intra", 3, 40, "/data")
  runlocal = reproduce.load(REPO / "configs" / "cdcn_ps.py",
                            "synth_fas/intra,runlocal,single_scale", "/data")
  assert budget.model.to_dict() == runlocal.model.to_dict()
  assert budget.input.to_dict() == runlocal.input.to_dict()
  assert budget.model.scales == (8,)
  assert (budget.optim.name, budget.optim.lr, budget.optim.schedule) == ("adam", 1e-3, "constant")
  assert (budget.batch_size, budget.num_steps, budget.seed) == (32, 40, 3)
  assert {p.stem for p in (REPO / "configs").glob("*.py")} - {"demo"} == set(CONFIGS)
  with pytest.raises(SystemExit, match="no config"):
    budget_config("resnet51_ps", "intra", 0, 1, "/data")


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds_small"))
  builders.build("synth_fas", data_dir, config="small", num_workers=2)
  return data_dir


# CI's slow run trains the paper's two pyramid supervisions and the depth head (about 10 min on
# 2 cores); `make test-learning` trains every config (about 30 min).
IN_CI = ("resnet50_ps", "resnet50_depth", "cdcn_ps")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow if n in IN_CI else pytest.mark.learning)
    for n in CONFIGS])
def test_runlocal_model_separates_unseen_subjects(name, synth_small, tmp_path):
  config = budget_config(name, "intra", 0, STEPS, synth_small)
  test = train.train_and_evaluate(config, tmp_path)["test"]
  assert test["AUC"] >= AUC_FLOOR, (name, test["AUC"])
