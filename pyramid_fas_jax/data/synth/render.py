"""Ray-marching a subject's height field into an image, and shading it.

The camera is orthographic (a face fills a small angle of a real camera's view), looking
along -z of camera space; the head frame is rotated into camera space by `rotation`.
"""

import dataclasses

import cv2
import numpy as np

from pyramid_fas_jax.data.synth import faces

_MARCH_STEP = 0.07   # head units along the ray; thinner than the nose, the thinnest feature
_BISECTIONS = 6


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
  """Head-to-camera rotation (degrees): yaw about v, then pitch about u, then roll about z."""
  y, p, r = np.deg2rad([yaw, pitch, roll])
  ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
  rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
  rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
  return (rz @ rx @ ry).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Camera:
  size: int                   # output is size x size pixels
  scale: float                # pixels per head unit
  centre: tuple[float, float]  # pixel (x, y) where the head-frame origin projects
  rotation: np.ndarray        # (3, 3) head frame -> camera space

  def rays(self):
    """Camera-space (x, y) of every pixel centre, each (size, size) float32."""
    idx = np.arange(self.size, dtype=np.float32) + 0.5
    xs = (idx - self.centre[0]) / self.scale
    ys = (self.centre[1] - idx) / self.scale
    return np.meshgrid(xs, ys)

  def project(self, points: np.ndarray) -> np.ndarray:
    """Head-frame points (..., 3) -> pixel (x, y) (..., 2)."""
    cam = points @ self.rotation.T
    return np.stack([self.centre[0] + cam[..., 0] * self.scale,
                     self.centre[1] - cam[..., 1] * self.scale], -1)


@dataclasses.dataclass(frozen=True)
class Light:
  direction: np.ndarray  # (3,) unit vector towards the light, camera space
  colour: np.ndarray     # (3,) linear RGB radiance of the key light
  ambient: np.ndarray    # (3,) linear RGB of the diffuse fill


@dataclasses.dataclass(frozen=True)
class Surface:
  """What a camera sees of a subject: per-pixel hit, depth, head-frame (u, v), attributes."""
  hit: np.ndarray      # (S, S) bool
  z: np.ndarray        # (S, S) camera-space depth, larger is nearer; 0 where no hit
  point: np.ndarray    # (S, S, 3) head-frame coordinates of the hit point
  attrs: np.ndarray    # (S, S, NUM_ATTRS) material attributes (0 where no hit)
  normal: np.ndarray   # (S, S, 3) camera-space unit normal

  @property
  def face(self) -> np.ndarray:
    """(S, S) bool: pixels that show the face (the support of the depth label)."""
    return self.hit & (self.attrs[..., faces.FACE] > 0.5)


def _sample(img: np.ndarray, col: np.ndarray, row: np.ndarray, border: float) -> np.ndarray:
  """Bilinear lookup of `img` at texel coordinates given as flat (N,) arrays."""
  n = col.shape[0]
  width = 1024  # cv2.remap wants 2-D maps with sides below 32767
  # Zero-filled to whole rows; filled in place rather than by np.pad, whose per-call overhead
  # was a sixth of the renderer's time (a ray march samples thousands of times a frame).
  maps = np.zeros((2, n + (-n % width)), np.float32)
  maps[0, :n], maps[1, :n] = col, row
  maps = maps.reshape(2, -1, width)
  out = cv2.remap(img, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                  borderValue=border)
  return out.reshape((-1,) + img.shape[2:])[:n]


def _first_hits(maps, height, cam: Camera, candidates: np.ndarray | None):
  """Ray parameter t of the first surface crossing per pixel (NaN: no hit), and the rays."""
  rot = cam.rotation
  d = rot[2]  # camera +z expressed in the head frame
  xs, ys = cam.rays()
  base = xs.reshape(-1, 1) * rot[0] + ys.reshape(-1, 1) * rot[1]
  valid = height[height > faces.NO_SURFACE / 2]
  hmax, hmin = float(valid.max()) + 0.01, float(valid.min())
  n_steps = int(np.ceil((hmax - hmin) / d[2] / _MARCH_STEP)) + 1
  k = maps.texels_per_unit
  # Work in texel units so a step is one fused multiply-add per coordinate.
  dc, dr, dz = d[0] * k, -d[1] * k, d[2]
  idx = np.arange(base.shape[0]) if candidates is None else np.flatnonzero(candidates)
  t = (hmax - base[idx, 2]) / d[2]
  col = (base[idx, 0] - faces.U_RANGE[0]) * k - 0.5 + t * dc
  row = (faces.V_RANGE[1] - base[idx, 1]) * k - 0.5 + t * dr
  z = np.full(idx.shape, hmax, np.float32)
  t_in = np.full(base.shape[0], np.nan, np.float32)
  for _ in range(n_steps):
    if idx.size == 0:
      break
    inside = z <= _sample(height, col, row, faces.NO_SURFACE)
    t_in[idx[inside]] = t[inside]
    out = ~inside
    idx, t, col, row, z = idx[out], t[out], col[out], row[out], z[out]
    t, col, row, z = t - _MARCH_STEP, col - _MARCH_STEP * dc, row - _MARCH_STEP * dr, (
        z - _MARCH_STEP * dz)
  return t_in, base, d


