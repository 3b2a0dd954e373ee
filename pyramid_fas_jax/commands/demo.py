"""pyramid-fas demo [--workdir=runs/demo]

Builds SynthFAS 'bench' (about a minute on 2 cores), trains configs/demo.py, evaluates the best
checkpoint on the test split with the dev-EER threshold, and writes results.json, report.md,
plots/ and fig6_masks.png into the workdir. About 10 minutes on 2 CPU cores.
"""

import sys

from absl import flags

from pyramid_fas_jax.commands import common, exit_codes

# This run's flag: define_flags binds it.
_WORKDIR = None


def define_flags(flag_values: flags.FlagValues) -> None:
  global _WORKDIR
  _WORKDIR = flags.DEFINE_string("workdir", "runs/demo", "output directory",
                                 flag_values=flag_values)


def main(argv):
  if len(argv) > 1:
    exit_codes.usage_error("pyramid-fas demo", f"unexpected arguments {argv[1:]}")
  common.start_jax()
  from pyramid_fas_jax import evaluation
  from pyramid_fas_jax.experiment import demo
  config = demo.load_config(demo.REPO / "configs" / "demo.py")
  exit_codes.exit_if_bad_config("pyramid-fas demo", config, _WORKDIR.value)
  common.log_start()
  # Preempted (SIGTERM, Ctrl-C: saved, `pyramid-fas demo` again resumes) ends in cli.py.
  # So is a workdir locked by another run (files.lock.LockedError, one line, exit 2).
  results = demo.run_demo(_WORKDIR.value, config)
  print(evaluation.format_report(results))
  seconds = results.get("wall_time_s")
  took = "" if seconds is None else f"  (trained in {seconds / 60:.1f} min)"
  print(f"\nreport: {_WORKDIR.value}/report.md{took}", file=sys.stderr)
