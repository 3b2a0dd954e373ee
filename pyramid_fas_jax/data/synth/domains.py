"""Capture domains: lighting, backgrounds, camera pipeline and attack-instrument quality.

A domain plays the role that a whole dataset plays in the OCIM cross-dataset protocols
(OULU-NPU, CASIA-FASD, Idiap Replay-Attack, MSU-MFSD): its own light, its own cameras and
its own printers and screens. Pixel measures (blur, halftone period, screen pitch) are given
for a 256-pixel crop and scale with the crop.
"""

import dataclasses

import cv2
import numpy as np

from pyramid_fas_jax.data.synth import faces, noise, render

Range = tuple[float, float]


@dataclasses.dataclass(frozen=True)
class Domain:
  name: str
  description: str
  light_intensity: Range
  light_elevation: Range       # degrees above the camera's horizon
  light_azimuth: Range         # degrees to the image right of the camera axis
  light_rgb: tuple[float, float, float]
  ambient: Range               # fill light as a fraction of the key
  ambient_rgb: tuple[float, float, float]
  background: str              # background style, see _BACKGROUNDS
  white_balance: tuple[float, float, float]  # residual colour cast of the cameras
  exposure: Range              # auto-exposure target: mean linear luminance of the face
  noise: Range                 # sensor noise sigma at mid grey (linear units)
  blur: Range                  # optical blur sigma, pixels at 256
  motion_blur: float           # probability of a short motion streak
  jpeg: tuple[int, int]        # camera JPEG quality range
  saturation: float            # camera colour processing
  print_period: Range          # halftone screen period, pixels at 256 (instrument quality)
  print_gamut: Range           # fraction of the photo's saturation the printer keeps
  screen_pitch: Range          # display pixel pitch in crop pixels (the phone fills the view)
  screen_gamma: Range          # display gamma relative to 2.2
  glare: Range                 # peak glare on screens


DOMAINS = {
    d.name: d for d in (
        Domain("studio",
               "bright soft frontal light, neutral colour, sharp camera, best instruments",
               light_intensity=(0.9, 1.1), light_elevation=(15, 40), light_azimuth=(-25, 25),
               light_rgb=(1.0, 0.98, 0.95), ambient=(0.35, 0.5), ambient_rgb=(0.95, 0.97, 1.0),
               background="studio", white_balance=(1.0, 1.0, 1.0), exposure=(0.24, 0.32),
               noise=(0.002, 0.006), blur=(0.4, 0.7), motion_blur=0.0, jpeg=(90, 97),
               saturation=1.0, print_period=(1.4, 2.0), print_gamut=(0.8, 0.9),
               screen_pitch=(0.6, 0.9), screen_gamma=(0.95, 1.1), glare=(0.05, 0.25)),
        Domain("office", "overhead fluorescent light with a green cast, webcam noise",
               light_intensity=(0.7, 0.9), light_elevation=(45, 70), light_azimuth=(-30, 30),
               light_rgb=(0.92, 1.0, 0.9), ambient=(0.35, 0.5), ambient_rgb=(0.9, 1.0, 0.95),
               background="office", white_balance=(0.96, 1.02, 0.94), exposure=(0.18, 0.26),
               noise=(0.008, 0.016), blur=(0.8, 1.2), motion_blur=0.15, jpeg=(75, 88),
               saturation=0.9, print_period=(1.8, 2.6), print_gamut=(0.7, 0.85),
               screen_pitch=(0.8, 1.2), screen_gamma=(0.9, 1.2), glare=(0.15, 0.45)),
        Domain("lowlight", "dim warm tungsten side light, noisy blurred phone, strong JPEG, "
               "cheap printers and screens",
               light_intensity=(0.35, 0.55), light_elevation=(0, 30), light_azimuth=(-70, 70),
               light_rgb=(1.0, 0.78, 0.52), ambient=(0.12, 0.25), ambient_rgb=(1.0, 0.85, 0.7),
               background="dark", white_balance=(1.08, 1.0, 0.85), exposure=(0.1, 0.16),
               noise=(0.02, 0.035), blur=(1.1, 1.7), motion_blur=0.3, jpeg=(55, 72),
               saturation=0.8, print_period=(2.4, 3.4), print_gamut=(0.55, 0.7),
               screen_pitch=(1.1, 1.6), screen_gamma=(0.8, 1.3), glare=(0.3, 0.7)),
        Domain("outdoor", "hard sunlight with blue sky fill, contrasty phone processing",
               light_intensity=(1.2, 1.6), light_elevation=(30, 65), light_azimuth=(-60, 60),
               light_rgb=(1.0, 0.96, 0.88), ambient=(0.25, 0.4), ambient_rgb=(0.75, 0.85, 1.1),
               background="outdoor", white_balance=(0.97, 1.0, 1.06), exposure=(0.2, 0.3),
               noise=(0.004, 0.01), blur=(0.6, 0.9), motion_blur=0.2, jpeg=(78, 90),
               saturation=1.15, print_period=(1.6, 2.4), print_gamut=(0.7, 0.85),
               screen_pitch=(0.7, 1.1), screen_gamma=(0.85, 1.15), glare=(0.4, 0.9)),
    )
}
DEVICES_PER_DOMAIN = 2


