"""PyTorch's .pth/.pt files read without PyTorch, and without running anything from the file.

torch.save writes a pickle whose tensors point into raw storages: members of a zip archive
(`<name>/data.pkl` and `<name>/data/<key>`; torch >= 1.6) or, in the legacy format of torch < 1.6
(which wrote torchvision's VGG16, DenseNet121, MobileNetV2 and ShuffleNetV2 ImageNet files of
2017-2019, never re-saved since), a stream of pickles followed by the storages' bytes. Tensors of
torch < 1.0 (rebuilt by _rebuild_tensor, or a FloatTensor given its state) and its storage views
are read too; the .tar format of torch < 0.1.10 is not.

Our unpickler knows only the globals a tensor state dict needs (OrderedDict, torch's tensor
rebuild functions, the storage and tensor types) and refuses any other with one line naming it,
so a file cannot make it call anything: the safe way to read an untrusted checkpoint, as
torch.load(weights_only=True) is.
"""

import collections
import io
import pathlib
import pickle
import struct
import tarfile
import zipfile

import ml_dtypes
import numpy as np

# torch storage type -> little-endian numpy dtype of its elements.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"), "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"), "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}
# Tensor types that torch <= 0.3 pickled as `torch.FloatTensor()` followed by BUILD(state).
_TENSOR_TYPES = ("DoubleTensor", "FloatTensor", "HalfTensor", "LongTensor", "IntTensor",
                 "ShortTensor", "CharTensor", "ByteTensor")
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class PthError(ValueError):
  """A file this reader will not or cannot read; the message names the file and the reason."""


