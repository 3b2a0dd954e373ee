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
        x = batch_norm_eval(
            conv2d(x, sd[p + "downsample.0.weight"], stride), sd, p + "downsample.1.")
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


def relu6(x):
  return np.clip(x, 0, 6)


def avg_pool2d(x, k=2):
  """nn.AvgPool2d(k) (stride k, no padding): the output size is floored."""
  n, c, h, w = x.shape
  oh, ow = h // k, w // k
  return x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k).mean(axis=(3, 5))


def adaptive_avg_pool2d(x, size):
  """F.adaptive_avg_pool2d: output cell i averages rows floor(i*h/size) .. ceil((i+1)*h/size)-1."""
  n, c, h, w = x.shape
  out = np.zeros((n, c, size, size))
  for i in range(size):
    h0, h1 = (i * h) // size, -(-(i + 1) * h // size)
    for j in range(size):
      w0, w1 = (j * w) // size, -(-(j + 1) * w // size)
      out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
  return out


def _params_only(shapes):
  return {k: v for k, v in shapes.items()
          if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


def count_params(shapes):
  """What sum(p.numel() for p in model.parameters()) gives for a state dict of these shapes."""
  return sum(int(np.prod(s)) for s in _params_only(shapes).values())


# --- torchvision vgg16 ---------------------------------------------------------------------------

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_state_dict_shapes(cfg=VGG16_CFG, num_classes=1000, width=4096):
  """torchvision vgg16: features.<index in the Sequential>.weight/bias, classifier.0/3/6."""
  shapes, cin, i = {}, 3, 0
  for v in cfg:
    if v == "M":
      i += 1
    else:
      shapes[f"features.{i}.weight"] = (v, cin, 3, 3)
      shapes[f"features.{i}.bias"] = (v,)
      cin, i = v, i + 2  # conv, ReLU
  for idx, (o, n) in zip((0, 3, 6), ((width, cin * 49), (width, width), (num_classes, width))):
    shapes[f"classifier.{idx}.weight"] = (o, n)
    shapes[f"classifier.{idx}.bias"] = (o,)
  return shapes


def vgg16_features(x, sd, cfg=VGG16_CFG):
  i = 0
  for v in cfg:
    if v == "M":
      x = max_pool2d(x, 2, 2, 0)
      i += 1
    else:
      x = relu(conv2d(x, sd[f"features.{i}.weight"], 1, 1, bias=sd[f"features.{i}.bias"]))
      i += 2
  return x


def vgg16_logits(features, sd):
  """torchvision VGG.forward after `features` (eval: dropout is the identity)."""
  x = adaptive_avg_pool2d(features, 7).reshape(len(features), -1)
  x = relu(x @ sd["classifier.0.weight"].T + sd["classifier.0.bias"])
  x = relu(x @ sd["classifier.3.weight"].T + sd["classifier.3.bias"])
  return x @ sd["classifier.6.weight"].T + sd["classifier.6.bias"]


# --- torchvision densenet121 ---------------------------------------------------------------------

def densenet121_state_dict_shapes(growth=32, blocks=(6, 12, 24, 16), init=64, bn_size=4,
                                  num_classes=1000, legacy=False):
  """torchvision densenet121. `legacy=True`: the key style of the checkpoint torchvision hosts
  (denselayerJ.norm.1.weight instead of denselayerJ.norm1.weight)."""
  sep = "." if legacy else ""
  shapes = {"features.conv0.weight": (init, 3, 7, 7)}
  shapes.update(_bn("features.norm0.", init))
  c = init
  for b, n in enumerate(blocks, start=1):
    for j in range(1, n + 1):
      p = f"features.denseblock{b}.denselayer{j}."
      cin = c + (j - 1) * growth
      shapes.update(_bn(f"{p}norm{sep}1.", cin))
      shapes[f"{p}conv{sep}1.weight"] = (bn_size * growth, cin, 1, 1)
      shapes.update(_bn(f"{p}norm{sep}2.", bn_size * growth))
      shapes[f"{p}conv{sep}2.weight"] = (growth, bn_size * growth, 3, 3)
    c += n * growth
    if b < len(blocks):
      shapes.update(_bn(f"features.transition{b}.norm.", c))
      shapes[f"features.transition{b}.conv.weight"] = (c // 2, c, 1, 1)
      c //= 2
  shapes.update(_bn("features.norm5.", c))
  shapes["classifier.weight"] = (num_classes, c)
  shapes["classifier.bias"] = (num_classes,)
  return shapes


def densenet121_features(x, sd, blocks=(6, 12, 24, 16)):
  """relu(densenet.features(x)): the map torchvision's classifier pools."""
  x = relu(batch_norm_eval(conv2d(x, sd["features.conv0.weight"], 2, 3), sd, "features.norm0."))
  x = max_pool2d(x)
  for b, n in enumerate(blocks, start=1):
    for j in range(1, n + 1):
      p = f"features.denseblock{b}.denselayer{j}."
      y = conv2d(relu(batch_norm_eval(x, sd, p + "norm1.")), sd[p + "conv1.weight"])
      y = conv2d(relu(batch_norm_eval(y, sd, p + "norm2.")), sd[p + "conv2.weight"], 1, 1)
      x = np.concatenate([x, y], axis=1)
    if b < len(blocks):
      p = f"features.transition{b}."
      x = avg_pool2d(conv2d(relu(batch_norm_eval(x, sd, p + "norm.")), sd[p + "conv.weight"]))
  return relu(batch_norm_eval(x, sd, "features.norm5."))


# --- torchvision shufflenet_v2_x1_0 --------------------------------------------------------------

def shufflenet_v2_state_dict_shapes(repeats=(4, 8, 4), channels=(24, 116, 232, 464, 1024),
                                    num_classes=1000):
  shapes = {"conv1.0.weight": (channels[0], 3, 3, 3)}
  shapes.update(_bn("conv1.1.", channels[0]))
  cin = channels[0]
  for stage, (n, out) in enumerate(zip(repeats, channels[1:4]), start=2):
    bf = out // 2
    for u in range(n):
      p = f"stage{stage}.{u}."
      if u == 0:  # stride 2: branch1 = dw 3x3, BN, 1x1, BN, ReLU
        shapes[p + "branch1.0.weight"] = (cin, 1, 3, 3)
        shapes.update(_bn(p + "branch1.1.", cin))
        shapes[p + "branch1.2.weight"] = (bf, cin, 1, 1)
        shapes.update(_bn(p + "branch1.3.", bf))
      shapes[p + "branch2.0.weight"] = (bf, cin if u == 0 else bf, 1, 1)
      shapes.update(_bn(p + "branch2.1.", bf))
      shapes[p + "branch2.3.weight"] = (bf, 1, 3, 3)
      shapes.update(_bn(p + "branch2.4.", bf))
      shapes[p + "branch2.5.weight"] = (bf, bf, 1, 1)
      shapes.update(_bn(p + "branch2.6.", bf))
      cin = out
  shapes["conv5.0.weight"] = (channels[4], cin, 1, 1)
  shapes.update(_bn("conv5.1.", channels[4]))
  shapes["fc.weight"] = (num_classes, channels[4])
  shapes["fc.bias"] = (num_classes,)
  return shapes


def channel_shuffle(x, groups):
  n, c, h, w = x.shape
  return x.reshape(n, groups, c // groups, h, w).transpose(0, 2, 1, 3, 4).reshape(n, c, h, w)


def shufflenet_v2_features(x, sd, repeats=(4, 8, 4)):
  """torchvision ShuffleNetV2 up to conv5 (eval mode)."""
  def conv_bn(x, seq, i, stride=1, padding=0, depthwise=False):
    """Conv at index i of Sequential `seq`, then the BatchNorm at index i + 1."""
    y = conv2d(x, sd[f"{seq}.{i}.weight"], stride, padding, groups=x.shape[1] if depthwise else 1)
    return batch_norm_eval(y, sd, f"{seq}.{i + 1}.")

  x = relu(conv_bn(x, "conv1", 0, 2, 1))
  x = max_pool2d(x)
  for stage, n in zip((2, 3, 4), repeats):
    for u in range(n):
      p = f"stage{stage}.{u}"
      stride = 2 if u == 0 else 1
      if stride == 1:
        x1, x2 = np.split(x, 2, axis=1)
      else:
        x1 = conv_bn(x, p + ".branch1", 0, 2, 1, depthwise=True)
        x1 = relu(conv_bn(x1, p + ".branch1", 2))
        x2 = x
      y = relu(conv_bn(x2, p + ".branch2", 0))
      y = conv_bn(y, p + ".branch2", 3, stride, 1, depthwise=True)
      y = relu(conv_bn(y, p + ".branch2", 5))
      x = channel_shuffle(np.concatenate([x1, y], axis=1), 2)
  return relu(conv_bn(x, "conv5", 0))


# --- torchvision mobilenet_v2 --------------------------------------------------------------------

MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _mobilenet_v2_blocks(setting):
  """(index in features, in, out, stride, expansion) of every InvertedResidual."""
  blocks, cin, i = [], 32, 1
  for t, c, n, s in setting:
    for r in range(n):
      blocks.append((i, cin, c, s if r == 0 else 1, t))
      cin, i = c, i + 1
  return blocks


def mobilenet_v2_state_dict_shapes(setting=MOBILENET_V2_SETTING, num_classes=1000):
  shapes = {"features.0.0.weight": (32, 3, 3, 3)}
  shapes.update(_bn("features.0.1.", 32))
  for i, cin, cout, _, t in _mobilenet_v2_blocks(setting):
    p, hidden, j = f"features.{i}.conv.", cin * t, 0
    if t != 1:
      shapes[p + "0.0.weight"] = (hidden, cin, 1, 1)
      shapes.update(_bn(p + "0.1.", hidden))
      j = 1
    shapes[p + f"{j}.0.weight"] = (hidden, 1, 3, 3)
    shapes.update(_bn(p + f"{j}.1.", hidden))
    shapes[p + f"{j + 1}.weight"] = (cout, hidden, 1, 1)
    shapes.update(_bn(p + f"{j + 2}.", cout))
  last = len(_mobilenet_v2_blocks(setting)) + 1
  shapes[f"features.{last}.0.weight"] = (1280, setting[-1][1], 1, 1)
  shapes.update(_bn(f"features.{last}.1.", 1280))
  shapes["classifier.1.weight"] = (num_classes, 1280)
  shapes["classifier.1.bias"] = (num_classes,)
  return shapes


def mobilenet_v2_features(x, sd, setting=MOBILENET_V2_SETTING):
  """torchvision mobilenet_v2().features (eval mode)."""
  x = relu6(batch_norm_eval(conv2d(x, sd["features.0.0.weight"], 2, 1), sd, "features.0.1."))
  for i, cin, cout, stride, t in _mobilenet_v2_blocks(setting):
    p, y, j = f"features.{i}.conv.", x, 0
    if t != 1:
      y = relu6(batch_norm_eval(conv2d(y, sd[p + "0.0.weight"]), sd, p + "0.1."))
      j = 1
    y = conv2d(y, sd[p + f"{j}.0.weight"], stride, 1, groups=y.shape[1])
    y = relu6(batch_norm_eval(y, sd, p + f"{j}.1."))
    y = batch_norm_eval(conv2d(y, sd[p + f"{j + 1}.weight"]), sd, p + f"{j + 2}.")
    x = x + y if stride == 1 and cin == cout else y
  last = len(_mobilenet_v2_blocks(setting)) + 1
  return relu6(batch_norm_eval(conv2d(x, sd[f"features.{last}.0.weight"]), sd,
                               f"features.{last}.1."))


# --- official CDCN++ (CVPR2020_paper_codes/models/CDCNs.py, class CDCNpp) -----------------------

CDCNPP_BLOCKS = ((128, 204, 128), (153, 128, 179, 128), (128, 153, 128))  # int(128 * 1.6), ...


def cdcnpp_state_dict_shapes(stem=64, blocks=CDCNPP_BLOCKS, hidden=128):
  shapes = {"conv1.0.conv.weight": (stem, 3, 3, 3)}
  shapes.update(_bn("conv1.1.", stem))
  cin = stem
  for b, widths in enumerate(blocks, start=1):
    for i, w in enumerate(widths):
      shapes[f"Block{b}.{3 * i}.conv.weight"] = (w, cin, 3, 3)
      shapes.update(_bn(f"Block{b}.{3 * i + 1}.", w))
      cin = w
  shapes["lastconv1.0.conv.weight"] = (hidden, sum(w[-1] for w in blocks), 3, 3)
  shapes.update(_bn("lastconv1.1.", hidden))
  shapes["lastconv1.3.conv.weight"] = (1, hidden, 3, 3)
  for i, k in enumerate((7, 5, 3), start=1):
    shapes[f"sa{i}.conv1.weight"] = (1, 2, k, k)
  return shapes


def spatial_attention(x, w):
  """SpatialAttention.forward: sigmoid(conv([mean_c x, max_c x])), padding k // 2, no bias."""
  pooled = np.concatenate([x.mean(axis=1, keepdims=True), x.max(axis=1, keepdims=True)], axis=1)
  return 1 / (1 + np.exp(-conv2d(pooled, w, 1, w.shape[-1] // 2)))


def cdcnpp_depth(x, sd, theta=0.7, map_size=32, blocks=CDCNPP_BLOCKS):
  """Official CDCNpp forward (eval mode): the depth map (N, map_size, map_size)."""
  def cbr(x, conv_key, bn_prefix):
    return relu(batch_norm_eval(cdc(x, sd[conv_key], theta), sd, bn_prefix))

  x = cbr(x, "conv1.0.conv.weight", "conv1.1.")
  feats = []
  for b, widths in enumerate(blocks, start=1):
    for i in range(len(widths)):
      x = cbr(x, f"Block{b}.{3 * i}.conv.weight", f"Block{b}.{3 * i + 1}.")
    x = max_pool2d(x)
    attended = spatial_attention(x, sd[f"sa{b}.conv1.weight"]) * x
    feats.append(interpolate_bilinear(attended, map_size))
  x = cbr(np.concatenate(feats, axis=1), "lastconv1.0.conv.weight", "lastconv1.1.")
  return relu(cdc(x, sd["lastconv1.3.conv.weight"], theta))[:, 0]
