"""Writes the notebooks of this folder (outputs empty): python notebooks/generate.py [OUT_DIR]

The notebooks are generated so that their install cell, parameters and data checks stay the same
across notebooks; edit this file, not the .ipynb files (tests/test_notebooks.py checks they match).
"""

import pathlib
import sys

import nbformat
from nbformat import v4

HERE = pathlib.Path(__file__).resolve().parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
GITHUB = "pyramid-fas-jax/pyramid-fas-jax"
REAL_DATA_MARK = "# REQUIRES_REAL_DATA"


def badge(name: str) -> str:
  url = f"https://colab.research.google.com/github/{GITHUB}/blob/main/notebooks/{name}"
  return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


INSTALL = f"""\
# Install: in Colab, clone the repository and install it with its `notebooks` extra (the dataset
# builders live in its datasets/ folder, so it is installed from a checkout). Skipped wherever
# pyramid_fas_jax already imports (a local checkout, CI).
import importlib.util
import os
import sys

if importlib.util.find_spec("pyramid_fas_jax") is None:
  !git clone -q https://github.com/{GITHUB}.git
  %pip install -q -e "pyramid-fas-jax[notebooks]"
  sys.path.insert(0, os.path.abspath("pyramid-fas-jax"))
# For a Colab GPU: %pip install -q "jax[cuda12]"; for a Colab TPU: %pip install -q "jax[tpu]"."""

SHOW_DEVICES = """\
import jax

print(jax.devices())"""


def code(source: str, *tags: str):
  cell = v4.new_code_cell(source)
  if tags:
    cell.metadata["tags"] = list(tags)
  return cell


def notebook(name: str, cells) -> None:
  nb = v4.new_notebook(cells=cells, metadata={
      "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
      "language_info": {"name": "python"},
      "accelerator": "GPU", "colab": {"provenance": []}})
  for i, cell in enumerate(nb.cells):
    cell["id"] = f"{pathlib.Path(name).stem}-{i}"  # stable ids: regenerating changes nothing
  nbformat.validate(nb)
  (OUT / name).write_text(nbformat.writes(nb) + "\n")


def quickstart() -> None:
  name = "quickstart.ipynb"
  notebook(name, [
      v4.new_markdown_cell(f"""\
# pyramid-fas-jax quick start

{badge(name)}

Builds SynthFAS (the procedurally generated face anti-spoofing benchmark that ships with the
package), trains a small ResNet with the paper's pyramid binary-mask supervision
(`configs/demo.py`), evaluates it with the dev set's EER threshold, and shows the predicted
multi-scale liveness masks next to the true ones, as the paper's Fig. 6. It calls the functions
`pyramid-fas demo` and `pyramid-fas train` call.

On a Colab GPU the full setting takes a few minutes; `TINY` (what CI runs) takes seconds and
learns little."""),
      code(INSTALL),
      code("""\
# Parameters. TINY: SynthFAS 'tiny', 32x32 input, 8 steps (CI sets PYRAMID_FAS_NOTEBOOK_TINY=1).
import os

TINY = os.environ.get("PYRAMID_FAS_NOTEBOOK_TINY") == "1"
WORKDIR = os.path.abspath("runs/quickstart")
DATA_DIR = os.environ.get("PYRAMID_FAS_NOTEBOOK_DATA_DIR", os.path.abspath("tfds"))""",
           "parameters"),
      code(SHOW_DEVICES),
      v4.new_markdown_cell("## The config\n\n`configs/demo.py`: a CPU-sized ResNet whose last "
                           "feature map is 8x8 at 64x64 input, pyramid masks 8, 4, 2, 1."),
      code("""\
from pyramid_fas_jax.experiment import demo

config = demo.load_config(demo.REPO / "configs" / "demo.py")
config.data.data_dir = DATA_DIR
if TINY:
  config.data.builder_config = "tiny"
  config.input.size = 32  # the 8x8 map becomes 4x4: masks 4, 2, 1
  config.model.scales = (4, 2, 1)
  config.batch_size = config.eval_batch_size = 8
  config.num_steps = 8
  config.log_every_steps = 4
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 8
  config.eval.bootstrap = 20
print(config.model)"""),
      v4.new_markdown_cell("## Build SynthFAS\n\nThe same TFDS ArrayRecord files the real "
                           "datasets build into (`python -m pyramid_fas_jax.data.builders "
                           "synth_fas --config=small`)."),
      code("""\
from pyramid_fas_jax.data import builders

builder = builders.build("synth_fas", DATA_DIR, config=config.data.builder_config, num_workers=2)
print({split: info.num_examples for split, info in builder.info.splits.items()})"""),
      v4.new_markdown_cell("## Train and evaluate\n\n`pyramid-fas train --config=configs/demo.py "
                           "--workdir=WORKDIR`: rerunning this cell resumes from the workdir's "
                           "checkpoints."),
      code("""\
import json
import pathlib

from pyramid_fas_jax import evaluation
from pyramid_fas_jax.training import train

train.train_and_evaluate(config, WORKDIR)
results = json.loads((pathlib.Path(WORKDIR) / "results.json").read_text())
print(evaluation.format_report(results))"""),
      v4.new_markdown_cell("## Predicted multi-scale masks\n\nThe best-on-dev checkpoint's "
                           "masks for one face of each species (yellow = live)."),
      code("""\
from flax import nnx
from IPython.display import Image, display

from pyramid_fas_jax.training import checkpoint
from pyramid_fas_jax import models

best = (pathlib.Path(WORKDIR) / "best").exists()
model = models.build_model(config.model, nnx.Rngs(0))
checkpoint.restore_into(model, checkpoint.checkpoint_dir(WORKDIR, best=best))
figure = demo.mask_figure(config, model, pathlib.Path(WORKDIR) / "masks.png",
                          results["test"]["threshold"])
display(Image(filename=figure))"""),
  ])


