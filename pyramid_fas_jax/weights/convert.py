"""Import PyTorch weights (torchvision's ImageNet classification networks, the official CDCN and
CDCN++ code) into our models.

Every tensor of the file is either mapped to exactly one variable of the model or deliberately
dropped (the ImageNet classifier, BN's num_batches_tracked); anything else fails, naming the
leftover keys, and so does any model variable the format should provide but the file lacks.
Layouts are converted once here: conv OIHW -> HWIO, linear (out, in) -> (in, out).
"""

import pathlib
import re
import zipfile

import jax.numpy as jnp
import numpy as np

from pyramid_fas_jax import models
from pyramid_fas_jax.weights import pth

FORMATS = ("torchvision-resnet50", "torchvision-vgg16", "torchvision-densenet121",
           "torchvision-shufflenet_v2_x1_0", "torchvision-mobilenet_v2", "official-cdcn",
           "official-cdcnpp")

_BN = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


class WeightImportError(ValueError):
  """A state dict that does not fit the model; the message names every offending key."""


def read_state_dict(path) -> dict[str, np.ndarray]:
  """A PyTorch state dict as numpy arrays from .pth/.pt/.bin (read by pth.load, without torch),
  .safetensors or .npz. A 'state_dict'/'model' wrapper and DataParallel's 'module.' prefix are
  removed."""
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(f"weights file {path} does not exist")
  suffix = path.suffix.lower()
  if suffix in (".pth", ".pt", ".bin"):
    obj = pth.load(path)
    for key in ("state_dict", "model", "model_state_dict"):
      if isinstance(obj, dict) and isinstance(obj.get(key), dict):
        obj = obj[key]
    if not isinstance(obj, dict):
      raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    tensors = {k: v for k, v in obj.items() if isinstance(v, np.ndarray)}
  elif suffix == ".safetensors":
    import safetensors
    from safetensors.numpy import load_file
    try:
      tensors = load_file(str(path))
    except (safetensors.SafetensorError, OSError) as e:
      raise ValueError(f"{path} is not a readable .safetensors file ({e})") from None
  elif suffix == ".npz":
    try:
      with np.load(path) as z:
        tensors = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, AttributeError) as e:
      # AttributeError: np.load of a file that is no archive at all returns no NpzFile.
      raise ValueError(f"{path} is not a readable .npz of arrays ({e})") from None
  else:
    raise ValueError(f"{path}: unknown weights format {suffix!r}; use .pth/.pt, .safetensors or "
                     ".npz")
  if not tensors:
    raise ValueError(f"{path} holds no tensors")
  return {k[len("module."):] if k.startswith("module.") else k: np.asarray(v)
          for k, v in tensors.items()}


def _torchvision(key, ndim, classifier):
  """torchvision key -> (our variable path | None to drop, kind). Our torchvision-style models use
  the same module names and indices, so the path is the key with '/' for '.'; a 'weight' is a
  conv kernel when 4-D and a BatchNorm scale when 1-D. `classifier` (the ImageNet head) is dropped.
  """
  if key.endswith("num_batches_tracked") or key.startswith(classifier + "."):
    return None, None
  *module, leaf = key.split(".")
  base = "backbone/" + "/".join(module) + "/"
  if leaf == "weight" and ndim >= 2:
    return base + "kernel", "conv"
  return base + _BN.get(leaf, leaf), "vector"


# Keys of the DenseNet checkpoints torchvision hosts: 'denselayer1.norm.1.weight' for the current
# 'denselayer1.norm1.weight' (torchvision renames them on load with this same pattern).
_DENSENET_LEGACY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|"
                              r"running_mean|running_var))$")


def _torchvision_densenet(key, ndim):
  m = _DENSENET_LEGACY.match(key)
  return _torchvision(m.group(1) + m.group(2) if m else key, ndim, "classifier")


