"""Every scale set the documentation offers as an override trains: one real jitted train step of
its config, every loss term and the gradient norm finite, and a term for each scale.

The sets are found, not listed: every `config.model.scales` override (`--config.model.scales=`
on a line, and every integer tuple after it on that line, as in "'(8,4)' or '(8,4,2)'"; in a
notebook code cell also the Python assignment `config.model.scales = (...)`) in the Markdown
files, the docstrings of configs/*.py and the cells of notebooks/*.ipynb (which
test_notebooks.py keeps equal to what notebooks/generate.py writes). A set belongs to the config
whose docstring holds it, the `--config=configs/X.py` on its line, the config named in the first
cell of its README table row, or the config file a notebook cell loads; one whose config cannot
be told fails the test.

Each set is parsed as the command line parses it (config_flags, locked config) on the config's
`runlocal` variant, so that the step runs on CPU in seconds. The runlocal classification
backbones keep the 8x8 map (stride 8 at 64x64), so a full-size set applies as written. The
runlocal FCNs (CDCN, DepthNet, CDCN++) predict map_size 8 maps, a quarter of the 32; dividing a
set by 4, as fcn_config does for its default, would change which terms exist ((32,16,8) would
become (8,4,2), whose 2x2 map has no CDL), so instead the quarter-width FCN predicts maps of
the set's first scale (`--config.model.map_size=<first scale>`): the very maps and loss terms of
the full-size run. A notebook cell's `config.input.size = N` goes along with its set.
"""

import ast
import json
import pathlib
import re
import sys

import jax
import numpy as np
import pytest
from absl import flags
from flax import nnx
from ml_collections import config_flags

from pyramid_fas_jax import models
from pyramid_fas_jax.training import losses, train_step

REPO = pathlib.Path(__file__).resolve().parents[1]
# `--config.model.scales=` on a command line, `config.model.scales = ` in Python.
FLAG = re.compile(r"config\.model\.scales\s*=")
TUPLE = re.compile(r"\(\s*(\d+(?:\s*,\s*\d+)*)\s*,?\s*\)")
INPUT_SIZE = re.compile(r"config\.input\.size\s*=\s*(\d+)")
LINE_CONFIG = re.compile(r"--config=configs/(\w+)\.py")
ROW_CONFIG = re.compile(r"^\|\s*`(\w+)`")
CELL_CONFIG = re.compile(r"configs\W{1,6}(\w+)\.py")


def _config_name(match, default=None):
  if match and (REPO / "configs" / f"{match.group(1)}.py").exists():
    return match.group(1)
  return default


def _input_size(match):
  return int(match.group(1)) if match else None


def _cases(text, where, config=None, input_size=None):
  """Every set on every line of `text`; the line's own config and input size, if it names them,
  take precedence over the given ones."""
  cases = []
  for i, line in enumerate(text.splitlines(), 1):
    flag = FLAG.search(line)
    for m in TUPLE.finditer(line, flag.end()) if flag else ():
      name = _config_name(LINE_CONFIG.search(line) or ROW_CONFIG.search(line), config)
      size = _input_size(INPUT_SIZE.search(line)) or input_size
      cases.append((name, tuple(int(v) for v in m.group(1).split(",")), size, f"{where}:{i}"))
  return cases


def discover():
  """[(config name or None, scales, input size or None, 'file:line')] of every documented set."""
  cases = []
  for path in sorted(REPO.rglob("*.md")):
    rel = path.relative_to(REPO)
    if not any(part.startswith(".") or part in ("runs", "node_modules") for part in rel.parts):
      cases += _cases(path.read_text(), rel)
  for path in sorted((REPO / "configs").glob("*.py")):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    cases += _cases(doc, path.relative_to(REPO), config=path.stem)
  for path in sorted((REPO / "notebooks").glob("*.ipynb")):
    for n, cell in enumerate(json.loads(path.read_text())["cells"]):
      source = "".join(cell["source"])
      # A code cell's set goes with the config file it loads and the input size it sets.
      code = cell["cell_type"] == "code"
      cases += _cases(source, f"{path.relative_to(REPO)}[cell {n}]",
                      config=_config_name(CELL_CONFIG.search(source)),
                      input_size=_input_size(INPUT_SIZE.search(source)) if code else None)
  return cases


CASES = discover()


def _unique(cases):
  seen = {}
  for config, scales, size, where in cases:
    seen.setdefault((config, scales, size), []).append(where)
  return [pytest.param(*key, wheres, id=f"{key[0]}-{','.join(map(str, key[1]))}"
                       + (f"-{key[2]}px" if key[2] else "")) for key, wheres in seen.items()]


