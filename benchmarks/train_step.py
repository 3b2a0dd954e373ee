"""Train-step time of the paper's two models at 256x256 (ResNet50-PS, CDCN-PS).

  python benchmarks/train_step.py [--batch_size=2] [--steps=5] [--configs=resnet50_ps,cdcn_ps]

Prints compile time, median step time, images/s and XLA's memory estimate per model, on whatever
JAX backend is default (CPU here; GPU/TPU where present).
"""

import argparse
import importlib.util
import pathlib
import statistics
import time

import jax
import numpy as np

from pyramid_fas_jax import train_step

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name, arg=None):
  spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def fake_batch(n, size):
  rng = np.random.default_rng(0)
  label = np.arange(n, dtype=np.int32) % 2
  mask = np.broadcast_to(label[:, None, None], (n, size, size)).astype(np.float32)
  return {"image": rng.normal(size=(n, size, size, 3)).astype(np.float32), "mask": mask,
          "depth": mask * rng.uniform(size=(n, size, size)).astype(np.float32), "label": label,
          "species": (1 - label).astype(np.int32)}


def bench(name, batch_size, steps):
  config = load_config(name)
  graphdef, state = train_step.create_train_state(config)
  batch = fake_batch(batch_size, config.input.size)
  step = train_step.jit_train_step(graphdef, config.model)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  med = statistics.median(times)
  temp_mb = getattr(mem, "temp_size_in_bytes", 0) / 2**20 if mem else float("nan")
  arg_mb = getattr(mem, "argument_size_in_bytes", 0) / 2**20 if mem else float("nan")
  n_params = sum(x.size for x in jax.tree.leaves(state) if hasattr(x, "size"))
  return (f"{name:<12} {config.input.size:>4} {batch_size:>5} {compile_s:>9.1f} {med * 1e3:>10.0f} "
          f"{batch_size / med:>8.2f} {arg_mb:>9.0f} {temp_mb:>9.0f}   {n_params:,} state values")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batch_size", type=int, default=2)
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--configs", default="resnet50_ps,cdcn_ps")
  args = p.parse_args()
  print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{jax.device_count()} device(s)")
  print(f"{'config':<12} {'size':>4} {'batch':>5} {'compile_s':>9} {'step_ms':>10} {'img/s':>8} "
        f"{'args_MiB':>9} {'temp_MiB':>9}")
  for name in args.configs.split(","):
    print(bench(name, args.batch_size, args.steps), flush=True)


if __name__ == "__main__":
  main()
