"""Parameters, FLOPs and images/s of every architecture at 256x256, as one markdown table.

  python benchmarks/architectures.py [--batch_size=2] [--steps=3] [--configs=vgg16_ps,...]
                                    [--dtype=bfloat16] [--conv_impl=xla]
                                    [--infer_batch_size=32] [--memory_only]

Each row is a config's full-size model with pyramid supervision (backbone + head). GFLOPs are
XLA's cost analysis of the jitted inference forward, per image (XLA counts a multiply-add as two
FLOPs). Train images/s: the jitted train step (forward, loss, backward, optimizer update, BN
statistics); inference images/s: the jitted eval-mode forward; both the median of `steps` timed
calls after a compile and a warm-up call, on the default JAX backend. Train-step memory is XLA's
compile-time account of the jitted step (arguments + outputs - donated aliases + temporaries), the
device memory one step needs at this batch size. Inference memory is the same account of the
eval forward `predict` runs (every output; models/memory.py) at `--infer_batch_size` (32, the
paper's training batch of the classification backbones and `predict`'s old default), and "auto"
the batch `predict --batch_size=auto` picks on this backend and machine with its account.
`--memory_only` compiles without timing (images/s are left out). `--dtype` is the train step's
compute dtype (config.dtype; the inference forward stays float32), `--conv_impl`
model.conv_impl. XLA gives no memory account on some backends and jax versions: those cells read
"n/a".
"""

import argparse
import pathlib
import statistics
import time

import jax
import numpy as np
from flax import nnx

from pyramid_fas_jax.experiment.demo import load_config
from pyramid_fas_jax.models import inference, memory
from pyramid_fas_jax.training import train_step

REPO = pathlib.Path(__file__).resolve().parents[1]

CONFIGS = ("resnet50_ps", "vgg16_ps", "densenet121_ps", "shufflenet_v2_ps", "mobilenet_v2_ps",
           "cdcn_ps", "depthnet_ps", "cdcnpp_ps")


def fake_batch(n, size):
  rng = np.random.default_rng(0)
  label = np.arange(n, dtype=np.int32) % 2
  mask = np.broadcast_to(label[:, None, None], (n, size, size)).astype(np.float32)
  return {"image": rng.normal(size=(n, size, size, 3)).astype(np.float32), "mask": mask,
          "depth": mask * rng.uniform(size=(n, size, size)).astype(np.float32), "label": label,
          "species": (1 - label).astype(np.int32)}


def flops(compiled):
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older jax: one dict per program
    analysis = analysis[0]
  return float(analysis.get("flops", float("nan")))


def memory_mib(compiled) -> str:
  need = memory.program_bytes(compiled)  # None: a backend without the analysis
  return "n/a" if need is None else f"{need / 2**20:.0f}"


def median_seconds(f, *args, steps):
  jax.block_until_ready(f(*args))
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def bench(name, batch_size, steps, dtype="float32", conv_impl="auto", infer_batch_size=32,
          timed=True):
  config = load_config(REPO / "configs" / f"{name}.py")
  config.init_from = ""  # speed does not depend on the weights: no ImageNet download
  config.model.conv_impl = conv_impl
  batch = fake_batch(batch_size, config.input.size)
  graphdef, state = train_step.create_train_state(config)
  model, _ = nnx.merge(graphdef, state)
  n_params = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))

  model.eval()
  eval_graphdef, eval_state = nnx.split(model)
  forward = jax.jit(lambda s, x: nnx.merge(eval_graphdef, s)(x)["score"])
  compiled_forward = forward.lower(eval_state, batch["image"]).compile()
  gflops = flops(compiled_forward) / batch_size / 1e9
  infer_s = median_seconds(compiled_forward, eval_state, batch["image"], steps=steps) if timed \
      else None
  images = np.zeros((infer_batch_size, config.input.size, config.input.size, 3), np.float32)
  predict_graphdef, predict_state = inference.eval_state(model)
  at = inference.fit_predict(predict_graphdef, predict_state, images, None, infer_batch_size,
                             memory.Budget(None, "not checked"))
  auto = inference.fit_predict(predict_graphdef, predict_state, images, None, None)

  step = train_step.jit_train_step(graphdef, config.model, dtype=dtype)
  compiled_step = step.lower(state, batch).compile()
  step_mib = memory_mib(compiled_step)
  train_s = None
  if timed:
    state, _ = compiled_step(state, batch)  # warm-up; the state is donated, so keep the new one
    times = []
    for _ in range(steps):
      t0 = time.perf_counter()
      state, metrics = compiled_step(state, batch)
      jax.block_until_ready(metrics)
      times.append(time.perf_counter() - t0)
    train_s = statistics.median(times)
  rate = lambda seconds: "-" if seconds is None else f"{batch_size / seconds:.1f}"
  return (f"| {name} | {config.model.backbone} | {n_params / 1e6:.2f} M | {gflops:.2f} | "
          f"{rate(train_s)} | {rate(infer_s)} | {step_mib} | {memory_mib(at.compiled)} | "
          f"{auto.batch}: {memory_mib(auto.compiled)} |")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batch_size", type=int, default=2)
  p.add_argument("--steps", type=int, default=3)
  p.add_argument("--configs", default=",".join(CONFIGS))
  p.add_argument("--dtype", default="float32", choices=train_step.DTYPES)
  p.add_argument("--conv_impl", default="auto")
  p.add_argument("--infer_batch_size", type=int, default=32)
  p.add_argument("--memory_only", action="store_true")
  args = p.parse_args()
  print(f"backend: {jax.default_backend()} ({jax.devices()[0].device_kind}), batch "
        f"{args.batch_size}, 256x256, train step {args.dtype}, conv_impl {args.conv_impl}, "
        + ("compiled only, not timed" if args.memory_only else f"median of {args.steps} steps"))
  print("| config | backbone | params | GFLOPs/image | train img/s | inference img/s | "
        f"train step MiB | inference MiB, batch {args.infer_batch_size} | auto batch: MiB |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
  for name in args.configs.split(","):
    print(bench(name, args.batch_size, args.steps, args.dtype, args.conv_impl,
                args.infer_batch_size, not args.memory_only), flush=True)


if __name__ == "__main__":
  main()
