"""Parametric 3-D subjects: head geometry and skin, eye, brow, lip and hair albedo.

A subject is a height field h(u, v) over a square "head frame" (u to the subject's left as
seen by the camera, i.e. image right; v up; z towards the camera; one unit is about half a
face width), plus per-texel material attributes. The renderer ray-marches the height field,
so everything here is a 2-D map on one texture grid.
"""

import dataclasses

import cv2
import numpy as np

from pyramid_fas_jax.data.synth import noise

# The head frame covered by the texture: head, neck and the top of the shoulders.
U_RANGE = (-2.4, 2.4)
V_RANGE = (-3.0, 1.8)
NO_SURFACE = -10.0  # height outside the subject; far behind anything the camera can see

# Channels of SubjectMaps.attrs.
ALBEDO = slice(0, 3)   # linear RGB reflectance
SPEC = 3               # specular strength
GLOSS = 4              # specular exponent, as (exponent - 8) / 200
CAVITY = 5             # ambient-occlusion factor in [0.5, 1]
FACE = 6               # 1 on the face (the depth label's support): skin inside the hairline
EYE = 7                # 1 inside the eye openings
NORMAL = slice(8, 11)  # unit surface normal in the head frame
BROW = 11              # eyebrow coverage (3-D masks may paint it)
LIPS = 12              # lip coverage
NUM_ATTRS = 13

# sRGB skin tones from light to dark; a subject's tone interpolates between neighbours.
_SKIN_TONES = np.array([
    (0.96, 0.82, 0.72), (0.91, 0.73, 0.60), (0.80, 0.60, 0.46),
    (0.66, 0.46, 0.33), (0.48, 0.32, 0.22), (0.34, 0.22, 0.15),
], np.float32)
_HAIR_COLOURS = np.array([
    (0.06, 0.05, 0.04), (0.20, 0.13, 0.08), (0.38, 0.25, 0.14),
    (0.70, 0.56, 0.34), (0.52, 0.24, 0.10), (0.62, 0.62, 0.60),
], np.float32)
_HAIR_FREQUENCY = (0.32, 0.28, 0.18, 0.1, 0.06, 0.06)
_IRIS_COLOURS = np.array([
    (0.25, 0.14, 0.07), (0.15, 0.09, 0.05), (0.30, 0.40, 0.55),
    (0.32, 0.38, 0.22), (0.40, 0.30, 0.15),
], np.float32)


def srgb_to_linear(x):
  x = np.asarray(x, np.float32)
  return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x):
  x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
  return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SubjectParams:
  """Shape and appearance of one synthetic subject (all lengths in head-frame units)."""
  head_width: float      # half-width of the head ellipse
  head_height: float     # half-height of the head ellipse
  head_depth: float      # how far the face front stands out of the head's mid-plane
  flatness: float        # exponent of the head profile: lower is flatter at the front
  jaw_taper: float       # how much narrower the jaw is than the cheeks
  nose_height: float
  nose_width: float
  nose_tip_v: float
  brow_ridge: float
  socket_depth: float
  cheekbones: float
  eye_v: float
  eye_spacing: float
  eye_width: float
  eye_open: float
  brow_v: float
  brow_arch: float
  brow_thickness: float
  mouth_v: float
  mouth_width: float
  lip_height: float
  chin: float
  hairline_v: float
  bald: bool
  beard_shadow: float
  skin_tone: float       # position along _SKIN_TONES, 0 = lightest
  hair_colour: int
  iris_colour: int
  clothes_rgb: tuple[float, float, float]
  gaze: tuple[float, float]


def sample_subject(rng: np.random.Generator) -> SubjectParams:
  """Draws one subject; every shape parameter varies per subject."""
  u = rng.uniform
  return SubjectParams(
      head_width=u(0.88, 1.02), head_height=u(1.25, 1.42), head_depth=u(0.72, 0.92),
      flatness=u(0.32, 0.5), jaw_taper=u(0.2, 0.38),
      nose_height=u(0.22, 0.38), nose_width=u(0.07, 0.11), nose_tip_v=u(-0.36, -0.26),
      brow_ridge=u(0.03, 0.08), socket_depth=u(0.07, 0.13), cheekbones=u(0.02, 0.07),
      eye_v=u(0.14, 0.22), eye_spacing=u(0.33, 0.40), eye_width=u(0.16, 0.19),
      eye_open=u(0.055, 0.075), brow_v=u(0.36, 0.44), brow_arch=u(0.0, 0.05),
      brow_thickness=u(0.035, 0.06), mouth_v=u(-0.72, -0.6), mouth_width=u(0.26, 0.33),
      lip_height=u(0.04, 0.07), chin=u(0.02, 0.08), hairline_v=u(0.68, 0.92),
      bald=bool(rng.random() < 0.08),
      beard_shadow=float(u(0.0, 1.0) if rng.random() < 0.3 else 0.0),
      skin_tone=u(0.0, len(_SKIN_TONES) - 1),
      hair_colour=int(rng.choice(len(_HAIR_COLOURS), p=_HAIR_FREQUENCY)),
      iris_colour=int(rng.integers(len(_IRIS_COLOURS))),
      clothes_rgb=tuple(float(c) for c in rng.uniform(0.05, 0.8, 3)),
      gaze=(u(-0.015, 0.015), u(-0.01, 0.01)),
  )