@dataclasses.dataclass(frozen=True)
class Device:
  """One capture camera of a domain: fixed per video."""
  name: str
  blur: float
  noise: float
  jpeg: int
  tint: np.ndarray   # (3,) white-balance gains


def device(domain: Domain, index: int, rng: np.random.Generator, pixel_scale: float) -> Device:
  """Camera `index` of the domain; its character comes from the domain, the jitter from rng."""
  dev_rng = np.random.default_rng([index, sum(map(ord, domain.name))])  # a camera model is fixed
  tint = np.array(domain.white_balance, np.float32) * dev_rng.uniform(0.97, 1.03, 3).astype(
      np.float32)
  return Device(
      name=f"{domain.name}_cam{index}",
      blur=float(rng.uniform(*domain.blur) * pixel_scale),
      noise=float(rng.uniform(*domain.noise) * dev_rng.uniform(0.8, 1.25)),
      jpeg=int(rng.integers(domain.jpeg[0], domain.jpeg[1] + 1)),
      tint=tint,
  )


def direction(elevation: float, azimuth: float) -> np.ndarray:
  el, az = np.deg2rad(elevation), np.deg2rad(azimuth)
  return np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], np.float32)


def sample_light(domain: Domain, rng: np.random.Generator) -> render.Light:
  intensity = rng.uniform(*domain.light_intensity)
  colour = np.array(domain.light_rgb, np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
  ambient = rng.uniform(*domain.ambient) * intensity * np.array(domain.ambient_rgb, np.float32)
  return render.Light(
      direction=direction(rng.uniform(*domain.light_elevation), rng.uniform(*domain.light_azimuth)),
      colour=(colour * intensity).astype(np.float32), ambient=ambient.astype(np.float32))


def jitter_light(light: render.Light, rng: np.random.Generator, degrees: float) -> render.Light:
  """The same light a moment later (frames of one video)."""
  d = light.direction + rng.normal(0, np.deg2rad(degrees), 3).astype(np.float32)
  return dataclasses.replace(light, direction=(d / np.linalg.norm(d)).astype(np.float32))


def _rect(img, rng, colour, size):
  s = img.shape[0]
  w, h = (rng.uniform(*size, 2) * s).astype(int)
  x, y = rng.integers(-w // 2, s, 2)
  cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), tuple(map(float, colour)), -1)