def trace(maps: faces.SubjectMaps, cam: Camera, height: np.ndarray | None = None) -> Surface:
  """Finds the first intersection of every pixel's ray with the subject's height field.

  `height` overrides the subject's own (a 3-D mask stands slightly proud of the face).
  """
  height = maps.height if height is None else height
  if cam.rotation[2, 2] <= 0.2:
    raise ValueError(f"pose turns the face away from the camera: rotation={cam.rotation.tolist()}")
  # A quarter-resolution pass finds where the subject is, so the background's rays, which
  # would march all the way through, are never marched at full resolution.
  candidates = None
  if cam.size >= 64:
    f = 4
    low = Camera(size=cam.size // f, scale=cam.scale / f,
                 centre=(cam.centre[0] / f, cam.centre[1] / f), rotation=cam.rotation)
    low_hit = ~np.isnan(_first_hits(maps, height, low, None)[0]).reshape(low.size, low.size)
    low_hit = cv2.dilate(low_hit.astype(np.uint8), np.ones((3, 3), np.uint8))
    full = np.zeros((cam.size, cam.size), np.uint8)
    full[:low.size * f, :low.size * f] = np.kron(low_hit, np.ones((f, f), np.uint8))
    if cam.size % f:
      full[low.size * f:, :] = 1
      full[:, low.size * f:] = 1
    candidates = full.reshape(-1).astype(bool)
  t_in, base, d = _first_hits(maps, height, cam, candidates)

  def surface_gap(idx, t):
    p = base[idx] + t[:, None] * d
    col, row = maps.texel(p[:, 0], p[:, 1])
    return p[:, 2] - _sample(height, col, row, faces.NO_SURFACE)

  n = base.shape[0]
  rot = cam.rotation
  hit_idx = np.flatnonzero(~np.isnan(t_in))
  lo, hi = t_in[hit_idx], t_in[hit_idx] + _MARCH_STEP
  for _ in range(_BISECTIONS):
    mid = 0.5 * (lo + hi)
    inside = surface_gap(hit_idx, mid) <= 0
    lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
  t_hit = 0.5 * (lo + hi)

  s = cam.size
  p = base[hit_idx] + t_hit[:, None] * d
  col, row = maps.texel(p[:, 0], p[:, 1])
  attrs = np.zeros((n, faces.NUM_ATTRS), np.float32)
  attrs[hit_idx] = _sample(maps.attrs, col, row, 0.0)
  attrs[hit_idx, faces.ALBEDO] = _filtered_albedo(maps, p, col, row, hit_idx, s)
  normal = attrs[:, faces.NORMAL] @ rot.T
  normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
  point = np.zeros((n, 3), np.float32)
  point[hit_idx] = p
  z = np.zeros(n, np.float32)
  z[hit_idx] = t_hit
  hit = np.zeros(n, bool)
  hit[hit_idx] = True
  return Surface(hit=hit.reshape(s, s), z=z.reshape(s, s), point=point.reshape(s, s, 3),
                 attrs=attrs.reshape(s, s, -1), normal=normal.reshape(s, s, 3))


