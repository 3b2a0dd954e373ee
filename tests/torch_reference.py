"""Independent float64 numpy versions of the PyTorch reference networks, in PyTorch's own layouts
(NCHW activations, OIHW kernels, state-dict keys). Tests compare our JAX models against these, so
nothing here may import pyramid_fas_jax."""

import numpy as np


def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1, bias=None):
  """F.conv2d: x (N, C, H, W), w (O, C/groups, kh, kw)."""
  n, c, h, wd = x.shape
  o, cg, kh, kw = w.shape
  xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
  oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
  ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
  out = np.zeros((n, o, oh, ow))
  og = o // groups
  for g in range(groups):
    xg = xp[:, g * cg:(g + 1) * cg]
    wg = w[g * og:(g + 1) * og]
    for i in range(kh):
      for j in range(kw):
        patch = xg[:, :, i * dilation:i * dilation + stride * (oh - 1) + 1:stride,
                   j * dilation:j * dilation + stride * (ow - 1) + 1:stride]
        out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
  if bias is not None:
    out += bias[None, :, None, None]
  return out


def batch_norm_eval(x, sd, prefix, eps=1e-5):
  mean, var = sd[prefix + "running_mean"], sd[prefix + "running_var"]
  scale, bias = sd[prefix + "weight"], sd[prefix + "bias"]
  inv = scale / np.sqrt(var + eps)
  return (x - mean[None, :, None, None]) * inv[None, :, None, None] + bias[None, :, None, None]


def max_pool2d(x, k=3, stride=2, padding=1):
  n, c, h, w = x.shape
  xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
              constant_values=-np.inf)
  oh = (h + 2 * padding - k) // stride + 1
  ow = (w + 2 * padding - k) // stride + 1
  out = np.full((n, c, oh, ow), -np.inf)
  for i in range(k):
    for j in range(k):
      out = np.maximum(out, xp[:, :, i:i + stride * (oh - 1) + 1:stride,
                               j:j + stride * (ow - 1) + 1:stride])
  return out


def _linear_weights(in_size, out_size):
  """Source indices and weights of upsample_bilinear2d along one axis (align_corners=False)."""
  scale = in_size / out_size
  i0, i1, l1 = [], [], []
  for d in range(out_size):
    src = max((d + 0.5) * scale - 0.5, 0.0)
    a = int(np.floor(src))
    i0.append(a)
    i1.append(a + 1 if a < in_size - 1 else a)
    l1.append(src - a)
  return np.array(i0), np.array(i1), np.array(l1)


def interpolate_bilinear(x, size):
  """F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)."""
  h0, h1, hl = _linear_weights(x.shape[2], size)
  w0, w1, wl = _linear_weights(x.shape[3], size)
  rows = x[:, :, h0] * (1 - hl)[None, None, :, None] + x[:, :, h1] * hl[None, None, :, None]
  return rows[:, :, :, w0] * (1 - wl) + rows[:, :, :, w1] * wl


def relu(x):
  return np.maximum(x, 0)


def resnet50_features(x, sd):
  """torchvision resnet50 up to layer4 (eval mode)."""
  x = relu(batch_norm_eval(conv2d(x, sd["conv1.weight"], 2, 3), sd, "bn1."))
  x = max_pool2d(x)
  for layer, blocks in zip((1, 2, 3, 4), (3, 4, 6, 3)):
    for b in range(blocks):
      p = f"layer{layer}.{b}."
      stride = 2 if (layer > 1 and b == 0) else 1
      y = relu(batch_norm_eval(conv2d(x, sd[p + "conv1.weight"]), sd, p + "bn1."))
      y = relu(batch_norm_eval(conv2d(y, sd[p + "conv2.weight"], stride, 1), sd, p + "bn2."))
      y = batch_norm_eval(conv2d(y, sd[p + "conv3.weight"]), sd, p + "bn3.")
      if p + "downsample.0.weight" in sd:
        x = batch_norm_eval(conv2d(x, sd[p + "downsample.0.weight"], stride), sd, p + "downsample.1.")
      x = relu(y + x)
  return x