@dataclasses.dataclass(frozen=True)
class SubjectMaps:
  """A subject on the texture grid: `height` (T, T) and `attrs` (T, T, NUM_ATTRS), float32."""
  params: SubjectParams
  height: np.ndarray
  attrs: np.ndarray
  _filtered: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

  @property
  def size(self) -> int:
    return self.height.shape[0]

  @property
  def texels_per_unit(self) -> float:
    return self.size / (U_RANGE[1] - U_RANGE[0])

  def albedo_pyramid(self) -> list[np.ndarray]:
    """Albedo low-passed for 1, 2, 4 and 8 texels per pixel (a mip chain without decimation).

    Point-sampling pores and hair strands below their frequency (a minified or
    foreshortened render) would alias into moire stripes across the skin.
    """
    if "albedo" not in self._filtered:
      albedo = np.ascontiguousarray(self.attrs[..., ALBEDO])
      self._filtered["albedo"] = [albedo] + [
          cv2.GaussianBlur(albedo, (0, 0), 0.5 * np.sqrt(4.0 ** k - 1)) for k in (1, 2, 3)]
    return self._filtered["albedo"]

  def texel(self, u, v):
    """Head-frame (u, v) -> float texel (col, row) for cv2.remap."""
    t = self.size
    col = (np.asarray(u, np.float32) - U_RANGE[0]) * (t / (U_RANGE[1] - U_RANGE[0])) - 0.5
    row = (V_RANGE[1] - np.asarray(v, np.float32)) * (t / (V_RANGE[1] - V_RANGE[0])) - 0.5
    return col.astype(np.float32), row.astype(np.float32)


def _gauss(u, v, cu, cv, su, sv):
  return np.exp(-0.5 * (((u - cu) / su) ** 2 + ((v - cv) / sv) ** 2))


def _smoothstep(e0, e1, x):
  t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
  return t * t * (3 - 2 * t)


def _eye_opening(p: SubjectParams, u, v, side: float):
  """Signed-ish almond: > 0 inside one eye opening (side = -1 or +1)."""
  x = (u - side * p.eye_spacing) / p.eye_width
  tilt = 0.012 * side * x  # the outer corner sits slightly higher
  half = p.eye_open * np.clip(1 - x * x, 0, 1) ** 0.7
  return half - np.abs(v - p.eye_v - tilt)


