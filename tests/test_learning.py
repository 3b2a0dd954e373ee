"""Every config's runlocal model learns: trained from scratch at one small budget on SynthFAS
`small`, it ranks live above attack on the test split, whose subjects it never saw.

The budget is benchmarks/synth_results.py's (Adam 1e-3, batch 32, frame stream) at STEPS steps,
so `python benchmarks/synth_results.py --steps=200 --seeds=0,1` measures what this asserts.
One short training run per config (seed 0), 2 to 4 minutes each on 2 cores: IN_CI's are
marked slow, the others `learning`.
"""

import importlib.util
import pathlib

import pytest

from pyramid_fas_jax.data import builders
from pyramid_fas_jax.training import train

REPO = pathlib.Path(__file__).resolve().parents[1]
# At 100 steps vgg16_ps seed 1 still ranked attacks above live (test AUC 0.29; seed 0: 0.79).
STEPS = 200
# Test AUC measured at this budget (2 CPU cores, December 2026): vgg16_ps 0.870 / 0.811 (seeds
# 0 / 1), resnet50_depth 0.820 (seed 1), resnet50_ps 0.804, densenet121_ps 0.794 (seed 0); at
# 300 steps the README's table, seeds 0 and 1, has 0.83 at the lowest. The floor sits 9 points
# below the lowest seed measured and 20 above a model that learned nothing (0.5).
AUC_FLOOR = 0.70


def _bench():
  spec = importlib.util.spec_from_file_location("synth_results",
                                                REPO / "benchmarks" / "synth_results.py")
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  return bench


BENCH = _bench()


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
    for n in BENCH.CONFIGS])
def test_runlocal_model_separates_unseen_subjects(name, synth_small, tmp_path):
  config = BENCH.budget_config(name, "intra", 0, STEPS, synth_small)
  test = train.train_and_evaluate(config, tmp_path)["test"]
  assert test["AUC"] >= AUC_FLOOR, (name, test["AUC"])
