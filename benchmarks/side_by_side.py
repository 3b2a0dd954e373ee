"""This project's train step and inference forward beside the PyTorch references, in one run.

  python benchmarks/side_by_side.py [--models=cdcn_ps,resnet50_ps] [--steps=5] [--threads=2]
      [--conv_impl=xla,auto] [--torch_python=/path/to/venv/bin/python]

JAX: the config's full-size model at 256x256 (`train_step.jit_train_step`, the eval-mode
forward), once per `--conv_impl` given (comma-separated; '' is the config's own, 'xla,auto'
measures JAX's default convolutions against models/conv_ops.py's CPU path in the same run).
PyTorch: the official CDCN architecture (CVPR2020_paper_codes/models/CDCNs.py: CDC as a 3x3 conv
minus theta times a 1x1 conv with the summed kernel, BN, ReLU, three blocks, bilinear resize to
32, lastconv1-3) with the pyramid depth loss (MSE + contrastive depth loss at 32 and 16) and Adam
lr 1e-4, wd 5e-5; and torchvision's ResNet50 up to layer4 with the pyramid mask head (1x1 conv
per scale 8/4/2/1 on the average-pooled map, a linear layer on the flattened masks, BCE) and SGD
lr 1e-3, momentum 0.9, wd 5e-5 (benchmarks/torch_models.py). Same shapes and random data
(CDCN-PS batch 2, ResNet50-PS batch 8, as the issue that asked for this measured them).

Where PyTorch comes from: the PyTorch side always runs in a worker subprocess (this script with
`--torch_worker`, which imports neither JAX nor pyramid_fas_jax), started with the interpreter
`--torch_python`, else $PYRAMID_FAS_TORCH_PYTHON, else this one. So PyTorch may live in its own
virtual environment (torch, torchvision and numpy are all it needs), e.g.
`--torch_python=/work/venv_torch/bin/python`, or in this one (`pip install -e '.[torch]'`).
Without PyTorch there the table has JAX columns only. PyTorch runs on `--threads` threads;
XLA:CPU uses every core it sees.

Each measured round is one step (or forward) of each JAX variant then one of PyTorch,
alternating, after a warm-up of each, so that load from other jobs hits all alike. The table
gives medians of wall time and of process CPU time (all threads of the process doing the work;
steadier than wall time on a shared machine) and the ratio PyTorch / JAX (> 1: JAX is faster).
The first line states the machine and the load average before the run.
"""

import argparse
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

BATCH = {"cdcn_ps": 2, "resnet50_ps": 8}


def timed(fn):
  """(wall seconds, process CPU seconds) of one call."""
  t0, c0 = time.perf_counter(), time.process_time()
  fn()
  return time.perf_counter() - t0, time.process_time() - c0


def jax_runner(name, batch, conv_impl):
  """(train step thunk, inference thunk) of the config's model; the state is carried along."""
  import jax
  from flax import nnx

  from pyramid_fas_jax.experiment.demo import load_config
  from pyramid_fas_jax.training import train_step

  config = load_config(REPO / "configs" / f"{name}.py")
  config.init_from = ""  # from scratch, as the PyTorch side: no weights to fetch
  if conv_impl:
    config.model.conv_impl = conv_impl
  graphdef, state = train_step.create_train_state(config)
  step = train_step.jit_train_step(graphdef, config.model)
  holder = {"state": state}

  def train():
    holder["state"], metrics = step(holder["state"], batch)
    jax.block_until_ready(metrics)

  model, _ = nnx.merge(graphdef, holder["state"])
  model.eval()
  eval_graphdef, eval_state = nnx.split(model)
  eval_state = jax.tree.map(jax.numpy.copy, eval_state)  # the train state is donated
  forward = jax.jit(lambda s, x: nnx.merge(eval_graphdef, s)(x)["score"])

  def infer():
    jax.block_until_ready(forward(eval_state, batch["image"]))

  return train, infer


def torch_worker(name, batch_file, threads):
  """The PyTorch side: builds the reference, then answers each stdin line 'train' or 'infer'
  with one timed call, printed as 'wall_s cpu_s'."""
  import torch
  import torch_models

  torch.set_num_threads(threads)
  torch.manual_seed(0)
  model, loss_fn, optimizer = torch_models.build(name)
  with np.load(batch_file) as f:
    tb = {k: torch.from_numpy(np.ascontiguousarray(f[k])) for k in f.files}
  tb["image"] = tb["image"].permute(0, 3, 1, 2).contiguous()

  def train():
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(tb["image"]), tb)
    loss.backward()
    optimizer.step()
    loss.item()

  def infer():
    model.eval()
    with torch.no_grad():
      model(tb["image"])

  print(f"ready {torch.__version__}", flush=True)
  for line in sys.stdin:
    wall, cpu = timed({"train": train, "infer": infer}[line.strip()])
    print(f"{wall} {cpu}", flush=True)


