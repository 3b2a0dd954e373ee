"""How well predicted liveness maps find the spoofed region of a frame (the paper's Fig. 6, as
numbers): for frames whose true pixel mask is known (SynthFAS's partial attacks), each scale's
predicted map is compared with the true mask pooled to that scale as training pools it.

A cell is spoof where any pixel under it is (training's min pooling, training/labels.py), so
the label a mask head learned is the one it is scored against. Two figures per scale:

  pixel AUC  the ROC area of (1 - predicted liveness) separating the frames' spoof cells from
             their live cells, pooled over frames (ties count one half); undefined (None) at a
             scale where the frames have cells of one kind only, e.g. 1x1
  IoU        per frame, the predicted spoof cells (liveness < 0.5) against the true ones,
             intersection over union, averaged over frames (a frame with neither counts 1)
"""

import numpy as np
from sklearn import metrics as skm


def spoof_cells(masks: np.ndarray, size: int) -> np.ndarray:
  """(N, size, size) bool: the cell holds an attack pixel; `masks` (N, H, W), 1 = live pixel."""
  masks = np.asarray(masks)
  n, h, w = masks.shape
  if h % size or w % size:
    raise ValueError(f"a {h}x{w} mask cannot be pooled to {size}x{size}: sizes must divide")
  return masks.reshape(n, size, h // size, size, w // size).min(axis=(2, 4)) < 0.5


def localise(maps: dict[int, np.ndarray], masks: np.ndarray) -> dict[int, dict]:
  """{scale: {"pixel_auc", "iou", "frames", "spoof_cells", "live_cells"}} of predicted liveness
  maps {scale: (N, s, s) in [0, 1]} against the frames' true masks (N, H, W)."""
  out = {}
  for size, liveness in sorted(maps.items(), reverse=True):
    liveness = np.asarray(liveness, dtype=np.float64)
    truth = spoof_cells(masks, size)
    if liveness.shape != truth.shape:
      raise ValueError(f"scale {size}: maps of shape {liveness.shape} for masks pooled to "
                       f"{truth.shape}")
    both = truth.any() and (~truth).any()
    auc = float(skm.roc_auc_score(truth.ravel(), -liveness.ravel())) if both else None
    predicted = liveness < 0.5
    inter = (predicted & truth).sum(axis=(1, 2))
    union = (predicted | truth).sum(axis=(1, 2))
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    out[size] = {"pixel_auc": auc, "iou": float(iou.mean()), "frames": int(len(truth)),
                 "spoof_cells": int(truth.sum()), "live_cells": int((~truth).sum())}
  return out
