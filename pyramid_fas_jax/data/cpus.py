"""The CPU cores this process may run on: the one rule every worker count is sized from
(pipeline.py's data.num_workers=-1 and reading threads, builders.py's build processes).
Standard library only, so the light input pipeline and the TFDS builders both import it."""

import os


def cores(at_most: int | None = None) -> int:
  """The cores in this process's affinity mask (what a scheduler, taskset or a container gave
  it, not the machine's count); os.cpu_count() where there is no mask (not on Linux).
  `at_most` caps the count, for a caller that has its own reason to use no more."""
  try:
    n = len(os.sched_getaffinity(0))
  except AttributeError:  # not on Linux
    n = os.cpu_count() or 1
  if at_most is not None:
    if at_most < 1:
      raise ValueError(f"at_most={at_most} must be >= 1")
    n = min(n, at_most)
  return n