def reproduction(name: str, title: str, intro: str, datasets: str, params: str, paper: str,
                 render: str, loop: str) -> None:
  notebook(name, [
      v4.new_markdown_cell(f"# {title}\n\n{badge(name)}\n\n{intro}"),
      code(INSTALL),
      code(f"""\
# Parameters. DATA_DIR holds the TFDS datasets built from your downloads (see README "Real
# datasets"); in Colab put them on Drive. Results go to WORKDIR/<method>/<protocol>, and a rerun
# resumes unfinished runs and reuses finished ones.
import os

DATA_DIR = os.environ.get("PYRAMID_FAS_DATA_DIR", "/content/drive/MyDrive/fas/tfds")
WORKDIR = os.environ.get("PYRAMID_FAS_WORKDIR", "/content/drive/MyDrive/fas/runs")
BUILDER_CONFIG = "default"  # 'small' if you built the datasets with --config=small
OVERRIDES = {{}}  # any --config.key=value, e.g. {{"batch_size": 16}}
{params}""", "parameters"),
      code(SHOW_DEVICES),
      v4.new_markdown_cell("## The table, and the paper's numbers\n\n" + paper),
      code(render),
      v4.new_markdown_cell("## Your data\n\nThe cells from here on need the real datasets: "
                           "the next one mounts Google Drive in Colab and stops with the build "
                           "commands if a dataset is missing."),
      code(f"""\
{REAL_DATA_MARK}
from pyramid_fas_jax.experiment import reproduce

if "google.colab" in sys.modules and DATA_DIR.startswith("/content/drive"):
  from google.colab import drive
  drive.mount("/content/drive")
reproduce.require_datasets(DATA_DIR, {datasets}, BUILDER_CONFIG)"""),
      v4.new_markdown_cell("## Train and evaluate every protocol"),
      code(loop),
      code("render(results)"),
  ])


TABLE_III_PAPER = """\
Table III of the paper reports APCER, BPCER and ACER (%) on OULU-NPU's four protocols, with mean ±
std over the six sub-protocols of protocols 3 and 4. The table's numbers are not in the text
we have, so the `(paper, Table III)` rows are empty: fill `PAPER` from the published table. The
text (sec. IV-D) gives the ACER change that pyramid supervision brings, protocols 1-4: ResNet50
-0.4, -0.6, -0.5, -1.9 points; CDCN -0.2, -0.1, -0.2, -2.1 points (`PAPER_TEXT_DELTA_ACER`)."""

TABLE_III_RENDER = """\
from IPython.display import Markdown, display

from pyramid_fas_jax.evaluation import tables

# Fractions, as our results hold them (3.5% -> 0.035); None where the paper's table is not at hand.
PAPER = {method: {p: {} for p in PROTOCOLS} for method in METHODS}
PAPER_TEXT_DELTA_ACER = {  # sec. IV-D, percentage points, pyramid minus single scale
    "ResNet50-PS": {"Protocol_1": -0.4, "Protocol_2": -0.6, "Protocol_3": -0.5, "Protocol_4": -1.9},
    "CDCN-PS": {"Protocol_1": -0.2, "Protocol_2": -0.1, "Protocol_3": -0.2, "Protocol_4": -2.1}}


def render(results):
  \"\"\"results: method -> protocol -> result (an aggregate for protocols 3 and 4).\"\"\"
  entries = {p: {} for p in PROTOCOLS}
  for method in METHODS:
    for p in PROTOCOLS:
      entries[p][method] = results.get(method, {}).get(p, {})
      entries[p][f"{method} (paper, Table III)"] = PAPER[method][p]
  table = tables.protocol_table(entries, title="OULU-NPU intra testing (Table III)")
  display(Markdown(tables.to_markdown(table)))
  return table


render({})  # the layout, before any training"""

