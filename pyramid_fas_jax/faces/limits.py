"""How much of an untrusted image or video is decoded: the limits, checked before memory is
committed.

Images, videos and uploads come from users and, through `pyramid-fas serve`, from anyone who can
reach its port, and a small file can promise a great deal: a 1 MB PNG can declare 20000x20000
pixels (1.2 GB once decoded), a video header any frame count. Every reader here checks the
declared size against these limits before it decodes, and counts what it decodes:

  max_pixels          width x height of one image or video frame, read from the file's header
  max_video_frames    frames a video may hold; a header that claims more (or nothing) is not
                      believed: its frames are counted by reading, up to this many
  max_decoded_bytes   RGB bytes decoded in one call (a `predict` input, a served upload),
                      summed over its files and frames

Defaults below (`serve` decodes at most SERVE_MAX_DECODED_MB per upload); raised by environment
variables (`PYRAMID_FAS_MAX_PIXELS`, `PYRAMID_FAS_MAX_VIDEO_FRAMES`, `PYRAMID_FAS_MAX_DECODED_MB`)
and by the `--max_pixels` and `--max_decoded_mb` flags of `predict` and `serve`.
"""

import dataclasses
import os
import time

MAX_PIXELS = 64_000_000          # a 48-megapixel phone photo passes, a 20000x20000 PNG not
MAX_VIDEO_FRAMES = 100_000       # 55 minutes at 30 frames/s
MAX_DECODED_MB = 4096           # `predict`: a folder of 12-megapixel photos, 100 at a time
SERVE_MAX_DECODED_MB = 512      # `serve`: per upload; 30 sampled 1080p frames are 178 MiB
ENV = {"max_pixels": "PYRAMID_FAS_MAX_PIXELS", "max_video_frames": "PYRAMID_FAS_MAX_VIDEO_FRAMES",
       "max_decoded_bytes": "PYRAMID_FAS_MAX_DECODED_MB"}
MB = 1024 * 1024


class TooLarge(ValueError):
  """A file over a limit: refused before it is decoded (a usage error; 413 from the server)."""


class TimedOut(TimeoutError):
  """Decoding went on past the caller's deadline (the server's per-request deadline)."""


def _env_int(name: str, default: int) -> int:
  value = os.environ.get(name)
  if value is None or value == "":
    return default
  try:
    number = int(value)
  except ValueError:
    number = -1
  if number < 1:
    raise ValueError(f"${name}={value!r} is not a whole number >= 1: unset it for the default "
                     f"({default}) or give a larger one")
  return number


@dataclasses.dataclass(frozen=True)
class Limits:
  max_pixels: int = MAX_PIXELS
  max_video_frames: int = MAX_VIDEO_FRAMES
  max_decoded_bytes: int = MAX_DECODED_MB * MB

  @classmethod
  def from_env(cls, max_pixels: int | None = None, max_decoded_mb: float | None = None,
               default_decoded_mb: int = MAX_DECODED_MB) -> "Limits":
    """The defaults, overridden by the environment, overridden by flags (None: not given)."""
    limits = cls(max_pixels=_env_int(ENV["max_pixels"], MAX_PIXELS),
                 max_video_frames=_env_int(ENV["max_video_frames"], MAX_VIDEO_FRAMES),
                 max_decoded_bytes=_env_int(ENV["max_decoded_bytes"], default_decoded_mb) * MB)
    if max_pixels is not None:
      limits = dataclasses.replace(limits, max_pixels=int(max_pixels))
    if max_decoded_mb is not None:
      limits = dataclasses.replace(limits, max_decoded_bytes=int(max_decoded_mb * MB))
    return limits

  def check_pixels(self, path, width: int, height: int) -> None:
    """Refuses a `width` x `height` image or frame over max_pixels, before it is decoded."""
    if width * height > self.max_pixels:
      raise TooLarge(f"{path} is {width}x{height} pixels ({width * height:,}), over the limit of "
                     f"{self.max_pixels:,} per image or frame: downscale it, or raise the limit "
                     f"(--max_pixels or ${ENV['max_pixels']})")


class Budget:
  """What one call may still decode: max_decoded_bytes in all, until an optional deadline
  (time.monotonic() seconds). Readers charge each frame before decoding it."""

  def __init__(self, limits: Limits | None = None, deadline: float | None = None):
    self.limits = limits or Limits.from_env()
    self.deadline = deadline
    self.used = 0

  def charge(self, path, width: int, height: int) -> None:
    """Accounts for one RGB frame of `path`, refused over a limit or past the deadline."""
    if self.deadline is not None and time.monotonic() > self.deadline:
      raise TimedOut(f"{path}: decoding took longer than the request's deadline")
    self.limits.check_pixels(path, width, height)
    self.used += width * height * 3
    if self.used > self.limits.max_decoded_bytes:
      limit_mb = self.limits.max_decoded_bytes / MB
      raise TooLarge(f"{path}: decoding it brings this input to over {limit_mb:g} MiB of "
                     f"pixels: sample fewer frames (--max_frames, --frame_step), pass fewer "
                     f"files, or raise the limit (--max_decoded_mb or "
                     f"${ENV['max_decoded_bytes']})")
