"""Loading a checkpoint's model in a fresh process: `checkpoint.load_model` (built abstractly,
then filled from the checkpoint) against building it initialised first (every parameter drawn,
then overwritten by the restore), as `load_model` did until December 2026.

  python benchmarks/model_load.py                                  # demo and ResNet50-PS, 3 rounds
  python benchmarks/model_load.py --configs=configs/cdcn_ps.py --rounds=5

Each measurement is a fresh Python process with an empty JAX compilation cache (a user's first
`pyramid-fas evaluate`, `predict`, `export` or `serve` of a model), timed from inside it, after
its imports, to the model being ready; the two ways alternate, A B A B, and the ratio is taken
round by round, so a drift in the machine's speed falls on both.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]

_CHILD = r"""
import sys, time
from pyramid_fas_jax.commands import common
common.start_jax()
import jax
from flax import nnx
from pyramid_fas_jax import models
from pyramid_fas_jax.training import checkpoint
directory, way = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if way == "abstract":
  model, _ = checkpoint.load_model(directory)
else:
  config = checkpoint.load_config(directory)
  model = models.build_model(config.model, nnx.Rngs(0))
  checkpoint.restore_into(model, directory)
jax.block_until_ready(nnx.state(model))
print(f"SECONDS {time.perf_counter() - start:.3f}")
"""


def _save(config_path: str, directory: pathlib.Path) -> pathlib.Path:
  """A checkpoint of the config's model (256x256 configs at their own size) with numpy values."""
  import numpy as np
  from flax import nnx

  from pyramid_fas_jax import models
  from pyramid_fas_jax.experiment.demo import load_config
  from pyramid_fas_jax.training import checkpoint
  config = load_config(config_path)
  model = nnx.eval_shape(lambda: models.build_model(config.model, nnx.Rngs(0)))
  rng = np.random.default_rng(0)
  for var in models.flat_state(model).values():
    var.set_value(rng.standard_normal(var.shape).astype(var.dtype))
  return checkpoint.save_model(directory, model, config)


def _time(directory, way: str) -> float:
  with tempfile.TemporaryDirectory() as cache:
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache, JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(directory), way], env=env,
                         capture_output=True, text=True, check=True).stdout
  return float(next(line.split()[1] for line in out.splitlines() if line.startswith("SECONDS")))


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default="configs/demo.py,configs/resnet50_ps.py")
  parser.add_argument("--rounds", type=int, default=3)
  args = parser.parse_args()
  print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; medians of "
        f"{args.rounds} rounds, fresh process and empty compilation cache each")
  print("| config | load_model (abstract) s | initialised, then restored s | ratio |")
  print("|---|---:|---:|---:|")
  with tempfile.TemporaryDirectory() as root:
    for i, config in enumerate(args.configs.split(",")):
      directory = _save(config, pathlib.Path(root) / str(i))
      abstract, initialised = [], []
      for _ in range(args.rounds):
        abstract.append(_time(directory, "abstract"))
        initialised.append(_time(directory, "initialised"))
      ratio = statistics.median(b / a for a, b in zip(abstract, initialised))
      print(f"| {config} | {statistics.median(abstract):.2f} | "
            f"{statistics.median(initialised):.2f} | {ratio:.1f}x |", flush=True)


if __name__ == "__main__":
  main()