class _Storage:
  """A typed storage: numel elements of dtype; `array` is filled once its bytes are read."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype, self.numel, self.array = dtype, numel, None


class _Tensor:
  """A tensor as pickled: strided view of a storage, made into an array once storages are read."""

  def __init__(self, storage=None, offset=0, size=(), stride=()):
    self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

  def __setstate__(self, state):  # torch <= 0.3: BUILD with (storage, offset, size, stride)
    if len(state) != 4:
      raise pickle.UnpicklingError(f"a legacy tensor state of {len(state)} items, expected 4")
    self.__init__(*state)


class _StorageType(str):
  """What `torch.FloatStorage` and the like unpickle to: just its name."""


def _rebuild_tensor(storage, offset, size, stride):
  return _Tensor(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
  del requires_grad, backward_hooks
  if metadata:  # conjugate / negative bits: a lazily transformed view we do not reproduce
    raise pickle.UnpicklingError(f"a tensor with metadata {metadata}")
  return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks):
  del requires_grad, backward_hooks
  return data


_GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}
for _module in ("torch", "torch.cuda"):  # files saved from the GPU name torch.cuda.* types
  _GLOBALS.update({(_module, name): _StorageType(name) for name in _STORAGE_DTYPES})
  _GLOBALS.update({(_module, name): _Tensor for name in _TENSOR_TYPES})


class _Unpickler(pickle._Unpickler):
  """Resolves only _GLOBALS; storage ids go to `storage(type, key, numel, view)`.

  Python's own unpickler, not the C one: only it lets BUILD be restricted, as torch's weights_only
  unpickler restricts it, to the OrderedDict and tensors it is meant for (elsewhere it sets
  attributes on whatever is on the stack, our classes and functions included).
  """
  dispatch = dict(pickle._Unpickler.dispatch)

  def __init__(self, file, path, storage):
    super().__init__(file, encoding="utf-8")  # as torch.load: Python 2 strings are UTF-8
    self._path, self._storage = path, storage

  def find_class(self, module, name):
    if (module, name) not in _GLOBALS:
      raise PthError(f"{self._path}: refusing to unpickle {module}.{name}: only tensor state "
                     "dicts are read (nothing in the file is run); export a plain "
                     "state_dict (torch.save(model.state_dict(), ...)) or .safetensors")
    return _GLOBALS[(module, name)]

  def load_build(self):
    target = self.stack[-2]  # below the state
    if type(target) not in (collections.OrderedDict, _Tensor):
      raise PthError(f"{self._path}: refusing to set the state of a {type(target).__name__}: "
                     "only tensor state dicts are read")
    super().load_build()

  dispatch[pickle.BUILD[0]] = load_build

  def persistent_load(self, pid):
    kind = pid[0] if isinstance(pid, tuple) and pid else None
    if kind == "module":
      raise PthError(f"{self._path} holds a pickled nn.Module (torch.save(model)); save "
                     "model.state_dict() instead")
    if kind != "storage" or len(pid) not in (5, 6):
      raise PthError(f"{self._path}: unknown persistent id {pid!r}")
    storage_type, key, _location, numel, *view = pid[1:]  # view: legacy format only
    if not isinstance(storage_type, _StorageType):
      raise PthError(f"{self._path}: storage of unknown type {storage_type!r}")
    return self._storage(storage_type, str(key), int(numel), view[0] if view else None)


def _materialise(tensor: _Tensor, path) -> np.ndarray:
  storage = tensor.storage
  if not isinstance(storage, _Storage):
    raise PthError(f"{path}: a tensor without a storage ({storage!r})")
  size, stride = tuple(int(n) for n in tensor.size), tuple(int(s) for s in tensor.stride)
  dtype = storage.dtype
  if 0 in size:
    return np.zeros(size, dtype if dtype != ml_dtypes.bfloat16 else np.float32)
  last = tensor.offset + sum((n - 1) * s for n, s in zip(size, stride))
  if tensor.offset < 0 or min(stride, default=0) < 0 or last >= storage.numel:
    raise PthError(f"{path}: a tensor of size {size}, stride {stride} at offset {tensor.offset} "
                   f"runs past its storage of {storage.numel} elements")
  view = np.lib.stride_tricks.as_strided(storage.array[tensor.offset:], shape=size,
                                         strides=[s * dtype.itemsize for s in stride],
                                         writeable=False)
  # numpy has no bfloat16 of its own: such weights come back as float32, exactly. A contiguous
  # tensor in native byte order stays a read-only view of the file's bytes, without a copy.
  out = np.float32 if dtype == ml_dtypes.bfloat16 else dtype.newbyteorder("=")
  return np.asarray(view, dtype=out, order="C")


def _resolve(obj, path):
  """`obj` with every _Tensor made an array, containers rebuilt as they were."""
  if isinstance(obj, _Tensor):
    return _materialise(obj, path)
  if isinstance(obj, dict):
    return type(obj)((k, _resolve(v, path)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_resolve(v, path) for v in obj)
  return obj


def _set_bytes(storage: _Storage, data, path, key):
  want = storage.numel * storage.dtype.itemsize
  if len(data) < want:
    raise PthError(f"{path}: storage {key} has {len(data)} bytes, expected {want} (truncated?)")
  storage.array = np.frombuffer(data, storage.dtype, storage.numel)


def _load_zip(path: pathlib.Path, archive: zipfile.ZipFile):
  pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
  if len(pickles) != 1:
    raise PthError(f"{path} is a zip archive but not one torch.save wrote (no <name>/data.pkl)")
  prefix = pickles[0][:-len("data.pkl")]
  names = set(archive.namelist())
  big = prefix + "byteorder" in names and archive.read(prefix + "byteorder") == b"big"
  storages = {}

  def storage(storage_type, key, numel, view):
    del view  # the zip format has none
    if key not in storages:
      dtype = _STORAGE_DTYPES[storage_type]
      storages[key] = _Storage(dtype.newbyteorder(">") if big and dtype.itemsize > 1 else dtype,
                               numel)
    return storages[key]

  obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), path, storage).load()
  for key, s in storages.items():
    name = f"{prefix}data/{key}"
    if name not in names:
      raise PthError(f"{path}: storage {name} is missing from the archive")
    _set_bytes(s, archive.read(name), path, key)
  return obj


def _load_legacy(path: pathlib.Path, raw: bytes):
  """Magic number, protocol, sys info, the object, its storage keys, then each storage as a
  little-endian int64 element count and its bytes (torch.serialization._legacy_save)."""
  stream = io.BytesIO(raw)
  roots, views = {}, {}

  def storage(storage_type, key, numel, view):
    if key not in roots:
      roots[key] = _Storage(_STORAGE_DTYPES[storage_type], numel)
    if view is None:
      return roots[key]
    view_key, offset, view_numel = view  # torch < 1.0: a storage slice, in elements
    views.setdefault(view_key, (_Storage(roots[key].dtype, view_numel), key, offset))
    return views[view_key][0]

  def header():
    return _Unpickler(stream, path, storage).load()

  try:
    magic = header()
  except PthError:
    raise
  except (pickle.UnpicklingError, EOFError, ValueError, IndexError, KeyError, TypeError):
    magic = None  # not a pickle at all
  if magic != _LEGACY_MAGIC:
    if tarfile.is_tarfile(path):
      raise PthError(f"{path} is in the .tar format of torch < 0.1.10, which is not read: "
                     "re-save it with torch.save, or convert it to .safetensors")
    raise PthError(f"{path} is not a PyTorch file (neither a torch.save zip archive nor the "
                   "legacy format)")
  if header() != _LEGACY_PROTOCOL:
    raise PthError(f"{path}: unknown legacy protocol version")
  if not header().get("little_endian", True):
    raise PthError(f"{path} was saved on a big-endian machine; re-save it on a little-endian one")
  obj = header()
  keys = header()
  pos = stream.tell()
  for key in map(str, keys):
    if key not in roots:
      raise PthError(f"{path}: storage {key} is listed but no tensor uses it")
    (numel,) = struct.unpack_from("<q", raw, pos)
    nbytes = numel * roots[key].dtype.itemsize
    _set_bytes(roots[key], memoryview(raw)[pos + 8:pos + 8 + nbytes], path, key)
    pos += 8 + nbytes
  for s, key, offset in views.values():
    s.array = roots[key].array[offset:offset + s.numel]
  return obj


def load(path):
  """The object torch.save wrote to `path` (a state dict, or a dict holding one), its tensors as
  C-contiguous numpy arrays in their stored dtype (bfloat16 as float32; read-only where they are
  views of the file's bytes). Raises PthError for anything else."""
  path = pathlib.Path(path)
  try:
    if zipfile.is_zipfile(path):
      with zipfile.ZipFile(path) as archive:
        obj = _load_zip(path, archive)
    else:
      obj = _load_legacy(path, path.read_bytes())
  except (pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError,
          struct.error) as e:
    raise PthError(f"{path} is not a readable tensor state dict: {type(e).__name__}: {e}") from e
  return _resolve(obj, path)
