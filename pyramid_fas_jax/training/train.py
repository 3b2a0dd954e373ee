"""Training and evaluation loop: `train_and_evaluate(config, workdir)`.

One jitted step over a mesh of every device of every process: the batch is sharded on the 'data'
axis, the model and optimizer state are replicated and donated. Checkpoints (model, optimizer,
grain iterator, the config) are written every `checkpoint_every_steps`, at the end and on
SIGTERM or SIGINT; a restart with the same workdir resumes exactly where the newest readable
checkpoint left off, after checking that its config is the run's (changes.py). On SIGTERM or
SIGINT (Ctrl-C) the run finishes its step, saves and raises `Preempted` (`pyramid-fas train`
exits 75: resumable). A second signal while it saves changes nothing (a note says so): the save
completes; even a kill leaves the steps saved before readable (Orbax writes a step into a
temporary directory and renames it when complete, and an unreadable step is skipped on resume).

The run's wall time (`WALL_TIME_KEY` of the results and of every checkpoint's meta) is the time
its sessions spent up to their last checkpoint (start-up, a first-use data build, compiles,
evaluations; at the end, up to the final evaluation), summed over resumes: rerunning a finished
run reports the stored total, not the rerun's seconds.
"""

import contextlib
import os
import pathlib
import signal
import time

import jax
import jax.numpy as jnp
from absl import logging
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from pyramid_fas_jax import errors
from pyramid_fas_jax.data import pipeline, splits
from pyramid_fas_jax.evaluation import evaluator
from pyramid_fas_jax.files import lock
from pyramid_fas_jax.training import (
  changes,
  distributed,
  metric_writers,
  optim,
  train_checkpoint,
  train_step,
)

WALL_TIME_KEY = "wall_time_s"


class NonFiniteLossError(RuntimeError):
  pass


class Preempted(errors.Stopped):
  """SIGTERM or SIGINT stopped the run after it saved step `step`: not finished, resumable by
  training again in the same workdir (`pyramid-fas train` exits with exit_codes.PREEMPTED)."""

  def __init__(self, step: int, workdir, signum: int = signal.SIGTERM):
    why = "interrupted (Ctrl-C)" if signum == signal.SIGINT else "preempted"
    super().__init__(f"{why} at step {step}; the checkpoint is saved in {workdir}; rerun the "
                     "same command to resume")
    self.step, self.signum = step, signum


# Ctrl-C is SIGINT: it stops a run as a scheduler's SIGTERM does, with a checkpoint.
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Preemption:
  """Turns SIGTERM and SIGINT into a flag the loop checks, so the run can checkpoint and exit
  cleanly; `signum` is the first signal received."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  @property
  def requested(self) -> bool:
    return self.signum is not None

  def __enter__(self):
    for signum in _SIGNALS:
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is None:
      self.signum = signum
      return
    # os.write, not print or logging: a handler may run in the middle of either.
    os.write(2, b"already stopping: the checkpoint of this step is being saved, then the run "
                b"exits 75 (resumable); a second signal does not cut the save short\n")

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)


class _Progress:
  """Console progress: the step and epoch, steps/s, images/s and ETA since the last report."""

  def __init__(self, total_steps, batch_size, start_step, steps_per_epoch):
    self.total, self.batch, self.steps_per_epoch = total_steps, batch_size, steps_per_epoch
    self.last_step, self.last_time = start_step, time.perf_counter()

  def report(self, step, scalars):
    now = time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.last_step, self.last_time = step, now
    eta = (self.total - step) / max(rate, 1e-9)
    epoch = step / self.steps_per_epoch  # epochs completed, in data.epoch_unit
    loss = " ".join(f"{k.split('/')[-1]}={v:.4f}" for k, v in scalars.items() if "loss" in k)
    if jax.process_index() == 0:
      logging.info("step %d/%d epoch %.1f/%g  %s  %.2f steps/s  %.1f img/s  ETA %s", step,
                   self.total, epoch, round(self.total / self.steps_per_epoch, 1), loss, rate,
                   rate * self.batch, time.strftime("%H:%M:%S", time.gmtime(eta)))
    return {"train/epoch": epoch, "train/steps_per_s": rate,
            "train/images_per_s": rate * self.batch}


def _stop_if_non_finite(finite, checked: int, step: int, ckpt) -> int:
  """Raise if any loss since step `checked` was NaN/inf; no checkpoint is written after that."""
  if not bool(finite):
    ckpt.wait()
    raise NonFiniteLossError(
        f"non-finite loss between steps {checked + 1} and {step}: stopping; the last good "
        f"checkpoint is step {ckpt.latest_step()} in {ckpt.manager.directory}")
  return step


def run_lock(workdir, command: str):
  """The workdir's run lock (files.lock) for `command`: taken by process 0 only, the one that
  writes the run's files; the other processes of the same run are the same writer."""
  if jax.process_index() != 0:
    return contextlib.nullcontext()
  return lock.hold(workdir, command)


