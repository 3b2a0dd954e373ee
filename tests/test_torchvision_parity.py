"""Against torchvision itself, where it is installed (it is not a dependency, so this skips
elsewhere): each network built by torchvision with random weights and randomised BN statistics,
saved as a .pth file, imported, and its `features` compared at 256x256 with torchvision's own
forward. Slow: full-size models; run with `make test-all` on a machine with torch."""

import numpy as np
import pytest
from flax import nnx

from pyramid_fas_jax import models
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.models import inference
from pyramid_fas_jax.weights import convert

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


def _shufflenet_features(net, x):
  return net.conv5(net.stage4(net.stage3(net.stage2(net.maxpool(net.conv1(x))))))


# torchvision builder -> (import format, backbone, torchvision's map that our `features` is).
CASES = {
    "vgg16": ("torchvision-vgg16", "vgg16", lambda net, x: net.features(x)),
    "densenet121": ("torchvision-densenet121", "densenet121",
                    lambda net, x: torch.relu(net.features(x))),
    "shufflenet_v2_x1_0": ("torchvision-shufflenet_v2_x1_0", "shufflenet_v2_x1_0",
                           _shufflenet_features),
    "mobilenet_v2": ("torchvision-mobilenet_v2", "mobilenet_v2", lambda net, x: net.features(x)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_features_match_torchvision(name, tmp_path):
  fmt, backbone, features = CASES[name]
  torch.manual_seed(0)
  net = getattr(torchvision.models, name)(weights=None).eval()
  with torch.no_grad():  # a fresh BN (mean 0, var 1, scale 1) would hide a misplaced norm
    for m in net.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.1, 0.1)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.1, 0.1)
  torch.save(net.state_dict(), tmp_path / "weights.pth")

  model = models.build_model(fas.model_config(backbone=backbone), nnx.Rngs(0))
  report = convert.import_state_dict(model, convert.read_state_dict(tmp_path / "weights.pth"), fmt)
  assert all(k.startswith(("classifier.", "fc.")) or k.endswith("num_batches_tracked")
             for k in report["dropped"])

  x = np.random.default_rng(0).normal(size=(2, 256, 256, 3)).astype(np.float32)
  got = inference.predict(model, x, batch_size=2)["features"]
  with torch.no_grad():
    want = features(net, torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
  assert got.shape == want.shape and got.shape[1:3] == (8, 8)  # stride 32
  assert np.abs(got - want).max() / np.abs(want).max() < 1e-4
