"""Every config's CPU-scale model trained on SynthFAS at one budget, as one markdown table.

  python benchmarks/synth_results.py [--configs=resnet50_ps,resnet50_binary,...]
      [--protocols=intra,cross_domain/lowlight] [--seeds=0,1] [--steps=300]
      [--workdir=runs/synth_results]

Each entry is a config of configs/ (optionally with its options, e.g. `cdcn_ps,single_scale`
written `cdcn_ps+single_scale`) loaded with `synth_fas/<protocol>,runlocal`: the config's own
CPU-sized model, input size, head, scales and losses. What the runlocal smoke run cannot give, a
budget that learns from scratch, is the same for every entry so rows compare: Adam lr 1e-3
(constant), batch 32, `--steps` steps over every stored frame (data.epoch_unit 'frame', the
stream the table was measured on), no ImageNet initialisation (the demo's recipe). The test
split is scored per video at the protocol's default threshold (dev EER where there is a dev
split); the table gives mean +- std over seeds in %. Runs already finished in the workdir are
re-evaluated, not retrained, so an interrupted sweep resumes where it stopped; min/run (training
and evaluation, wall clock) counts the runs this call trained.
"""

import argparse
import json
import pathlib
import time

import numpy as np
from absl import logging

from pyramid_fas_jax.data import builders
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.experiment import reproduce
from pyramid_fas_jax.training import train

REPO = pathlib.Path(__file__).resolve().parents[1]

CONFIGS = ("resnet50_binary", "resnet50_ps", "resnet50_depth", "resnet50_multiclass",
           "resnet50_spp", "vgg16_ps", "densenet121_ps", "shufflenet_v2_ps", "mobilenet_v2_ps",
           "cdcn_ps", "cdcn_mask", "depthnet_ps", "cdcnpp_ps")
METRICS = ("ACER", "HTER", "AUC")


def budget_config(entry, protocol, seed, steps, data_dir):
  name, *options = entry.split("+")
  path = REPO / "configs" / f"{name}.py"
  if not path.exists():
    raise SystemExit(f"--configs: no config {path}")
  config = reproduce.load(path, ",".join([f"synth_fas/{protocol}", "runlocal", *options]),
                          data_dir, {"batch_size": 32, "seed": seed, "num_steps": steps,
                                     "log_every_steps": max(steps // 4, 1), "eval_every_steps": 0,
                                     "checkpoint_every_steps": steps, "eval.bootstrap": 0,
                                     # The README's table was measured on the frame stream;
                                     # at a fixed step budget the unit only changes the draw.
                                     "data.epoch_unit": "frame"})
  config.optim = fas.adam_config(lr=1e-3, schedule="constant")
  return config


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--configs", default=",".join(CONFIGS))
  p.add_argument("--protocols", default="intra")
  p.add_argument("--seeds", default="0,1")
  p.add_argument("--steps", type=int, default=300)
  p.add_argument("--workdir", default="runs/synth_results")
  args = p.parse_args()
  logging.set_verbosity(logging.INFO)  # train's progress lines: steps/s, images/s, ETA
  workdir = pathlib.Path(args.workdir).absolute()
  data_dir = str(workdir / "tfds")
  builders.build("synth_fas", data_dir, config="small", num_workers=2)
  seeds = [int(s) for s in args.seeds.split(",")]
  rows = []
  for protocol in args.protocols.split(","):
    for entry in args.configs.split(","):
      tests, seconds = [], []
      for seed in seeds:
        out = workdir / protocol.replace("/", "_") / f"{entry}_seed{seed}"
        trains = not (out / "checkpoints" / str(args.steps)).exists()  # else: re-evaluation only
        t0 = time.perf_counter()
        tests.append(train.train_and_evaluate(
            budget_config(entry, protocol, seed, args.steps, data_dir), out)["test"])
        if trains:
          seconds.append(time.perf_counter() - t0)
      stats = {k: (100 * np.mean([t[k] for t in tests]), 100 * np.std([t[k] for t in tests]))
               for k in METRICS}
      row = {"protocol": protocol, "config": entry, "seeds": seeds, "steps": args.steps,
             "threshold": tests[0]["threshold_source"].split(" ")[0],
             # training + evaluation, over the runs this call trained (None: all were done)
             "minutes_per_run": float(np.mean(seconds)) / 60 if seconds else None,
             **{k: stats[k][0] for k in METRICS}, **{f"{k}_std": stats[k][1] for k in METRICS}}
      rows.append(row)
      with open(workdir / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
      print(json.dumps(row), flush=True)
  print(f"\nSynthFAS small, runlocal models, Adam 1e-3, batch 32, {args.steps} steps, "
        f"seeds {args.seeds}; test split per video, mean +- std (%)")
  print("| protocol | config | threshold | ACER | HTER | AUC | min/run |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['protocol']} | `{r['config']}` | {r['threshold']} | " + " | ".join(
        f"{r[k]:.1f} +- {r[k + '_std']:.1f}" for k in METRICS) + " | " + (
            "-" if r["minutes_per_run"] is None else f"{r['minutes_per_run']:.1f}") + " |")


if __name__ == "__main__":
  main()
