"""Bona fide captures and the physics of each attack species.

Every function returns a `Shot`: the scene radiance in front of the capture camera plus the
exact labels. Instruments (a printed sheet, a screen, a mask, a patch) are drawn once per
video (`sample_*`) and placed per frame, so the frames of a video share one instrument.
"""

import dataclasses

import cv2
import numpy as np

from pyramid_fas_jax.data.synth import domains, faces, noise, render


@dataclasses.dataclass(frozen=True)
class Shot:
  radiance: np.ndarray  # (S, S, 3) linear RGB in front of the camera
  face: np.ndarray      # (S, S) bool: the face a detector would box
  depth: np.ndarray     # (S, S) float32 depth label in [0, 1]; 0 for attacks
  spoof: np.ndarray     # (S, S) bool: pixels that show the attack instrument


def _lit(maps, cam, light, bg, height=None, albedo=None, specular=None):
  surf = render.trace(maps, cam, height)
  vis = render.shadow(maps, surf, cam, light, height)
  rgb = render.shade(surf, light, albedo=albedo, specular=specular, visibility=vis)
  return surf, np.where(surf.hit[..., None], rgb, bg)


def live(maps, cam, light, bg) -> Shot:
  surf, rgb = _lit(maps, cam, light, bg)
  return Shot(radiance=rgb, face=surf.face, depth=render.face_depth(surf),
              spoof=np.zeros(surf.hit.shape, bool))


# --- the attacker's source photo ------------------------------------------------------------

def subject_camera(p: faces.SubjectParams, size: int, context: float,
                   pose: tuple[float, float, float], offset=(0.0, 0.0)) -> render.Camera:
  """A camera that frames the face so its box is about size / context pixels tall."""
  chin = 0.05 - p.head_height
  face_h = p.hairline_v - chin
  scale = size / context / face_h
  mid = 0.5 * (p.hairline_v + chin)
  centre = (size / 2 + offset[0] * size, size / 2 + offset[1] * size + mid * scale)
  return render.Camera(size=size, scale=scale, centre=centre, rotation=render.rotation(*pose))