def test_discovery_finds_the_documented_sets():
  # A lower bound that keeps the discovery honest: the sets the README and the config docstrings
  # name today, and the quick start's tiny set. More may appear; none may go missing unnoticed.
  found = {(c, s, w.split(":")[0].split("[")[0]) for c, s, _, w in CASES}
  assert {("resnet50_depth", (8, 4), "README.md"), ("resnet50_depth", (8, 4, 2), "README.md"),
          ("resnet50_spp", (4, 2, 1), "README.md"), ("resnet50_spp", (8, 4, 2, 1), "README.md"),
          ("resnet50_depth", (8, 4, 2), "configs/resnet50_depth.py"),
          ("resnet50_spp", (8, 4, 2, 1), "configs/resnet50_spp.py"),
          ("cdcn_mask", (32, 16, 8), "configs/cdcn_mask.py"),
          ("demo", (4, 2, 1), "notebooks/quickstart.ipynb")} <= found
  # The rules on made-up lines: a table row, a command, a Python override with its input size.
  row = "| `resnet50_ps` | masks (`--config.model.scales='(16,8)'` or '(2, 1)') |"
  assert _cases(row, "r") == [("resnet50_ps", (16, 8), None, "r:1"),
                              ("resnet50_ps", (2, 1), None, "r:1")]
  assert _cases("x\npyramid-fas train --config=configs/cdcn_ps.py --config.model.scales='(32,)'",
                "c", config="demo") == [("cdcn_ps", (32,), None, "c:2")]
  assert _cases("config.input.size = 32\nconfig.model.scales = (4, 2)", "n", "demo", 32) == [
      ("demo", (4, 2), 32, "n:2")]
  unowned = [w for c, _, _, w in CASES if c is None]
  assert not unowned, f"scale sets whose config cannot be told (name it on the line): {unowned}"


def _command_line_config(monkeypatch, argv):
  # config_flags reads the overrides from sys.argv, as under absl.app.
  monkeypatch.chdir(REPO)
  monkeypatch.setattr(sys, "argv", argv)
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "", lock_config=True, flag_values=fv)
  fv(argv)
  return fv.config


def _parse(monkeypatch, config_name, scales, input_size):
  """The config of `--config=configs/X.py:synth_fas/intra,runlocal --config.model.scales=...`
  (and the set's input size); an FCN's maps at the set's first scale (module docstring)."""
  argv = ["pyramid-fas train", f"--config=configs/{config_name}.py:synth_fas/intra,runlocal",
          f"--config.model.scales=({','.join(map(str, scales))},)"]
  if input_size:
    argv.append(f"--config.input.size={input_size}")
  config = _command_line_config(monkeypatch, argv)
  if models.BACKBONES[config.model.backbone][1] == "fcn":
    config = _command_line_config(monkeypatch, argv + [f"--config.model.map_size={scales[0]}"])
  return config


def _batch(size, n=2):
  """A live face (mask 1, a smooth depth bump in [0, 1]) and a print attack (mask and depth 0)."""
  yy, xx = np.mgrid[:size, :size] / (size - 1) * 2 - 1
  bump = np.clip(1 - (xx ** 2 + yy ** 2) / 0.8, 0, 1).astype(np.float32)
  label = np.array([1, 0] * (n // 2), np.int32)
  mask = np.broadcast_to(label[:, None, None], (n, size, size)).astype(np.float32)
  image = np.random.default_rng(0).normal(size=(n, size, size, 3)).astype(np.float32)
  return {"image": image, "mask": mask, "depth": mask * bump, "label": label,
          "species": (1 - label).astype(np.int32)}


@pytest.mark.parametrize("config_name,scales,input_size,wheres", _unique(CASES))
def test_documented_scale_set_trains(monkeypatch, config_name, scales, input_size, wheres):
  assert config_name, f"no config for the scale set {scales} named at {wheres}"
  where = f"{config_name} --config.model.scales='{scales}' (named at {', '.join(wheres)})"
  config = _parse(monkeypatch, config_name, scales, input_size)
  assert tuple(config.model.scales) == scales
  graphdef, state = train_step.create_train_state(config)
  head = config.model.head
  if head == "spp":  # no per-scale loss term: each scale's bins feed the classifier
    model, _ = nnx.merge(graphdef, state)
    assert model.head.fc.kernel.shape[0] == model.backbone.num_features * sum(s * s for s in scales)
  _, metrics = train_step.jit_train_step(graphdef, config.model)(state,
                                                                 _batch(config.input.size))
  metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
  bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
  assert not bad, f"{where}: non-finite {bad}"
  assert metrics["grad_norm"] > 0, where
  for s in scales:
    if head in ("pyramid_mask", "dense_mask"):
      assert f"bce_{s}" in metrics, where
    elif head == "pyramid_depth":
      assert f"mse_{s}" in metrics, where
      assert (f"cdl_{s}" in metrics) == (s >= losses.CDL_MIN_SIZE), where
