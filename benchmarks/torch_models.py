"""The PyTorch references of benchmarks/side_by_side.py: CDCN-PS with the official CDCN
architecture and ResNet50-PS on torchvision's ResNet50, each with its loss and the paper's
optimizer. Written for this benchmark (nothing of pyramid_fas_jax is imported); NCHW."""

import torch
import torch.nn.functional as F
import torchvision
from torch import nn


class CDConv(nn.Module):
  """Conv2d_cd as the official code computes it: a 3x3 conv minus theta times a 1x1 conv whose
  kernel is the 3x3 kernel summed over its window (two convolutions; no folding)."""

  def __init__(self, cin, cout, theta):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    self.theta = theta

  def forward(self, x):
    out = self.conv(x)
    if self.theta == 0:
      return out
    return out - self.theta * F.conv2d(x, self.conv.weight.sum((2, 3), keepdim=True))


def _cbr(cin, cout, theta):
  return nn.Sequential(CDConv(cin, cout, theta), nn.BatchNorm2d(cout), nn.ReLU())


class CDCN(nn.Module):
  """stem 64 -> three blocks 128-196-128 + 3x3/2 max pool -> each resized to 32x32 (bilinear) ->
  concatenated (384) -> CDC 128 -> CDC 64 -> CDC 1 + ReLU: the (N, 32, 32) depth map."""

  def __init__(self, theta=0.7):
    super().__init__()
    self.conv1 = _cbr(3, 64, theta)
    blocks, cin = [], 64
    for _ in range(3):
      blocks.append(nn.Sequential(_cbr(cin, 128, theta), _cbr(128, 196, theta),
                                  _cbr(196, 128, theta), nn.MaxPool2d(3, 2, 1)))
      cin = 128
    self.blocks = nn.ModuleList(blocks)
    self.lastconv = nn.Sequential(_cbr(384, 128, theta), _cbr(128, 64, theta),
                                  CDConv(64, 1, theta), nn.ReLU())

  def forward(self, x):
    x = self.conv1(x)
    maps = []
    for block in self.blocks:
      x = block(x)
      maps.append(F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False))
    return self.lastconv(torch.cat(maps, 1))[:, 0]


def _contrast(x):
  """The 8 neighbour-minus-centre differences of CDCN's contrastive depth loss (valid)."""
  h, w = x.shape[1:]
  centre = x[:, 1:h - 1, 1:w - 1]
  return torch.stack([x[:, r:r + h - 2, c:c + w - 2] - centre
                      for r in range(3) for c in range(3) if (r, c) != (1, 1)], 1)


def pyramid_depth_loss(depth_32, batch):
  """Sum over scales 32 and 16 of MSE + contrastive depth loss against the pooled label."""
  loss = 0
  pred = {32: depth_32, 16: F.avg_pool2d(depth_32[:, None], 2)[:, 0]}
  for s, d in pred.items():
    target = F.adaptive_avg_pool2d(batch["depth"][:, None], s)[:, 0]
    loss = loss + F.mse_loss(d, target) + F.mse_loss(_contrast(d), _contrast(target))
  return loss


class ResNet50PS(nn.Module):
  """torchvision ResNet50 to layer4 (2048 x 8 x 8) + the pyramid mask head (scales 8, 4, 2, 1)."""

  def __init__(self, scales=(8, 4, 2, 1)):
    super().__init__()
    r = torchvision.models.resnet50(weights=None)
    self.backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2,
                                  r.layer3, r.layer4)
    self.scales = scales
    self.mask_convs = nn.ModuleList([nn.Conv2d(2048, 1, 1) for _ in scales])
    self.classifier = nn.Linear(sum(s * s for s in scales), 1)

  def forward(self, x):
    f = self.backbone(x)
    logits = [conv(F.avg_pool2d(f, f.shape[-1] // s))[:, 0]
              for s, conv in zip(self.scales, self.mask_convs)]
    flat = torch.cat([torch.sigmoid(m).flatten(1) for m in logits], 1)
    return logits, self.classifier(flat)[:, 0]


def pyramid_mask_loss(outputs, batch):
  """Sum over scales of the BCE against the min-pooled mask, plus the BCE of the final logit."""
  logits, logit = outputs
  loss = F.binary_cross_entropy_with_logits(logit, batch["label"].float())
  for m in logits:
    target = -F.max_pool2d(-batch["mask"][:, None], batch["mask"].shape[-1] // m.shape[-1])[:, 0]
    loss = loss + F.binary_cross_entropy_with_logits(m, target)
  return loss


def build(name):
  """(model, loss_fn(outputs, batch), optimizer) of a config name."""
  if name == "cdcn_ps":
    model = CDCN()
    return model, pyramid_depth_loss, torch.optim.Adam(model.parameters(), lr=1e-4,
                                                       weight_decay=5e-5)
  if name == "resnet50_ps":
    model = ResNet50PS()
    return model, pyramid_mask_loss, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9,
                                                     weight_decay=5e-5)
  raise ValueError(f"no PyTorch reference for {name!r}; choose cdcn_ps or resnet50_ps")