class TorchClient:
  """The worker subprocess of one model; None-like (`ok` False) where PyTorch is missing."""

  def __init__(self, python, name, batch, threads):
    self.batch_file = tempfile.NamedTemporaryFile(suffix=".npz", delete=False)
    np.savez(self.batch_file, **batch)
    self.batch_file.close()
    self.proc = subprocess.Popen(
        [python, __file__, f"--torch_worker={name}", f"--batch_file={self.batch_file.name}",
         f"--threads={threads}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = self.proc.stdout.readline().split()
    self.ok = bool(first) and first[0] == "ready"
    self.version = first[1] if self.ok else None
    if not self.ok:
      self.close()
      print(f"  (no PyTorch from {python}: JAX columns only; see --torch_python)", flush=True)

  def call(self, kind):
    self.proc.stdin.write(kind + "\n")
    self.proc.stdin.flush()
    wall, cpu = self.proc.stdout.readline().split()
    return float(wall), float(cpu)

  def close(self):
    if self.proc.poll() is None:
      self.proc.stdin.close()
      self.proc.wait()
    os.unlink(self.batch_file.name)


def machine_note():
  import jax
  load = os.getloadavg()
  return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min); JAX "
          f"{jax.__version__} on {jax.default_backend()} ({jax.device_count()} device)")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--models", default="cdcn_ps,resnet50_ps")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--threads", type=int, default=2)
  p.add_argument("--conv_impl", default="",
                 help="comma-separated model.conv_impl values for JAX ('': the config's)")
  p.add_argument("--torch_python",
                 default=os.environ.get("PYRAMID_FAS_TORCH_PYTHON", sys.executable),
                 help="the Python interpreter that has torch and torchvision")
  p.add_argument("--torch_worker", default="", help=argparse.SUPPRESS)
  p.add_argument("--batch_file", default="", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.torch_worker:
    torch_worker(args.torch_worker, args.batch_file, args.threads)
    return
  from architectures import fake_batch
  impls = args.conv_impl.split(",")
  print(machine_note(), flush=True)
  lines = ["| step | conv_impl | JAX wall s | PyTorch wall s | PyTorch / JAX wall | JAX CPU s | "
           "PyTorch CPU s | PyTorch / JAX CPU |", "|---|---|---:|---:|---:|---:|---:|---:|"]
  notes = []
  for name in args.models.split(","):
    batch = fake_batch(BATCH[name], 256)
    jax_fns = []
    for impl in impls:
      t0 = time.perf_counter()
      jax_fns.append(jax_runner(name, batch, impl))
      jax_fns[-1][0]()  # compiles the step, and warms it up
      notes.append(f"{name}, conv_impl {impl or 'default'}: JAX compile + first step "
                   f"{time.perf_counter() - t0:.0f} s")
    torch = TorchClient(args.torch_python, name, batch, args.threads)
    if torch.ok:
      notes.append(f"{name}: PyTorch {torch.version} on {args.threads} threads "
                   f"({args.torch_python})")
    for kind, i in (("train", 0), ("infer", 1)):
      runners = [lambda fn=fns[i]: timed(fn) for fns in jax_fns]
      if torch.ok:
        runners.append(lambda kind=kind: torch.call(kind))
      for run in runners:  # warm-up (and the inference forward's compilation)
        run()
      times = [[] for _ in runners]
      for _ in range(args.steps):
        for t, run in zip(times, runners):
          t.append(run())
      medians = [tuple(statistics.median(x[k] for x in t) for k in (0, 1)) for t in times]
      ref = medians[-1] if torch.ok else None
      for impl, (wall, cpu) in zip(impls, medians):
        cells = [f"{wall:.2f}", "-", "-", f"{cpu:.2f}", "-", "-"]
        if ref:
          cells[1:3] = [f"{ref[0]:.2f}", f"{ref[0] / wall:.2f}"]
          cells[4:6] = [f"{ref[1]:.2f}", f"{ref[1] / cpu:.2f}"]
        kind_name = "train" if kind == "train" else "inference"
        lines.append(f"| {name} {kind_name}, batch {BATCH[name]}, 256x256 | {impl or 'default'} | "
                     + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    if torch.ok:
      torch.close()
  print(f"load average after: {os.getloadavg()[0]:.1f}; medians of {args.steps} alternating "
        "rounds after a warm-up")
  print("\n".join(lines))
  for note in notes:
    print(f"  {note}")


if __name__ == "__main__":
  main()
