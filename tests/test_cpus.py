"""data/cpus.py: every worker count is sized from the cores in this process's affinity mask (what
a scheduler, taskset or a container gave it), not the machine's count: the input pipeline's
data.num_workers=-1 and reading threads, a build's --num_workers=-1, and a first-use build,
which alone caps it at 8."""

import os
import types

import pytest

from pyramid_fas_jax.data import builders, cpus, pipeline
from pyramid_fas_jax.experiment import config as data_config


def _given(monkeypatch, n_cores: int, machine: int = 64) -> None:
  """This process may run on `n_cores` of the machine's `machine` cores."""
  monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n_cores)), raising=False)
  monkeypatch.setattr(os, "cpu_count", lambda: machine)


def _first_use_workers(monkeypatch, tmp_path, caplog) -> int:
  """The worker processes build_on_first_use gives SynthFAS/tiny's build (not run here)."""
  asked = []

  def build(name, data_dir, config, *, num_workers):
    asked.append(num_workers)
    return types.SimpleNamespace(info=types.SimpleNamespace(full_name=f"{name}/{config}"),
                                 data_dir=data_dir)

  monkeypatch.setattr(builders, "build", build)
  caplog.set_level("WARNING")
  builders.build_on_first_use("synth_fas", "tiny", str(tmp_path))
  assert len(asked) == 1, asked
  assert any(f"with {asked[0]} worker processes" in r.getMessage() for r in caplog.records)
  return asked[0]


def _read_threads(workers: int) -> int:
  config = data_config.default_data_config()
  config.data.num_workers = workers
  return pipeline._read_options(config).num_threads


def test_every_caller_counts_the_affinity_mask(monkeypatch, tmp_path, caplog):
  _given(monkeypatch, 3)
  assert cpus.cores() == 3
  assert builders.worker_count(-1) == 3
  assert builders.worker_count(5) == 5  # an explicit count is the count
  resolved = pipeline.resolve_auto(data_config.default_data_config())
  assert resolved.data.num_workers == pipeline.auto_workers(3) == 2
  assert _read_threads(0) == 3  # in-process reading: a thread per core
  assert _first_use_workers(monkeypatch, tmp_path, caplog) == 3  # under the cap


def test_only_the_first_use_build_is_capped_at_8(monkeypatch, tmp_path, caplog):
  _given(monkeypatch, 12)
  assert cpus.cores() == 12
  assert cpus.cores(at_most=8) == 8
  assert builders.worker_count(-1) == 12  # an explicit build uses every core
  assert pipeline.num_workers(data_config.default_data_config()) == 11
  assert _read_threads(0) == 12
  assert _first_use_workers(monkeypatch, tmp_path, caplog) == 8


def test_without_an_affinity_mask_the_machines_cores(monkeypatch):
  monkeypatch.delattr(os, "sched_getaffinity", raising=False)
  monkeypatch.setattr(os, "cpu_count", lambda: 5)
  assert cpus.cores() == builders.worker_count(-1) == 5
  assert cpus.cores(at_most=8) == 5
  monkeypatch.setattr(os, "cpu_count", lambda: None)  # undeterminable: one
  assert cpus.cores() == 1


def test_a_cap_below_one_is_refused():
  with pytest.raises(ValueError, match="at_most=0"):
    cpus.cores(at_most=0)