def photo(maps: faces.SubjectMaps, rng: np.random.Generator, size: int,
          pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
  """A good photo of the subject (sRGB float (P, P, 3), face mask): what attackers print or show."""
  pose = (rng.uniform(-12, 12), rng.uniform(-8, 8), rng.uniform(-5, 5))
  cam = subject_camera(maps.params, size, rng.uniform(1.3, 2.6), pose,
                       tuple(rng.uniform(-0.04, 0.04, 2)))
  light = render.Light(
      direction=domains.direction(rng.uniform(10, 40), rng.uniform(-35, 35)),
      colour=np.full(3, rng.uniform(0.9, 1.2), np.float32) * rng.uniform(0.95, 1.05, 3).astype(
          np.float32),
      ambient=np.full(3, rng.uniform(0.3, 0.5), np.float32))
  style = rng.choice(["studio", "office", "dark", "outdoor"])
  surf, rgb = _lit(maps, cam, light, domains.background(style, rng, size))
  rgb = cv2.GaussianBlur(rgb, (0, 0), 0.5 * pixel_scale)
  rgb = rgb + rng.normal(0, 0.003, rgb.shape).astype(np.float32)
  return faces.linear_to_srgb(rgb), surf.face


# --- print ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PrintParams:
  period: float        # halftone screen period in sheet pixels
  gamut: float         # kept fraction of saturation
  contrast: float
  paper: np.ndarray    # (3,) paper white
  gloss: float         # photo paper sheen
  bend: float          # curvature of the sheet, 0 = flat
  margin: float        # white border, fraction of the photo


def sample_print(rng, domain: domains.Domain, pixel_scale: float) -> PrintParams:
  return PrintParams(
      period=float(rng.uniform(*domain.print_period) * pixel_scale),
      gamut=float(rng.uniform(*domain.print_gamut)), contrast=float(rng.uniform(0.72, 0.9)),
      paper=np.array((1.0, rng.uniform(0.96, 1.0), rng.uniform(0.86, 0.97)), np.float32),
      gloss=float(rng.choice([0.01, rng.uniform(0.05, 0.2)])),
      bend=float(0.0 if rng.random() < 0.5 else rng.uniform(0.15, 0.6)),
      margin=float(0.0 if rng.random() < 0.6 else rng.uniform(0.02, 0.06)))


# Ink absorption of red, green, blue light by cyan, magenta and yellow inks: cross terms are
# what makes a print's gamut smaller than the photo's.
_INK_ABSORPTION = np.array([[0.88, 0.16, 0.08], [0.12, 0.86, 0.22], [0.03, 0.10, 0.84]],
                           np.float32)


def printed_reflectance(srgb: np.ndarray, pp: PrintParams, rng) -> np.ndarray:
  """sRGB photo -> linear reflectance of its print: gamut and contrast loss, CMY halftone
  screens at 15/75/0 degrees, ink spread and paper texture."""
  h, w = srgb.shape[:2]
  grey = srgb.mean(-1, keepdims=True)
  x = np.clip(0.5 + pp.contrast * (grey + pp.gamut * (srgb - grey) - 0.5), 0, 1)
  cmy = 1 - x
  refl = np.broadcast_to(pp.paper, (h, w, 3)).astype(np.float32).copy()
  yy, xx = np.mgrid[:h, :w].astype(np.float32)
  for c, angle in enumerate((15.0, 75.0, 0.0)):
    if pp.period >= 1.3:
      a = np.deg2rad(angle + rng.uniform(-2, 2))
      xr, yr = xx * np.cos(a) + yy * np.sin(a), yy * np.cos(a) - xx * np.sin(a)
      k = 2 * np.pi / pp.period
      screen = 0.5 + 0.25 * (np.cos(k * xr) + np.cos(k * yr))
      cover = np.clip((cmy[..., c] - screen) / 0.15 + 0.5, 0, 1)
      cover = cv2.GaussianBlur(cover, (0, 0), 0.2 * pp.period)
    else:  # the screen is finer than a pixel: only its grain survives
      cover = np.clip(cmy[..., c] * (1 + 0.15 * rng.standard_normal((h, w)).astype(np.float32)),
                      0, 1)
    refl *= 1 - _INK_ABSORPTION[c] * cover[..., None]
  paper = 1 + 0.025 * noise.value_noise(rng, (h, w), 6) + 0.02 * noise.value_noise(
      rng, (h, w), max(w / 3, 4))
  return faces.srgb_to_linear(np.clip(refl * paper[..., None], 0, 1))


@dataclasses.dataclass(frozen=True)
class Placement:
  """Where a sheet or screen sits in front of the camera in one frame."""
  box_size: float      # face box side in crop pixels
  centre: tuple[float, float]
  roll: float          # degrees
  tilt: tuple[float, float]  # keystone from turning the sheet about its vertical / horizontal


def sample_placement(rng, size: int, context: float) -> Placement:
  return Placement(box_size=size / context * rng.uniform(0.95, 1.05),
                   centre=tuple(size / 2 + rng.uniform(-0.04, 0.04, 2) * size),
                   roll=float(rng.uniform(-8, 8)), tilt=tuple(rng.uniform(-0.12, 0.12, 2)))


def _homography(face: np.ndarray, place: Placement, src_size: int) -> np.ndarray:
  """Sheet pixels -> crop pixels: the photo's face box onto the placement's, plus keystone."""
  y0, x0, y1, x1 = render.face_box(face)
  k = place.box_size / max(y1 - y0, x1 - x0)
  c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
  a = np.deg2rad(place.roll)
  rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
  corners = np.array([[0, 0], [src_size, 0], [src_size, src_size], [0, src_size]], np.float64)
  dst = (corners - c) * k @ rot.T
  # The edge turned towards the camera looks longer than the far one.
  sx = 1 + place.tilt[0] * np.sign(dst[:, 0]) * np.abs(dst[:, 0]) / (src_size * k / 2)
  sy = 1 + place.tilt[1] * np.sign(dst[:, 1]) * np.abs(dst[:, 1]) / (src_size * k / 2)
  dst = np.stack([dst[:, 0] * sy, dst[:, 1] * sx], -1) + np.array(place.centre)
  return cv2.getPerspectiveTransform(corners.astype(np.float32), dst.astype(np.float32))


def _sheet_coords(hom: np.ndarray, size: int, ss: int):
  """Sheet coordinates of every supersample of the crop, each (ss*S, ss*S) float32."""
  idx = (np.arange(size * ss, dtype=np.float64) + 0.5) / ss
  xx, yy = np.meshgrid(idx, idx)
  inv = np.linalg.inv(hom)
  den = inv[2, 0] * xx + inv[2, 1] * yy + inv[2, 2]
  xs = (inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]) / den
  ys = (inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]) / den
  return xs.astype(np.float32), ys.astype(np.float32)


def _remap(img, xs, ys, border=0.0, interp=cv2.INTER_LINEAR):
  return cv2.remap(img, xs - 0.5, ys - 0.5, interp, borderMode=cv2.BORDER_CONSTANT,
                   borderValue=border)


