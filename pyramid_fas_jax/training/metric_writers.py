"""Metric logging without TensorFlow: metrics.jsonl plus TensorBoard event files.

clu.metric_writers needs TensorFlow; tensorboardX writes the same event files without it.
Only process 0 writes (`make_writer` returns a no-op writer elsewhere).
"""

import json
import math
import pathlib
import time

import jax
import numpy as np
import tensorboardX


class TensorBoardWriter:
  """Scalars into `logdir/events.out.tfevents.<time>.<host>`, readable by TensorBoard."""

  def __init__(self, logdir):
    self._writer = tensorboardX.SummaryWriter(logdir=str(logdir))

  def write_scalars(self, step: int, scalars: dict[str, float]):
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, value, global_step=step)
    self._writer.flush()  # so that a run killed mid-way keeps every step it logged

  def close(self):
    self._writer.close()


class JsonlWriter:
  """One JSON object per line: {"step": N, "time": t, name: value, ...}. An append-only log
  (not the atomic write path: it grows a line at a time); a run killed mid-line leaves a torn
  last line, which `read_jsonl` skips and a resumed run's first append ends."""

  def __init__(self, path):
    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    torn = self.path.is_file() and self.path.stat().st_size and not _ends_line(self.path)
    self._file = open(self.path, "a")
    if torn:  # so the torn line stays one unreadable line instead of spoiling the next
      self._file.write("\n")

  def write_scalars(self, step: int, scalars: dict[str, float]):
    row = {"step": int(step), "time": round(time.time(), 3)}
    row.update({k: (v if math.isfinite(v) else str(v)) for k, v in scalars.items()})
    self._file.write(json.dumps(row) + "\n")
    self._file.flush()

  def close(self):
    self._file.close()


def _ends_line(path: pathlib.Path) -> bool:
  with open(path, "rb") as f:
    f.seek(-1, 2)
    return f.read(1) == b"\n"


def read_jsonl(path) -> list[dict]:
  """The rows of a metrics.jsonl, skipping a line that is not JSON (a run killed mid-write)."""
  rows = []
  for line in pathlib.Path(path).read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except ValueError:
      continue
  return rows


class MetricWriter:
  """Fans scalars out to every writer; converts arrays to floats once."""

  def __init__(self, writers=()):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: dict):
    if not self.writers:
      return
    values = {k: float(np.asarray(v)) for k, v in scalars.items()}
    for w in self.writers:
      w.write_scalars(step, values)

  def close(self):
    for w in self.writers:
      w.close()


def make_writer(workdir) -> MetricWriter:
  if jax.process_index() != 0:
    return MetricWriter()
  workdir = pathlib.Path(workdir)
  return MetricWriter([JsonlWriter(workdir / "metrics.jsonl"), TensorBoardWriter(workdir / "tb")])
