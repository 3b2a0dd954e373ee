"""Exit codes of every `pyramid-fas` command: the contract launch scripts, schedulers and
`train && evaluate` chains rely on (README, "Troubleshooting").

  0   done
  1   anything else: an unforeseen failure (its traceback is printed), or a run stopped on a
      non-finite loss
  2   a usage error or bad input (a flag, a config value, an input file, a dataset that is not
      built, a corrupt record file or export, a checkpoint that cannot be used): one line on
      stderr naming it and what to do
  74  a write failed for lack of space (a full disk, a quota, a file-size limit): one line naming
      the file (EX_IOERR of BSD's sysexits.h)
  75  stopped on SIGTERM or SIGINT (Ctrl-C) after saving a checkpoint: not finished, resumable by
      running the same command again (EX_TEMPFAIL of BSD's sysexits.h, "try again later"; SLURM
      requeues on it)
  130 interrupted by SIGINT (Ctrl-C) in a command that does not save to resume (128 + SIGINT,
      the shell's convention): one line saying so
"""

import errno
import sys
import typing

from pyramid_fas_jax import errors
from pyramid_fas_jax.files import atomic
from pyramid_fas_jax.files import outputs as outputs_lib

OK = 0
ERROR = 1
USAGE = 2
NO_SPACE = 74
PREEMPTED = 75
INTERRUPTED = 130

# The errnos of a write that ran out of room: no space, over quota, over a file-size limit.
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def no_space(e: BaseException) -> bool:
  return isinstance(e, OSError) and e.errno in _NO_SPACE_ERRNOS


def failure(e: BaseException, outputs: typing.Sequence[str] = ()) -> tuple[int, str] | None:
  """(exit code, the one line after `pyramid-fas <command>: `) of a failure cli.py reports
  without a traceback; None for an unforeseen one (exit ERROR, traceback). `outputs` names the
  command's output flags as given (`--output=x.npz`), for the line of an interruption."""
  if isinstance(e, KeyboardInterrupt):
    written = f" {', '.join(outputs)} may be missing or incomplete;" if outputs else ""
    return INTERRUPTED, f"interrupted (Ctrl-C) before it finished;{written} rerun the command"
  if isinstance(e, errors.Stopped):
    return PREEMPTED, str(e)
  if isinstance(e, errors.InputError):
    return USAGE, str(e).strip().splitlines()[0]
  if isinstance(e, atomic.WriteError):  # the package's own writes: the file and the remedy
    return NO_SPACE, str(e)
  if no_space(e):
    # A failed write() carries no file name; the package's own writes add it.
    where = f"writing {e.filename}" if e.filename else "a write failed"
    return NO_SPACE, (f"{where}: {e.strerror or 'no space left'}; free disk space (or raise the "
                      "quota or `ulimit -f`) and rerun the same command")
  return None


def usage_error(prog: str, message) -> typing.NoReturn:
  """Print `prog: message` on stderr and exit USAGE. The message's first line names the bad
  input and what to do; further lines, if any, only list details (e.g. every missing video).
  A disk that filled up is not bad input: that OSError goes on to cli.py (NO_SPACE)."""
  if no_space(message):
    raise message
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
