"""Exit codes of every `pyramid-fas` command: the contract launch scripts, schedulers and
`train && evaluate` chains rely on (README, "Troubleshooting").

  0   done
  1   anything else: an unforeseen failure (its traceback is printed), or a run stopped on a
      non-finite loss
  2   a usage error or bad input (a flag, a config value, an input file, a checkpoint that
      cannot be used): one line on stderr naming it and what to do
  75  stopped on SIGTERM after saving a checkpoint: not finished, resumable by running the same
      command again (EX_TEMPFAIL of BSD's sysexits.h, "try again later"; SLURM requeues on it)
"""

import sys
import typing

from pyramid_fas_jax.files import outputs as outputs_lib

OK = 0
ERROR = 1
USAGE = 2
PREEMPTED = 75


def usage_error(prog: str, message) -> typing.NoReturn:
  """Print `prog: message` on stderr and exit USAGE. The message's first line names the bad
  input and what to do; further lines, if any, only list details (e.g. every missing video)."""
  print(f"{prog}: {str(message).strip() or 'bad input'}", file=sys.stderr)
  sys.exit(USAGE)


def exit_if_bad_config(prog: str, config, workdir=None, **kw) -> None:
  """experiment.checks.check of `config` (and `workdir`), with each problem printed as
  `prog: problem` on stderr and exit code USAGE; `kw` as check takes them."""
  # Lazy: every command imports this module, JAX-free ones (predict --model, score) too, and the
  # checks import the model and training modules (JAX).
  from pyramid_fas_jax.experiment import checks
  try:
    checks.check(config, workdir, **kw)
  except checks.ConfigError as e:
    lines = str(e).splitlines()
    for line in lines[:-1]:
      print(f"{prog}: {line}", file=sys.stderr)
    usage_error(prog, lines[-1])


def exit_if_outputs_clash(prog: str, inputs: dict, outputs: dict) -> None:
  """files.outputs.clash of a command's path flags ({flag: path}), refused as a usage error."""
  problem = outputs_lib.clash(inputs, outputs)
  if problem:
    usage_error(prog, problem)
