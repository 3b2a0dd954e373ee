"""ImageNet initialisation: the torchvision file fetched from a local HTTP server on 127.0.0.1
(the mirror variable points there; nothing leaves this machine), checked against the hash in its
name, cached, and imported into the backbone only. The served file is tests/data/resnet_micro.pth,
a state dict PyTorch wrote for a one-block ResNet with torchvision's key names."""

import functools
import hashlib
import http.server
import logging
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import types

import numpy as np
import pytest
import tiny_train_config

from pyramid_fas_jax import models
from pyramid_fas_jax.models import resnet
from pyramid_fas_jax.training import train_step
from pyramid_fas_jax.weights import convert, pretrained

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SERVED = DATA / "resnet_micro.pth"
# The state dict's 32 tensors less fc.weight, fc.bias and 5 BN num_batches_tracked.
IMPORTED = 25


@pytest.fixture
def server(tmp_path, monkeypatch):
  """A threaded HTTP server on 127.0.0.1 serving tmp_path/served as <url>/models/; counts GETs.
  The cache goes to tmp_path/cache."""
  root = tmp_path / "served" / "models"
  root.mkdir(parents=True)
  requests = []

  class Handler(http.server.SimpleHTTPRequestHandler):

    def do_GET(self):
      requests.append(self.path)
      super().do_GET()

    def log_message(self, *args):
      del args

  httpd = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(Handler, directory=str(root.parent)))
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  monkeypatch.setenv(pretrained.URL_ENV, f"http://127.0.0.1:{httpd.server_port}/models")
  monkeypatch.setenv("PYRAMID_FAS_CACHE", str(tmp_path / "cache"))
  monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy in the environment must not see these
  yield types.SimpleNamespace(root=root, requests=requests, cache=tmp_path / "cache")
  httpd.shutdown()
  httpd.server_close()
  thread.join()


def _micro_backbone(cfg, rngs):
  del cfg
  return resnet.ResNet((1,), width=2, stem_stride=1, stem_pool=False, rngs=rngs)


@pytest.fixture
def micro(monkeypatch, server):
  """Registers backbone 'resnet_micro' (the served file's shapes) with ImageNet weights named
  resnet_micro-<sha256 prefix>.pth, as torchvision names its files, and serves that file."""
  name = f"resnet_micro-{hashlib.sha256(SERVED.read_bytes()).hexdigest()[:10]}.pth"
  shutil.copy(SERVED, server.root / name)
  monkeypatch.setitem(models.BACKBONES, "resnet_micro", (_micro_backbone, "classification"))
  monkeypatch.setitem(pretrained.WEIGHTS, "resnet_micro", (name, "torchvision-resnet50"))
  config = tiny_train_config.get_config(None)
  config.model.backbone = "resnet_micro"
  config.init_from = pretrained.IMAGENET
  return types.SimpleNamespace(name=name, config=config)


def _ours(key):
  """torchvision key -> our variable path, written out independently of convert's mapper."""
  *module, leaf = key.split(".")
  is_bn = module[-1].startswith("bn") or module[-2:] == ["downsample", "1"]
  leaf = {"weight": "scale" if is_bn else "kernel", "running_mean": "mean",
          "running_var": "var"}.get(leaf, leaf)
  return "/".join(["backbone", *module, leaf])


def _numpy(model):
  return {k: np.asarray(v[...]) for k, v in models.flat_state(model).items()}


