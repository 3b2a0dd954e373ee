"""Label pyramids, made inside the jitted step from full-resolution maps (N, H, W).

Mask: a coarse cell is live only if every pixel under it is live (min pooling), so one attack
pixel marks its whole cell as attack at every coarser scale. Depth: average pooling.
"""

import jax.numpy as jnp


def _blocks(x, size: int):
  n, h, w = x.shape
  if h % size or w % size:
    raise ValueError(f"a {h}x{w} label map cannot be pooled to {size}x{size}: sizes must divide")
  return x.reshape(n, size, h // size, size, w // size)


def mask_pyramid(mask, scales):
  """{s: (N, s, s)} liveness masks; 1 where every pixel of the cell is live."""
  return {s: _blocks(mask, s).min(axis=(2, 4)) for s in scales}


def depth_pyramid(depth, scales):
  """{s: (N, s, s)} depth maps, each cell the mean depth under it."""
  return {s: _blocks(depth, s).mean(axis=(2, 4)) for s in scales}


def class_map(mask, species, size: int):
  """(N, size, size) int32 classes: 0 where the cell is live, else the sample's species index.

  `species` (N,) indexes the dataset's species list, whose entry 0 is 'live'.
  """
  live = mask_pyramid(mask, (size,))[size] > 0.5
  return jnp.where(live, 0, species[:, None, None]).astype(jnp.int32)
