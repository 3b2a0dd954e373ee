"""pth.load against files real PyTorch wrote (tests/data/, made by make_pth_fixtures.py with
torch 2.13): every tensor equals what torch.load itself reads back, in the zip format, the
legacy format and torch < 1.0's pickles; anything but a tensor state dict is refused."""

import io
import pathlib
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

from pyramid_fas_jax.weights import convert, pth

DATA = pathlib.Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def expected():
  with np.load(DATA / "expected.npz") as z:
    return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name", ["resnet_micro", "resnet_micro_legacy", "dtypes",
                                  "dtypes_legacy", "old_pickles"])
def test_tensors_equal_what_torch_reads(name, expected):
  base = name.removesuffix("_legacy")
  want = {k.split("/", 1)[1]: v for k, v in expected.items() if k.split("/")[0] == base}
  got = pth.load(DATA / f"{name}.pth")
  assert list(got) == list(want)  # torch's order, every key
  for key, array in got.items():
    assert isinstance(array, np.ndarray), key
    assert (array.dtype, array.shape) == (want[key].dtype, want[key].shape), key
    np.testing.assert_array_equal(array, want[key], err_msg=key)


def test_views_keep_their_offset_and_strides():
  # Hand-worked from base = arange(24).reshape(4, 6) / 4: the views share its storage.
  sd = pth.load(DATA / "dtypes.pth")
  base = np.arange(24, dtype=np.float32).reshape(4, 6) / 4
  np.testing.assert_array_equal(sd["rows"], base[1:3])
  np.testing.assert_array_equal(sd["cols"], base[:, 2:5])
  np.testing.assert_array_equal(sd["transposed"], base.T)
  assert sd["expanded"].shape == (3, 4) and (sd["expanded"] == sd["expanded"][:, :1]).all()
  # torch < 1.0: a storage view at elements 4..9 of 1.5 * arange(12) - 4, read with stride (1, 2)
  view = (np.arange(12, dtype=np.float32) * 1.5 - 4)[4:10]
  old = pth.load(DATA / "old_pickles.pth")
  np.testing.assert_array_equal(old["built_from_view"], [[view[1], view[3]], [view[2], view[4]]])
  assert old["built_long"].tolist() == [3, -1, 2**33]
  assert sd["bf16"].dtype == np.float32  # numpy has no bfloat16: exact in float32


def test_read_state_dict_unwraps_a_training_checkpoint(expected):
  sd = convert.read_state_dict(DATA / "wrapped.pth")  # {"state_dict": {"module.w"}, "epoch": 3}
  assert list(sd) == ["w"]
  np.testing.assert_array_equal(sd["w"], expected["wrapped/w"])


def test_other_objects_are_refused_by_name():
  with pytest.raises(pth.PthError, match=r"namespace\.pth: refusing to unpickle "
                                         r"argparse\.Namespace"):
    pth.load(DATA / "namespace.pth")


def _touch(path):
  pathlib.Path(path).touch()


class _RunsCode:

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return _touch, (str(self.marker),)


def test_nothing_in_the_file_runs(tmp_path):
  marker = tmp_path / "ran"
  payload = pickle.dumps({"w": _RunsCode(marker)}, protocol=2)
  zipped = tmp_path / "evil.pth"
  with zipfile.ZipFile(zipped, "w") as z:
    z.writestr("evil/data.pkl", payload)
  legacy = tmp_path / "evil_legacy.pth"
  legacy.write_bytes(b"".join(pickle.dumps(h, protocol=2) for h in (
      0x1950A86A20F9469CFC6C, 1001, {"little_endian": True})) + payload)
  for path in (zipped, legacy):
    with pytest.raises(pth.PthError, match=r"refusing to unpickle \S*test_pth\._touch"):
      pth.load(path)
  assert not marker.exists()


def test_build_only_sets_the_state_of_tensors_and_ordered_dicts(tmp_path):
  # GLOBAL torch._utils._rebuild_tensor, {'x': 1}, BUILD: would set an attribute on our function.
  payload = b"\x80\x02ctorch._utils\n_rebuild_tensor\n}X\x01\x00\x00\x00xK\x01sb."
  path = tmp_path / "build.pth"
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("build/data.pkl", payload)
  with pytest.raises(pth.PthError, match="refusing to set the state of a function"):
    pth.load(path)
  assert not hasattr(pth._rebuild_tensor, "x")


def test_truncated_and_foreign_files_are_named(tmp_path):
  legacy = (DATA / "resnet_micro_legacy.pth").read_bytes()
  (tmp_path / "cut.pth").write_bytes(legacy[:-100])
  with pytest.raises(pth.PthError, match=r"cut\.pth: storage \d+ has \d+ bytes, expected \d+"):
    pth.load(tmp_path / "cut.pth")

  cut_zip = tmp_path / "cut_zip.pth"
  with zipfile.ZipFile(DATA / "resnet_micro.pth") as src, zipfile.ZipFile(cut_zip, "w") as dst:
    for info in src.infolist():
      data = src.read(info)
      dst.writestr(info.filename, data[:4] if info.filename.endswith("data/0") else data)
  with pytest.raises(pth.PthError, match=r"storage 0 has 4 bytes, expected \d+"):
    pth.load(cut_zip)

  (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(256))
  with pytest.raises(pth.PthError, match=r"noise\.pth is not a PyTorch file"):
    pth.load(tmp_path / "noise.pth")

  with tarfile.open(tmp_path / "old.pth", "w") as tar:  # torch < 0.1.10 wrote tar archives
    info = tarfile.TarInfo("storages")
    info.size = 4
    tar.addfile(info, io.BytesIO(b"\0" * 4))
  with pytest.raises(pth.PthError, match=r"old\.pth is in the \.tar format of torch < 0\.1\.10"):
    pth.load(tmp_path / "old.pth")