def _filtered_albedo(maps, p, col, row, hit_idx, size):
  """Albedo at the hits, from the mip level that matches each pixel's texture footprint."""
  uv = np.zeros((size * size, 2), np.float32)
  uv[hit_idx] = p[:, :2]
  uv = uv.reshape(size, size, 2)
  # Neighbour differences; across a silhouette they are meaningless, hence the clip.
  dx = np.abs(np.diff(uv, axis=1, append=uv[:, -1:])).max(-1)
  dy = np.abs(np.diff(uv, axis=0, append=uv[-1:])).max(-1)
  texels = (np.maximum(dx, dy) * maps.texels_per_unit).reshape(-1)[hit_idx]
  level = np.clip(np.log2(np.maximum(texels, 1e-3)), 0, 3)
  pyramid = maps.albedo_pyramid()
  lo = np.floor(level).astype(int)
  frac = (level - lo)[:, None]
  out = np.zeros((hit_idx.size, 3), np.float32)
  for k in range(4):
    sel = (lo == k) | (lo == k - 1)
    if not sel.any():
      continue
    weight = np.where(lo[sel] == k, 1 - frac[sel, 0], frac[sel, 0])[:, None]
    out[sel] += weight * _sample(pyramid[k], col[sel], row[sel], 0.0)
  return out


def shadow(maps: faces.SubjectMaps, surf: Surface, cam: Camera, light: Light,
           height: np.ndarray | None = None) -> np.ndarray:
  """Soft visibility (S, S) of the key light: marches from each hit towards the light.

  Height fields make this cheap: a point is shadowed when the ray to the light passes
  under the surface (the nose's shadow on the cheek, the brow's on the eye).
  """
  height = maps.height if height is None else height
  to_light = (light.direction @ cam.rotation).astype(np.float32)  # into the head frame
  idx = np.flatnonzero(surf.hit)
  p = surf.point.reshape(-1, 3)[idx]
  vis = np.ones(idx.size, np.float32)
  for k in range(1, 17):
    q = p + (0.02 + 0.04 * k) * to_light
    col, row = maps.texel(q[:, 0], q[:, 1])
    # The bias keeps a lit convex surface from shadowing itself (acne bands).
    under = _sample(height, col, row, faces.NO_SURFACE) - q[:, 2] - 0.012
    vis = np.minimum(vis, np.clip(1 - under / 0.03, 0, 1))
  out = np.ones(surf.hit.size, np.float32)
  out[idx] = vis
  return out.reshape(surf.hit.shape)


def shade(surf: Surface, light: Light, albedo: np.ndarray | None = None,
          specular: float | np.ndarray | None = None,
          visibility: np.ndarray | None = None) -> np.ndarray:
  """Linear-RGB radiance (S, S, 3) of the surface (0 where nothing was hit).

  Diffuse is wrapped Lambert (light bleeding past the terminator, as in skin), modulated by
  the baked cavity term; specular is Blinn-Phong. `albedo` / `specular` override the
  subject's materials (3-D masks, printed patches).
  """
  a = surf.attrs
  albedo = a[..., faces.ALBEDO] if albedo is None else albedo
  ks = a[..., faces.SPEC] if specular is None else specular
  n = surf.normal
  ndl = n @ light.direction.astype(np.float32)
  diffuse = np.clip((ndl + 0.25) / 1.25, 0, 1)
  if visibility is not None:
    diffuse = diffuse * (0.15 + 0.85 * visibility)
  half = light.direction + np.array([0, 0, 1], np.float32)
  half = (half / np.linalg.norm(half)).astype(np.float32)
  ndh = np.clip(n @ half, 0, 1)
  exponent = 8 + 200 * a[..., faces.GLOSS]
  spec = ks * ndh ** exponent * (1 + exponent / 40) * (ndl > 0)
  if visibility is not None:
    spec = spec * visibility
  cavity = a[..., faces.CAVITY][..., None]
  rgb = albedo * (light.ambient * cavity + light.colour * diffuse[..., None] * np.sqrt(cavity))
  rgb = rgb + light.colour * spec[..., None]
  return np.where(surf.hit[..., None], rgb, 0).astype(np.float32)


def face_depth(surf: Surface) -> np.ndarray:
  """Depth label (S, S) float32: camera depth min-max normalised to [0, 1] over the face."""
  face = surf.face
  out = np.zeros(face.shape, np.float32)
  if face.any():
    z = surf.z[face]
    lo, hi = float(z.min()), float(z.max())
    out[face] = (z - lo) / max(hi - lo, 1e-6)
  return out


def face_box(face: np.ndarray) -> tuple[float, float, float, float]:
  """Pixel box (ymin, xmin, ymax, xmax), max exclusive, of the face pixels, as a detector's."""
  ys, xs = np.nonzero(face)
  if ys.size == 0:
    raise ValueError("no face pixels in the render: the camera missed the subject")
  return float(ys.min()), float(xs.min()), float(ys.max() + 1), float(xs.max() + 1)
