"""Metric writers: the event files read back with TensorBoard's own reader, and metrics.jsonl."""

import json

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from pyramid_fas_jax.training import metric_writers as mw


def test_event_file_round_trip(tmp_path):
  w = mw.make_writer(tmp_path)
  w.write_scalars(7, {"train/loss": np.float32(0.25), "lr": 1e-3})
  w.write_scalars(300, {"train/loss": 0.125})
  w.close()
  (event_file,) = (tmp_path / "tb").iterdir()
  assert event_file.name.startswith("events.out.tfevents.")
  # TensorBoard's reader checks every record's CRC32C and stops at a bad one: steps would go.
  events = event_accumulator.EventAccumulator(str(event_file))
  events.Reload()
  assert sorted(events.Tags()["scalars"]) == ["lr", "train/loss"]
  loss = [(e.step, e.value) for e in events.Scalars("train/loss")]
  assert loss == [(7, 0.25), (300, 0.125)]
  (lr,) = events.Scalars("lr")
  assert lr.step == 7 and lr.value == np.float32(1e-3)
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert rows[0]["step"] == 7 and rows[0]["train/loss"] == 0.25 and rows[1]["step"] == 300


def test_a_non_finite_value_is_kept_as_text_in_jsonl(tmp_path):
  w = mw.make_writer(tmp_path)
  w.write_scalars(1, {"loss": float("nan"), "acc": float("inf")})
  w.close()
  (row,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert row == {"step": 1, "time": row["time"], "loss": "nan", "acc": "inf"}