def _sheet_shading(light: render.Light, place: Placement, bend_angle: np.ndarray, xs, ys,
                   sheet_size: int, gloss: float) -> tuple[np.ndarray, np.ndarray]:
  """Diffuse light and the lamp's sheen on a flat or bent sheet, per supersample.

  The sheen is the mirror image of a lamp of finite size: a soft blob on the sheet where
  the mirror direction meets the camera, not a uniform veil.
  """
  nx = np.sin(bend_angle) + place.tilt[0]
  ny = np.full_like(nx, -place.tilt[1])
  nz = np.cos(bend_angle)
  n = np.stack([nx, ny, nz], -1)
  n /= np.linalg.norm(n, axis=-1, keepdims=True)
  ndl = np.clip(n @ light.direction, 0, 1)
  diffuse = light.ambient + light.colour * ndl[..., None]
  half = light.direction + np.array([0, 0, 1], np.float32)
  half /= np.linalg.norm(half)
  hx = sheet_size * (0.5 + 0.8 * half[0] / half[2])
  hy = sheet_size * (0.5 - 0.8 * half[1] / half[2])
  blob = np.exp(-((xs - hx) ** 2 + (ys - hy) ** 2) / (2 * (0.2 * sheet_size) ** 2))
  spec = gloss * 2.5 * blob * np.clip(n @ half, 0, 1) ** 8
  return diffuse.astype(np.float32), (light.colour * spec[..., None]).astype(np.float32)


def print_attack(src_srgb, src_face, pp: PrintParams, place: Placement, light, bg,
                 rng) -> Shot:
  """A printed photo held in front of the camera, lit by the scene."""
  size, ss = bg.shape[0], 2
  p = src_srgb.shape[0]
  m = int(round(pp.margin * p))
  src = np.pad(src_srgb, ((m, m), (m, m), (0, 0)), constant_values=1.0)
  face_src = np.pad(src_face, m)
  refl = printed_reflectance(src, pp, rng)
  hom = _homography(face_src, place, src.shape[0])
  xs, ys = _sheet_coords(hom, size, ss)
  half = src.shape[0] / 2
  if pp.bend > 0:  # a sheet curled into a cylinder about its vertical axis
    kappa = pp.bend / half
    off = np.clip(kappa * (xs - half), -0.999, 0.999)
    bend_angle = np.arcsin(off)
    xs = half + bend_angle / kappa
  else:
    bend_angle = np.zeros_like(xs)
  sheet = _remap(refl, xs, ys)
  cover = _remap(np.ones(src.shape[:2], np.float32), xs, ys)
  face = _remap(face_src.astype(np.float32), xs, ys)
  diffuse, spec = _sheet_shading(light, place, bend_angle, xs, ys, src.shape[0], pp.gloss)
  bg_ss = cv2.resize(bg, (size * ss, size * ss), interpolation=cv2.INTER_LINEAR)
  rad = cover[..., None] * (sheet * diffuse + spec) + (1 - cover[..., None]) * bg_ss
  down = lambda a: cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)
  return Shot(radiance=down(rad), face=down(face) > 0.5,
              depth=np.zeros((size, size), np.float32), spoof=down(cover) > 0.5)


# --- replay ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ScreenParams:
  pitch: float         # display pixel pitch in crop pixels
  gamma: float         # display gamma relative to 2.2
  brightness: float
  temperature: np.ndarray  # (3,) white point of the panel
  black: float         # backlight leakage
  bezel: float         # bezel width as a fraction of the photo; 0 = edge-to-edge
  glare: float
  glare_at: tuple[float, float]
  glare_size: float


def sample_screen(rng, domain: domains.Domain) -> ScreenParams:
  return ScreenParams(
      pitch=float(rng.uniform(*domain.screen_pitch)),
      gamma=float(rng.uniform(*domain.screen_gamma)), brightness=float(rng.uniform(0.6, 1.1)),
      temperature=np.array((rng.uniform(0.88, 1.0), 1.0, rng.uniform(1.0, 1.15)), np.float32),
      black=float(rng.uniform(0.005, 0.03)),
      bezel=float(0.0 if rng.random() < 0.4 else rng.uniform(0.03, 0.08)),
      glare=float(rng.uniform(*domain.glare)), glare_at=tuple(rng.uniform(0.1, 0.9, 2)),
      glare_size=float(rng.uniform(0.1, 0.3)))


