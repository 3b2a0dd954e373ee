"""The demo: build a small SynthFAS, train a CPU-sized pyramid model, evaluate it, and write
results.json, report.md, ROC/DET/histogram plots and a figure like the paper's Fig. 6.

`run_demo(workdir)` is what `pyramid-fas demo` and `make demo` run.
"""

import importlib.util
import pathlib

import jax
import numpy as np
from absl import logging
from matplotlib.figure import Figure

from pyramid_fas_jax import evaluation
from pyramid_fas_jax.data import pipeline
from pyramid_fas_jax.evaluation import evaluator
from pyramid_fas_jax.files import atomic, provenance
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.training import checkpoint, train

REPO = pathlib.Path(__file__).resolve().parents[2]
FIGURE_SPECIES = ("live", "print", "replay", "partial", "mask3d")


def load_config(path, arg=None):
  """`get_config(arg)` of a config file, as config_flags would load it."""
  spec = importlib.util.spec_from_file_location(pathlib.Path(path).stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _figure_samples(config, per_species=1):
  """uint8 images, true masks and species names of the first test frames of each species."""
  images, masks, names = [], [], []
  want = {s: per_species for s in FIGURE_SPECIES}
  for batch in pipeline.make_eval_iterator(config, "test", process_index=0, process_count=1):
    for i, name in enumerate(batch["species_name"]):
      if batch["valid"][i] and want.get(name, 0) > 0:
        want[name] -= 1
        images.append(batch["image"][i])
        masks.append(batch["mask"][i])
        names.append(str(name))
    if not any(want.values()):
      break
  order = sorted(range(len(names)), key=lambda i: FIGURE_SPECIES.index(names[i]))
  return (np.stack([images[i] for i in order]), np.stack([masks[i] for i in order]),
          [names[i] for i in order])


def mask_figure(config, model, path, threshold: float) -> str:
  """Faces with their true liveness mask and the predicted 8x8 / 4x4 / 2x2 masks (Fig. 6)."""
  images, masks, names = _figure_samples(config)
  out = inference.predict(model, images, batch_size=len(images), input_params=config.input)
  scales = [s for s in (8, 4, 2, 1) if f"mask_{s}" in out]
  cols = 2 + len(scales)
  fig = Figure(figsize=(1.8 * cols, 1.9 * len(names)), dpi=100)
  for r, name in enumerate(names):
    panels = [(images[r], f"{name}\nscore {out['score'][r]:.2f}"
               + (" (live)" if out["score"][r] > threshold else " (attack)")),
              (masks[r], "true mask")]
    panels += [(out[f"mask_{s}"][r], f"predicted {s}x{s}") for s in scales]
    for c, (img, title) in enumerate(panels):
      ax = fig.add_subplot(len(names), cols, r * cols + c + 1)
      if img.ndim == 3:
        ax.imshow(img)
      else:
        ax.imshow(img, vmin=0, vmax=1, cmap="viridis", interpolation="nearest")
      ax.set_title(title, fontsize=8)
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle("Predicted liveness masks (yellow = live), as the paper's Fig. 6", fontsize=10)
  fig.tight_layout()
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp)
  return str(path)


def _metric_table(results) -> str:
  rows = ["| set | APCER | BPCER | ACER | HTER | EER | AUC |", "|---|---|---|---|---|---|---|"]
  for split in ("dev", "test"):
    if split in results:
      r = results[split]
      rows.append(f"| {split} | " + " | ".join(f"{100 * r[k]:.2f}%" for k in
                                                ("APCER", "BPCER", "ACER", "HTER", "EER"))
                  + f" | {r['AUC']:.4f} |")
  return "\n".join(rows)


def write_report(workdir, config, results, seconds, figure) -> str:
  test = results["test"]
  size = config.input.size
  # Unknown for a run resumed from checkpoints older than the stored training time.
  took = "" if seconds is None else f", in {seconds / 60:.1f} minutes"
  species = ", ".join(f"{k} {100 * v:.2f}%" for k, v in test["APCER_per_species"].items())
  boot = test.get("bootstrap", {})
  ci = (f" (95% bootstrap interval over videos: {100 * boot['ACER'][0]:.2f}-"
        f"{100 * boot['ACER'][1]:.2f}%)" if "ACER" in boot else "")
  text = f"""# pyramid-fas demo

{config.model.backbone} with the {config.model.head} head (scales {tuple(config.model.scales)}),
trained on SynthFAS `{config.data.builder_config}` ({config.data.protocol} protocol),
{size}x{size} input, {results['step']} steps{took}
on {jax.device_count()} {jax.devices()[0].platform.upper()} device(s).

Threshold: {test['threshold_source']} = {test['threshold']:.4f}; scores are per {test['unit']}.

{_metric_table(results)}

Test ACER {100 * test['ACER']:.2f}%{ci}. APCER per species: {species}.

Provenance: {provenance.summary(results[provenance.KEY])}.

```text
{provenance.header_line(results[provenance.KEY])}
```

## ROC and DET

![ROC](plots/roc.png) ![DET](plots/det.png)

## Score histograms

![dev](plots/hist_dev.png) ![test](plots/hist_test.png)

## Predicted multi-scale masks

![masks]({pathlib.Path(figure).name})

Files: `results.json` (every metric, fractions), `scores/` (frame and video score files for
`pyramid-fas score`), `metrics.jsonl` and `tb/` (training curves), `checkpoints/`, `best/`.
"""
  path = pathlib.Path(workdir) / "report.md"
  atomic.write_text(path, text)
  return str(path)


def run_demo(workdir="runs/demo", config=None) -> dict:
  """Build data, train, evaluate, report, holding the workdir's run lock throughout (the data
  is built into it too). Returns results.json's content.

  SynthFAS is built into <workdir>/tfds (unless config.data.data_dir says where) on its first
  use by training, as every command builds it. `wall_time_s` is the run's training time
  (train.py: summed over resumes, the build included), so running the demo again reports the
  first run's time, not the rerun's."""
  with train.run_lock(workdir, "pyramid-fas demo"):
    return _run_demo(pathlib.Path(workdir).absolute(), config)


def _run_demo(workdir: pathlib.Path, config) -> dict:
  if config is None:
    config = load_config(REPO / "configs" / "demo.py")
  with config.unlocked():
    config.data.data_dir = config.data.data_dir or str(workdir / "tfds")
  trained = train.train_and_evaluate(config, workdir)
  seconds = trained.get(train.WALL_TIME_KEY)
  # A run that scored dev alone while training has just scored test for the chosen checkpoint.
  results = (evaluator.evaluate_chosen(config, workdir, {train.WALL_TIME_KEY: seconds})
             if evaluator.tests_while_training(config) else trained)
  model, _ = checkpoint.load_model(results[provenance.KEY]["model"]["checkpoint"], config)
  figure = mask_figure(config, model, workdir / "fig6_masks.png", results["test"]["threshold"])
  report = write_report(workdir, config, results, seconds, figure)
  evaluation.write_json(results, workdir / "results.json")
  logging.info("demo done: %s", report)
  return results
