"""Convolution forward, input gradient and kernel gradient on CDCN's and ResNet50's layer shapes,
with XLA:CPU's two convolution kernels and three matmul formulations of the kernel gradient:
the measurements behind the rule in pyramid_fas_jax/models/conv_ops.py.

  python benchmarks/conv_grad.py [--models=cdcn,resnet50] [--steps=3]

Per layer shape (CDCN at batch 2, ResNet50 at batch 8, 256x256 input) and per kernel choice:
  ynn    XLA's default CPU kernels (YNNPACK convolutions)
  eigen  conv_ops.compiler_options(): XLA:CPU's Eigen convolutions
  auto   what the models run: conv_ops.conv (a 1x1 convolution is a matmul) with those options
and, for the kernel gradient, three matmul formulations (jitted with the default options):
  taps   one matmul per kernel tap between the shifted input view and the output gradient
  im2col the kh*kw shifted views concatenated over channels, one matmul
  chunks im2col over blocks of output rows of at most 32 MiB, summed
Figures are the minimum over `steps` calls of process CPU seconds (all threads; on a shared
machine steadier than wall time), and the sums over each model's layers, weighted by how often
each shape occurs. Every formulation is checked against XLA's kernel gradient first.
"""

import argparse
import collections
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pyramid_fas_jax.models import conv_ops

# (count, batch, size, in, out, kernel, stride, padding) of every convolution of the model.
LAYERS = {
    "cdcn": [(1, 2, 256, 3, 64, 3, 1, 1), (1, 2, 256, 64, 128, 3, 1, 1),
             (1, 2, 256, 128, 196, 3, 1, 1), (1, 2, 256, 196, 128, 3, 1, 1),
             (1, 2, 128, 128, 128, 3, 1, 1), (1, 2, 128, 128, 196, 3, 1, 1),
             (1, 2, 128, 196, 128, 3, 1, 1), (1, 2, 64, 128, 128, 3, 1, 1),
             (1, 2, 64, 128, 196, 3, 1, 1), (1, 2, 64, 196, 128, 3, 1, 1),
             (1, 2, 32, 384, 128, 3, 1, 1), (1, 2, 32, 128, 64, 3, 1, 1),
             (1, 2, 32, 64, 1, 3, 1, 1)],
    "resnet50": [(1, 8, 256, 3, 64, 7, 2, 3), (1, 8, 64, 64, 64, 1, 1, 0),
                 (3, 8, 64, 64, 64, 3, 1, 1), (4, 8, 64, 64, 256, 1, 1, 0),
                 (2, 8, 64, 256, 64, 1, 1, 0), (1, 8, 64, 256, 128, 1, 1, 0),
                 (1, 8, 64, 128, 128, 3, 2, 1), (4, 8, 32, 128, 512, 1, 1, 0),
                 (1, 8, 64, 256, 512, 1, 2, 0), (3, 8, 32, 512, 128, 1, 1, 0),
                 (3, 8, 32, 128, 128, 3, 1, 1), (1, 8, 32, 512, 256, 1, 1, 0),
                 (1, 8, 32, 256, 256, 3, 2, 1), (6, 8, 16, 256, 1024, 1, 1, 0),
                 (1, 8, 32, 512, 1024, 1, 2, 0), (5, 8, 16, 1024, 256, 1, 1, 0),
                 (5, 8, 16, 256, 256, 3, 1, 1), (1, 8, 16, 1024, 512, 1, 1, 0),
                 (1, 8, 16, 512, 512, 3, 2, 1), (3, 8, 8, 512, 2048, 1, 1, 0),
                 (1, 8, 16, 1024, 2048, 1, 2, 0), (2, 8, 8, 2048, 512, 1, 1, 0),
                 (2, 8, 8, 512, 512, 3, 1, 1)],
}
CHUNK_BYTES = 32 * 2**20


def _views(xp, k, s, ho, wo):
  n, _, _, c = xp.shape
  return [lax.slice(xp, (0, a, b, 0), (n, a + (ho - 1) * s + 1, b + (wo - 1) * s + 1, c),
                    (1, s, s, 1)) for a in range(k) for b in range(k)]


