"""Every `--config.<field>=<value>` override the project shows its users parses, as the command
line parses it (config_flags, locked config), with the config it goes with, and passes the
config checks (checks.problems) of the command that runs it.

The overrides are found, not listed: in the Markdown files, the text of configs/*.py, of the
package's and the benchmarks' sources (docstrings, messages that tell the user what to type),
the cells of notebooks/*.ipynb, the comments of launch/*.sh and *.sbatch and the commands their
dry runs print. Lines continued with a backslash are one line. An override goes with the
`--config=configs/X.py[:arg]` on its line, the config of its README table row, or the config
file whose text holds it; one that names no config must hold for every config. `--config.key=value`
and the like (the value `value` or `v`) write the syntax, not a field, and an override followed
by a colon quotes an error message (`--config.num_steps=-5: must be ...`): both are passed over.
"""

import json
import os
import pathlib
import re
import shlex
import subprocess

import pytest
from absl import flags
from ml_collections import config_flags

from pyramid_fas_jax.experiment import checks

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.py"))
OVERRIDE = re.compile(r"--config\.([A-Za-z_][\w.]*)=('[^']*'|\"[^\"]*\"|[^\s`'\"]*)")
LINE_CONFIG = re.compile(r"--config=configs/(\w+)\.py(?::([^\s`'\"]+))?")
ROW_CONFIG = re.compile(r"^\|\s*`(\w+)`")
SYNTAX_VALUES = ("value", "v")


def _value(raw: str) -> str:
  if raw[:1] in "'\"" and raw[-1:] == raw[:1] and len(raw) >= 2:
    return raw[1:-1]
  raw = raw.rstrip(",.;:")  # prose punctuation after a bare value
  while raw.endswith(")") and raw.count(")") > raw.count("("):
    raw = raw[:-1]
  return raw


def _logical_lines(text: str):
  """(first line number, line) with backslash continuations joined."""
  joined, start = "", None
  for n, line in enumerate(text.splitlines(), 1):
    start = start or n
    if line.rstrip().endswith("\\"):
      joined += line.rstrip()[:-1] + " "
      continue
    yield start, joined + line
    joined, start = "", None
  if joined:
    yield start, joined


def _cases(text: str, where: str, config=None):
  cases = []
  for n, line in _logical_lines(text):
    for m in OVERRIDE.finditer(line):
      value = _value(m.group(2))
      # `--config.x=1: must be ...` quotes an error message (README, Troubleshooting).
      if value in SYNTAX_VALUES or m.group(2).endswith(":"):
        continue
      named = LINE_CONFIG.search(line)
      row = ROW_CONFIG.search(line)
      if named and named.group(1) in CONFIGS:
        owner = (named.group(1), named.group(2))
      elif row and row.group(1) in CONFIGS:
        owner = (row.group(1), None)
      else:
        owner = (config, None)
      cases.append((owner, m.group(1), value, f"{where}:{n}"))
  return cases


