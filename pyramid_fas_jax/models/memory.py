"""The memory an eval forward needs at a batch size, and the largest batch that fits.

The figure is XLA's compile-time account of the compiled program, per device: arguments +
outputs - donated aliases + temporaries (`program_bytes`). The program is compiled for the run
anyway, so the one compiled here is the one that runs (`fit` returns it). The model's state is
already in memory when the forward is compiled, so what a batch adds is that account less the
state (`Fitted.extra`); it must fit the budget:

  $PYRAMID_FAS_MEMORY_MB   where set: that many MiB per device, as given (a shared machine, or
                           less than the device reports)
  GPU, TPU                 SAFETY x min over the devices of memory_stats()'s bytes_limit -
                           bytes_in_use (the allocator's pool less what is held: the weights, a
                           training state)
  CPU                      CPU_SAFETY x the host's available memory (MemAvailable, within a
                           cgroup limit), shared by the local CPU devices the program runs on

A backend that gives no account (XLA:CPU's memory_analysis is None or all zeros on some jax
versions) or no free figure leaves the batch unchecked, and `fit` says so.
"""

import dataclasses
import os
import pathlib
import typing

import jax
from absl import logging

from pyramid_fas_jax import errors

ENV = "PYRAMID_FAS_MEMORY_MB"
# On an accelerator XLA's buffers are the program's memory; what the account leaves out is the
# allocator's fragmentation and the host's copies, hence a fifth spare (not measured here: the
# development machine has no accelerator). On CPU the forwards' resident memory came to 1.2-2x
# the account for ResNet50 and CDCN, and up to 3.3x (tens of MiB) for the accounts under 250 MiB
# of MobileNetV2 and ShuffleNetV2 (benchmarks/batch_memory.py, README "Architectures"): XLA:CPU's
# convolution scratch and thread buffers lie outside its account. 40% of what is free leaves
# room for 2.5x.
SAFETY = 0.8
CPU_SAFETY = 0.4
# 'auto' never goes above these. On an accelerator the old default batch. On CPU, images/s stop
# rising by batch 8: ResNet50 12.3 at 4, 12.5 at 8, 12.1 at 16; MobileNetV2 9.4 at 8 and 16;
# ShuffleNetV2 gains 11% from 8 to 16; CDCN is fastest at batch 1 (1.8, 1.5 at 8), XLA:CPU
# already filling the cores with one image's convolutions. Memory meanwhile grows linearly:
# CDCN at 256x256 adds 1.0 GiB at batch 8, 3.7 GiB at 32 (the old default; same README table).
ACCELERATOR_CAP = 32
CPU_CAP = 8
MIB = 2**20


class BatchTooLarge(errors.InputError):
  """A batch whose estimated memory exceeds the budget: refused before anything runs."""


@dataclasses.dataclass(frozen=True)
class Budget:
  """Bytes per device a program may add to what is held now (None: unknown), and their source."""
  bytes: int | None
  source: str


@dataclasses.dataclass(frozen=True)
class Fitted:
  """A batch size, its compiled program, XLA's account of it (None: the backend gave none), the
  bytes of it already resident (the state), the budget it was held to and how it was chosen."""
  batch: int
  compiled: typing.Any
  need: int | None
  resident: int
  room: Budget
  how: str = "as given"

  @property
  def extra(self) -> int | None:
    return None if self.need is None else max(self.need - self.resident, 0)

  @property
  def line(self) -> str:
    """One line: the batch, how it was chosen and its estimate against the budget."""
    if self.need is None:
      return (f"batch {self.batch} ({self.how}; no memory estimate: XLA gives no memory "
              "analysis on this backend)")
    available = ("an unknown amount available" if self.room.bytes is None else
                 f"{mib(self.room.bytes)} available ({self.room.source})")
    return (f"batch {self.batch} ({self.how}): estimated peak {mib(self.need)} per device, "
            f"{mib(self.extra)} beyond the weights, of {available}")


def mib(n) -> str:
  """`n` bytes for a reader: GiB to two decimals, MiB, or to one decimal below 10 MiB."""
  if n >= 2**30:
    return f"{n / 2**30:.2f} GiB"
  return f"{n / MIB:.1f} MiB" if n < 10 * MIB else f"{n / MIB:,.0f} MiB"


def program_bytes(compiled) -> int | None:
  """arguments + outputs - aliases + temporaries of a compiled program (jax.stages.Compiled),
  per device; None where the backend gives no analysis."""
  try:
    m = compiled.memory_analysis()
  except (NotImplementedError, RuntimeError, AttributeError):
    return None
  if isinstance(m, (list, tuple)):  # older jax: one per program
    m = m[0] if m else None
  fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
            "temp_size_in_bytes")
  values = [getattr(m, f, None) for f in fields]
  if m is None or any(v is None for v in values):
    return None
  total = values[0] + values[1] - values[2] + values[3]
  # All zeros: a backend that fills the struct without measuring.
  return int(total) if total > 0 else None


