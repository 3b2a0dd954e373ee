"""Which XLA:CPU library fusions to hand YNNPACK in the train step: wall and process CPU seconds
of one step of each config under each choice, alternating, in one run. The measurements behind
`conv_ops._CPU_OPTIONS` (convolutions always go to Eigen, see models/conv_ops.py).

  python benchmarks/cpu_fusions.py [--configs=resnet50_ps:8,cdcn_ps:2,demo:16] [--steps=5]

Columns (`xla_cpu_experimental_ynn_fusion_type`):
  dot+reduce  YNNPACK dots and reductions
  reduce      YNNPACK reductions, Eigen dots (what `conv_ops.compiler_options()` gives)
  dot         YNNPACK dots, XLA's own reductions
Each cell is the median wall time / median process CPU time (all threads) over `--steps` steps
after two warm-up steps; a config's variants are stepped in turn, so load from other jobs hits
all alike. Wall time is what a run waits for: a kernel that uses fewer threads can cost the same
CPU time and more wall time. Random data at the config's input size, from scratch (no
pretrained weights).
"""

import argparse
import pathlib
import statistics
import sys
import time

import jax

from pyramid_fas_jax.experiment.demo import load_config
from pyramid_fas_jax.models import conv_ops
from pyramid_fas_jax.training import train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from architectures import fake_batch  # noqa: E402  (benchmarks/ is not a package)

VARIANTS = {"dot+reduce": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
            "reduce": "LIBRARY_FUSION_TYPE_REDUCE",
            "dot": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


def stepper(config, fusions, batch):
  """A thunk running one train step of `config` compiled with YNNPACK given `fusions`."""
  graphdef, state = train_step.create_train_state(config)
  options = {**(conv_ops.compiler_options() or {}), "xla_cpu_experimental_ynn_fusion_type": fusions}
  step = jax.jit(lambda s, b: train_step.train_step(graphdef, s, b, model_cfg=config.model),
                 donate_argnums=0, compiler_options=options)
  holder = {"state": state}

  def run():
    holder["state"], metrics = step(holder["state"], batch)
    jax.block_until_ready(metrics)
  return run


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--configs", default="resnet50_ps:8,cdcn_ps:2,demo:16")
  p.add_argument("--steps", type=int, default=5)
  args = p.parse_args()
  print(f"JAX {jax.__version__}, {jax.devices()[0].device_kind}; wall s / process CPU s per "
        "train step (medians)")
  print("| config | batch | " + " | ".join(VARIANTS) + " |")
  print("|---|---:|" + "---:|" * len(VARIANTS))
  for entry in args.configs.split(","):
    name, batch_size = entry.split(":")
    config = load_config(REPO / "configs" / f"{name}.py")
    config.init_from = ""
    batch = fake_batch(int(batch_size), config.input.size)
    runs = {k: stepper(config, v, batch) for k, v in VARIANTS.items()}
    for run in runs.values():
      run()
      run()
    wall, cpu = {k: [] for k in runs}, {k: [] for k in runs}
    for _ in range(args.steps):
      for k, run in runs.items():
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall[k].append(time.perf_counter() - start)
        cpu[k].append(time.process_time() - start_cpu)
    print(f"| {name} | {batch_size} | "
          + " | ".join(f"{statistics.median(wall[k]):.3f} / {statistics.median(cpu[k]):.3f}"
                       for k in runs) + " |", flush=True)


if __name__ == "__main__":
  main()