def replay_attack(src_srgb, src_face, sp: ScreenParams, place: Placement, light, bg,
                  rng) -> Shot:
  """A photo shown on a screen: RGB stripe sub-pixels sampled by the camera (moire), panel
  gamma and white point, backlight leakage, glare on the glass, and the bezel."""
  size, ss = bg.shape[0], 3
  p = src_srgb.shape[0]
  hom = _homography(src_face, place, p)
  xs, ys = _sheet_coords(hom, size, ss)
  k = np.sqrt(abs(np.linalg.det(hom[:2, :2])))  # crop pixels per photo pixel
  pitch = sp.pitch / k                           # display pixel in photo pixels
  emitted = sp.brightness * np.clip(src_srgb, 0, 1) ** (2.2 * sp.gamma) * sp.temperature
  emitted = emitted.astype(np.float32) + sp.black
  dx, dy = xs / pitch, ys / pitch
  ix, iy = np.floor(dx), np.floor(dy)
  pixel = _remap(emitted, ((ix + 0.5) * pitch).astype(np.float32),
                 ((iy + 0.5) * pitch).astype(np.float32), border=0.0, interp=cv2.INTER_NEAREST)
  fx, fy = dx - ix, dy - iy
  stripe = np.stack([(fx >= c / 3 + 0.03) & (fx < (c + 1) / 3 - 0.03) for c in range(3)], -1)
  lit = stripe & (fy < 0.88)[..., None]
  screen = pixel * lit / ((1 / 3 - 0.06) * 0.88)
  in_screen = (xs >= 0) & (xs < p) & (ys >= 0) & (ys < p)
  b = sp.bezel * p + 0.01 * p
  in_device = (xs >= -b) & (xs < p + b) & (ys >= -b) & (ys < p + b)
  gx, gy = (np.array(sp.glare_at) * p)
  glare_r = sp.glare_size * p
  glare = sp.glare * np.exp(-((xs - gx) ** 2 + (ys - gy) ** 2) / (2 * glare_r ** 2))
  up = lambda a: cv2.resize(a, (size * ss, size * ss), interpolation=cv2.INTER_LINEAR)
  bg_ss = up(bg)
  reflection = up(0.04 * cv2.GaussianBlur(bg, (0, 0), 4))
  bezel = np.float32(0.02) * (light.ambient + light.colour * 0.3)
  device = np.where(in_screen[..., None], screen, bezel) + reflection + (
      glare[..., None] * light.colour)
  rad = np.where(in_device[..., None], device, bg_ss).astype(np.float32)
  face = _remap(src_face.astype(np.float32), xs, ys)
  down = lambda a: cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA)
  return Shot(radiance=down(rad), face=down(face) > 0.5,
              depth=np.zeros((size, size), np.float32),
              spoof=down(in_device.astype(np.float32)) > 0.5)


# --- 3-D mask -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MaskParams:
  material: np.ndarray  # (3,) linear albedo of the resin / latex / plaster
  painted: float        # contrast of painted brows and lips, 0 = unpainted
  eye_holes: bool


_MASK_MATERIALS = np.array([(0.86, 0.74, 0.64), (0.93, 0.88, 0.80), (0.80, 0.62, 0.50),
                            (0.95, 0.95, 0.93), (0.60, 0.45, 0.35)], np.float32)


def sample_mask(rng) -> MaskParams:
  base = _MASK_MATERIALS[rng.integers(len(_MASK_MATERIALS))] * rng.uniform(0.92, 1.05, 3)
  return MaskParams(material=faces.srgb_to_linear(np.clip(base, 0, 1)),
                    painted=float(0.0 if rng.random() < 0.4 else rng.uniform(0.3, 0.7)),
                    eye_holes=bool(rng.random() < 0.6))


def mask3d(maps, cam, light, bg, mp: MaskParams) -> Shot:
  """A rigid mask with the subject's 3-D face, worn by a person: true relief, but one
  uniform matte material with no pores, no skin translucency, no specular sheen."""
  face_w = maps.attrs[..., faces.FACE]
  proud = cv2.GaussianBlur(face_w, (0, 0), 0.015 * maps.texels_per_unit)
  height = np.where(maps.height > faces.NO_SURFACE / 2, maps.height + 0.025 * proud,
                    maps.height).astype(np.float32)
  surf = render.trace(maps, cam, height)
  a = surf.attrs
  on_mask = surf.hit & (a[..., faces.FACE] > 0.5)
  if mp.eye_holes:
    on_mask &= a[..., faces.EYE] < 0.5
  paint = mp.painted * np.clip(a[..., faces.BROW] + a[..., faces.LIPS], 0, 1)[..., None]
  paint_rgb = np.where((a[..., faces.BROW] > a[..., faces.LIPS])[..., None],
                       np.float32(0.25) * mp.material, mp.material * np.array((0.9, 0.45, 0.45)))
  material = mp.material * (1 - paint) + paint_rgb * paint
  if not mp.eye_holes:
    material = material * (1 - 0.5 * a[..., faces.EYE:faces.EYE + 1])
  albedo = np.where(on_mask[..., None], material, a[..., faces.ALBEDO]).astype(np.float32)
  spec = np.where(on_mask, 0.0, a[..., faces.SPEC]).astype(np.float32)
  vis = render.shadow(maps, surf, cam, light, height)
  rgb = render.shade(surf, light, albedo=albedo, specular=spec, visibility=vis)
  # The mask's rim casts a thin dark seam onto the wearer.
  seam = (a[..., faces.FACE] > 0.1) & (a[..., faces.FACE] < 0.9)
  rgb = np.where(seam[..., None], rgb * 0.55, rgb)
  rgb = np.where(surf.hit[..., None], rgb, bg)
  return Shot(radiance=rgb.astype(np.float32), face=surf.face,
              depth=np.zeros(surf.hit.shape, np.float32), spoof=on_mask)