def background(style: str, rng: np.random.Generator, size: int) -> np.ndarray:
  """Linear-RGB backdrop (size, size, 3) of the given style."""
  s = size
  yy = np.linspace(0, 1, s, dtype=np.float32)[:, None, None]
  if style == "studio":
    base = faces.srgb_to_linear(rng.uniform(0.35, 0.85, 3))
    img = base * (1.1 - 0.35 * yy) * np.ones((1, s, 1), np.float32)
    img *= (1 + 0.04 * noise.value_noise(rng, (s, s), 3))[..., None]
  elif style == "office":
    wall = faces.srgb_to_linear(rng.uniform(0.5, 0.85, 3) * np.array((1, 1, 0.95)))
    img = np.broadcast_to(wall, (s, s, 3)).astype(np.float32).copy()
    for _ in range(rng.integers(2, 6)):  # shelves, doors, posters, monitors
      _rect(img, rng, faces.srgb_to_linear(rng.uniform(0.05, 0.9, 3)), (0.1, 0.6))
    img = cv2.GaussianBlur(img, (0, 0), 0.01 * s + 0.5)
    img *= (1 + 0.06 * noise.value_noise(rng, (s, s), 5))[..., None]
  elif style == "dark":
    base = faces.srgb_to_linear(rng.uniform(0.08, 0.3, 3) * np.array((1.0, 0.9, 0.75)))
    img = base * (0.6 + 0.8 * np.clip(noise.value_noise(rng, (s, s), 2) * 0.5 + 0.5, 0, 1))[
        ..., None]
    if rng.random() < 0.6:  # a lamp or a lit doorway
      cy, cx = rng.uniform(0, s, 2)
      r = rng.uniform(0.05, 0.2) * s
      yy2, xx2 = np.mgrid[:s, :s]
      glow = np.exp(-((yy2 - cy) ** 2 + (xx2 - cx) ** 2) / (2 * r * r)).astype(np.float32)
      img += glow[..., None] * np.array((1.0, 0.7, 0.4), np.float32) * rng.uniform(0.3, 1.0)
  elif style == "outdoor":
    sky = np.array((0.35, 0.55, 0.95), np.float32) * rng.uniform(0.6, 1.0)
    ground = faces.srgb_to_linear(rng.uniform(0.1, 0.5, 3) * np.array((0.7, 1.0, 0.6)))
    horizon = rng.uniform(0.3, 0.7)
    t = np.clip((yy - horizon) / 0.05 + 0.5, 0, 1)
    img = (sky * (1 - t) + ground * t) * np.ones((1, s, 1), np.float32)
    foliage = noise.value_noise(rng, (s, s), 12, octaves=3)
    img *= (1 + 0.25 * foliage * t[..., 0] + 0.08 * foliage)[..., None]
    for _ in range(rng.integers(0, 3)):  # buildings
      _rect(img, rng, faces.srgb_to_linear(rng.uniform(0.3, 0.8, 3)), (0.15, 0.5))
  else:
    raise ValueError(f"unknown background style {style!r}")
  return np.clip(img, 0, 1).astype(np.float32)


def auto_exposure(rgb: np.ndarray, face: np.ndarray, target: float) -> float:
  """Gain that brings the face's mean luminance to `target`, as a camera's face-priority AE."""
  lum = rgb[face] @ np.array([0.2126, 0.7152, 0.0722], np.float32) if face.any() else rgb
  return float(target / max(float(np.mean(lum)), 1e-3))


def capture(rgb: np.ndarray, domain: Domain, dev: Device, rng: np.random.Generator,
            exposure: float) -> np.ndarray:
  """Camera pipeline: linear scene radiance (S, S, 3) -> the camera's decoded JPEG, uint8 RGB.

  Optics blur first, then sensor noise (shot + read), white balance, tone curve, colour
  processing, and the camera's own JPEG (the dataset stores its output losslessly enough
  that this JPEG's blocking survives).
  """
  img = rgb * exposure
  if dev.blur > 0.3:
    img = cv2.GaussianBlur(img, (0, 0), dev.blur)
  if rng.random() < domain.motion_blur:
    k = max(3, int(round(rng.uniform(2, 5) * img.shape[0] / 256)) | 1)
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    img = cv2.filter2D(img, -1, kernel / kernel.sum())
  shot = np.sqrt(np.clip(img, 0, None) * 0.5 + 0.02)
  img = img + rng.standard_normal(img.shape).astype(np.float32) * (dev.noise * shot * 2)
  img = img * dev.tint
  srgb = faces.linear_to_srgb(img)
  grey = srgb.mean(-1, keepdims=True)
  srgb = np.clip(grey + domain.saturation * (srgb - grey), 0, 1)
  out = (srgb * 255 + 0.5).astype(np.uint8)
  ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, dev.jpeg])
  if not ok:
    raise RuntimeError("OpenCV failed to encode a JPEG")
  return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
