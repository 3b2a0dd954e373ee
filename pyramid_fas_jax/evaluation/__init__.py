"""Evaluation: ISO/IEC 30107-3 metrics from score sets, the official-CDCN mode, bootstrap
intervals, failures to acquire, sub-protocol tables and plots. `evaluate_scores` is the one
entry point."""

from pyramid_fas_jax.evaluation.acquisition import Unacquired
from pyramid_fas_jax.evaluation.report import evaluate_scores, format_report, write_json
from pyramid_fas_jax.evaluation.scorefile import (
           ScoreError,
           ScoreSet,
           aggregate_videos,
           read_scores,
           write_scores,
)

__all__ = ["ScoreError", "ScoreSet", "Unacquired", "aggregate_videos", "evaluate_scores",
           "format_report", "read_scores", "write_json", "write_scores"]