# --- partial --------------------------------------------------------------------------------

PATCH_REGIONS = ("eyes", "mouth", "left_half", "right_half")


@dataclasses.dataclass(frozen=True)
class PatchParams:
  region: str
  print: PrintParams
  offset: tuple[float, float]  # misregistration of the printed content, fraction of the crop


def sample_patch(rng, domain, pixel_scale) -> PatchParams:
  return PatchParams(region=str(rng.choice(PATCH_REGIONS)),
                     print=dataclasses.replace(sample_print(rng, domain, pixel_scale), bend=0.0,
                                               margin=0.0),
                     offset=tuple(rng.uniform(-0.015, 0.015, 2)))


def patch_region(surf: render.Surface, p: faces.SubjectParams, region: str) -> np.ndarray:
  """(S, S) bool: the pixels a paper patch of `region` covers on this render of the face."""
  u, v = surf.point[..., 0], surf.point[..., 1]
  face = surf.face
  if region == "eyes":
    reach = p.eye_spacing + p.eye_width + 0.08
    return face & (np.abs(v - p.eye_v - 0.02) < 0.17 * (1 - 0.4 * (np.abs(u) / reach) ** 4)) & (
        np.abs(u) < reach)
  if region == "mouth":
    return face & (((u / (p.mouth_width + 0.16)) ** 2 + ((v - p.mouth_v) / 0.22) ** 2) < 1)
  if region in ("left_half", "right_half"):
    # "left" is the subject's left, which the camera sees on the image right (+u).
    return face & ((u if region == "left_half" else -u) > 0.0)
  raise ValueError(f"unknown patch region {region!r}; expected one of {PATCH_REGIONS}")


def partial(maps, cam, light, bg, pp: PatchParams, rng) -> Shot:
  """A live face with a paper cut-out over the eyes, the mouth or half of the face: the
  cut-out is a print of the subject's own photo (halftone, small gamut), flat-shaded as paper,
  slightly misregistered, with a thin shadow along its edge."""
  surf, rgb = _lit(maps, cam, light, bg)
  patch = patch_region(surf, maps.params, pp.region)
  if not patch.any():  # a half face turned away from the camera: cover the eyes instead
    patch = patch_region(surf, maps.params, "eyes")
  if not patch.any():
    raise ValueError(f"patch {pp.region!r} misses the face in this pose")
  size = cam.size
  shifted = dataclasses.replace(
      cam, centre=(cam.centre[0] + pp.offset[0] * size, cam.centre[1] + pp.offset[1] * size))
  photo_light = render.Light(direction=domains.direction(25, 0),
                             colour=np.full(3, 1.0, np.float32),
                             ambient=np.full(3, 0.45, np.float32))
  src = render.trace(maps, shifted)
  src_rgb = render.shade(src, photo_light)
  src_rgb = np.where(src.hit[..., None], src_rgb, 0.8)
  refl = printed_reflectance(faces.linear_to_srgb(src_rgb), pp.print, rng)
  # Paper does not follow the nose or the eye sockets: shade with heavily smoothed normals.
  normal = cv2.GaussianBlur(surf.normal, (0, 0), size / 12)
  normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
  ndl = np.clip(normal @ light.direction, 0, 1)
  paper = refl * (light.ambient + light.colour * ndl[..., None])
  edge = cv2.dilate(patch.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~patch
  rgb = np.where(edge[..., None], rgb * 0.6, rgb)
  rgb = np.where(patch[..., None], paper, rgb).astype(np.float32)
  return Shot(radiance=rgb, face=surf.face, depth=np.zeros(patch.shape, np.float32),
              spoof=patch)