def _official_cdcn_family(key, lastconv):
  """Keys of the official CDCN/CDCN++ code (conv1.0.conv.weight, Block2.4.running_var, ...);
  `lastconv` maps (sequential, index) of the map predictor to our path."""
  if key.endswith("num_batches_tracked"):
    return None, None
  if re.fullmatch(r"sa\d\.conv1\.weight", key):  # CDCN++'s spatial attention (a plain conv)
    return "backbone/" + key[:3] + "/conv1/kernel", "conv"
  m = re.fullmatch(r"(conv1|Block\d|lastconv\d)\.(\d+)\.(conv\.weight|\w+)", key)
  if not m:
    return "?" + key, None
  seq, idx, leaf = m.group(1), int(m.group(2)), m.group(3)
  if seq == "conv1":
    base = "backbone/conv1/" + ("conv" if idx == 0 else "bn")
  elif seq.startswith("Block"):
    base = f"backbone/{seq}/layers/{idx // 3}/" + ("conv" if idx % 3 == 0 else "bn")
  else:
    base = lastconv.get((seq, idx), "?" + key)
  if leaf == "conv.weight":
    return base + "/kernel", "conv"
  return base + "/" + _BN.get(leaf, leaf), "bn"


_CDCN_LASTCONV = {("lastconv1", 0): "head/predictor/convs/0",
                  ("lastconv1", 1): "head/predictor/norms/0",
                  ("lastconv2", 0): "head/predictor/convs/1",
                  ("lastconv2", 1): "head/predictor/norms/1",
                  ("lastconv3", 0): "head/predictor/out"}
# CDCN++ has a single Sequential: CDC 384->128, BN, ReLU, CDC 128->1, ReLU.
_CDCNPP_LASTCONV = {("lastconv1", 0): "head/predictor/convs/0",
                    ("lastconv1", 1): "head/predictor/norms/0",
                    ("lastconv1", 3): "head/predictor/out"}


# format -> (key mapper, prefixes of model variables the file must not leave uninitialised)
_MAPPERS = {
    "torchvision-resnet50": (lambda k, n: _torchvision(k, n, "fc"), ("backbone/",)),
    "torchvision-vgg16": (lambda k, n: _torchvision(k, n, "classifier"), ("backbone/",)),
    "torchvision-densenet121": (_torchvision_densenet, ("backbone/",)),
    "torchvision-shufflenet_v2_x1_0": (lambda k, n: _torchvision(k, n, "fc"), ("backbone/",)),
    "torchvision-mobilenet_v2": (lambda k, n: _torchvision(k, n, "classifier"), ("backbone/",)),
    "official-cdcn": (lambda k, n: _official_cdcn_family(k, _CDCN_LASTCONV),
                      ("backbone/", "head/")),
    "official-cdcnpp": (lambda k, n: _official_cdcn_family(k, _CDCNPP_LASTCONV),
                        ("backbone/", "head/")),
}


def _to_ours(array, kind):
  if kind == "conv" and array.ndim == 4:
    return array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
  if kind == "conv" and array.ndim == 2:
    return array.T  # Linear (out, in) -> (in, out)
  return array


def import_state_dict(model, state_dict: dict[str, np.ndarray], fmt: str) -> dict[str, list[str]]:
  """Load `state_dict` into `model` in place. Returns {'dropped': [...], 'initialised': [...]}:
  the file's keys deliberately unused, and the model's variables left at initialisation (the new
  FAS head, for ImageNet backbones)."""
  if fmt not in _MAPPERS:
    raise ValueError(f"unknown format {fmt!r}; choose from {list(FORMATS)}")
  mapper, required = _MAPPERS[fmt]
  variables = models.flat_state(model)
  assigned, dropped, leftover, bad_shape = set(), [], [], []
  updates = {}
  for key, array in state_dict.items():
    path, kind = mapper(key, np.ndim(array))
    if path is None:
      dropped.append(key)
      continue
    if path not in variables:
      leftover.append(key)
      continue
    value = _to_ours(array, kind)
    want = tuple(variables[path].shape)
    if value.shape != want:
      bad_shape.append(f"{key} {tuple(array.shape)} -> {path} expects {want}")
      continue
    updates[path] = value
    assigned.add(path)
  missing = sorted(p for p in variables if p.startswith(required) and p not in assigned)
  if leftover or bad_shape or missing:
    lines = [f"the {fmt} state dict does not fit this model (model.backbone/head in the config):"]
    lines += [f"  left over (no model variable): {k}" for k in sorted(leftover)]
    lines += [f"  wrong shape: {s}" for s in bad_shape]
    lines += [f"  missing from the file: {p}" for p in missing]
    raise WeightImportError("\n".join(lines))
  for path, value in updates.items():
    variables[path][...] = jnp.asarray(value, dtype=variables[path][...].dtype)
  initialised = sorted(p for p in variables if p not in assigned)
  return {"dropped": sorted(dropped), "initialised": initialised}
