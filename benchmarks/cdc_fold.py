"""Folded central difference convolution vs the two-convolution form: error and speed.

  python benchmarks/cdc_fold.py

Error: max |folded - naive| in float32, and both against a float64 reference, on CDCN's largest
layer shape. Speed: median time of each form, jitted, on the default backend.
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from pyramid_fas_jax.models.cdc import fold_kernel

DIMS = ("NHWC", "HWIO", "NHWC")


def conv(x, w, pad):
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((pad, pad), (pad, pad)),
                                      dimension_numbers=DIMS)


def naive(x, w, theta):
  return conv(x, w, 1) - theta * conv(x, w.sum(axis=(0, 1), keepdims=True), 0)


def folded(x, w, theta):
  return conv(x, fold_kernel(w, theta), 1)


def timeit(f, *args, n=10):
  jax.block_until_ready(f(*args))
  ts = []
  for _ in range(n):
    t0 = time.perf_counter()
    jax.block_until_ready(f(*args))
    ts.append(time.perf_counter() - t0)
  return statistics.median(ts)


def main():
  theta = 0.7
  rng = np.random.default_rng(0)
  # CDCN Block1's 128 -> 196 layer at 256x256 input (128x128 maps), batch 2.
  x = rng.normal(size=(2, 128, 128, 128)).astype(np.float32)
  w = (rng.normal(size=(3, 3, 128, 196)) / np.sqrt(9 * 128)).astype(np.float32)
  f_naive, f_fold = jax.jit(naive, static_argnums=2), jax.jit(folded, static_argnums=2)
  a, b = np.asarray(f_naive(x, w, theta)), np.asarray(f_fold(x, w, theta))
  with jax.enable_x64():
    ref = np.asarray(naive(jnp.asarray(x, jnp.float64), jnp.asarray(w, jnp.float64), theta))
  print(f"output scale max|y| = {np.abs(ref).max():.3f}")
  print(f"max |folded - naive| (float32)  = {np.abs(a - b).max():.3e}")
  print(f"max |naive  - float64 ref|      = {np.abs(a - ref).max():.3e}")
  print(f"max |folded - float64 ref|      = {np.abs(b - ref).max():.3e}")
  tn, tf = timeit(f_naive, x, w, theta), timeit(f_fold, x, w, theta)
  print(f"{jax.default_backend()}: naive {tn * 1e3:.1f} ms, folded {tf * 1e3:.1f} ms "
        f"({tn / tf:.2f}x)")


if __name__ == "__main__":
  main()
