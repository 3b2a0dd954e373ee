"""SynthFAS as an instrument: the paper's Table II heads trained over seeds, compared with paired
bootstrap intervals, their masks' localisation of partial attacks, and the README's tables.

  python benchmarks/synth_results.py train  [--rows=pyramid,binary,...] [--protocols=intra,...]
      [--seeds=0,1,2,3,4] [--steps=6000] [--recipe=constant_lr] [--jobs=2]
      [--workdir=runs/synth_results]
  python benchmarks/synth_results.py report [same selection]     # JSON + the README's tables
  python benchmarks/synth_results.py train --steps=2400   # the demo's budget, set beside them

Every row is the demo's model (`configs/demo.py`: the runlocal ResNet, 64x64 input, 8x8 map) with
one Table II supervision, trained from scratch under one recipe (`fas.demo_recipe`'s batch 16 and
augmentation, the checkpoint with the best dev EER; `--recipe`, synth_report.RECIPES, sets the
lr schedule and evaluation cadence) on SynthFAS `bench` (`small`'s training subjects, 34 test
subjects: README "Resolution"; the cross_domain protocols `bench_cross`, 136 test subjects, as
the held-out domain is a quarter of them). Rows differ only in their head, labels and loss.
Table II's recipe, the default, is `constant_lr` (Adam 1e-3 throughout, an evaluation every 400
steps), under which the budget study below was measured; `lr_drop` is the demo's own (1e-3
divided by 10 at epoch 52, an evaluation every 600 steps).

`train` is resumable: a finished run leaves a record in benchmarks/results/synth_runs/<recipe>/
(its curve, best step, test figures, localisation and per-video test scores; commit them) and is
skipped on any clone that has the record; an interrupted run resumes from its last checkpoint in
the workdir. Records are keyed by their recipe and budget (`--steps`): the table's budget,
6000 steps, is past where the rows' dev curves stop improving (README "Budget"); `train`
continues the runs of `train --steps=2400` (the demo's budget) in place (both recipes' schedules
count epochs, never the total, so nothing in a run depends on how long it will be) and records
them apart, and `report` sets the 2400-step records beside the table (`--budget_steps`).
`--jobs=2` trains two runs at once, each pinned to its own core (1.3x the runs per hour of one run
on both cores, on the 2-core development machine). `report` reads the records alone (no
checkpoint, nothing retrained) and writes benchmarks/results/synth_results.json (every run of the
recipe and the analysis), docs/synth_budget.png and the README's SynthFAS tables between their
markers.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import synth_report  # noqa: E402  (benchmarks/ is not a package)


def run_config(row: str, protocol: str, seed: int, steps: int, data_dir,
               recipe: str = synth_report.RECIPE):
  """The config of one run: the row's config file and options, runlocal, trained for `steps`
  under `recipe` (synth_report.RECIPES; by default Table II's)."""
  from pyramid_fas_jax.experiment import config as fas
  from pyramid_fas_jax.experiment import reproduce
  name, *options = synth_report.ROWS[row]["entry"].split("+")
  config = reproduce.load(REPO / "configs" / f"{name}.py",
                          ",".join([f"synth_fas/{protocol}", "runlocal", *options]), data_dir,
                          {"data.builder_config": synth_report.build_for(protocol),
                           "seed": seed})
  return fas.demo_recipe(config, steps, **synth_report.RECIPES[recipe]["args"])


def digest(row: str, protocol: str, seed: int, steps: int,
           recipe: str = synth_report.RECIPE) -> str:
  """The config digest a record of this run must carry to be reused (synth_report.recorded)."""
  return synth_report.config_digest(run_config(row, protocol, seed, steps, None, recipe))


def run_dir(workdir: pathlib.Path, row: str, protocol: str, seed: int,
            recipe: str = synth_report.RECIPE) -> pathlib.Path:
  return workdir / recipe / synth_report.run_path(row, protocol, seed)


def train_one(args) -> None:
  """One run in this process (a `train` job's child): train or resume it, then record it."""
  from absl import logging

  from pyramid_fas_jax.training import compile_cache, train
  logging.set_verbosity(logging.INFO)
  compile_cache.enable()
  row, protocol, seed = args.one.split(":")
  seed = int(seed)
  config = run_config(row, protocol, seed, args.steps, args.data_dir, args.recipe)
  path = run_dir(args.workdir, row, protocol, seed, args.recipe)
  if not (path / "eval" / f"step_{args.steps}.json").exists():
    train.train_and_evaluate(config, path)
  rec = synth_report.record_run(path, config, row, protocol, seed, args.steps, args.recipe)
  where = synth_report.record_dir(row, protocol, seed, args.steps, args.recipe)
  print(f"recorded in {where}: test ACER "
        f"{100 * rec['test']['ACER']:.2f}% at step {rec['best_step']}", flush=True)


def train_all(args, runs) -> None:
  from pyramid_fas_jax.data import builders
  for build in sorted({synth_report.build_for(protocol) for _, protocol, _ in runs}):
    builders.build("synth_fas", args.data_dir, config=build, num_workers=args.jobs)
  todo = [r for r in runs
          if synth_report.recorded(*r, args.steps, digest, args.recipe) is None]
  print(f"{len(runs) - len(todo)} of {len(runs)} runs finished; training {len(todo)}, "
        f"{args.jobs} at a time", flush=True)
  cores = sorted(os.sched_getaffinity(0))
  running: dict = {}  # core -> (process, run, started)
  failed = []
  while todo or running:
    for core in cores[:args.jobs]:
      proc = running.get(core)
      if proc is not None and proc[0].poll() is not None:
        p, run, started = running.pop(core)
        status = "done" if p.returncode == 0 else f"FAILED (exit {p.returncode})"
        if p.returncode:
          failed.append(run)
        print(f"{':'.join(map(str, run))} {status} in {(time.time() - started) / 60:.1f} min; "
              f"{len(todo)} to start", flush=True)
      if core not in running and todo:
        run = todo.pop(0)
        out = run_dir(args.workdir, *run, args.recipe)
        out.mkdir(parents=True, exist_ok=True)
        log = open(out / "train.log", "a", encoding="utf-8")  # noqa: SIM115  (the child's)
        cmd = [sys.executable, __file__, "train", f"--one={':'.join(map(str, run))}",
               f"--steps={args.steps}", f"--recipe={args.recipe}", f"--workdir={args.workdir}",
               f"--data_dir={args.data_dir}"]
        pin = {core} if args.jobs > 1 else set(cores)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=lambda pin=pin: os.sched_setaffinity(0, pin))
        running[core] = (proc, run, time.time())
        print(f"{':'.join(map(str, run))} started on core(s) {sorted(pin)}: {out}/train.log",
              flush=True)
    time.sleep(2)
  if failed:
    raise SystemExit(f"{len(failed)} run(s) failed: " + ", ".join(":".join(map(str, r))
                                                                 for r in failed))


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("command", choices=("train", "report"))
  p.add_argument("--rows", default=",".join(synth_report.ROWS))
  p.add_argument("--protocols", default="intra,cross_domain/lowlight")
  p.add_argument("--seeds", default="0,1,2,3,4")
  p.add_argument("--steps", type=int, default=6000)
  p.add_argument("--recipe", choices=tuple(synth_report.RECIPES), default=synth_report.RECIPE,
                 help="how each run trains besides its steps (synth_report.RECIPES)")
  p.add_argument("--budget_steps", type=int, default=2400,
                 help="report: the same runs' records at this budget, set beside the --steps "
                 "table (the budget study; 0: none)")
  p.add_argument("--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))))
  p.add_argument("--workdir", default="runs/synth_results")
  p.add_argument("--data_dir", default=None, help="default: <workdir>/tfds")
  p.add_argument("--one", default=None, help=argparse.SUPPRESS)
  args = p.parse_args()
  args.workdir = pathlib.Path(args.workdir).absolute()
  args.data_dir = args.data_dir or str(args.workdir / "tfds")
  unknown = set(args.rows.split(",")) - set(synth_report.ROWS)
  if unknown:
    raise SystemExit(f"--rows: unknown {sorted(unknown)}; known: {list(synth_report.ROWS)}")
  if args.one:
    return train_one(args)
  seeds = [int(s) for s in args.seeds.split(",")]
  # Seed-major: an interrupted sweep leaves every row with the same number of seeds.
  runs = [(row, protocol, seed) for seed in seeds for protocol in args.protocols.split(",")
          for row in args.rows.split(",")]
  if args.command == "train":
    return train_all(args, runs)
  return synth_report.report(runs, args.steps, args.budget_steps, digest, args.recipe)


if __name__ == "__main__":
  main()
