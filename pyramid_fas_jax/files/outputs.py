"""A command's outputs never replace its inputs: `clash` is the one rule, which every command
with path flags applies to its flags right after parsing them (exit_codes.exit_if_outputs_clash),
before any work.

An output (a file or a directory to write into) is refused where it is one of the inputs (the
same path after resolving symbolic links, or the same file through a hard link) or lies inside
an input directory (a checkpoint, an export, a folder of videos): what is written there could
replace an input or be read as one next time. An input inside an output directory is fine: a
run's own checkpoints live in the workdir that `evaluate` writes its results into.
"""

import os
import pathlib


def _same(a: str, b: str) -> bool:
  if os.path.realpath(a) == os.path.realpath(b):
    return True
  try:
    return os.path.samefile(a, b)
  except OSError:  # either does not exist (yet)
    return False


def _inside(path: str, directory: str) -> bool:
  if not os.path.isdir(directory):
    return False
  return pathlib.Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))


def clash(inputs: dict, outputs: dict) -> str | None:
  """The one-line refusal for the first output that is, or lies inside, an input; else None.
  `inputs` and `outputs` map a flag's name to its path (None where not given)."""
  for out_flag, out in outputs.items():
    for in_flag, src in inputs.items():
      if out is None or src is None:
        continue
      out, src = os.fspath(out), os.fspath(src)
      if _same(out, src):
        how = "is"
      elif _inside(out, src):
        how = "lies inside the input directory"
      else:
        continue
      return (f"--{out_flag}={out} {how} --{in_flag}={src}: a command never writes over or "
              f"into its own inputs; choose another --{out_flag}")
  return None
