"""Binary-score baseline vs pyramid-mask supervision on SynthFAS, at the same budget.

  python benchmarks/supervision_comparison.py [--steps=300] [--seeds=0,1]
      [--protocols=intra,cross_domain/lowlight] [--workdir=runs/comparison]

Trains the demo's CPU-sized ResNet (configs/demo.py) with each head on each protocol and seed,
then prints test ACER/HTER/AUC (dev-EER threshold where the protocol has a dev split) as one
table, mean and std over seeds.
"""

import argparse
import pathlib
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyramid_fas_jax import train  # pylint: disable=wrong-import-position
from pyramid_fas_jax.data import builders  # pylint: disable=wrong-import-position
from pyramid_fas_jax.demo import load_config  # pylint: disable=wrong-import-position

HEADS = {"binary": ("binary", (1,)), "pyramid": ("pyramid_mask", (8, 4, 2, 1))}


def run(workdir, data_dir, protocol, head, seed, steps):
  config = load_config(REPO / "configs" / "demo.py", f"synth_fas/{protocol},runlocal")
  config.data.data_dir = data_dir
  config.model.head, config.model.scales = HEADS[head]
  config.seed = seed
  config.num_steps = steps
  config.eval_every_steps = 0
  config.checkpoint_every_steps = steps
  config.eval.bootstrap = 0
  out = pathlib.Path(workdir) / protocol.replace("/", "_") / f"{head}_seed{seed}"
  return train.train_and_evaluate(config, out)["test"]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--seeds", default="0,1")
  p.add_argument("--protocols", default="intra,cross_domain/lowlight")
  p.add_argument("--workdir", default="runs/comparison")
  args = p.parse_args()
  data_dir = str(pathlib.Path(args.workdir).absolute() / "tfds")
  builders.build("synth_fas", data_dir, config="small", num_workers=2)
  rows = []
  for protocol in args.protocols.split(","):
    for head in HEADS:
      tests = [run(args.workdir, data_dir, protocol, head, int(s), args.steps)
               for s in args.seeds.split(",")]
      stats = {k: (100 * np.mean([t[k] for t in tests]), 100 * np.std([t[k] for t in tests]))
               for k in ("ACER", "HTER", "AUC")}
      rows.append((protocol, head, tests[0]["threshold_source"].split(" ")[0], stats))
      print(protocol, head, stats, flush=True)
  print(f"\n{args.steps} steps, seeds {args.seeds}, SynthFAS small, test split, mean +- std (%)")
  print("| protocol | supervision | threshold | ACER | HTER | AUC |\n|---|---|---|---|---|---|")
  for protocol, head, thr, s in rows:
    print(f"| {protocol} | {head} | {thr} | " + " | ".join(
        f"{s[k][0]:.1f} +- {s[k][1]:.1f}" for k in ("ACER", "HTER", "AUC")) + " |")


if __name__ == "__main__":
  main()
