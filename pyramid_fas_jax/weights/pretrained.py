"""torchvision's ImageNet weights, the paper's initialisation of its classification backbones.

`--config.init_from=imagenet` (the default of the ResNet50, VGG16, DenseNet121, ShuffleNetV2
and MobileNetV2 configs) loads the backbone's IMAGENET1K_V1 weights, the classic torchvision
release of the paper's time, into the freshly built model; the ImageNet classifier is dropped
and the FAS head keeps its initialisation. The file is fetched on first use from
download.pytorch.org/models/ (or the mirror in $PYRAMID_FAS_WEIGHTS_URL, a base URL that serves
the same file names), checked against the hash prefix in its name as torch.hub does (the file's
sha256 must start with it), and kept in the cache (files.cache.root()/torchvision/, by
default ~/.cache/pyramid_fas_jax/torchvision/), checked again on each use. Offline, put the
file there yourself, or import it with `pyramid-fas import-weights` and pass that checkpoint as
init_from.
"""

import hashlib
import http.client
import os
import pathlib
import re
import sys
import urllib.error
import urllib.request

from tqdm import tqdm

from pyramid_fas_jax.files import atomic, cache

IMAGENET = "imagenet"
BASE_URL = "https://download.pytorch.org/models/"
URL_ENV = "PYRAMID_FAS_WEIGHTS_URL"
# backbone -> (torchvision's IMAGENET1K_V1 file, convert.FORMATS entry that imports it)
WEIGHTS = {
    "resnet50": ("resnet50-0676ba61.pth", "torchvision-resnet50"),
    "vgg16": ("vgg16-397923af.pth", "torchvision-vgg16"),
    "densenet121": ("densenet121-a639ec97.pth", "torchvision-densenet121"),
    "shufflenet_v2_x1_0": ("shufflenetv2_x1-5666bf0f80.pth", "torchvision-shufflenet_v2_x1_0"),
    "mobilenet_v2": ("mobilenet_v2-b0353104.pth", "torchvision-mobilenet_v2"),
}
# torch.hub.HASH_REGEX: 'resnet50-0676ba61.pth' -> '0676ba61'
_HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")
_TIMEOUT_S = 60
_CHUNK = 1 << 20


class WeightsUnavailableError(RuntimeError):
  """The weights could not be fetched, or what came is not the published file."""


def hash_prefix(name: str) -> str:
  match = _HASH_REGEX.search(name)
  if not match or not match.group(1):
    raise ValueError(f"{name} carries no hash prefix ('<name>-<sha256 prefix>.pth')")
  return match.group(1)


def url(name: str) -> str:
  return os.environ.get(URL_ENV, BASE_URL).rstrip("/") + "/" + name


def cached_path(name: str) -> pathlib.Path:
  return cache.root() / "torchvision" / name


def weights_for(backbone: str) -> tuple[str, str]:
  """(file name, import format) of `backbone`'s ImageNet weights."""
  if backbone not in WEIGHTS:
    raise ValueError(f"init_from='{IMAGENET}': there are no torchvision ImageNet weights for "
                     f"model.backbone {backbone!r} (only {', '.join(WEIGHTS)}); set "
                     "--config.init_from='' to train from scratch")
  return WEIGHTS[backbone]


def _offline_help(name: str, fmt: str) -> str:
  return (f"download {url(name)} into {cached_path(name)}, or import it with `pyramid-fas "
          f"import-weights --format={fmt} --input={name} --config=CONFIG --output=DIR` and train "
          "with --config.init_from=DIR, or train from scratch with --config.init_from=''")


def fetch(backbone: str, *, progress: bool = True) -> pathlib.Path:
  """The verified cached file of `backbone`'s ImageNet weights, downloaded if not cached yet."""
  name, fmt = weights_for(backbone)
  path, prefix = cached_path(name), hash_prefix(name)
  if path.is_file():
    digest = cache.sha256(path)
    if not digest.startswith(prefix):
      raise WeightsUnavailableError(
          f"{path} has sha256 {digest}, not the {prefix}... its name promises: delete it, and "
          f"the next start downloads it again ({url(name)})")
    return path
  path.parent.mkdir(parents=True, exist_ok=True)
  try:
    _download(url(name), path, prefix, progress)
  except atomic.WriteError:  # a full disk: its own remedy, not a download problem
    raise
  except (OSError, http.client.HTTPException) as e:  # no network, HTTP error, timeout, disk
    reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)
    raise WeightsUnavailableError(f"could not download {url(name)} ({reason}): "
                                  + _offline_help(name, fmt)) from e
  return path


def _download(source: str, path: pathlib.Path, prefix: str, progress: bool) -> None:
  """`source` into `path`: written to a temporary file beside it, verified, then renamed, so
  processes starting together never read a partial file and a bad download leaves nothing."""
  if progress:
    print(f"downloading {source} to {path}", file=sys.stderr)
  # A temporary file per process (the atomic write path): a bad download raises inside the
  # block, which removes it and leaves nothing.
  with atomic.replacing(path) as part:
    digest = hashlib.sha256()
    request = urllib.request.Request(source, headers={"User-Agent": "pyramid-fas-jax"})
    with open(part, "wb") as out, urllib.request.urlopen(request, timeout=_TIMEOUT_S) as r:
      size = int(r.headers.get("Content-Length") or 0) or None
      with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc=path.name, disable=not progress, mininterval=1) as bar:
        for chunk in iter(lambda: r.read(_CHUNK), b""):
          out.write(chunk)
          digest.update(chunk)
          bar.update(len(chunk))
    if not digest.hexdigest().startswith(prefix):
      raise WeightsUnavailableError(
          f"{source} has sha256 {digest.hexdigest()}, not the {prefix}... its name promises "
          f"(torch.hub's check): refused and deleted; check the mirror (${URL_ENV})")


def load_backbone(model, backbone: str, path: pathlib.Path) -> str:
  """Import the torchvision file at `path` into `model`'s backbone (the head keeps its
  initialisation); returns the line the training log shows."""
  # convert pulls in flax and orbax: imported here so that configs, which name IMAGENET, load
  # without them.
  from pyramid_fas_jax.weights import convert

  _, fmt = weights_for(backbone)
  state_dict = convert.read_state_dict(path)
  report = convert.import_state_dict(model, state_dict, fmt)
  n = len(state_dict) - len(report["dropped"])
  return (f"initialised the backbone from torchvision ImageNet weights {path.name} ({n} tensors; "
          "head from scratch)")
