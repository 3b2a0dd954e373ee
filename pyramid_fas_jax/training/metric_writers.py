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
  """One JSON object per line: {"step": N, "time": t, name: value, ...}."""

  def __init__(self, path):
    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._file = open(self.path, "a")

  def write_scalars(self, step: int, scalars: dict[str, float]):
    row = {"step": int(step), "time": round(time.time(), 3)}
    row.update({k: (v if math.isfinite(v) else str(v)) for k, v in scalars.items()})
    self._file.write(json.dumps(row) + "\n")
    self._file.flush()

  def close(self):
    self._file.close()


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
