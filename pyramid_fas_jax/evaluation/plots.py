"""ROC, DET (probit axes) and per-species score histograms as PNG files.

Figures are drawn on matplotlib's Agg canvas directly, without pyplot, so plotting never needs a
display and never changes the process-wide backend.
"""

import os
import statistics

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn import metrics as skm

from pyramid_fas_jax.evaluation import metrics
from pyramid_fas_jax.evaluation.scorefile import ScoreSet
from pyramid_fas_jax.files import atomic

_DET_TICKS = (0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95)
_DET_RANGE = (0.0005, 0.98)  # rates outside are drawn at the edge: the probit of 0 is -inf


def _probit(p) -> np.ndarray:
  normal = statistics.NormalDist()
  return np.array([normal.inv_cdf(x) for x in np.clip(np.ravel(p), *_DET_RANGE)])


def _save(fig: Figure, path: str) -> str:
  FigureCanvasAgg(fig)
  with atomic.replacing(path) as tmp:
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
  return path


def _curves(sets: dict[str, ScoreSet], threshold: float, det: bool, path: str) -> str:
  fig = Figure(figsize=(5, 5))
  ax = fig.add_subplot()
  for name, scores in sets.items():
    # Bona fide positive: FPR is APCER_pooled, FNR is BPCER. roc_curve's ">= threshold" labels
    # the points differently from our "> threshold" but draws the same curve.
    rates = metrics.error_rates(scores, threshold)
    if det:
      apcer, bpcer, _ = skm.det_curve(scores.is_live, scores.scores)
      line, = ax.plot(_probit(apcer), _probit(bpcer), label=name)
      ax.plot(_probit(rates["APCER_pooled"]), _probit(rates["BPCER"]), "o", color=line.get_color())
    else:
      apcer, tpr, _ = skm.roc_curve(scores.is_live, scores.scores)
      line, = ax.plot(apcer, tpr, label=f"{name} (AUC {metrics.auc(scores):.2%})")
      ax.plot(rates["APCER_pooled"], 1 - rates["BPCER"], "o", color=line.get_color())
  if det:
    ticks = _probit(_DET_TICKS)
    labels = [f"{t:.1%}".replace(".0%", "%") for t in _DET_TICKS]
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set_xlim(*_probit(_DET_RANGE))
    ax.set_ylim(*_probit(_DET_RANGE))
    ax.set_xlabel("APCER (pooled)")
    ax.set_ylabel("BPCER")
    ax.set_title("DET")
  else:
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("APCER (pooled)")
    ax.set_ylabel("1 - BPCER")
    ax.set_title("ROC (bona fide positive)")
  ax.grid(True, alpha=0.3)
  ax.legend(loc="upper right" if det else "lower right", title=f"dot: threshold {threshold:.4g}")
  return _save(fig, path)


def _histogram(name: str, scores: ScoreSet, threshold: float, threshold_label: str,
               path: str) -> str:
  fig = Figure(figsize=(6, 4))
  ax = fig.add_subplot()
  bins = np.histogram_bin_edges(scores.scores, bins=min(50, max(10, len(scores) // 5)))
  ax.hist(scores.scores[scores.is_live], bins=bins, histtype="step", linewidth=2, label="bona fide")
  for species in scores.attack_species:
    ax.hist(scores.scores[~scores.is_live & (scores.species == species)], bins=bins,
            histtype="step", label=f"attack: {species}")
  if np.isfinite(threshold):  # CDCN's rules can pick roc_curve's +inf
    ax.axvline(threshold, color="black", linestyle="--",
               label=f"threshold {threshold:.4g}: {threshold_label}")
  ax.set_xlabel("score (bona fide iff score > threshold)")
  ax.set_ylabel("count")
  ax.set_title(f"{name} scores")
  ax.legend(fontsize="small")
  return _save(fig, path)


def write_plots(out_dir: str | os.PathLike, test: ScoreSet, threshold: float,
                dev: ScoreSet | None = None, threshold_label: str = "given") -> list[str]:
  """Writes roc.png, det.png, hist_test.png (and hist_dev.png) into out_dir; returns their paths.

  The dot on each curve and the dashed line on each histogram mark `threshold`; the histograms'
  legend names it with `threshold_label` (where it came from, e.g. the report's threshold_source).
  """
  out_dir = os.fspath(out_dir)
  os.makedirs(out_dir, exist_ok=True)
  sets = {"test": test} if dev is None else {"dev": dev, "test": test}
  paths = [_curves(sets, threshold, det=False, path=os.path.join(out_dir, "roc.png")),
           _curves(sets, threshold, det=True, path=os.path.join(out_dir, "det.png"))]
  for name, scores in sets.items():
    path = os.path.join(out_dir, f"hist_{name}.png")
    paths.append(_histogram(name, scores, threshold, threshold_label, path))
  return paths
