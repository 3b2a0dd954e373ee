"""Multi-process start-up: one JAX process per host (TPU pods) or per GPU/node (SLURM).

jax.distributed.initialize() detects TPU pods and SLURM jobs by itself; elsewhere the coordinator
address, process count and id are given explicitly (several processes on 127.0.0.1 in tests).
"""

import importlib.util
import os

import jax
from absl import logging

from pyramid_fas_jax import errors


class ProcessFlagsError(errors.InputError, ValueError):
  """--coordinator_address, --num_processes and --process_id given in part."""


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """Start jax.distributed if this is a multi-process run; a single process needs nothing."""
  explicit = [coordinator_address, num_processes, process_id]
  if any(v is not None for v in explicit):
    if any(v is None for v in explicit):
      raise ProcessFlagsError("--coordinator_address, --num_processes and --process_id go together "
                       f"(got {coordinator_address!r}, {num_processes!r}, {process_id!r})")
    if num_processes > 1:
      jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif _multi_process_cluster():
    jax.distributed.initialize(local_device_ids=slurm_local_device_ids(os.environ))


def log_devices() -> None:
  """Log this process's place among the processes, and the devices."""
  logging.info("JAX process %d/%d, %d local / %d global devices (%s)", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count(),
               jax.devices()[0].device_kind)


_BARRIER_TIMEOUT_S = 600
_barriers = 0


def barrier(name: str) -> None:
  """Wait until every process gets here (no-op in one process). Gloo gives a process that
  reaches a cross-process computation only 30 s to see the others there, and start-up work
  (reading data, building and compiling the model) can differ by more on loaded hosts; the
  coordination service's barrier waits up to _BARRIER_TIMEOUT_S."""
  global _barriers
  if jax.process_count() == 1:
    return
  _barriers += 1
  try:  # JAX has no public barrier without a computation (which would meet gloo's 30 s)
    from jax._src import distributed
    client = distributed.global_state.client
  except (ImportError, AttributeError):
    client = None
  if client is None:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
    return
  client.wait_at_barrier(f"pyramid_fas/{_barriers}/{name}", _BARRIER_TIMEOUT_S * 1000)


def slurm_local_device_ids(env) -> list[int] | None:
  """The GPUs of a SLURM task that is alone on its node: all it sees; else None (JAX's default).

  JAX's SLURM detection has local process i drive GPU i, which is right for one task per GPU
  but would leave a one-task-per-node job on its first GPU (jax-ml/jax#16788). Ordinals count
  the visible GPUs, whatever CUDA_VISIBLE_DEVICES maps them to.
  """
  tasks_on_node = env.get("SLURM_STEP_TASKS_PER_NODE", env.get("SLURM_TASKS_PER_NODE", ""))
  visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
  # SLURM writes e.g. "1(x4)" for four nodes with one task each, "8(x2),4" for uneven nodes.
  alone = bool(tasks_on_node) and all(n.split("(")[0] == "1" for n in tasks_on_node.split(","))
  if int(env.get("SLURM_NTASKS", "1")) > 1 and alone and visible:
    return list(range(len(visible)))
  return None


def _multi_process_cluster() -> bool:
  if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    return True
  if "," in os.environ.get("TPU_WORKER_HOSTNAMES", ""):
    return True
  # A Cloud TPU VM (jax[tpu] brings libtpu): jax.distributed finds the slice's hosts from the
  # VM's metadata, which need not show in the environment; on one host it is a no-op.
  if importlib.util.find_spec("libtpu") is not None:
    return True
  return int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1")) > 1


def make_mesh() -> jax.sharding.Mesh:
  """One 'data' axis over every device of every process.

  Auto axis type: sharding propagates through the model as XLA sees fit (the batch is sharded on
  entry, the state replicated), instead of every reshape needing an explicit output sharding.
  """
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