def train_and_evaluate(config, workdir, *, allow_config_change=(),
                       command: str = "train_and_evaluate") -> dict:
  """Train `config` in `workdir` (resuming if it holds checkpoints); return the last evaluation.

  Raises lock.LockedError, having written nothing, while another process (named in it) holds
  the workdir's run lock (`command` names this one to others), changes.ConfigChangedError
  before touching the workdir if it holds checkpoints of a config that differs in fields
  neither harmless nor matched by `allow_config_change` (fnmatch patterns),
  checkpoint.CheckpointError if none of its checkpoints is readable, Preempted once it has
  saved on SIGTERM or SIGINT, and splits.DatasetNotBuiltError before writing anything where the
  dataset is not built. Holding the lock, it first removes what saves of a killed run left.
  """
  # From the start: a SIGTERM or Ctrl-C during start-up (restores and compiles take minutes at
  # scale) still ends in a save and Preempted rather than in a kill.
  workdir = pathlib.Path(workdir).absolute()
  with _Preemption() as preemption, run_lock(workdir, command):
    if jax.process_index() == 0:
      train_checkpoint.remove_partial_saves(workdir)
    return _train_and_evaluate(config, workdir, allow_config_change, preemption)


def _train_and_evaluate(config, workdir: pathlib.Path, allow_config_change, preemption) -> dict:
  started = time.perf_counter()
  # data.num_workers / prefetch -1 become numbers once, stored in config.json: the run's own on
  # a resume (its saved iterator state needs its worker count), else this machine's.
  config = pipeline.resolve_auto(config, changes.stored_config(workdir))
  changes.check_resume(config, workdir, allow_config_change)
  splits.require_built(config.data)  # before the workdir exists: a typo'd data_dir writes nothing
  changes.write_config(config, workdir)
  mesh = distributed.make_mesh()
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))

  train_iter = pipeline.make_train_iterator(config)
  steps_per_epoch = splits.steps_per_epoch(config)
  total_steps = config.num_steps or config.num_epochs * steps_per_epoch
  logging.info("%d steps, %d per epoch (%d training %ss, data.epoch_unit), global batch %d on "
               "%d devices", total_steps, steps_per_epoch, splits.epoch_size(config),
               config.data.epoch_unit, config.batch_size, jax.device_count())

  ckpt = train_checkpoint.TrainCheckpointer(workdir, config=config, keep=config.keep_checkpoints)
  # A resumed run takes everything from its checkpoint: init_from is neither fetched nor loaded.
  model, optimizer = train_step.create_model_and_optimizer(
      config, steps_per_epoch, initialise=ckpt.latest_step() is None)
  start_step, best, before = 0, None, 0.0
  if ckpt.latest_step() is not None:
    start_step, meta = ckpt.restore_latest(model, optimizer, train_iter, replicated)
    best = meta.get("best_dev_metric")
    before = meta.get(WALL_TIME_KEY)  # None: a checkpoint older than the stored wall time
    logging.info("resumed from step %d of %s", start_step, workdir / "checkpoints")

  def step_dir(step) -> pathlib.Path:
    # Where step `step` is saved (the provenance of its evaluation names it).
    return ckpt.workdir / "checkpoints" / str(step)

  def wall_time() -> dict:
    """{WALL_TIME_KEY: the run's seconds so far}, or {} where earlier sessions' are unknown."""
    if before is None:
      return {}
    return {WALL_TIME_KEY: round(before + time.perf_counter() - started, 1)}

  graphdef, state = nnx.split((model, optimizer))
  state = jax.device_put(state, replicated)
  step_fn = train_step.jit_train_step(graphdef, config.model, replicated, batch_sharding,
                                      dtype=config.dtype,
                                      input_cfg=config.input)
  writer = metric_writers.make_writer(workdir)
  progress = _Progress(total_steps, config.batch_size, start_step, steps_per_epoch)
  # All-steps-finite flag kept on device: reading it costs a sync, so it is read only before
  # logging and saving, never per step.
  finite, checked = jnp.bool_(True), start_step
  results, preempted_at = {}, None

  def save(step, timed, force=False):
    model, optimizer = nnx.merge(graphdef, state)
    ckpt.save(step, model, optimizer, train_iter,
              {"step": step, "best_dev_metric": best, **timed}, force=force)

  try:
    for step in range(start_step + 1, total_steps + 1):
      batch = pipeline.to_global_batch(next(train_iter), mesh)
      state, metrics = step_fn(state, batch)
      finite = finite & jnp.isfinite(metrics["loss"])
      last = step == total_steps
      # The final results and the final checkpoint carry the same time: a rerun reports it.
      final = wall_time() if last else None
      if step % config.log_every_steps == 0 or last or preemption.requested:
        checked = _stop_if_non_finite(finite, checked, step, ckpt)
        scalars = {f"train/{k}": v for k, v in jax.device_get(metrics).items()}
        scalars.update(progress.report(step, scalars))
        scalars["train/lr"] = optim.make_schedule(config.optim, steps_per_epoch)(step - 1)
        writer.write_scalars(step, scalars)
      if (config.eval_every_steps and step % config.eval_every_steps == 0) or last:
        model, _ = nnx.merge(graphdef, state)
        results = evaluator.evaluate_model(config, model, workdir, step, mesh,
                                           extra=final if last else wall_time(),
                                           checkpoint_path=step_dir(step),
                                           test=evaluator.tests_while_training(config))
        writer.write_scalars(step, evaluator.scalars(results))
        dev_metric = evaluator.dev_metric(results, config)
        if dev_metric is not None and (best is None or dev_metric < best):
          best = dev_metric
          ckpt.save_best(step, model, dev_metric, {"step": step, "results": results})
      if step % config.checkpoint_every_steps == 0 or last or preemption.requested:
        checked = _stop_if_non_finite(finite, checked, step, ckpt)
        save(step, final if last else wall_time(), force=True)
      if preemption.requested and not last:
        preempted_at = step
        break
  finally:
    # Pending asynchronous saves finish even when the run stops on an error: the last good
    # checkpoint must be complete on disk.
    ckpt.wait()
    ckpt.close()
    writer.close()
  if preempted_at is not None:
    raise Preempted(preempted_at, workdir, preemption.signum)
  if not results and start_step >= total_steps:
    logging.info("step %d of %d already reached in %s", start_step, total_steps, workdir)
  if not evaluator.tests_while_training(config):
    # Training's evaluations scored dev alone: test is scored once, for the checkpoint dev chose
    # (a rerun of a finished run reports it again), so every way of training ends in test figures.
    timed = {WALL_TIME_KEY: results[WALL_TIME_KEY]} if WALL_TIME_KEY in results else (
        {} if before is None else {WALL_TIME_KEY: before})
    return evaluator.evaluate_chosen(config, workdir, extra=timed)
  if not results and start_step >= total_steps:
    # Rerunning a finished run: nothing left to train, so report its final model again.
    model, _ = nnx.merge(graphdef, state)
    stored = {} if before is None else {WALL_TIME_KEY: before}
    results = evaluator.evaluate_model(config, model, workdir, start_step, mesh, extra=stored,
                                       checkpoint_path=step_dir(start_step))
  return results
