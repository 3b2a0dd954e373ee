"""Speed of the real-dataset face preprocessing, per frame and stage, on one CPU core.

  python benchmarks/face_preprocess.py [--frames=20] [--crop_size=320]

Frames are scikit-image's astronaut scaled into frames of the datasets' resolutions
(Replay-Attack 320x240, CASIA/MSU 640x480, OULU-NPU and SiW-M 1920x1080) with the face at a
typical size. Stages: MTCNN (on the frame downscaled to 640 pixels), context crop, face-mesh
landmarks, depth rasterisation. A build also decodes the video and encodes JPEG/PNG.
"""

import argparse
import time

import cv2
import numpy as np
from skimage import data

from pyramid_fas_jax.faces import face, face_mesh

# (name, frame width, height, face box height in pixels)
SHAPES = (("320x240 (Replay-Attack)", 320, 240, 110), ("640x480 (CASIA, MSU)", 640, 480, 200),
          ("1920x1080 (OULU-NPU, SiW-M)", 1920, 1080, 450))


def _frame(width, height, face_height):
  head = data.astronaut()[:300, 90:390]  # the face box is about 113 of these 300 rows
  scale = face_height / 113
  head = cv2.resize(head, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
  frame = np.full((height, width, 3), 120, np.uint8)
  h, w = min(head.shape[0], height), min(head.shape[1], width)
  y, x = (height - h) // 2, (width - w) // 2
  frame[y:y + h, x:x + w] = head[:h, :w]
  return frame


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--frames", type=int, default=20)
  parser.add_argument("--crop_size", type=int, default=320)
  args = parser.parse_args()
  cv2.setNumThreads(1)
  detector, mesh = face.FaceDetector(detect_size=640), face_mesh.FaceMesh(num_threads=1)
  print(f"{'frame':30s} {'mtcnn':>8s} {'crop':>8s} {'mesh':>8s} {'depth':>8s} {'total':>8s}"
        "   (ms per frame)")
  for name, width, height, face_height in SHAPES:
    rgb = _frame(width, height, face_height)
    times = np.zeros(4)
    for _ in range(args.frames):
      t0 = time.perf_counter()
      det = detector.detect(rgb)
      t1 = time.perf_counter()
      crop = face.context_crop(rgb, det.box, 1.5, args.crop_size)
      t2 = time.perf_counter()
      points, _ = mesh.landmarks(rgb, det.box, det.keypoints)
      t3 = time.perf_counter()
      face_mesh.rasterize_depth(crop.to_crop(points), mesh.triangles, args.crop_size)
      t4 = time.perf_counter()
      times += (t1 - t0, t2 - t1, t3 - t2, t4 - t3)
    ms = 1000 * times / args.frames
    print(f"{name:30s} " + " ".join(f"{v:8.1f}" for v in ms) + f" {ms.sum():8.1f}")


if __name__ == "__main__":
  main()