def test_first_use_downloads_verifies_caches_and_imports_the_backbone(micro, server, caplog):
  with caplog.at_level(logging.INFO, logger="absl"):
    model, _ = train_step.create_model_and_optimizer(micro.config)
  assert server.requests == [f"/models/{micro.name}"]
  cached = server.cache / "torchvision" / micro.name
  assert cached.read_bytes() == SERVED.read_bytes()
  assert sorted(p.name for p in cached.parent.iterdir()) == [micro.name]  # no partial file
  assert (f"initialised the backbone from torchvision ImageNet weights {micro.name} "
          f"({IMPORTED} tensors; head from scratch)") in caplog.text

  with np.load(DATA / "expected.npz") as z:  # what torch reads from the served file
    served = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("resnet_micro/")}
  got = _numpy(model)
  imported = {k: v for k, v in served.items()
              if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
  assert len(imported) == IMPORTED
  for key, value in imported.items():
    want = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value  # OIHW -> HWIO
    np.testing.assert_array_equal(got[_ours(key)], want, err_msg=key)
  assert {_ours(k) for k in imported} == {k for k in got if k.startswith("backbone/")}

  # The head is the seeded initialisation a from-scratch model has; the backbone is not.
  micro.config.init_from = ""
  scratch = _numpy(train_step.create_model_and_optimizer(micro.config)[0])
  for key in got:
    assert np.array_equal(got[key], scratch[key]) == key.startswith("head/"), key

  micro.config.init_from = pretrained.IMAGENET  # a second start reads the cache
  again = _numpy(train_step.create_model_and_optimizer(micro.config)[0])
  assert len(server.requests) == 1
  assert all(np.array_equal(again[k], got[k]) for k in got)


def test_processes_starting_together_both_get_the_whole_file(micro, server):
  paths, errors = [], []

  def fetch():
    try:
      paths.append(pretrained.fetch("resnet_micro", progress=False))
    except Exception as e:
      errors.append(e)

  threads = [threading.Thread(target=fetch) for _ in range(2)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors and len(paths) == 2
  assert all(p.read_bytes() == SERVED.read_bytes() for p in paths)
  assert [p.name for p in paths[0].parent.iterdir()] == [micro.name]


def test_a_file_that_does_not_match_its_hash_is_refused_and_not_kept(monkeypatch, server):
  name = "resnet_micro-0123abcd.pth"  # the served bytes hash to something else
  shutil.copy(SERVED, server.root / name)
  monkeypatch.setitem(pretrained.WEIGHTS, "resnet50", (name, "torchvision-resnet50"))
  digest = hashlib.sha256(SERVED.read_bytes()).hexdigest()
  with pytest.raises(pretrained.WeightsUnavailableError,
                     match=f"has sha256 {digest}, not the 0123abcd... its name promises"):
    pretrained.fetch("resnet50", progress=False)
  assert list((server.cache / "torchvision").iterdir()) == []

  # A cached file that does not match (truncated, tampered) is named, never used.
  (server.cache / "torchvision" / name).write_bytes(b"tampered")
  with pytest.raises(pretrained.WeightsUnavailableError, match="delete it"):
    pretrained.fetch("resnet50", progress=False)


def _closed_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_no_server_says_what_to_download_and_where(monkeypatch, tmp_path):
  monkeypatch.setenv(pretrained.URL_ENV, f"http://127.0.0.1:{_closed_port()}/models/")
  monkeypatch.setenv("PYRAMID_FAS_CACHE", str(tmp_path))
  monkeypatch.setenv("no_proxy", "127.0.0.1")
  with pytest.raises(pretrained.WeightsUnavailableError) as e:
    pretrained.fetch("vgg16", progress=False)
  msg = str(e.value)
  assert "\n" not in msg
  assert msg.startswith(f"could not download {pretrained.url('vgg16-397923af.pth')} (")
  assert f"into {tmp_path / 'torchvision' / 'vgg16-397923af.pth'}" in msg
  assert "pyramid-fas import-weights --format=torchvision-vgg16 --input=vgg16-397923af.pth" in msg
  assert "--config.init_from=''" in msg


def test_train_command_without_network_exits_2_with_one_line(synth_tiny, tmp_path):
  """The full-size ResNet50-PS config, whose default is ImageNet initialisation: the download
  fails before the model is built."""
  # data.data_dir defaults to None, which a flag cannot override: TFDS's own variable sets it.
  env = dict(os.environ, PYTHONPATH=str(REPO), PYRAMID_FAS_CACHE=str(tmp_path / "cache"),
             no_proxy="127.0.0.1", JAX_PLATFORMS="cpu", TFDS_DATA_DIR=synth_tiny,
             **{pretrained.URL_ENV: f"http://127.0.0.1:{_closed_port()}/"})
  r = subprocess.run(
      [sys.executable, "-m", "pyramid_fas_jax.cli", "train",
       "--config=configs/resnet50_ps.py:synth_fas/intra", f"--workdir={tmp_path / 'run'}",
       "--config.data.builder_config=tiny", "--config.batch_size=8"],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert r.returncode == 2, r.stderr[-3000:]
  assert "Traceback" not in r.stderr
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("pyramid-fas train: could not download http://127.0.0.1:")
  assert "resnet50-0676ba61.pth" in last and "--config.init_from=''" in last


def test_from_scratch_resumed_and_backbones_without_weights(micro, server, caplog):
  micro.config.init_from = ""
  with caplog.at_level(logging.INFO, logger="absl"):
    train_step.create_model_and_optimizer(micro.config)
  assert "initialised the model from scratch" in caplog.text
  # A resumed run loads its checkpoint instead: init_from is not fetched.
  micro.config.init_from = pretrained.IMAGENET
  train_step.create_model_and_optimizer(micro.config, initialise=False)
  assert server.requests == []
  micro.config.model.backbone = "resnet_tiny"  # runlocal's CPU ResNet: no ImageNet weights exist
  with pytest.raises(ValueError, match="no torchvision ImageNet weights for model.backbone "
                                       "'resnet_tiny'.*--config.init_from=''"):
    train_step.create_model_and_optimizer(micro.config)


def test_registry_is_torchvisions_imagenet1k_v1():
  # Hand-copied from torchvision's *_Weights.IMAGENET1K_V1 and torch.hub's HASH_REGEX rule.
  assert pretrained.BASE_URL == "https://download.pytorch.org/models/"
  assert {b: (n, pretrained.hash_prefix(n)) for b, (n, _) in pretrained.WEIGHTS.items()} == {
      "resnet50": ("resnet50-0676ba61.pth", "0676ba61"),
      "vgg16": ("vgg16-397923af.pth", "397923af"),
      "densenet121": ("densenet121-a639ec97.pth", "a639ec97"),
      "shufflenet_v2_x1_0": ("shufflenetv2_x1-5666bf0f80.pth", "5666bf0f80"),
      "mobilenet_v2": ("mobilenet_v2-b0353104.pth", "b0353104")}
  assert all(fmt == f"torchvision-{b}" and fmt in convert.FORMATS
             for b, (_, fmt) in pretrained.WEIGHTS.items())
