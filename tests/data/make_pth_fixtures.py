"""Writes the .pth fixtures of tests/test_pth.py and tests/test_pretrained.py with real PyTorch,
and what PyTorch itself reads back from them (expected.npz), so the tests check our reader
against torch without needing torch installed.

  python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
  /tmp/torchvenv/bin/python tests/data/make_pth_fixtures.py

Written with torch 2.13.0 (CPU). Files, each a few KB:
  resnet_micro.pth, resnet_micro_legacy.pth  torch.save of a 1-block ResNet's state_dict (the
      key names, BN buffers and fc of torchvision's ResNets), zip and legacy serialization
  dtypes.pth, dtypes_legacy.pth  float16/32/64, bfloat16, int8-64, uint8, bool, 0-d and empty
      tensors, views at an offset, transposed, expanded (stride 0) and an nn.Parameter
  old_pickles.pth  the legacy format as torch < 1.0 wrote it (torchvision's 2017-2019 ImageNet
      files): tensors as torch._utils._rebuild_tensor and as torch.FloatTensor() + BUILD, a
      storage view, Python 2 strings; hand-pickled here, then read back by torch.load
  wrapped.pth  {"state_dict": {"module.w": ...}, "epoch": 3}: a training checkpoint
  namespace.pth  a tensor next to an argparse.Namespace, which a safe reader must refuse
"""

import argparse
import collections
import pathlib
import pickle
import struct
import sys

import numpy as np
import torch
from torch import nn

HERE = pathlib.Path(__file__).resolve().parent


class Bottleneck(nn.Module):

  def __init__(self, cin, planes):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.downsample = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, bias=False),
                                    nn.BatchNorm2d(planes * 4))