def _pad(x, p):
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def taps(x, g, k, s, p):
  c, o = x.shape[-1], g.shape[-1]
  grads = [jnp.einsum("nhwc,nhwo->co", v, g) for v in _views(_pad(x, p), k, s, *g.shape[1:3])]
  return jnp.stack(grads).reshape(k, k, c, o)


def im2col(x, g, k, s, p):
  c, o = x.shape[-1], g.shape[-1]
  cols = jnp.concatenate(_views(_pad(x, p), k, s, *g.shape[1:3]), -1)
  return jnp.einsum("nhwf,nhwo->fo", cols, g).reshape(k, k, c, o)


def chunks(x, g, k, s, p):
  c, o = x.shape[-1], g.shape[-1]
  n, ho, wo, _ = g.shape
  xp = _pad(x, p)
  rows = max(1, CHUNK_BYTES // (n * wo * k * k * c * 4))
  total = 0
  for r0 in range(0, ho, rows):
    r1 = min(ho, r0 + rows)
    xs = lax.slice_in_dim(xp, r0 * s, (r1 - 1) * s + k, axis=1)
    cols = jnp.concatenate(_views(xs, k, s, r1 - r0, wo), -1)
    total = total + jnp.einsum("nhwf,nhwo->fo", cols, g[:, r0:r1])
  return total.reshape(k, k, c, o)


def cpu_seconds(f, args, steps):
  jax.block_until_ready(f(*args))
  best = float("inf")
  for _ in range(steps):
    t0 = time.process_time()
    jax.block_until_ready(f(*args))
    best = min(best, time.process_time() - t0)
  return best


def measure(layer, steps):
  _, n, size, cin, cout, k, s, p = layer
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(n, size, size, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)) / np.sqrt(k * k * cin), jnp.float32)
  xla = lambda x, w: lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)),
                                              dimension_numbers=conv_ops.DIMS)
  auto = lambda x, w: conv_ops.conv(x, w, (s, s), ((p, p), (p, p)))
  g = jnp.asarray(rng.normal(size=jax.eval_shape(xla, x, w).shape), jnp.float32)
  ops = lambda conv: {"fwd": lambda x, w, g: conv(x, w),
                      "dx": lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0],
                      "dw": lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0]}
  out = {}
  options = conv_ops.compiler_options()
  for tag, conv, opts in (("ynn", xla, None), ("eigen", xla, options), ("auto", auto, options)):
    for name, f in ops(conv).items():
      out[f"{name} {tag}"] = cpu_seconds(jax.jit(f, compiler_options=opts), (x, w, g), steps)
  reference = jax.jit(ops(xla)["dw"])(x, w, g)
  for name, f in (("taps", taps), ("im2col", im2col), ("chunks", chunks)):
    fn = jax.jit(lambda x, g, f=f: f(x, g, k, s, p))
    err = float(jnp.abs(fn(x, g) - reference).max() / jnp.abs(reference).max())
    if err > 1e-4:
      raise AssertionError(f"{name} kernel gradient off by {err:.1e} at {layer}")
    out[f"dw {name}"] = cpu_seconds(fn, (x, g), steps)
  return out


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--models", default="cdcn,resnet50")
  p.add_argument("--steps", type=int, default=3)
  args = p.parse_args()
  print(f"{jax.default_backend()}, CPU seconds (min of {args.steps})")
  for model in args.models.split(","):
    totals = collections.Counter()
    for layer in LAYERS[model]:
      out = measure(layer, args.steps)
      totals.update({k: v * layer[0] for k, v in out.items()})
      count, n, size, cin, cout, k, s, _ = layer
      shape = f"{count} x {n}x{size}x{size}x{cin} -> {cout}, {k}x{k}/{s}"
      print(f"{model} {shape} | " + "  ".join(f"{k} {v:.3f}" for k, v in out.items()),
            flush=True)
    print(f"{model} total | " + "  ".join(f"{k} {v:.2f}" for k, v in totals.items()), flush=True)


if __name__ == "__main__":
  main()
