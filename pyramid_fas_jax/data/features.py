"""The feature spec every dataset builder of this project writes, and its encoders.

One example is one video frame: a context crop of the face with the face box inside it,
the depth and liveness-mask labels aligned with the crop, the labels and the metadata the
protocols select on. Builders hand TFDS already-encoded JPEG/PNG bytes, which TFDS stores as
they are: encoding an array would need TensorFlow, decoding does not (TFDS decodes with
OpenCV and returns RGB).

  image     uint8 (H, W, 3) RGB, JPEG: the context crop
  face_box  float32 (4,) (ymin, xmin, ymax, xmax) of the face in the crop, normalised
  depth     uint8 (H, W, 1), PNG: depth label * 255; 0 for attacks
  depth_valid  bool: whether `depth` is a depth label. False for a live frame whose face the
            depth model could not fit (stored, with depth 0, so that evaluation sees every
            frame with a face; the depth losses leave it out). True for attacks, whose zero
            depth is their label. Builds made before the feature existed read as True.
  mask      uint8 (H, W, 1), PNG: 255 where the pixel is live, 0 on the attack instrument
  label     int64 ClassLabel ('attack', 'live'): 1 = bona fide
  species   int64 ClassLabel: the dataset's species list, 'live' first
  video_id, subject, domain, device: text (domain = capture session or source domain)
  frame     int32 frame index within the video
"""

import io
from collections.abc import Sequence

import cv2
import numpy as np
import tensorflow_datasets as tfds

LABEL_NAMES = ("attack", "live")
IMAGE_KEYS = ("image", "depth", "mask")
METADATA_KEYS = ("label", "species", "video_id", "subject", "domain", "device", "frame",
                 "depth_valid")


def fas_features(species: Sequence[str]) -> tfds.features.FeaturesDict:
  """The shared FeaturesDict; `species` is the dataset's species list with 'live' first."""
  species = list(species)
  if not species or species[0] != "live":
    raise ValueError(f"species must start with 'live' (species 0 is bona fide), got {species}")
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg",
                                   doc="context crop of the face, RGB"),
      "face_box": tfds.features.BBoxFeature(doc="face box in the crop (ymin, xmin, ymax, xmax)"),
      "depth": tfds.features.Image(shape=(None, None, 1), encoding_format="png",
                                   doc="depth label * 255, aligned with the crop; 0 for attacks"),
      "depth_valid": tfds.features.Scalar(
          dtype=np.bool_, doc="depth is a label (False: a live face without a depth fit)"),
      "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png",
                                  doc="liveness mask: 255 where the pixel is live"),
      "label": tfds.features.ClassLabel(names=LABEL_NAMES, doc="1 = bona fide (live)"),
      "species": tfds.features.ClassLabel(names=species, doc="presentation species"),
      "video_id": tfds.features.Text(doc="unique id of the source video"),
      "subject": tfds.features.Text(doc="identity shown"),
      "domain": tfds.features.Text(doc="capture session or domain"),
      "device": tfds.features.Text(doc="capture device"),
      "frame": tfds.features.Scalar(dtype=np.int32, doc="frame index within the video"),
  })


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> io.BytesIO:
  """uint8 RGB (H, W, 3) -> JPEG bytes for an Image feature."""
  _check_image(rgb, 3)
  ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, quality])
  if not ok:
    raise RuntimeError(f"OpenCV could not encode a JPEG of shape {rgb.shape}")
  return io.BytesIO(buf.tobytes())


def encode_png(gray: np.ndarray) -> io.BytesIO:
  """uint8 (H, W) or (H, W, 1) -> PNG bytes for a single-channel Image feature."""
  gray = gray[..., 0] if gray.ndim == 3 and gray.shape[-1] == 1 else gray
  _check_image(gray, None)
  # Compression level fixed so identical labels always give identical bytes.
  ok, buf = cv2.imencode(".png", gray, [cv2.IMWRITE_PNG_COMPRESSION, 3])
  if not ok:
    raise RuntimeError(f"OpenCV could not encode a PNG of shape {gray.shape}")
  return io.BytesIO(buf.tobytes())


def _check_image(arr: np.ndarray, channels):
  if arr.dtype != np.uint8:
    raise ValueError(f"expected a uint8 image, got dtype {arr.dtype} (shape {arr.shape})")
  bad = arr.ndim != 2 if channels is None else (arr.ndim != 3 or arr.shape[-1] != channels)
  if bad:
    raise ValueError(f"expected an image with {channels or 1} channel(s), got shape {arr.shape}")


def make_example(*, image, depth, mask, face_box, label: int, species: str, video_id: str,
                 subject: str, domain: str, device: str, frame: int, depth_valid: bool = True,
                 jpeg_quality: int = 95) -> dict:
  """Arrays and metadata -> the dict a builder yields for `fas_features`; `depth_valid` False
  marks a live frame whose `depth` (then zeros) is no label."""
  if not all(0.0 <= c <= 1.0 for c in face_box) or face_box[0] >= face_box[2] or (
      face_box[1] >= face_box[3]):
    raise ValueError(f"face_box {face_box} of {video_id} frame {frame} is not a normalised "
                     "(ymin, xmin, ymax, xmax) box")
  if image.shape[:2] != depth.shape[:2] or image.shape[:2] != mask.shape[:2]:
    raise ValueError(f"{video_id} frame {frame}: image {image.shape}, depth {depth.shape} and "
                     f"mask {mask.shape} are not aligned")
  if not depth_valid and (int(label) != 1 or np.any(depth)):
    raise ValueError(f"{video_id} frame {frame}: depth_valid=False is for a live frame stored "
                     "with zero depth (an attack's zero depth is its label)")
  return {
      "image": encode_jpeg(image, jpeg_quality),
      "face_box": tfds.features.BBox(*map(float, face_box)),
      "depth": encode_png(depth),
      "depth_valid": bool(depth_valid),
      "mask": encode_png(mask),
      "label": int(label),
      "species": species,
      "video_id": video_id,
      "subject": subject,
      "domain": domain,
      "device": device,
      "frame": int(frame),
  }
