"""Mean ± std over sub-protocols, and result tables laid out like the paper's Tables III-VI.

A result here is what `evaluate_scores` returns (its "test" entry is read), a flat dict of rates,
or what `aggregate` returns (shown as mean±std). Tables hold fractions; markdown and CSV show
percentages, JSON keeps fractions.

The std is the population std (ddof=0) by default, as numpy's np.std computes it, which is how
FAS codebases usually compute the ± over OULU-NPU's six sub-protocols; the papers do not say
and no official script fixes it, so `ddof=1` (sample std) is one argument away.
"""

import csv
import dataclasses
import io
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from pyramid_fas_jax.evaluation import metrics
from pyramid_fas_jax.files import atomic

RATE_KEYS = ("APCER", "APCER_pooled", "BPCER", "ACER", "HTER", "EER", "AUC",
             *(f"BPCER@APCER={x:.0%}" for x in metrics.BPCER_AT_APCER))


def _rates(result: Mapping) -> dict[str, float]:
  flat = result.get("test", result)
  return {key: float(flat[key]) for key in RATE_KEYS if key in flat}


def aggregate(results: Mapping[str, Mapping], ddof: int = 0) -> dict:
  """Mean and std of each rate over sub-protocols (e.g. OULU-NPU protocol 3's six).

  Args:
    results: sub-protocol name -> result (evaluate_scores output or a flat dict of rates).
    ddof: 0 for the population std, 1 for the sample std.

  Returns:
    {"sub_protocols": [names], "ddof": ddof, "mean": {rate: v}, "std": {rate: v},
     "per_sub_protocol": {name: {rate: v}}}, over the rates every sub-protocol has.
  """
  if len(results) <= ddof:
    raise ValueError(f"{len(results)} sub-protocols give no std with ddof={ddof}")
  per = {name: _rates(result) for name, result in results.items()}
  keys = [key for key in RATE_KEYS if all(key in rates for rates in per.values())]
  if not keys:
    raise ValueError(f"the sub-protocols share none of the rates {RATE_KEYS}")
  values = {key: np.array([rates[key] for rates in per.values()]) for key in keys}
  return {"sub_protocols": list(results), "ddof": ddof,
          "mean": {key: float(v.mean()) for key, v in values.items()},
          "std": {key: float(v.std(ddof=ddof)) for key, v in values.items()},
          "per_sub_protocol": per}


@dataclasses.dataclass
class Table:
  """A titled grid: the first `n_labels` cells of a row are labels (str); the others are a
  fraction, a (mean, std) pair of fractions, or None where there is no value."""

  title: str
  columns: list[str]
  rows: list[list]
  n_labels: int = 1


def _cell(result: Mapping, metric: str):
  if "mean" in result and "std" in result:  # an `aggregate` result
    return (result["mean"][metric], result["std"][metric]) if metric in result["mean"] else None
  return _rates(result).get(metric)


def protocol_table(entries: Mapping[str, Mapping[str, Mapping]],
                   metrics_shown: Sequence[str] = ("APCER", "BPCER", "ACER"),
                   title: str = "Intra-dataset testing") -> Table:
  """Rows protocol x method, columns the metrics: the layout of Table III (OULU-NPU).

  Args:
    entries: protocol -> method -> result; an `aggregate` result shows as mean±std.
  """
  rows = [[protocol, method, *(_cell(result, m) for m in metrics_shown)]
          for protocol, methods in entries.items() for method, result in methods.items()]
  return Table(title, ["Prot.", "Method", *(f"{m}(%)" for m in metrics_shown)], rows, n_labels=2)


