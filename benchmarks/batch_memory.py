"""Images/s and memory of `predict`'s forward by batch size: XLA's estimate (models/memory.py)
beside the resident memory measured, per config and batch, as one markdown table.

  python benchmarks/batch_memory.py [--configs=cdcn_ps,resnet50_ps] [--batches=1,2,4,8,16]
                                    [--steps=2]

Each (config, batch) runs in a fresh process on the default JAX backend: the config's full-size
model at its input size (256x256) with random weights (speed and memory do not depend on them),
`inference.fit_predict` compiling the eval forward for that batch, then `inference.predict` of
`steps + 1` batches of random float32 images with that program; images/s is the median over the
`steps` batches after the first, CPU s/image the process's CPU time (user + system) over them
per image: on a machine shared with other jobs wall times swing, while CPU time per image still
shows whether a larger batch does less work per image. Estimate: XLA's account of the forward
(arguments + outputs - aliases + temporaries) and what it adds beyond the weights, the figure
`predict` holds to the budget. Measured: the peak resident set (VmHWM) of the forwards, less
the RSS before them (the peak is reset after compiling, through /proc/self/clear_refs, so
compilation's own memory is not counted), and the whole process's peak including compilation.
"""

import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def _status(field: str) -> int:
  line = next(s for s in pathlib.Path("/proc/self/status").read_text().splitlines()
              if s.startswith(field + ":"))
  return int(line.split()[1]) * 1024


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def one(name: str, batch: int, steps: int) -> dict:
  import jax
  import numpy as np
  from flax import nnx

  from pyramid_fas_jax import models
  from pyramid_fas_jax.experiment.demo import load_config
  from pyramid_fas_jax.models import inference, memory

  config = load_config(REPO / "configs" / f"{name}.py")
  model = models.build_model(config.model, nnx.Rngs(0))
  size = config.input.size
  images = np.random.default_rng(0).normal(size=((steps + 1) * batch, size, size, 3))
  images = images.astype(np.float32)
  graphdef, state = inference.eval_state(model)
  unchecked = memory.Budget(None, "not checked")
  hwm_compile = _status("VmHWM")
  fitted = inference.fit_predict(graphdef, state, images, None, batch, unchecked)
  hwm_compile = max(hwm_compile, _status("VmHWM"))
  rss = _status("VmRSS")
  pathlib.Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
  times = []
  for i in range(steps + 1):
    if i == 1:
      cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    jax.block_until_ready(inference.predict(model, images[i * batch:(i + 1) * batch], batch,
                                            room=unchecked))
    times.append(time.perf_counter() - t0)
  cpu = (_cpu_seconds() - cpu0) / (steps * batch)
  return {"need": fitted.need, "extra": fitted.extra, "rss": rss, "hwm": _status("VmHWM"),
          "hwm_compile": hwm_compile, "images_s": batch / statistics.median(times[1:]),
          "cpu_s": cpu,
          "backend": f"{jax.default_backend()} ({jax.devices()[0].device_kind})"}


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--configs", default="cdcn_ps,resnet50_ps")
  p.add_argument("--batches", default="1,2,4,8,16")
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--one", help=argparse.SUPPRESS)  # config:batch, in the child process
  args = p.parse_args()
  if args.one:
    name, batch = args.one.split(":")
    print(json.dumps(one(name, int(batch), args.steps)))
    return
  mib = lambda n: "n/a" if n is None else f"{n / 2**20:,.0f}"
  header = True
  for name in args.configs.split(","):
    for batch in map(int, args.batches.split(",")):
      r = subprocess.run([sys.executable, __file__, f"--one={name}:{batch}",
                          f"--steps={args.steps}"], cwd=REPO, capture_output=True, text=True,
                         check=True)
      m = json.loads(r.stdout.splitlines()[-1])
      if header:
        print(f"backend: {m['backend']}, median of {args.steps} batches after one")
        print("| config | batch | images/s | CPU s/image | estimate MiB | estimate beyond "
              "weights MiB | measured forward MiB | peak RSS MiB | peak RSS with compile MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        header = False
      print(f"| {name} | {batch} | {m['images_s']:.2f} | {m['cpu_s']:.2f} | {mib(m['need'])} | "
            f"{mib(m['extra'])} | {mib(m['hwm'] - m['rss'])} | {mib(m['hwm'])} | "
            f"{mib(max(m['hwm'], m['hwm_compile']))} |", flush=True)


if __name__ == "__main__":
  main()
