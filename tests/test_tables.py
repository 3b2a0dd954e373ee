"""Sub-protocol aggregation and the paper-style tables in markdown, CSV and JSON."""

import csv
import io
import json

import numpy as np
import pytest

from pyramid_fas_jax.evaluation import tables

# Six sub-protocols (as OULU-NPU protocols 3 and 4), as evaluate_scores would return them.
ACER = [0.01, 0.02, 0.03, 0.02, 0.04, 0.02]
SUBS = {f"4_{i + 1}": {"test": {"APCER": 2 * a, "BPCER": 0.0, "ACER": a, "threshold": 0.5}}
        for i, a in enumerate(ACER)}


def test_aggregate_mean_and_population_std():
  agg = tables.aggregate(SUBS)
  assert agg["sub_protocols"] == list(SUBS) and agg["ddof"] == 0
  assert agg["mean"] == pytest.approx({"APCER": 0.14 / 3, "BPCER": 0.0, "ACER": 0.07 / 3})
  assert agg["std"]["ACER"] == pytest.approx(np.std(ACER))
  assert "threshold" not in agg["mean"]  # only rates are averaged
  assert agg["per_sub_protocol"]["4_5"]["ACER"] == 0.04
  assert tables.aggregate(SUBS, ddof=1)["std"]["ACER"] == pytest.approx(np.std(ACER, ddof=1))


def test_aggregate_needs_enough_sub_protocols():
  with pytest.raises(ValueError, match="no std with ddof=1"):
    tables.aggregate({"1": SUBS["4_1"]}, ddof=1)


def test_protocol_table_like_table_iii():
  entries = {"1": {"CDCN-PS": {"APCER": 0.004, "BPCER": 0.0, "ACER": 0.002}},
             "4": {"CDCN-PS": tables.aggregate(SUBS)}}
  table = tables.protocol_table(entries, title="OULU-NPU")
  md = tables.to_markdown(table)
  assert md.splitlines()[2] == "| Prot. | Method | APCER(%) | BPCER(%) | ACER(%) |"
  assert "| 1 | CDCN-PS | 0.4 | 0.0 | 0.2 |" in md
  std = 100 * np.std(ACER)
  assert f"| 4 | CDCN-PS | 4.7±{2 * std:.1f} | 0.0±0.0 | 2.3±{std:.1f} |" in md

  rows = list(csv.reader(io.StringIO(tables.to_csv(table))))
  assert rows[0] == ["Prot.", "Method", "APCER(%)", "APCER(%) std", "BPCER(%)", "BPCER(%) std",
                     "ACER(%)", "ACER(%) std"]
  assert rows[1][:3] == ["1", "CDCN-PS", "0.4"] and rows[1][3] == ""
  assert float(rows[2][7]) == pytest.approx(100 * np.std(ACER), abs=1e-4)

  as_json = tables.to_json(table)
  assert as_json["units"] == "fractions"
  assert as_json["rows"][1]["ACER(%)"] == {"mean": pytest.approx(0.07 / 3),
                                           "std": pytest.approx(np.std(ACER))}


def test_cross_table_like_table_vi_with_average():
  per_attack = {"Replay": {"ACER": 0.01, "EER": 0.02}, "Print": {"ACER": 0.03, "EER": 0.04}}
  table = tables.cross_table({"ResNet50-PS": per_attack}, ("ACER", "EER"), "SiW-M cross-type")
  assert table.columns == ["Method", "Metric", "Replay", "Print", "Average"]
  assert table.rows[0][:4] == ["ResNet50-PS", "ACER(%)", 0.01, 0.03]
  assert table.rows[0][4] == pytest.approx((0.02, 0.01))
  assert "| ResNet50-PS | EER(%) | 2.0 | 4.0 | 3.0±1.0 |" in tables.to_markdown(table)


def test_cross_table_like_table_iv_one_row_per_method():
  results = {"CDCN": {"O&C&I to M": {"HTER": 0.1, "AUC": 0.95},
                      "I&C&M to O": {"HTER": 0.2, "AUC": 0.9}}}
  table = tables.cross_table(results, ("HTER", "AUC"), "Cross-dataset", metric_rows=False,
                             average=False)
  assert table.columns == ["Method", "O&C&I to M HTER", "O&C&I to M AUC", "I&C&M to O HTER",
                           "I&C&M to O AUC"]
  assert table.rows == [["CDCN", 0.1, 0.95, 0.2, 0.9]]
  one_metric = tables.cross_table({"CDCN": {"CR": {"HTER": 0.3}, "RC": {"HTER": 0.4}}}, ("HTER",),
                                  "C vs R", metric_rows=False, average=False)
  assert one_metric.title == "C vs R HTER(%)" and one_metric.columns == ["Method", "CR", "RC"]
  assert "| CDCN | 30.00 | 40.00 |" in tables.to_markdown(one_metric, digits=2)


def test_write_table_writes_markdown_csv_and_json(tmp_path):
  table = tables.protocol_table({"4": {"CDCN": tables.aggregate(SUBS)}})
  paths = tables.write_table(table, tmp_path / "oulu_p4")
  assert paths == [str(tmp_path / f"oulu_p4.{ext}") for ext in ("md", "csv", "json")]
  assert json.loads((tmp_path / "oulu_p4.json").read_text())["rows"][0]["Method"] == "CDCN"
  assert (tmp_path / "oulu_p4.md").read_text() == tables.to_markdown(table)
