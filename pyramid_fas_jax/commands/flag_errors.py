"""Flag parsing for every command: each error absl or config_flags can raise ends in one line and
exit code 2 (exit_codes.usage_error), saying what to do.

An unknown `--config.a.b=value` override is named with the fields next to it, one of the wrong
type with the field's type and value, a config file that does not exist or whose
`get_config(arg)` refuses its argument with the reason, and a None-typed field with how to give
it a type.
"""

import difflib
import importlib.util
import pathlib
import re

from absl import flags

from pyramid_fas_jax.commands import exit_codes

_OVERRIDE = re.compile(r"^--?(?:no)?config\.([\w.]+)(?:=(.*))?$", re.DOTALL)
_MISSING = object()


def parse(flag_values: flags.FlagValues, argv: list[str]) -> list[str]:
  """Parses `argv` (argv[0] is the program) into `flag_values`; the arguments left over."""
  prog = argv[0]
  spec = _config_spec(argv)
  if spec is not None:
    _check_config_file(prog, spec)
  try:
    return flag_values(argv)
  except flags.Error as e:
    exit_codes.usage_error(prog, _flag_error(spec, e))
  except (AttributeError, KeyError):
    # config_flags raises these for an override of a field the config lacks.
    bad = _unknown_override(argv, spec)
    if bad is None:
      raise
    exit_codes.usage_error(prog, bad)
  except OSError as e:  # the config could not be loaded (an import error inside it, ...)
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


def _field_value(spec: str, field: str):
  try:
    node = _load_config(spec)
    for part in field.split("."):
      node = node[part]
    return node
  except Exception:
    return _MISSING


def _unknown_override(argv, spec) -> str | None:
  """'<the override>: the config has no field optim.lrr; did you mean optim.lr?' for the first
  override whose path the config lacks, at whatever depth; None if every path exists."""
  if spec is None:
    return None
  try:
    config = _load_config(spec)
  except Exception:
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
