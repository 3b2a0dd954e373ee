"""The demo's figures over seeds, as a new user gets them: `make demo`'s run (configs/demo.py,
`pyramid-fas demo`) with seeds 0, 1, ..., each in a process of its own on every core of the
machine, one after another.

  python benchmarks/demo_seeds.py run [--seeds=0,1,2,3,4] [--workdir=runs/demo_seeds]
  python benchmarks/demo_seeds.py report

`run` skips the seeds recorded in benchmarks/results/demo_seeds.json and adds each seed's record
as it finishes (an interrupted run resumes from its last checkpoint). A record carries a digest
of configs/demo.py's config (`recipe`): after a change to the demo, its seeds are measured
afresh, never mixed with the old recipe's. Run it on an idle machine:
the minutes it records are the demo's. SynthFAS is built once, into <workdir>/tfds, by the first
seed (whose minutes include the build, as `make demo`'s do). `report` writes the README's demo
block and the closing paragraph of configs/demo.py's docstring from the JSON alone
(tests/test_synth_instrument.py checks both).
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import synth_report  # noqa: E402  (benchmarks/ is not a package)

RESULTS = REPO / "benchmarks" / "results" / "demo_seeds.json"
CONFIG = REPO / "configs" / "demo.py"
BEGIN, END = "<!-- demo_seeds: begin -->", "<!-- demo_seeds: end -->"
DOC_START = "Measured over seeds"
TARGET = 0.15  # issue 22: every seed of the demo at test ACER <= 15%


def machine() -> dict:
  import jax
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "jax": jax.__version__}


def recipe(config=None) -> str:
  """A digest of the demo's config but its seed and data_dir: records of another recipe are
  another demo's, never mixed with this one's."""
  if config is None:
    from pyramid_fas_jax.experiment import demo
    config = demo.load_config(CONFIG)
  return synth_report.config_digest(config)


def run_one(seed: int, workdir: pathlib.Path) -> dict:
  """The demo with `seed`, in this process; its record."""
  from absl import logging

  from pyramid_fas_jax.experiment import demo
  from pyramid_fas_jax.training import compile_cache
  logging.set_verbosity(logging.INFO)
  compile_cache.enable()
  config = demo.load_config(CONFIG)
  config.seed = seed
  config.data.data_dir = str(workdir / "tfds")
  digest = recipe(config)
  started = time.time()
  results = demo.run_demo(workdir / f"seed{seed}", config)
  test = results["test"]
  return {"seed": seed, "recipe": digest, "best_step": results["step"],
          "threshold": test["threshold"],
          "test": {k: test[k] for k in ("ACER", "HTER", "AUC", "APCER", "BPCER",
                                        "APCER_per_species")},
          "test_ACER_interval": test["bootstrap"]["ACER"],
          "trained_s": results["wall_time_s"], "process_s": time.time() - started,
          "machine": machine()}


def load() -> dict:
  """The recorded seeds of today's recipe (configs/demo.py as it is)."""
  data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"seeds": []}
  current = recipe()
  stale = [r["seed"] for r in data["seeds"] if r.get("recipe") != current]
  if stale:
    print(f"{RESULTS}: seeds {stale} were measured with another configs/demo.py: left out",
          flush=True)
  return {"seeds": [r for r in data["seeds"] if r.get("recipe") == current]}


def run(seeds, workdir: pathlib.Path) -> None:
  from pyramid_fas_jax.files import atomic
  done = {r["seed"] for r in load()["seeds"]}
  for seed in seeds:
    if seed in done:
      print(f"seed {seed}: recorded", flush=True)
      continue
    out = workdir / f"seed{seed}.json"
    log = workdir / f"seed{seed}.log"
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"seed {seed}: running the demo, log {log}", flush=True)
    with open(log, "a", encoding="utf-8") as f:
      proc = subprocess.run([sys.executable, __file__, "run", f"--one={seed}",
                             f"--workdir={workdir}"], stdout=f, stderr=subprocess.STDOUT,
                            check=False)
    if proc.returncode:
      raise SystemExit(f"seed {seed}: the demo failed (exit {proc.returncode}); see {log}")
    rec = json.loads(out.read_text())
    data = load()
    data["seeds"] = sorted(data["seeds"] + [rec], key=lambda r: r["seed"])
    atomic.write_text(RESULTS, json.dumps(data, indent=1) + "\n")
    print(f"seed {seed}: test ACER {100 * rec['test']['ACER']:.2f}% at step "
          f"{rec['best_step']}, {rec['trained_s'] / 60:.1f} min", flush=True)


