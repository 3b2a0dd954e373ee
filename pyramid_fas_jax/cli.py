"""`pyramid-fas <command> [--flag=value ...]`: dispatches to pyramid_fas_jax.commands.<module>.

Each run of a command defines its flags afresh on a FlagValues of its own (the module's
`define_flags`), so commands run one after another in one process (a notebook, a test) never see
each other's flags or values. Flag and config errors end in one line and exit code 2
(commands/flag_errors.py, commands/exit_codes.py). So does every failure the user can act on,
wherever it is raised: bad input (errors.InputError), a run stopped to resume (errors.Stopped),
Ctrl-C, a full disk; `_run` is the one place they are printed (exit_codes.failure).
"""

import contextlib
import difflib
import functools
import importlib
import signal
import sys

from absl import app, flags
from absl import logging as absl_logging

from pyramid_fas_jax.commands import exit_codes, flag_errors

# command name -> (module under pyramid_fas_jax.commands, one-line help)
COMMANDS = {
    "demo": ("demo", "build SynthFAS, train a small pyramid model, evaluate it, write a report"),
    "train": ("train", "train (and periodically evaluate) an experiment config; resumes"),
    "evaluate": ("evaluate", "score dev/test with a checkpoint; results.json, plots"),
    "import-weights": ("import_weights", "convert a PyTorch state dict into an Orbax checkpoint"),
    "predict": ("predict", "score images, videos or a .npy with a checkpoint; outputs to .npz"),
    "preprocess": ("preprocess", "face crops and pseudo depth of a video or image, as builds make"),
    "score": ("score", "metrics from dev/test score files (APCER, BPCER, ACER, HTER, EER, AUC)"),
    "export": ("export", "write a checkpoint's model as ONNX or StableHLO, with model.json"),
    "serve": ("serve", "a liveness web page and JSON endpoint for an ONNX export (127.0.0.1)"),
}
_PACKAGE = "pyramid_fas_jax.commands"
_HELP = ("-h", "--help", "--helpshort", "-?")


def _usage() -> str:
  width = max(map(len, COMMANDS))
  lines = ["usage: pyramid-fas <command> [--flag=value ...]", "", "commands:"]
  lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
  lines += ["", "`pyramid-fas <command> --help` lists a command's flags."]
  return "\n".join(lines)


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
    print(_usage())
    sys.exit(0 if len(argv) >= 2 else exit_codes.USAGE)
  name = argv[1]
  if name not in COMMANDS:
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    print(f"pyramid-fas: unknown command '{name}'{hint}\n\n{_usage()}", file=sys.stderr)
    sys.exit(exit_codes.USAGE)
  prog = f"pyramid-fas {name}"
  args = [prog] + argv[2:]
  # config_flags reads the --config.a.b overrides from sys.argv, not from the argv absl parses:
  # make them the same when main() is called with an argv of its own (a notebook, a test).
  with _sys_argv(args):
    flag_values = command_flags(name)
    module = _module(name)
    if any(a in _HELP for a in args[1:]):
      print(command_help(prog, module, flag_values))
      sys.exit(exit_codes.OK)
    if "--helpfull" in args[1:]:  # absl's own exits 1, as if asking for help were an error
      print(f"{(module.__doc__ or prog).strip()}\n\n{flag_values.get_help()}")
      sys.exit(exit_codes.OK)
    _run(prog, flag_values, lambda: app.run(
        functools.partial(_quiet, module.main), argv=args,
        flags_parser=functools.partial(_parse, flag_values)))


def _quiet(main, argv):
  # Libraries narrate at INFO through absl (Orbax's loads, the compilation cache, JAX's backend
  # probing): a command prints its own lines, and a refusal is its one line alone on stderr.
  # The commands that log progress (train, evaluate, demo) turn INFO on once their checks pass
  # (commands/common.log_start).
  absl_logging.set_verbosity(absl_logging.WARNING)
  return main(argv)


