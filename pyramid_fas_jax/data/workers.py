"""The worker processes a dataset build runs its work in (a real dataset's videos, SynthFAS's
subjects): the one place for the rules such a pool must keep.

- Workers start from a forkserver, never forked from the building process. A build runs inside
  processes that hold JAX's and TensorFlow's threads (`make demo`, a notebook, a command's
  first use, the tests), and a child forked from those can deadlock on a lock one of those
  threads held: the demo's SynthFAS build once waited so for ever, one worker dead and one
  asleep.
- A worker that dies (killed, out of memory, a crash in native code) fails the build at once
  with WorkerDied, naming the task; multiprocessing.Pool waits for the lost task for ever.
- At most 2 tasks per worker are ahead of the consumer, so a slow writer never holds a whole
  build's results in memory (Pool.imap queues them all).
- Stopping early (an error in the consumer, Ctrl-C) cancels the queued tasks rather than
  finishing them.
"""

import collections
import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool

AHEAD = 2  # tasks submitted per worker beyond the one the consumer waits for


class WorkerDied(RuntimeError):
  """A worker process ended without returning its task's result."""


def imap(fn: Callable, tasks: Iterable, workers: int,
         initializer: Callable | None = None, name: Callable = repr) -> Iterator:
  """fn(task) for each task, in order, computed in `workers` processes (in this process when
  `workers` <= 1 or there is one task; `initializer` then is not called). `fn` and
  `initializer` must be importable module-level functions; `name(task)` says which task a dead
  worker was given."""
  tasks = list(tasks)
  workers = min(workers, len(tasks))
  if workers <= 1:
    yield from map(fn, tasks)
    return
  pool = concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("forkserver"), initializer=initializer)
  pending = collections.deque()
  queue = iter(tasks)
  try:
    for task in queue:
      pending.append((task, pool.submit(fn, task)))
      if len(pending) >= workers * AHEAD:
        break
    while pending:
      task, future = pending.popleft()
      try:
        result = future.result()
      except BrokenProcessPool as e:
        raise WorkerDied(f"a build worker process died (killed, out of memory or crashed) "
                         f"while working on {name(task)}: the build stops here; run it "
                         f"again (a real dataset's build resumes from the videos it "
                         f"finished)") from e
      for nxt in queue:
        pending.append((nxt, pool.submit(fn, nxt)))
        break
      yield result
  finally:
    pool.shutdown(wait=True, cancel_futures=True)