def cross_table(entries: Mapping[str, Mapping[str, Mapping]], metrics_shown: Sequence[str],
                title: str, metric_rows: bool = True, average: bool = True,
                ddof: int = 0) -> Table:
  """One column per sub-protocol (or attack type), with an Average column of mean±std.

  metric_rows=True gives rows method x metric, the layout of Table VI (SiW-M, one column per
  left-out attack); metric_rows=False gives one row per method and a column per sub-protocol
  and metric, the layout of Tables IV and V (cross-dataset HTER and AUC).

  Args:
    entries: method -> sub-protocol -> result.
  """
  subs = list(dict.fromkeys(sub for per_method in entries.values() for sub in per_method))

  def values(per_method, metric):
    cells = [_cell(per_method[sub], metric) if sub in per_method else None for sub in subs]
    if average:
      present = [c[0] if isinstance(c, tuple) else c for c in cells if c is not None]
      enough = len(present) > ddof
      cells.append((float(np.mean(present)), float(np.std(present, ddof=ddof))) if enough else None)
    return cells

  heads = subs + (["Average"] if average else [])
  if metric_rows:
    rows = [[method, f"{metric}(%)", *values(per_method, metric)]
            for method, per_method in entries.items() for metric in metrics_shown]
    return Table(title, ["Method", "Metric", *heads], rows, n_labels=2)
  columns = [head if len(metrics_shown) == 1 else f"{head} {metric}"
             for head in heads for metric in metrics_shown]
  rows = []
  for method, per_method in entries.items():
    by_metric = [values(per_method, metric) for metric in metrics_shown]
    rows.append([method, *(cells[i] for i in range(len(heads)) for cells in by_metric)])
  unit = "(%)" if len(metrics_shown) > 1 else f" {metrics_shown[0]}(%)"
  return Table(title + unit, ["Method", *columns], rows)


def _percent(cell, digits: int) -> str:
  if cell is None:
    return "-"
  if isinstance(cell, tuple):
    return f"{100 * cell[0]:.{digits}f}±{100 * cell[1]:.{digits}f}"
  return f"{100 * cell:.{digits}f}"


def to_markdown(table: Table, digits: int = 1) -> str:
  """A markdown table of percentages, mean±std where aggregated."""
  n_values = len(table.columns) - table.n_labels
  lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |",
           "|" + "|".join([":--"] * table.n_labels + ["--:"] * n_values) + "|"]
  for row in table.rows:
    cells = list(row[:table.n_labels]) + [_percent(c, digits) for c in row[table.n_labels:]]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def to_csv(table: Table, digits: int = 4) -> str:
  """CSV of percentages; a column with mean±std cells becomes two: `name` and `name std`."""
  split = [any(isinstance(row[i], tuple) for row in table.rows) for i in range(len(table.columns))]
  header = []
  for name, two in zip(table.columns, split):
    header += [name, f"{name} std"] if two else [name]
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(header)
  for row in table.rows:
    cells = list(row[:table.n_labels])
    for cell, two in zip(row[table.n_labels:], split[table.n_labels:]):
      mean, std = cell if isinstance(cell, tuple) else (cell, None)
      cells.append("" if mean is None else round(100 * mean, digits))
      if two:
        cells.append("" if std is None else round(100 * std, digits))
    writer.writerow(cells)
  return out.getvalue()


def to_json(table: Table) -> dict:
  """{"title", "units": "fractions", "columns", "rows": [{column: value}]}; mean±std cells are
  {"mean": m, "std": s}."""
  def value(cell):
    return {"mean": cell[0], "std": cell[1]} if isinstance(cell, tuple) else cell

  rows = [dict(zip(table.columns, row[:table.n_labels] + [value(c) for c in row[table.n_labels:]]))
          for row in table.rows]
  return {"title": table.title, "units": "fractions", "columns": table.columns, "rows": rows}


def write_table(table: Table, stem: str | os.PathLike, digits: int = 1) -> list[str]:
  """Writes stem.md, stem.csv and stem.json; returns their paths."""
  stem = os.fspath(stem)
  texts = {".md": to_markdown(table, digits), ".csv": to_csv(table),
           ".json": json.dumps(to_json(table), indent=2) + "\n"}
  for suffix, text in texts.items():
    atomic.write_text(stem + suffix, text)
  return [stem + suffix for suffix in texts]
