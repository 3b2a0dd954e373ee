"""SynthFAS: the dataset layout (subjects, videos, frames, splits) and one example's rendering.

Every example is a pure function of (seed, video, frame): its random stream is seeded from
those numbers alone, so examples can be produced in any order, in parallel, or singly (tests
re-render one example and compare it with what the builder stored).
"""

import dataclasses
import functools

import numpy as np

from pyramid_fas_jax.data.synth import attacks, domains, faces, render

SPECIES = ("live", "print", "replay", "mask3d", "partial")
SPLITS = ("train", "dev", "test")


@dataclasses.dataclass(frozen=True)
class SynthConfig:
  crop_size: int           # side of the stored context crop, pixels
  num_subjects: int
  frames_per_video: int
  live_videos: int = 2     # bona fide videos per (subject, domain); attacks get one per species
  seed: int = 0
  domains: tuple[str, ...] = tuple(domains.DOMAINS)
  split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / dev / test subjects

  def __post_init__(self):
    unknown = set(self.domains) - set(domains.DOMAINS)
    if unknown:
      raise ValueError(
          f"unknown SynthFAS domains {sorted(unknown)}; known: {list(domains.DOMAINS)}")
    if self.num_subjects < 3:
      raise ValueError(f"num_subjects={self.num_subjects}: need at least one subject per split")
    if self.crop_size < 32:
      raise ValueError(f"crop_size={self.crop_size} is too small to draw a face")

  @property
  def texture_size(self) -> int:
    # About one texel per crop pixel on the face: finer texture would only be filtered away.
    return int(np.ceil(1.3 * self.crop_size / 16) * 16)

  @property
  def pixel_scale(self) -> float:
    return self.crop_size / 256


@dataclasses.dataclass(frozen=True)
class Video:
  index: int        # position in the dataset's video list: seeds its random stream
  video_id: str
  subject: int
  species: str
  domain: str
  split: str


def subject_split(cfg: SynthConfig, subject: int) -> str:
  """Subjects are split by index: the first 60% train, then dev, then test (by default)."""
  n_train = max(1, int(round(cfg.split_fractions[0] * cfg.num_subjects)))
  n_dev = max(1, int(round(cfg.split_fractions[1] * cfg.num_subjects)))
  n_train = min(n_train, cfg.num_subjects - 2)
  n_dev = min(n_dev, cfg.num_subjects - n_train - 1)
  if subject < n_train:
    return "train"
  return "dev" if subject < n_train + n_dev else "test"


def videos(cfg: SynthConfig) -> list[Video]:
  """Every video of the dataset, grouped by subject: live_videos bona fide videos and one
  video per attack species for each (subject, domain)."""
  out = []
  for subject in range(cfg.num_subjects):
    for domain in cfg.domains:
      takes = [("live", k) for k in range(cfg.live_videos)] + [(s, 0) for s in SPECIES[1:]]
      for species, take in takes:
        vid = f"s{subject:03d}_{domain}_{species}_{take}"
        out.append(Video(index=len(out), video_id=vid, subject=subject, species=species,
                         domain=domain, split=subject_split(cfg, subject)))
  return out


@dataclasses.dataclass(frozen=True)
class Example:
  image: np.ndarray      # (S, S, 3) uint8 RGB context crop
  depth: np.ndarray      # (S, S) uint8, depth label * 255
  mask: np.ndarray       # (S, S) uint8, 255 where the pixel is live
  face_box: tuple[float, float, float, float]  # (ymin, xmin, ymax, xmax), normalised
  video: Video
  frame: int
  device: str


def _rng(cfg: SynthConfig, *key: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([cfg.seed, *key]))


@functools.lru_cache(maxsize=4)
def subject_maps(cfg: SynthConfig, subject: int) -> faces.SubjectMaps:
  rng = _rng(cfg, 0, subject)
  return faces.subject_maps(faces.sample_subject(rng), rng, cfg.texture_size)


@functools.lru_cache(maxsize=2)
def _photo(cfg: SynthConfig, video: Video):
  """The print or replay video's source photo: one per video, shared by its frames."""
  return attacks.photo(subject_maps(cfg, video.subject), _rng(cfg, 3, video.index),
                       cfg.crop_size, cfg.pixel_scale)


def render_example(cfg: SynthConfig, video: Video, frame: int) -> Example:
  """Renders frame `frame` of `video`: scene, instrument, capture and exact labels."""
  if not 0 <= frame < cfg.frames_per_video:
    raise ValueError(f"frame={frame} outside [0, {cfg.frames_per_video}) for {video.video_id}")
  maps = subject_maps(cfg, video.subject)
  dom = domains.DOMAINS[video.domain]
  size, ps = cfg.crop_size, cfg.pixel_scale
  vrng = _rng(cfg, 1, video.index)   # fixed for the whole video
  frng = _rng(cfg, 2, video.index, frame)

  dev = domains.device(dom, int(vrng.integers(domains.DEVICES_PER_DOMAIN)), vrng, ps)
  light = domains.jitter_light(domains.sample_light(dom, vrng), frng, 3.0)
  bg = domains.background(dom.background, vrng, size)
  base_pose = np.array([vrng.uniform(-25, 25), vrng.uniform(-12, 12), vrng.uniform(-10, 10)])
  pose = tuple(base_pose + frng.normal(0, (2.0, 1.5, 1.0)))
  context = vrng.uniform(1.55, 1.8) * frng.uniform(0.98, 1.02)
  offset = tuple(vrng.uniform(-0.04, 0.04, 2) + frng.normal(0, 0.005, 2))
  cam = attacks.subject_camera(maps.params, size, context, pose, offset)

  if video.species == "live":
    shot = attacks.live(maps, cam, light, bg)
  elif video.species in ("print", "replay"):
    src, src_face = _photo(cfg, video)
    place = attacks.sample_placement(frng, size, context)
    if video.species == "print":
      shot = attacks.print_attack(src, src_face, attacks.sample_print(vrng, dom, ps), place,
                                  light, bg, frng)
    else:
      shot = attacks.replay_attack(src, src_face, attacks.sample_screen(vrng, dom), place,
                                   light, bg, frng)
  elif video.species == "mask3d":
    shot = attacks.mask3d(maps, cam, light, bg, attacks.sample_mask(vrng))
  elif video.species == "partial":
    shot = attacks.partial(maps, cam, light, bg, attacks.sample_patch(vrng, dom, ps), frng)
  else:
    raise ValueError(f"unknown species {video.species!r}; expected one of {SPECIES}")

  exposure = domains.auto_exposure(shot.radiance, shot.face, vrng.uniform(*dom.exposure))
  image = domains.capture(shot.radiance, dom, dev, frng, exposure)
  y0, x0, y1, x1 = render.face_box(shot.face)
  return Example(
      image=image,
      depth=np.round(np.clip(shot.depth, 0, 1) * 255).astype(np.uint8),
      mask=np.where(shot.spoof, 0, 255).astype(np.uint8),
      face_box=(y0 / size, x0 / size, y1 / size, x1 / size),
      video=video, frame=frame, device=dev.name)