class ResNetMicro(nn.Module):
  """torchvision's ResNet layout at width 2 with one bottleneck: the shapes of our
  models.resnet.ResNet((1,), width=2, stem_stride=1, stem_pool=False) plus a 3-class fc."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 2, 7, bias=False)
    self.bn1 = nn.BatchNorm2d(2)
    self.layer1 = nn.Sequential(Bottleneck(2, 2))
    self.fc = nn.Linear(8, 3)


def resnet_micro_state_dict():
  torch.manual_seed(0)
  net = ResNetMicro()
  with torch.no_grad():  # a fresh BN (mean 0, var 1, scale 1) would hide a misplaced buffer
    for m in net.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
        m.num_batches_tracked.fill_(7)
  return net.state_dict()


def dtypes_state_dict():
  torch.manual_seed(1)
  base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 4
  return collections.OrderedDict([
      ("f32", torch.randn(2, 3, 3, 3)),
      ("f64", torch.randn(3, dtype=torch.float64)),
      ("f16", torch.randn(5).half()),
      ("bf16", torch.randn(4).bfloat16()),
      ("i64", torch.tensor([-3, 2**40, 5])),
      ("i32", torch.tensor([[1, -2], [3, 4]], dtype=torch.int32)),
      ("i16", torch.tensor([-300, 300], dtype=torch.int16)),
      ("i8", torch.tensor([-7, 7], dtype=torch.int8)),
      ("u8", torch.tensor([0, 200, 255], dtype=torch.uint8)),
      ("bool", torch.tensor([True, False, True])),
      ("scalar", torch.tensor(7)),
      ("empty", torch.zeros(0, 3)),
      ("base", base),
      ("rows", base[1:3]),            # offset 6 into base's storage
      ("cols", base[:, 2:5]),         # offset 2, non-contiguous
      ("transposed", base.t()),
      ("expanded", torch.randn(3, 1).expand(3, 4)),  # stride 0
      ("param", nn.Parameter(torch.randn(2, 2))),
  ])


class _Storage:
  """A storage as torch < 1.0 pickled it: ('storage', type, root key, location, numel, view)."""

  def __init__(self, storage_type, key, numel, view=None):
    self.storage_type, self.key, self.numel, self.view = storage_type, key, numel, view


class _V1Tensor:

  def __init__(self, *args):
    self.args = args

  def __reduce__(self):
    return torch._utils._rebuild_tensor, self.args


class _V2Tensor(_V1Tensor):

  def __reduce__(self):
    return torch._utils._rebuild_tensor_v2, self.args


class _BuildTensor:
  """torch <= 0.3: the tensor class called with no arguments, then BUILD sets its state."""

  def __init__(self, cls, *state):
    self.cls, self.state = cls, state

  def __reduce__(self):
    return self.cls, (), self.state


class _LegacyPickler(pickle._Pickler):
  """Writes strings as Python 2 did (SHORT_BINSTRING), storages as persistent ids."""
  dispatch = dict(pickle._Pickler.dispatch)

  def save_str(self, obj):
    data = obj.encode("ascii")
    self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
    self.memoize(obj)

  dispatch[str] = save_str

  def persistent_id(self, obj):
    if isinstance(obj, _Storage):
      return ("storage", obj.storage_type, obj.key, "cpu", obj.numel, obj.view)
    return None


def write_old_pickles(path):
  """The legacy format (magic number, protocol, sys info, the object, storage keys, raw storages)
  with the tensor pickles of torch < 1.0."""
  floats = np.arange(12, dtype=np.float32) * 1.5 - 4
  longs = np.array([3, -1, 2**33], dtype=np.int64)
  root = _Storage(torch.FloatStorage, "140001", 12)
  view = _Storage(torch.FloatStorage, "140001", 12, ("140002", 4, 6))  # elements 4..9
  long_root = _Storage(torch.LongStorage, "140003", 3)
  obj = collections.OrderedDict([
      ("v1", _V1Tensor(root, 2, (2, 3), (3, 1))),
      ("v1_transposed", _V1Tensor(root, 0, (3, 4), (1, 3))),
      ("built_from_view", _BuildTensor(torch.FloatTensor, view, 1, (2, 2), (1, 2))),
      ("built_long", _BuildTensor(torch.LongTensor, long_root, 0, (3,), (1,))),
      ("v2", _V2Tensor(root, 0, (12,), (1,), False, collections.OrderedDict())),
  ])
  sys_info = {"protocol_version": 1001, "little_endian": True,
              "type_sizes": {"short": 2, "int": 4, "long": 4}}
  with open(path, "wb") as f:
    for header in (0x1950A86A20F9469CFC6C, 1001, sys_info):
      pickle.dump(header, f, protocol=2)
    _LegacyPickler(f, protocol=2).dump(obj)
    pickle.dump(["140001", "140003"], f, protocol=2)
    for data in (floats, longs):
      f.write(struct.pack("<q", data.size) + data.tobytes())


def as_numpy(tensor):
  tensor = tensor.detach()
  return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def main():
  expected = {}
  files = {"resnet_micro": resnet_micro_state_dict(), "dtypes": dtypes_state_dict()}
  for name, sd in files.items():
    torch.save(sd, HERE / f"{name}.pth")
    torch.save(sd, HERE / f"{name}_legacy.pth", _use_new_zipfile_serialization=False)
  torch.save({"state_dict": collections.OrderedDict([("module.w", torch.randn(2, 2))]),
              "epoch": 3}, HERE / "wrapped.pth")
  torch.save({"w": torch.ones(2), "args": argparse.Namespace(lr=0.1)}, HERE / "namespace.pth")
  write_old_pickles(HERE / "old_pickles.pth")
  # What torch reads back (weights_only, its safe loader) is the truth the tests compare with;
  # both serializations of a state dict read back the same, so it is stored once.
  for name in ("resnet_micro", "dtypes", "old_pickles"):
    for key, tensor in torch.load(HERE / f"{name}.pth", weights_only=True).items():
      expected[f"{name}/{key}"] = as_numpy(tensor)
    if name in files:
      legacy = torch.load(HERE / f"{name}_legacy.pth", weights_only=True)
      assert all(np.array_equal(as_numpy(v), expected[f"{name}/{k}"]) for k, v in legacy.items())
  w = torch.load(HERE / "wrapped.pth", weights_only=True)["state_dict"]["module.w"]
  expected["wrapped/w"] = as_numpy(w)
  np.savez_compressed(HERE / "expected.npz", **expected)
  print(f"torch {torch.__version__}: wrote", ", ".join(
      f"{p.name} ({p.stat().st_size} B)" for p in sorted(HERE.glob("*.pth"))), file=sys.stderr)


if __name__ == "__main__":
  main()
