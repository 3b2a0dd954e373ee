"""`pyramid-fas <command> [--flag=value ...]`: dispatches to pyramid_fas_jax.commands.<module>.

Flag and config errors end in one line and exit code 2 (commands/exit_codes.py): an unknown or
mistyped `--config.a.b=value` override is named with the fields next to it, a config file that
does not exist or whose `get_config(arg)` refuses its argument is named with the reason.
"""

import contextlib
import difflib
import importlib
import importlib.util
import pathlib
import re
import sys

from pyramid_fas_jax.commands import exit_codes

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
_OVERRIDE = re.compile(r"^--?(?:no)?config\.([\w.]+)(?:=(.*))?$", re.DOTALL)


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
  module = _import_command(COMMANDS[name][0])
  prog = f"pyramid-fas {name}"
  if any(a in _HELP for a in argv[2:]):
    print(command_help(prog, module))
    sys.exit(exit_codes.OK)
  if "--helpfull" in argv[2:]:  # absl's own exits 1, as if asking for help were an error
    from absl import flags  # pylint: disable=g-import-not-at-top
    print(f"{(module.__doc__ or prog).strip()}\n\n{flags.FLAGS.get_help()}")
    sys.exit(exit_codes.OK)
  from absl import app  # pylint: disable=g-import-not-at-top

  # config_flags reads the --config.a.b overrides from sys.argv, not from the argv absl parses:
  # make them the same when main() is called with an argv of its own (a notebook, a test).
  with _sys_argv([prog] + argv[2:]):
    app.run(module.main, argv=[prog] + argv[2:], flags_parser=_parse_flags)


@contextlib.contextmanager
def _sys_argv(argv):
  saved, sys.argv = sys.argv, argv
  try:
    yield
  finally:
    sys.argv = saved


def _import_command(module_name: str):
  """pyramid_fas_jax.commands.<module_name>, its flags defined afresh and alone.

  Commands define flags of the same names (--config, --input, ...) at import, and a parsed flag
  keeps its value: so when main() runs again in one process (a notebook, a test), the flags the
  earlier commands defined, config_flags' `config.*` overrides among them, are removed and the
  command modules forgotten, and this command's module is imported anew with its defaults.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top

  fv = flags.FLAGS
  ours = [m for m in fv.flags_by_module_dict() if m.startswith(f"{_PACKAGE}.")]
  names = {f.name for m in ours for f in fv.flags_by_module_dict()[m]}
  names |= {n for n in fv if n.startswith("config.")}
  for n in names:
    delattr(fv, n)
  for m in ours + [f"{_PACKAGE}.{module_name}"]:
    sys.modules.pop(m, None)
  return importlib.import_module(f"{_PACKAGE}.{module_name}")


def command_help(prog: str, module) -> str:
  """The command's docstring and its own flags with their help (absl's --helpshort lists the
  flags of the main module, which is not where commands define theirs)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  lines = [(module.__doc__ or prog).strip(), "", "flags:"]
  for name in (module.__name__, f"{_PACKAGE}.common"):
    # Drop the line naming the module: which module defines a flag is not the user's business.
    lines += [line for line in flags.FLAGS.module_help(name).splitlines() if line[:1].isspace()]
  lines += ["", "--helpfull lists every flag, absl's and the libraries' too."]
  return "\n".join(lines)