def tree_bytes(tree) -> int:
  """Bytes of the arrays of `tree` on one device (a replicated array counts once)."""
  return sum(int(getattr(x, "nbytes", 0)) for x in jax.tree.leaves(tree))


def host_available() -> int | None:
  """The host's available memory in bytes: MemAvailable (else free pages), within the cgroup's
  limit where one is set."""
  available = None
  try:
    for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
      if line.startswith("MemAvailable:"):
        available = int(line.split()[1]) * 1024
  except OSError:
    pass
  if available is None:
    try:
      available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
      return None
  try:  # cgroup v2: a container's limit, which MemAvailable (the host's) does not show
    cgroup = pathlib.Path("/sys/fs/cgroup")
    limit = (cgroup / "memory.max").read_text().strip()
    if limit != "max":
      available = min(available, int(limit) - int((cgroup / "memory.current").read_text()))
  except (OSError, ValueError):
    pass
  return max(available, 0)


def budget(devices: typing.Sequence, env=os.environ) -> Budget:
  """What a program on each of `devices` (this process's) may use (see the module docstring)."""
  if env.get(ENV):
    try:
      mb = float(env[ENV])
    except ValueError:
      mb = float("nan")
    if not 0 < mb < float("inf"):   # NaN too
      raise errors.InputError(f"${ENV}={env[ENV]!r} is not a positive number of MiB") from None
    return Budget(int(mb * MIB), f"${ENV}")
  devices = list(devices)
  if devices[0].platform == "cpu":
    host = host_available()
    shared = f", shared by {len(devices)} CPU devices" if len(devices) > 1 else ""
    if host is None:
      return Budget(None, "the host reports no available memory")
    return Budget(int(CPU_SAFETY * host / len(devices)),
                  f"{CPU_SAFETY:.0%} of the host's available {mib(host)}{shared}")
  free = []
  for device in devices:
    try:
      stats = device.memory_stats() or {}
    except (NotImplementedError, RuntimeError):
      stats = {}
    if "bytes_limit" not in stats:
      return Budget(None, f"{device.device_kind} reports no memory figures")
    free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
  return Budget(int(SAFETY * min(free)), f"{SAFETY:.0%} of {mib(min(free))} free on "
                f"{devices[0].device_kind}")


def auto_batches(cap: int, n: int | None = None) -> list[int]:
  """'auto's candidates, largest first: the powers of two up to `cap`, and to no more than `n`
  (the images to score) needs rounded up to one, so a few images are not padded to a big batch."""
  if n is not None:
    cap = min(cap, 1 << max(n - 1, 0).bit_length())
  return [1 << k for k in range(max(cap, 1).bit_length() - 1, -1, -1)]


def cap_of(device) -> int:
  return CPU_CAP if device.platform == "cpu" else ACCELERATOR_CAP


def fit(compile_at: typing.Callable[[int], typing.Any], batches: typing.Sequence[int],
        room: Budget, *, resident: int = 0, explicit: bool = False, refuse: bool = True,
        allow_over: bool = False, what: str = "--batch_size", how: str = "auto",
        remedy: str = "") -> Fitted:
  """The first (largest) of `batches` whose compiled program (`compile_at(batch)`) fits `room`,
  with that program, logged at INFO (Fitted.line). Candidates that a linear extrapolation of
  the last account rules out are not compiled. `explicit`: `batches` is the one batch the user
  chose, refused (BatchTooLarge, naming the figures and `remedy`) if it does not fit, unless
  `allow_over`. Where none fits: refused if `refuse` and not `allow_over`, else the smallest,
  with a warning."""
  batches = sorted(set(batches), reverse=True)
  fitted = None
  for batch in batches:
    if fitted is not None and fitted.extra and batch != batches[-1]:
      # The account is about linear in the batch with a constant part, so the extrapolation
      # understates a smaller batch's need: it skips only batches that surely do not fit.
      if fitted.extra * batch / fitted.batch > room.bytes:
        continue
    compiled = compile_at(batch)
    fitted = Fitted(batch, compiled, program_bytes(compiled), resident, room, how)
    if fitted.extra is None or room.bytes is None or fitted.extra <= room.bytes:
      logging.info("%s", fitted.line)
      return fitted
  figures = (f"{what}={fitted.batch} needs an estimated {mib(fitted.extra)} per device (XLA's "
             f"account of the forward, beyond {mib(resident)} of weights) but "
             f"{mib(room.bytes)} is available ({room.source})")
  if explicit and not allow_over:
    raise BatchTooLarge(f"{figures}; {remedy}")
  if refuse and not allow_over:
    raise BatchTooLarge(f"even {figures}; free memory (or set ${ENV} higher) and rerun")
  logging.warning("%s; running it anyway", figures)
  return fitted