# ---------------------------------------------------------------- the README and docstring


def summary(data) -> dict:
  acer = np.array([r["test"]["ACER"] for r in data["seeds"]])
  return {"n": len(acer), "mean": float(acer.mean()), "min": float(acer.min()),
          "max": float(acer.max()), "within": int((acer <= TARGET).sum()),
          "minutes": [r["trained_s"] / 60 for r in data["seeds"]]}


def render(data) -> str:
  s = summary(data)
  machines = {(m["cpu"], m["cores"], m["jax"]) for m in (r["machine"] for r in data["seeds"])}
  where = "; ".join(f"{cpu}, {cores} cores, JAX {jax}" for cpu, cores, jax in sorted(machines))
  lines = [f"Seeds {', '.join(str(r['seed']) for r in data['seeds'])} of `make demo`'s run "
           f"(`python benchmarks/demo_seeds.py`, each on the whole idle machine: {where}): "
           f"test ACER {100 * s['mean']:.1f}% mean, {100 * s['min']:.1f}-{100 * s['max']:.1f}% "
           f"range; {s['within']} of {s['n']} seeds at or under {100 * TARGET:.0f}%. "
           f"Training took {min(s['minutes']):.1f}-{max(s['minutes']):.1f} "
           "minutes a seed (the first seed's includes building SynthFAS):", "",
           "| seed | test ACER (95% CI over videos) | HTER | AUC | APCER (worst species) | "
           "BPCER | dev-EER threshold | best step | minutes |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
  for r in data["seeds"]:
    t, ci = r["test"], r["test_ACER_interval"]
    lines.append(f"| {r['seed']} | {100 * t['ACER']:.2f} ({100 * ci[0]:.1f}-{100 * ci[1]:.1f}) "
                 f"| {100 * t['HTER']:.2f} | {t['AUC']:.3f} | {100 * t['APCER']:.2f} | "
                 f"{100 * t['BPCER']:.2f} | {r['threshold']:.3f} | {r['best_step']} | "
                 f"{r['trained_s'] / 60:.1f} |")
  return "\n".join(lines) + "\n"


def docstring_paragraph(data) -> str:
  import textwrap
  s = summary(data)
  return textwrap.fill(
      f"{DOC_START} (`python benchmarks/demo_seeds.py`, README \"The demo\"): test ACER "
      f"{100 * s['mean']:.1f}% mean, {100 * s['min']:.1f}-{100 * s['max']:.1f}% over seeds "
      f"{', '.join(str(r['seed']) for r in data['seeds'])} ({s['within']} of {s['n']} at or "
      f"under {100 * TARGET:.0f}%), in "
      f"{min(s['minutes']):.1f}-{max(s['minutes']):.1f} minutes each on "
      f"{'/'.join(sorted({str(r['machine']['cores']) for r in data['seeds']}))} idle CPU cores; "
      "figures differ between CPU models (XLA:CPU's float results do, and 2400 steps amplify "
      "that), so another machine's run is one more draw from this spread.", 100)


def report() -> None:
  from pyramid_fas_jax.files import atomic
  data = load()
  if not data["seeds"]:
    raise SystemExit(f"{RESULTS}: no seed recorded; run `python {__file__} run` first")
  readme = REPO / "README.md"
  atomic.write_text(readme, synth_report.replace_block(readme.read_text(), render(data),
                                                       BEGIN, END))
  atomic.write_text(CONFIG, synth_report.replace_docstring_paragraph(
      CONFIG.read_text(), docstring_paragraph(data), DOC_START))
  print(render(data))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("command", choices=("run", "report"))
  p.add_argument("--seeds", default="0,1,2,3,4")
  p.add_argument("--workdir", default="runs/demo_seeds")
  p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
  args = p.parse_args()
  workdir = pathlib.Path(args.workdir).absolute()
  if args.one is not None:
    from pyramid_fas_jax.files import atomic
    rec = run_one(args.one, workdir)
    atomic.write_text(workdir / f"seed{args.one}.json", json.dumps(rec, indent=1))
    return None
  if args.command == "run":
    return run([int(s) for s in args.seeds.split(",")], workdir)
  return report()


if __name__ == "__main__":
  main()