def _parse_flags(argv):
  """absl flag parsing; every error it can meet ends in one line and exit code 2."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  prog = argv[0]
  spec = _config_spec(argv)
  if spec is not None:
    _check_config_file(prog, spec)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    exit_codes.usage_error(prog, _flag_error(spec, e))
  except (AttributeError, KeyError) as e:
    # config_flags raises these for an override of a field the config lacks.
    bad = _unknown_override(argv, spec)
    if bad is None:
      raise
    exit_codes.usage_error(prog, bad)
  except IOError as e:  # the config could not be loaded (an import error inside it, ...)
    exit_codes.usage_error(prog, f"--config={spec}: {str(e).splitlines()[0]}")


def _config_spec(argv) -> str | None:
  """The value of --config (`--config=X` or `--config X`; the last one counts), or None."""
  values = []
  for i, arg in enumerate(argv[1:], start=1):
    if arg.startswith(("--config=", "-config=")):
      values.append(arg.split("=", 1)[1])
    elif arg in ("--config", "-config") and i + 1 < len(argv):
      values.append(argv[i + 1])
  return values[-1] if values else None


def _check_config_file(prog, spec: str) -> None:
  file = pathlib.Path(spec.split(":", 1)[0])
  if file.is_file():
    return
  folder = file.parent if file.parent.is_dir() else pathlib.Path("configs")
  names = sorted(str(p) for p in folder.glob("*.py")) if folder.is_dir() else []
  close = difflib.get_close_matches(str(file), names, n=3)
  hint = (f"; did you mean {' or '.join(close)}?" if close else
          f"; the configs in {folder}: {', '.join(pathlib.Path(n).name for n in names)}"
          if names else "")
  what = "is a directory" if file.is_dir() else "does not exist"
  exit_codes.usage_error(prog, f"--config={spec}: the config file {file} {what}{hint}")


def _load_config(spec: str):
  """`get_config(arg)` of the config file, as config_flags loads it."""
  file, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(pathlib.Path(file).stem, file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(*([arg] if arg else []))


def _flag_error(spec, error) -> str:
  """One line for an absl or config_flags error: get_config's own message for a config that
  refuses its argument, the field and its type for an override of the wrong type."""
  text = str(error)
  if "Error whilst parsing config file" in text:
    # config_flags embeds get_config's traceback; its last line is the reason.
    reason = [line for line in text.splitlines() if line.strip()][-1]
    reason = re.sub(r"^\w+(Error|Exception): ", "", reason.strip())
    return f"--config={spec}: {reason}"
  match = re.match(r"flag --(config\.[\w.]+)=(.*?): (.*)", text, re.DOTALL)
  if match and spec is not None:
    field, value = match.group(1)[len("config."):], match.group(2)
    current = _field_value(spec, field)
    if current is not _MISSING:
      return (f"--config.{field}={value}: not a valid {type(current).__name__} (the field's type; "
              f"it is {current!r} in {spec}): {match.group(3).splitlines()[0]}")
  match = re.search(r"Type <class 'NoneType'> of field config\.([\w.]+) is not supported", text)
  if match:
    return (f"--config.{match.group(1)}: the field is None in this config, so the command line "
            "cannot tell its type; give it a typed default (a value, or "
            "ml_collections.config_dict.placeholder(type)) in the config file")
  return text.splitlines()[0] if text.strip() else type(error).__name__


_MISSING = object()


def _field_value(spec: str, field: str):
  try:
    node = _load_config(spec)
    for part in field.split("."):
      node = node[part]
    return node
  except Exception:  # pylint: disable=broad-except
    return _MISSING


def _unknown_override(argv, spec) -> str | None:
  """'<the override>: the config has no field optim.lrr; did you mean optim.lr?' for the first
  override whose path the config lacks, at whatever depth; None if every path exists."""
  if spec is None:
    return None
  try:
    config = _load_config(spec)
  except Exception:  # pylint: disable=broad-except
    return None
  for arg in argv[1:]:
    match = _OVERRIDE.match(arg)
    if not match:
      continue
    path, node = match.group(1).split("."), config
    for depth, part in enumerate(path):
      keys = list(node.keys()) if hasattr(node, "keys") else []
      if part in keys:
        node = node[part]
        continue
      where = ".".join(path[:depth])
      prefix = f"{where}." if where else ""
      close = difflib.get_close_matches(part, keys, n=3)
      if close:
        hint = f"; did you mean {' or '.join(prefix + c for c in close)}?"
      elif keys:
        hint = f"; the fields of {where or 'the config'}: {', '.join(sorted(keys))}"
      else:
        hint = f"; {where} is {node!r}, not a group of fields"
      return f"{arg}: the config has no field {'.'.join(path)}{hint}"
  return None


if __name__ == "__main__":
  main()
