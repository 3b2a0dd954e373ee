"""`pyramid-fas <command> [--flag=value ...]`: dispatches to pyramid_fas_jax.commands.<module>."""

import difflib
import importlib
import sys

# command name -> (module under pyramid_fas_jax.commands, one-line help)
COMMANDS = {
    "import-weights": ("import_weights", "convert a PyTorch state dict into an Orbax checkpoint"),
    "predict": ("predict", "run a checkpoint on an input and write the named outputs to .npz"),
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

  app.run(module.main, argv=[f"pyramid-fas {name}"] + argv[2:])


if __name__ == "__main__":
  main()