OULU_LOOP = """\
import pathlib

results = {}
for method, (config_path, option) in METHODS.items():
  results[method] = {}
  for protocol in PROTOCOLS:
    subs = [protocol] if protocol in ("Protocol_1", "Protocol_2") else [
        f"{protocol}_{k}" for k in range(1, 7)]
    runs = {}
    for sub in subs:
      arg = ",".join(filter(None, [f"oulu_npu/{sub}", option]))
      runs[sub] = reproduce.run(config_path, arg, DATA_DIR,
                                pathlib.Path(WORKDIR) / method / sub,
                                {"data.builder_config": BUILDER_CONFIG, **OVERRIDES})
    results[method][protocol] = runs[protocol] if len(subs) == 1 else tables.aggregate(runs)
tables.write_table(render(results), pathlib.Path(WORKDIR) / "table_iii")"""

CROSS_PAPER = """\
Table IV (HTER and AUC, %, leave-one-dataset-out over OULU-NPU, CASIA-MFSD, Replay-Attack and
MSU-MFSD) and Table V (HTER, %, CASIA-MFSD -> Replay-Attack and back). As in the paper, the
threshold is the test set's own EER threshold (no dev set; reports label it). The tables'
numbers are not in the text we have, so the `(paper)` rows are empty: fill `PAPER_IV` and
`PAPER_V` from the published tables. The text (sec. IV-E) gives the HTER change pyramid
supervision brings: ResNet50 -4.48 (O&C&I to M) and -5.03 (I&C&M to O); CDCN -2.48
(O&C&I to M), -4.21 (O&M&I to C) and -1.16 (I&C&M to O); on CR and RC, ResNet50 -3.1 and -2.9,
CDCN -1.7 and -1.3 points."""

CROSS_RENDER = """\
from IPython.display import Markdown, display

from pyramid_fas_jax.evaluation import tables

# Fractions (10.5% -> 0.105); empty where the paper's tables are not at hand.
PAPER_IV = {method: {p: {} for p in TABLE_IV} for method in METHODS}
PAPER_V = {method: {p: {} for p in TABLE_V} for method in METHODS}
PAPER_TEXT_DELTA_HTER = {  # sec. IV-E, percentage points, pyramid minus single scale
    "ResNet50-PS": {"O&C&I to M": -4.48, "I&C&M to O": -5.03, "CR": -3.1, "RC": -2.9},
    "CDCN-PS": {"O&C&I to M": -2.48, "O&M&I to C": -4.21, "I&C&M to O": -1.16, "CR": -1.7,
                "RC": -1.3}}


def _entries(results, protocols, paper, label):
  entries = {}
  for method in METHODS:
    ours = results.get(method, {})
    entries[method] = {name: ours.get(p, {}) for p, name in protocols.items()}
    entries[f"{method} (paper, {label})"] = {
        name: paper[method][p] for p, name in protocols.items()}
  return entries


def render(results):
  \"\"\"results: method -> protocol -> result.\"\"\"
  iv = tables.cross_table(_entries(results, TABLE_IV, PAPER_IV, "Table IV"), ("HTER", "AUC"),
                          "Cross-dataset testing, O/C/I/M (Table IV)", metric_rows=False,
                          average=False)
  v = tables.cross_table(_entries(results, TABLE_V, PAPER_V, "Table V"), ("HTER",),
                         "Cross-dataset testing, CASIA-MFSD and Replay-Attack (Table V)",
                         metric_rows=False, average=False)
  display(Markdown(tables.to_markdown(iv) + "\\n" + tables.to_markdown(v)))
  return iv, v


render({})  # the layout, before any training"""

CROSS_LOOP = """\
import pathlib

results = {}
for method, (config_path, option) in METHODS.items():
  results[method] = {}
  for protocol in [*TABLE_IV, *TABLE_V]:
    arg = ",".join(filter(None, [protocol, option]))
    results[method][protocol] = reproduce.run(
        config_path, arg, DATA_DIR, pathlib.Path(WORKDIR) / method / protocol.replace("/", "_"),
        {"data.builder_config": BUILDER_CONFIG, **OVERRIDES})
iv, v = render(results)
tables.write_table(iv, pathlib.Path(WORKDIR) / "table_iv")
tables.write_table(v, pathlib.Path(WORKDIR) / "table_v")"""