# The flags naming what a command writes, for the line of an interrupted one.
_OUTPUT_FLAGS = ("output", "workdir")


def _run(prog: str, flag_values: flags.FlagValues, run) -> None:
  """run(); a failure exit_codes.failure knows ends in one line on stderr and its exit code,
  anything else in its traceback (exit code 1)."""
  # Ctrl-C must end the command, however deep it lands. Python ignores (printing a traceback)
  # one raised in a finaliser or GC callback, JAX's run often; asyncio.run, Orbax's, installs
  # its own handler over the default one; and library code may swallow it. So SIGINT is
  # handled here (train and demo put their checkpointing handler over it while they run), and
  # an interrupt that did not propagate is raised once run() returns.
  interrupted, default_hook = [], sys.unraisablehook

  def on_sigint(signum, frame):
    interrupted.append(signum)
    raise KeyboardInterrupt

  def unraisable(hook_args):
    if hook_args.exc_type is not None and issubclass(hook_args.exc_type, KeyboardInterrupt):
      interrupted.append(hook_args.exc_type)
    else:
      default_hook(hook_args)

  try:
    # Also where it was started with SIGINT ignored (`cmd &` in a script): `kill -INT` is then
    # how a user or a scheduler stops it, and it must stop as promised, not run on.
    previous = signal.signal(signal.SIGINT, on_sigint)
  except ValueError:  # not the main thread (a notebook's worker): Python's default stays
    previous = None
  sys.unraisablehook = unraisable
  try:
    try:
      run()
    except SystemExit as e:  # app.run ends every command so, done or not
      if not interrupted or e.code not in (None, 0):
        raise
    if interrupted:
      raise KeyboardInterrupt
  except (KeyboardInterrupt, Exception) as e:
    outputs = [f"--{name}={flag_values[name].value}" for name in _OUTPUT_FLAGS
               if name in flag_values and flag_values[name].value is not None]
    known = exit_codes.failure(e, outputs)
    if known is None:
      raise
    code, line = known
    print(f"{prog}: {line}", file=sys.stderr)
    sys.exit(code)
  finally:
    sys.unraisablehook = default_hook
    if previous is not None:
      signal.signal(signal.SIGINT, previous)


def _module(name: str):
  return importlib.import_module(f"{_PACKAGE}.{COMMANDS[name][0]}")


def command_flags(name: str) -> flags.FlagValues:
  """A new FlagValues holding the flags of command `name`, defined by its module for this run,
  and absl's own (--verbosity, --flagfile, ...), each listed under the module defining it."""
  flag_values = flags.FlagValues()
  _module(name).define_flags(flag_values)
  flag_values.append_flag_values(flags.FLAGS)
  for owner, owned in flags.FLAGS.flags_by_module_dict().items():
    for flag in owned:
      flag_values.register_flag_by_module(owner, flag)
  return flag_values


def _parse(flag_values: flags.FlagValues, argv: list[str]) -> list[str]:
  rest = flag_errors.parse(flag_values, argv)
  # absl's flags are shared with flags.FLAGS, which app.run requires to be parsed.
  flags.FLAGS.mark_as_parsed()
  return rest


@contextlib.contextmanager
def _sys_argv(argv):
  saved, sys.argv = sys.argv, argv
  try:
    yield
  finally:
    sys.argv = saved


def command_help(prog: str, module, flag_values: flags.FlagValues) -> str:
  """The command's docstring and its own flags with their help (not absl's: --helpfull adds
  those)."""
  lines = [(module.__doc__ or prog).strip(), "", "flags:"]
  for name in (module.__name__, f"{_PACKAGE}.common"):
    # Drop the line naming the module: which module defines a flag is not the user's business.
    lines += [line for line in flag_values.module_help(name).splitlines() if line[:1].isspace()]
  lines += ["", "--helpfull lists every flag, absl's and the libraries' too."]
  return "\n".join(lines)


if __name__ == "__main__":
  main()
