"""`pyramid-fas <command> [--flag=value ...]`: dispatches to pyramid_fas_jax.commands.<module>."""

import difflib
import importlib
import sys

# command name -> (module under pyramid_fas_jax.commands, one-line help)
COMMANDS = {
    "demo": ("demo", "build SynthFAS, train a small pyramid model, evaluate it, write a report"),
    "train": ("train", "train (and periodically evaluate) an experiment config; resumes"),
    "evaluate": ("evaluate", "score dev/test with a checkpoint; results.json, plots"),
    "import-weights": ("import_weights", "convert a PyTorch state dict into an Orbax checkpoint"),
    "predict": ("predict", "score images, videos or a .npy with a checkpoint; outputs to .npz"),
    "preprocess": ("preprocess", "face crops and pseudo depth of a video or image, as builds make"),
    "score": ("score", "metrics from dev/test score files (APCER, BPCER, ACER, HTER, EER, AUC)"),
}


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
    sys.exit(0 if len(argv) >= 2 else 2)
  name = argv[1]
  if name not in COMMANDS:
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    print(f"pyramid-fas: unknown command '{name}'{hint}\n\n{_usage()}", file=sys.stderr)
    sys.exit(2)
  module = importlib.import_module(f"pyramid_fas_jax.commands.{COMMANDS[name][0]}")
  from absl import app  # pylint: disable=g-import-not-at-top

  app.run(module.main, argv=[f"pyramid-fas {name}"] + argv[2:], flags_parser=_parse_flags)


def _parse_flags(argv):
  """absl flag parsing, with a one-line error for a bad --config.a.b=value override (config_flags
  raises a bare AttributeError/KeyError with a traceback there)."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _die(argv[0], str(e))
  except (AttributeError, KeyError) as e:
    key = str(e.args[0] if e.args else e).splitlines()[0].strip("\"'")
    bad = next((a for a in argv[1:] if a.startswith("--config.") and key in a), None)
    if bad is None:
      raise
    path = bad[len("--config."):].split("=", 1)[0].split(".")
    _die(argv[0], f"{bad}: the config has no field {'.'.join(path)}{_suggest(argv, path)}")


def _suggest(argv, path) -> str:
  """'; did you mean ...' from the fields next to the bad one, reading the config file again."""
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if spec is None:
    return ""
  file, _, arg = spec.partition(":")
  try:
    from pyramid_fas_jax.demo import load_config  # pylint: disable=g-import-not-at-top
    node = load_config(file, arg or None)
    for i, part in enumerate(path[:-1]):
      if part not in node:
        path = path[:i + 1]
        break
      node = node[part]
    fields = sorted(node.keys())
  except Exception:  # pylint: disable=broad-except
    return ""
  close = difflib.get_close_matches(path[-1], fields, n=3)
  return f"; did you mean {' or '.join(close)}?" if close else f"; its fields: {', '.join(fields)}"


def _die(prog: str, message: str):
  print(f"{prog}: {message}", file=sys.stderr)
  sys.exit(2)


if __name__ == "__main__":
  main()