SIWM_PAPER = """\
Table VI reports ACER and EER (%) for each of SiW-M's 13 attack types left out of training,
with their mean ± std. The threshold is the test set's EER threshold (SiW-M's protocols have no
dev set; reports label it). The table's numbers are not in the text we have, so the `(paper)`
rows are empty: fill `PAPER` from the published table. The text (sec. IV-F) says pyramid
supervision improves the overall EER over single-scale supervision by 17% (ResNet50) and 12%
(CDCN), relative, with the largest gains on the transparent mask and partial paper attacks."""

SIWM_RENDER = """\
from IPython.display import Markdown, display

from pyramid_fas_jax.evaluation import tables

# Fractions (10.5% -> 0.105); empty where the paper's table is not at hand.
PAPER = {method: {a: {} for a in ATTACKS} for method in METHODS}


def render(results):
  \"\"\"results: method -> attack -> result.\"\"\"
  entries = {}
  for method in METHODS:
    entries[method] = {a: results[method][a] for a in ATTACKS if a in results.get(method, {})}
    entries[f"{method} (paper, Table VI)"] = PAPER[method]
  table = tables.cross_table(entries, ("ACER", "EER"), "SiW-M cross-type testing (Table VI)")
  display(Markdown(tables.to_markdown(table)))
  return table


render({})  # the layout, before any training"""

SIWM_LOOP = """\
import pathlib

results = {}
for method, (config_path, option) in METHODS.items():
  results[method] = {}
  for attack in ATTACKS:
    arg = ",".join(filter(None, [f"siw_m/leave_out/{attack}", option]))
    results[method][attack] = reproduce.run(
        config_path, arg, DATA_DIR, pathlib.Path(WORKDIR) / method / f"siw_m_{attack}",
        {"data.builder_config": BUILDER_CONFIG, **OVERRIDES})
tables.write_table(render(results), pathlib.Path(WORKDIR) / "table_vi")"""

METHODS = """\
# method -> (config, option): the paper's pyramid models and their single-scale baselines.
METHODS = {
    "ResNet50_8x8": ("configs/resnet50_ps.py", "single_scale"),
    "ResNet50-PS": ("configs/resnet50_ps.py", ""),
    "CDCN": ("configs/cdcn_ps.py", "single_scale"),
    "CDCN-PS": ("configs/cdcn_ps.py", ""),
}"""


def main() -> None:
  quickstart()
  reproduction(
      "oulu_npu_table3.ipynb", "Table III: intra testing on OULU-NPU",
      "Trains each method on OULU-NPU's protocols 1 and 2 and the six sub-protocols of 3 and 4 "
      "(`configs/X.py:oulu_npu/Protocol_3_k`), each evaluated with the dev set's EER threshold, "
      "and renders the table next to the paper's.",
      '["oulu_npu"]',
      METHODS + '\nPROTOCOLS = ["Protocol_1", "Protocol_2", "Protocol_3", "Protocol_4"]',
      TABLE_III_PAPER, TABLE_III_RENDER, OULU_LOOP)
  reproduction(
      "cross_dataset_tables4_5.ipynb", "Tables IV and V: cross-dataset testing",
      "Trains each method on three of OULU-NPU, CASIA-MFSD, Replay-Attack and MSU-MFSD and tests "
      "on the fourth (`ocim/to_<target>`), and on one of CASIA-MFSD and Replay-Attack tested on "
      "the other (`casia_replay/to_<target>`), and renders both tables next to the paper's.",
      '["oulu_npu", "casia_mfsd", "replay_attack", "msu_mfsd"]',
      METHODS + """
TABLE_IV = {"ocim/to_msu_mfsd": "O&C&I to M", "ocim/to_casia_mfsd": "O&M&I to C",
            "ocim/to_replay_attack": "O&C&M to I", "ocim/to_oulu_npu": "I&C&M to O"}
TABLE_V = {"casia_replay/to_replay_attack": "CR", "casia_replay/to_casia_mfsd": "RC"}""",
      CROSS_PAPER, CROSS_RENDER, CROSS_LOOP)
  reproduction(
      "siw_m_table6.ipynb", "Table VI: cross-type testing on SiW-M",
      "Trains each method with one of SiW-M's 13 attack types left out "
      "(`siw_m/leave_out/<type>`), tests on that type and live faces, and renders the table "
      "next to the paper's.",
      '["siw_m"]',
      METHODS + """
from pyramid_fas_jax.protocols import siw_m

ATTACKS = list(siw_m.ATTACKS)""",
      SIWM_PAPER, SIWM_RENDER, SIWM_LOOP)


if __name__ == "__main__":
  main()
