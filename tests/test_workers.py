"""data/workers.py: the build pool's rules (not forked from the builder, a dead worker fails
the build instead of hanging it, bounded look-ahead, early stop cancels the rest). The tasks are
stdlib functions: a worker process imports its function by name."""

import math
import operator
import os
import pathlib
import threading

import pytest

from pyramid_fas_jax.data import workers


def _within(seconds, fn):
  """fn() in a thread; its result or exception, failing the test if it has not ended in time."""
  out = {}

  def run():
    try:
      out["value"] = fn()
    except Exception as e:  # noqa: BLE001  (handed to the test)
      out["error"] = e
  thread = threading.Thread(target=run, daemon=True)
  thread.start()
  thread.join(seconds)
  assert not thread.is_alive(), f"still running after {seconds} s: the pool hangs"
  return out


def test_results_come_in_task_order():
  got = list(workers.imap(math.factorial, range(15), 2))
  assert got == [math.factorial(i) for i in range(15)]


def test_workers_are_not_forked_from_the_builder():
  # A forked worker's parent is this process; a forkserver's worker's is the server.
  parents = list(workers.imap(operator.call, [os.getppid] * 4, 2))
  assert os.getpid() not in parents


def test_one_worker_runs_in_this_process():
  assert list(workers.imap(operator.call, [os.getpid] * 3, 1)) == [os.getpid()] * 3


def test_a_dead_worker_fails_the_build_naming_its_task():
  out = _within(120, lambda: list(workers.imap(os._exit, [3, 3, 3], 2,
                                               name=lambda t: f"task<{t}>")))
  assert isinstance(out.get("error"), workers.WorkerDied), out
  assert "task<3>" in str(out["error"])


def test_stopping_early_cancels_what_is_queued(tmp_path):
  paths = [tmp_path / f"{i:03d}" for i in range(100)]
  results = workers.imap(pathlib.Path.touch, paths, 2)
  next(results)
  results.close()  # what an error in the consumer, or Ctrl-C, does to the generator
  touched = sorted(tmp_path.iterdir())
  # The first result plus the look-ahead: never the 100 a Pool.imap would have queued.
  assert 1 <= len(touched) <= 1 + 2 * workers.AHEAD
  assert touched == paths[:len(touched)]


def test_an_error_in_a_task_reaches_the_caller():
  with pytest.raises(ValueError, match="math domain error"):
    list(workers.imap(math.sqrt, [4.0, -1.0, 9.0], 2))