def subject_maps(p: SubjectParams, rng: np.random.Generator, size: int) -> SubjectMaps:
  """Rasterises a subject's geometry and materials on a size x size texture grid."""
  du = (U_RANGE[1] - U_RANGE[0]) / size
  dv = (V_RANGE[1] - V_RANGE[0]) / size
  us = U_RANGE[0] + (np.arange(size, dtype=np.float32) + 0.5) * du
  vs = V_RANGE[1] - (np.arange(size, dtype=np.float32) + 0.5) * dv
  u, v = np.meshgrid(us, vs)
  texels_per_unit = 1.0 / du

  # --- geometry -------------------------------------------------------------------------
  vc = 0.05
  below = np.clip((vc - v) / p.head_height, 0, 1)
  above = np.clip((v - vc) / p.head_height, 0, 1)
  a = p.head_width * (1 - p.jaw_taper * _smoothstep(0.3, 1.0, below) ** 2) * (1 - 0.1 * above ** 2)
  r2 = (u / a) ** 2 + ((v - vc) / p.head_height) ** 2
  r = np.sqrt(r2)
  inside = r2 < 1
  head = np.where(inside, p.head_depth * np.clip(1 - r2, 0, 1) ** p.flatness, NO_SURFACE)
  skirt = (r >= 1) & (r < 1.12)
  head = np.where(skirt, -(r - 1) * 8 * p.head_depth, head)

  wface = _smoothstep(0.92, 0.55, r2)  # features fade out before the silhouette
  f = np.zeros_like(u)
  s_nose = np.clip((p.eye_v + 0.03 - v) / (p.eye_v + 0.03 - p.nose_tip_v), 0, 1)
  prof = np.where(v >= p.nose_tip_v, 0.12 + 0.88 * s_nose ** 1.3,
                  np.exp(-(((v - p.nose_tip_v) / 0.07) ** 2)))
  prof *= _smoothstep(p.eye_v + 0.16, p.eye_v + 0.02, v)  # the ridge starts between the eyes
  sigma = 0.4 * p.nose_width + 0.6 * p.nose_width * s_nose
  f += p.nose_height * prof * np.exp(-0.5 * (u / sigma) ** 2)
  f += 0.25 * p.nose_height * _gauss(u, v, 0, p.nose_tip_v + 0.02, 0.06, 0.06)
  for side in (-1, 1):
    f += 0.3 * p.nose_height * _gauss(u, v, side * 0.085, p.nose_tip_v - 0.03, 0.05, 0.04)
    f -= p.socket_depth * _gauss(u, v, side * p.eye_spacing, p.eye_v + 0.01, 0.17, 0.11)
    f += 0.6 * p.socket_depth * _gauss(u, v, side * p.eye_spacing, p.eye_v, 0.1, 0.06)
    f += p.cheekbones * _gauss(u, v, side * 0.48, p.eye_v - 0.27, 0.17, 0.14)
    f -= 0.04 * _gauss(u, v, side * 0.78, 0.5, 0.12, 0.2)
  f += p.brow_ridge * np.exp(-0.5 * ((v - p.brow_v) / 0.07) ** 2) * np.exp(-0.5 * (u / 0.5) ** 2)
  mv, mw = p.mouth_v, p.mouth_width
  f += p.lip_height * _gauss(u, v, 0, mv + 0.035, 0.9 * mw, 0.035)
  f += 1.15 * p.lip_height * _gauss(u, v, 0, mv - 0.05, 0.8 * mw, 0.04)
  f -= 0.015 * _gauss(u, v, 0, mv, mw, 0.008)
  f += 0.04 * _gauss(u, v, 0, 0.5 * (p.nose_tip_v + mv), 0.12, 0.06)
  chin_v = vc - p.head_height
  f += p.chin * _gauss(u, v, 0, chin_v + 0.2, 0.2, 0.12)
  height = np.where(inside, head + f * wface, head)
  ear_v = p.eye_v - 0.14
  for side in (-1, 1):
    er2 = ((u - side * (p.head_width + 0.02)) / 0.1) ** 2 + ((v - ear_v) / 0.24) ** 2
    ear = (er2 < 1) & ~inside
    ear_height = 0.08 + 0.06 * np.sqrt(np.clip(1 - er2, 0, 1))
    height = np.where(ear, np.maximum(height, ear_height), height)

  # Regions.
  hairline = p.hairline_v - 0.25 * (u / p.head_width) ** 2
  side_hair = (r2 > 0.78 ** 2) & (v > ear_v + 0.12)
  hair = (~np.bool_(p.bald)) & (inside | skirt) & ((v > hairline) | side_hair)
  ears = ~inside & (height > -0.5) & (np.abs(v - ear_v) < 0.26) & ~hair
  face = inside & ~hair & (v < hairline) & (np.abs(u) < 0.82 * a)
  if p.bald:
    face &= v < p.hairline_v
  hair_f = cv2.GaussianBlur(hair.astype(np.float32), (0, 0), 0.04 * texels_per_unit)
  height = np.where(inside | skirt, height + 0.07 * hair_f, height)

  neck_w = 0.56 * p.head_width
  neck = (np.abs(u) < neck_w) & (v < vc - 0.5 * p.head_height)
  neck_h = np.where(neck, 0.45 * np.sqrt(np.clip(1 - (u / neck_w) ** 2, 0, 1)) - 0.32, NO_SURFACE)
  shoulder_v = vc - p.head_height - 0.45
  torso_w = neck_w + (2.6 - neck_w) * _smoothstep(shoulder_v, shoulder_v - 0.55, v)
  torso = (np.abs(u) < torso_w) & (v < shoulder_v + 0.08)
  torso_h = np.where(torso, 0.75 * np.sqrt(np.clip(1 - (u / torso_w) ** 2, 0, 1)) - 0.6,
                     NO_SURFACE)
  clothes = torso & (torso_h > neck_h) & (torso_h > height)
  neck_only = (neck_h > height) & ~clothes
  height = np.maximum(np.maximum(height, neck_h), torso_h).astype(np.float32)

  # --- albedo ---------------------------------------------------------------------------
  lo = int(np.floor(min(p.skin_tone, len(_SKIN_TONES) - 1.001)))
  w = p.skin_tone - lo
  skin_rgb = srgb_to_linear((1 - w) * _SKIN_TONES[lo] + w * _SKIN_TONES[lo + 1])
  albedo = np.broadcast_to(skin_rgb, u.shape + (3,)).copy()
  blotch = noise.value_noise(rng, u.shape, 14, octaves=3)
  albedo *= (1 + 0.04 * blotch)[..., None]
  albedo *= 1 + 0.03 * np.stack([noise.value_noise(rng, u.shape, 24) for _ in range(3)], -1)
  red = (0.5 * _gauss(u, v, -0.45, p.eye_v - 0.3, 0.15, 0.12)
         + 0.5 * _gauss(u, v, 0.45, p.eye_v - 0.3, 0.15, 0.12)
         + 0.4 * _gauss(u, v, 0, p.nose_tip_v, 0.08, 0.07) + 0.6 * ears)
  albedo *= np.stack([1 + 0.02 * red, 1 - 0.12 * red, 1 - 0.1 * red], -1)
  pores = noise.sparse_dots(rng, u.shape, 0.03, 0.35 * texels_per_unit / 100)
  albedo *= (1 - 0.22 * pores)[..., None]
  albedo *= (1 + 0.03 * noise.value_noise(rng, u.shape, size / 3))[..., None]
  for _ in range(rng.poisson(4)):  # moles and red spots
    cu, cv_ = rng.uniform(-0.7, 0.7), rng.uniform(-1.0, 0.8)
    rad = rng.uniform(0.006, 0.02)
    spot = _gauss(u, v, cu, cv_, rad, rad)
    tint = np.array((0.45, 0.35, 0.3) if rng.random() < 0.6 else (1.0, 0.75, 0.75), np.float32)
    albedo *= 1 - spot[..., None] * (1 - tint) * rng.uniform(0.4, 0.9)
  if p.beard_shadow > 0:
    jaw = (_smoothstep(p.nose_tip_v - 0.08, p.mouth_v + 0.05, v) * (r2 < 1)
           * _smoothstep(0.98, 0.8, r2))
    jaw *= 0.6 + 0.4 * noise.value_noise(rng, u.shape, size / 6)
    albedo *= 1 - (p.beard_shadow * 0.35 * np.clip(jaw, 0, 1))[..., None] * np.array(
        (1.0, 0.95, 0.85), np.float32)

  lips = np.zeros_like(u)
  lips = np.maximum(lips, _smoothstep(1.0, 0.7, ((u / (0.95 * mw)) ** 2
                                                 + ((v - mv - 0.035) / 0.045) ** 2)))
  lips = np.maximum(lips, _smoothstep(1.0, 0.7, ((u / (0.85 * mw)) ** 2
                                                 + ((v - mv + 0.05) / 0.06) ** 2)))
  lip_rgb = albedo * np.array((0.75, 0.33, 0.36), np.float32)
  albedo = albedo * (1 - lips[..., None]) + lip_rgb * lips[..., None]

  hair_rgb = srgb_to_linear(_HAIR_COLOURS[p.hair_colour])
  strands = noise.streak_noise(rng, u.shape, 0.25 * texels_per_unit, 90.0)
  brow = np.zeros_like(u)
  for side in (-1, 1):
    x = (u - side * (p.eye_spacing + 0.02)) / 0.2
    centre = p.brow_v + p.brow_arch * (1 - x * x) - 0.02 * side * x
    thick = p.brow_thickness * (1 - 0.5 * np.clip(side * x, 0, 1))
    brow = np.maximum(brow, _smoothstep(1.0, 0.5, np.abs(x)) * _smoothstep(
        thick, 0.5 * thick, np.abs(v - centre)))
  brow_strands = noise.streak_noise(rng, u.shape, 0.06 * texels_per_unit, 10.0)
  brow *= np.clip(0.7 + 0.5 * brow_strands, 0, 1)
  brow_rgb = hair_rgb * 0.7
  albedo = albedo * (1 - brow[..., None]) + brow_rgb * brow[..., None]

  hair_tex = np.clip(0.75 + 0.35 * strands, 0.3, 1.4)[..., None] * hair_rgb
  hair_edge = cv2.GaussianBlur(hair.astype(np.float32), (0, 0), 0.015 * texels_per_unit)
  albedo = albedo * (1 - hair_edge[..., None]) + hair_tex * hair_edge[..., None]
  albedo[neck_only] *= 0.93

  # Eyes: sclera, iris, pupil and the dark lash line on the upper lid.
  eye = np.zeros_like(u)
  for side in (-1, 1):
    opening = _eye_opening(p, u, v, side)
    inside_eye = _smoothstep(0.0, 0.006, opening)
    eye = np.maximum(eye, inside_eye)
    iu, iv = side * p.eye_spacing + p.gaze[0], p.eye_v + p.gaze[1]
    rr = np.sqrt((u - iu) ** 2 + (v - iv) ** 2)
    iris_r = 0.34 * p.eye_width
    iris_tex = 0.75 + 0.25 * noise.value_noise(rng, u.shape, size / 8)
    iris = srgb_to_linear(_IRIS_COLOURS[p.iris_colour])[None, None] * iris_tex[..., None]
    iris *= (0.6 + 0.4 * _smoothstep(iris_r, 0.75 * iris_r, rr))[..., None]
    # The upper lid shades the top of the eyeball.
    sclera = np.array((0.5, 0.46, 0.44), np.float32) * (
        1 - 0.35 * _smoothstep(p.eye_v - 0.02, p.eye_v + 0.04, v))[..., None]
    eye_rgb = np.where((rr < iris_r)[..., None], iris, sclera)
    eye_rgb = np.where((rr < 0.4 * iris_r)[..., None], np.float32(0.01), eye_rgb)
    albedo = albedo * (1 - inside_eye[..., None]) + eye_rgb * inside_eye[..., None]
    lash = _smoothstep(0.012, 0.0, np.abs(opening)) * (v > p.eye_v - 0.005) * (
        np.abs(u - side * p.eye_spacing) < p.eye_width)
    albedo *= 1 - 0.85 * lash[..., None]

  clothes_rgb = srgb_to_linear(np.array(p.clothes_rgb, np.float32))
  fabric = 1 + 0.08 * noise.value_noise(rng, u.shape, size / 4) + 0.1 * noise.value_noise(
      rng, u.shape, 6)
  albedo[clothes] = (clothes_rgb[None] * fabric[clothes][:, None])
  albedo = np.clip(albedo, 0.0, 1.0)

  # --- shading attributes ---------------------------------------------------------------
  tzone = _gauss(u, v, 0, 0.55, 0.25, 0.3) + _gauss(u, v, 0, p.nose_tip_v + 0.1, 0.08, 0.2)
  spec = np.full_like(u, 0.06) * (1 + 1.5 * np.clip(tzone, 0, 1))
  spec = np.where(hair_edge > 0.5, 0.04, spec)
  spec = np.where(lips > 0.5, 0.12, spec)
  spec = np.where(clothes, 0.015, spec)
  spec = spec * (1 - eye) + 0.9 * eye
  gloss = np.where(hair_edge > 0.5, 0.05, 0.06) * (1 - eye) + 0.8 * eye

  hclip = np.maximum(height, -1.5)
  blur = cv2.GaussianBlur(hclip, (0, 0), 0.08 * texels_per_unit)
  cavity = np.clip(1 + 2.5 * (hclip - blur), 0.5, 1.0)  # darker where below its surroundings
  gy, gx = np.gradient(hclip)
  nx, ny = -gx / du, gy / dv  # rows run downwards while v runs upwards
  norm = np.sqrt(nx ** 2 + ny ** 2 + 1)
  normal = np.stack([nx / norm, ny / norm, 1 / norm], -1)

  attrs = np.zeros(u.shape + (NUM_ATTRS,), np.float32)
  attrs[..., ALBEDO] = albedo
  attrs[..., SPEC] = spec
  attrs[..., GLOSS] = gloss
  attrs[..., CAVITY] = cavity
  attrs[..., FACE] = face
  attrs[..., EYE] = eye
  attrs[..., NORMAL] = normal
  attrs[..., BROW] = brow
  attrs[..., LIPS] = lips
  return SubjectMaps(params=p, height=height, attrs=attrs)