def resnet50_state_dict_shapes():
  """torchvision resnet50's state-dict keys and shapes (with the 1000-class fc)."""
  shapes = {"conv1.weight": (64, 3, 7, 7)}
  shapes.update(_bn("bn1.", 64))
  inplanes = 64
  for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
    for b in range(blocks):
      p = f"layer{layer}.{b}."
      shapes[p + "conv1.weight"] = (planes, inplanes, 1, 1)
      shapes.update(_bn(p + "bn1.", planes))
      shapes[p + "conv2.weight"] = (planes, planes, 3, 3)
      shapes.update(_bn(p + "bn2.", planes))
      shapes[p + "conv3.weight"] = (planes * 4, planes, 1, 1)
      shapes.update(_bn(p + "bn3.", planes * 4))
      if b == 0:
        shapes[p + "downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
        shapes.update(_bn(p + "downsample.1.", planes * 4))
      inplanes = planes * 4
  shapes["fc.weight"] = (1000, 2048)
  shapes["fc.bias"] = (1000,)
  return shapes


def _bn(prefix, c):
  return {prefix + "weight": (c,), prefix + "bias": (c,), prefix + "running_mean": (c,),
          prefix + "running_var": (c,), prefix + "num_batches_tracked": ()}


def cdcn_state_dict_shapes(stem=64, widths=(128, 196, 128), hidden=(128, 64)):
  """The official CDCN's state-dict keys and shapes (nn.Sequential indices as in CDCNs.py)."""
  shapes = {"conv1.0.conv.weight": (stem, 3, 3, 3)}
  shapes.update(_bn("conv1.1.", stem))
  for blk in (1, 2, 3):
    cin = stem if blk == 1 else widths[-1]
    for i, w in enumerate(widths):
      shapes[f"Block{blk}.{3 * i}.conv.weight"] = (w, cin, 3, 3)
      shapes.update(_bn(f"Block{blk}.{3 * i + 1}.", w))
      cin = w
  cin = 3 * widths[-1]
  for i, w in enumerate(hidden, start=1):
    shapes[f"lastconv{i}.0.conv.weight"] = (w, cin, 3, 3)
    shapes.update(_bn(f"lastconv{i}.1.", w))
    cin = w
  shapes["lastconv3.0.conv.weight"] = (1, cin, 3, 3)
  return shapes


def random_state_dict(shapes, seed=0):
  """Random tensors of the given shapes, BN running statistics included (variance > 0)."""
  rng = np.random.default_rng(seed)
  sd = {}
  for k, shape in shapes.items():
    if k.endswith("num_batches_tracked"):
      sd[k] = np.array(7, np.int64)
    elif k.endswith("running_var"):
      sd[k] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    elif k.endswith("running_mean") or k.endswith("bias"):
      sd[k] = rng.normal(0, 0.1, shape).astype(np.float32)
    elif len(shape) == 1:  # BN weight
      sd[k] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      fan_in = int(np.prod(shape[1:]))
      sd[k] = rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
  return sd


def cdc(x, w, theta, stride=1, padding=1):
  """Conv2d_cd.forward of the official code: conv(x, w) - theta * conv1x1(x, sum_hw w)."""
  out = conv2d(x, w, stride, padding)
  if abs(theta) < 1e-8:
    return out
  return out - theta * conv2d(x, w.sum(axis=(2, 3))[:, :, None, None], stride, 0)


def cdcn_depth(x, sd, theta=0.7, map_size=32, nblock_layers=3):
  """Official CDCN forward (eval mode): the depth map (N, map_size, map_size)."""
  def cbr(x, conv_key, bn_prefix):
    return relu(batch_norm_eval(cdc(x, sd[conv_key], theta), sd, bn_prefix))

  x = cbr(x, "conv1.0.conv.weight", "conv1.1.")
  feats = []
  for blk in (1, 2, 3):
    for i in range(nblock_layers):
      x = cbr(x, f"Block{blk}.{3 * i}.conv.weight", f"Block{blk}.{3 * i + 1}.")
    x = max_pool2d(x)
    feats.append(interpolate_bilinear(x, map_size))
  x = np.concatenate(feats, axis=1)
  x = cbr(x, "lastconv1.0.conv.weight", "lastconv1.1.")
  x = cbr(x, "lastconv2.0.conv.weight", "lastconv2.1.")
  return relu(cdc(x, sd["lastconv3.0.conv.weight"], theta))[:, 0]