def _dry_runs():
  """The commands the launch scripts print in their dry runs, with every option that adds a
  training argument (--data_dir) given."""
  train = ["--config=configs/resnet50_ps.py:oulu_npu/Protocol_1", "--workdir=gs://b/runs/x"]
  env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
  runs = {"tpu_vm.sh": ["--tpu=t", "--zone=z", "--data_dir=gs://b/tfds", *train],
          "slurm_gpu.sbatch": ["--nodes=1", *train]}
  printed = []
  for script in sorted((REPO / "launch").glob("*")):
    if script.suffix not in (".sh", ".sbatch") or script.name not in runs:
      continue
    out = subprocess.run(["bash", str(script), "--dry-run", *runs[script.name]], env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    words = [w for line in out.splitlines() if line and not line.startswith("#")
             for w in shlex.split(line)]
    # A remote command (gcloud ... --command='cd ... && pyramid-fas train ...') is a shell line.
    words += [w for c in words if c.startswith("--command=")
              for w in shlex.split(c[len("--command="):])]
    printed.append((script.name, " ".join(shlex.quote(w) for w in words)))
  return printed


def discover():
  """[((config or None, arg), field, value, 'file:line')] of every documented override."""
  cases = []
  for path in sorted(REPO.rglob("*.md")):
    rel = path.relative_to(REPO)
    if not any(part.startswith(".") or part in ("runs", "node_modules") for part in rel.parts):
      cases += _cases(path.read_text(), str(rel))
  for path in sorted((REPO / "configs").glob("*.py")):
    cases += _cases(path.read_text(), str(path.relative_to(REPO)), config=path.stem)
  for folder in ("pyramid_fas_jax", "benchmarks"):
    for path in sorted((REPO / folder).rglob("*.py")):
      cases += _cases(path.read_text(), str(path.relative_to(REPO)))
  for path in sorted((REPO / "notebooks").glob("*.ipynb")):
    for n, cell in enumerate(json.loads(path.read_text())["cells"]):
      cases += _cases("".join(cell["source"]), f"{path.relative_to(REPO)}[cell {n}]")
  for path in sorted([*(REPO / "launch").glob("*.sh"), *(REPO / "launch").glob("*.sbatch")]):
    comments = "\n".join(line for line in path.read_text().splitlines()
                         if line.lstrip().startswith("#"))
    cases += _cases(comments, str(path.relative_to(REPO)))
  for name, printed in _dry_runs():
    cases += _cases(printed, f"launch/{name} --dry-run")
  return cases


pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
CASES = discover()


def _parse(config_name, arg, field, value):
  """The config of `--config=configs/<name>.py[:arg] --config.<field>=<value>`, parsed as the
  command line does."""
  spec = f"configs/{config_name}.py" + (f":{arg}" if arg else "")
  argv = ["pyramid-fas train", f"--config={spec}", f"--config.{field}={value}"]
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", flag_values=fv, lock_config=True,
                                  sys_argv=argv)
  fv(argv)
  return fv.config


def _params():
  seen = {}
  for (config, arg), field, value, where in CASES:
    for name in [config] if config else CONFIGS:
      seen.setdefault((name, arg, field, value), []).append(where)
  return [pytest.param(*key, wheres, id=f"{key[0]}-{key[2]}={key[3]}")
          for key, wheres in sorted(seen.items(), key=lambda kv: tuple(map(str, kv[0])))]


def test_discovery_finds_the_documented_overrides():
  # A floor that keeps the discovery honest: overrides the README, a config docstring and the
  # TPU launch script's dry run show today. More may appear; these may not vanish unnoticed.
  found = {(owner[0], field, where.split(":")[0]) for owner, field, _, where in CASES}
  assert {("cdcn_ps", "batch_size", "README.md"),
          ("cdcn_ps", "data.num_workers", "README.md"),
          ("resnet50_ps", "batch_size", "README.md"),
          (None, "data.epoch_unit", "README.md"),
          ("resnet50_spp", "model.spp_pool", "configs/resnet50_spp.py"),
          ("resnet50_ps", "data.data_dir", "launch/tpu_vm.sh --dry-run")} <= found
  # The rules on made-up lines: a continued command, a table row, prose, a syntax example.
  text = ("pyramid-fas train --config=configs/cdcn_ps.py:oulu_npu/Protocol_1 \\\n"
          "    --config.batch_size=16\n"
          "| `resnet50_depth` | (`--config.model.scales='(8,4)'`, `'(8,4,2)'`) |\n"
          "`--config.init_from=''` or `--config.init_from=DIR`, and --config.key=value.\n"
          "`--config.num_steps=-5: must be an integer >= 0`")
  assert _cases(text, "t") == [
      (("cdcn_ps", "oulu_npu/Protocol_1"), "batch_size", "16", "t:1"),
      (("resnet50_depth", None), "model.scales", "(8,4)", "t:3"),
      ((None, None), "init_from", "", "t:4"), ((None, None), "init_from", "DIR", "t:4")]


@pytest.mark.parametrize("config_name,arg,field,value,wheres", _params())
def test_documented_override_parses_and_passes_the_checks(config_name, arg, field, value,
                                                          wheres, monkeypatch):
  monkeypatch.chdir(REPO)
  where = f"--config={config_name}{':' + arg if arg else ''} --config.{field}={value} " \
          f"(at {', '.join(wheres)})"
  config = _parse(config_name, arg, field, value)
  node = config
  for part in field.split("."):
    node = node[part]
  assert node is not None, where
  problems = checks.problems(config, device_count=1, process_count=1)
  assert not problems, f"{where}: {problems}"
