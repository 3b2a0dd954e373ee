"""This project's train step and inference forward beside the PyTorch references, in one run.

  python benchmarks/side_by_side.py [--models=cdcn_ps,resnet50_ps] [--steps=5] [--threads=2]
                                    [--conv_impl=auto]

JAX: the config's full-size model at 256x256 (`train_step.jit_train_step`, the eval-mode
forward). PyTorch (with the `torch` extra: `pip install -e '.[torch]'`): the official CDCN
architecture (CVPR2020_paper_codes/models/CDCNs.py: CDC as a 3x3 conv minus theta times a 1x1
conv with the summed kernel, BN, ReLU, three blocks, bilinear resize to 32, lastconv1-3) with the
pyramid depth loss (MSE + contrastive depth loss at 32 and 16) and Adam lr 1e-4, wd 5e-5; and
torchvision's ResNet50 up to layer4 with the pyramid mask head (1x1 conv per scale 8/4/2/1 on the
average-pooled map, a linear layer on the flattened masks, BCE) and SGD lr 1e-3, momentum 0.9,
wd 5e-5. Same shapes and random data (CDCN-PS batch 2, ResNet50-PS batch 8, as the issue that
asked for this measured them). PyTorch runs on `--threads` threads; XLA:CPU uses every core it
sees.

Each measured call is one step (or forward) of JAX then one of PyTorch, alternating, after a
warm-up of each, so that load from other jobs hits both alike. The table gives medians of wall
time and of process CPU time (all threads; steadier than wall time on a shared machine) and the
ratio JAX / PyTorch (< 1: JAX is faster). The first line states the load average before the run.
"""

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time

import jax
import numpy as np
from flax import nnx

from pyramid_fas_jax import train_step
from pyramid_fas_jax.demo import load_config

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from architectures import fake_batch  # pylint: disable=g-import-not-at-top,wrong-import-position

BATCH = {"cdcn_ps": 2, "resnet50_ps": 8}


class Timer:
  """Wall and process-CPU seconds of each call."""

  def __init__(self):
    self.wall, self.cpu = [], []

  def __call__(self, fn):
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    self.wall.append(time.perf_counter() - t0)
    self.cpu.append(time.process_time() - c0)


def jax_runner(name, batch, conv_impl):
  """(train step thunk, inference thunk) of the config's model; the state is carried along."""
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


def torch_runner(name, batch, threads):
  """(train step thunk, inference thunk) of the PyTorch reference, or None without torch."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  import torch_models  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(threads)
  torch.manual_seed(0)
  model, loss_fn, optimizer = torch_models.build(name)
  tb = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
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

  return train, infer


def machine_note(threads):
  load = os.getloadavg()
  torch_version = "not installed"
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch_version = f"{torch.__version__}, {threads} threads"
  except ImportError:
    pass
  return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min); JAX "
          f"{jax.__version__} on {jax.default_backend()} ({jax.device_count()} device); "
          f"PyTorch {torch_version}")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--models", default="cdcn_ps,resnet50_ps")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--threads", type=int, default=2)
  p.add_argument("--conv_impl", default="", help="model.conv_impl for JAX (default: the config's)")
  args = p.parse_args()
  print(machine_note(args.threads), flush=True)
  print("| step | JAX wall s | PyTorch wall s | JAX / PyTorch wall | JAX CPU s | PyTorch CPU s | "
        "JAX / PyTorch CPU |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  for name in args.models.split(","):
    batch = fake_batch(BATCH[name], 256)
    t0 = time.perf_counter()
    jax_fns = jax_runner(name, batch, args.conv_impl)
    jax_fns[0]()  # compiles the step, and warms it up
    compile_s = time.perf_counter() - t0
    torch_fns = torch_runner(name, batch, args.threads)
    for kind, i in (("train", 0), ("inference", 1)):
      timers = [Timer(), Timer()]
      runners = [jax_fns[i]] + ([torch_fns[i]] if torch_fns else [])
      for fn in runners:  # warm-up (and the inference forward's compilation)
        fn()
      for _ in range(args.steps):
        for timer, fn in zip(timers, runners):
          timer(fn)
      row = [statistics.median(timers[0].wall), None, None, statistics.median(timers[0].cpu),
             None, None]
      if torch_fns:
        row[1], row[4] = statistics.median(timers[1].wall), statistics.median(timers[1].cpu)
        row[2], row[5] = row[0] / row[1], row[3] / row[4]
      cells = ["-" if v is None else f"{v:.2f}" for v in row]
      print(f"| {name} {kind}, batch {BATCH[name]}, 256x256 | " + " | ".join(cells) + " |",
            flush=True)
    print(f"  ({name}: JAX compile + first step {compile_s:.0f} s)", flush=True)
  print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
  main()
