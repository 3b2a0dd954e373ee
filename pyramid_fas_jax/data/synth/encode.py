"""One SynthFAS subject rendered and encoded as the builder's examples: a build worker's task
(data/workers.py), here in the package because a worker process imports its function by name,
which datasets/synth_fas/, loaded from its path by TFDS, cannot offer."""

from pyramid_fas_jax.data import features
from pyramid_fas_jax.data.synth import generate


def subject_examples(task: tuple[generate.SynthConfig, list[generate.Video]]) -> list[tuple]:
  """[(key, example)] of every frame of one subject's `videos`, encoded."""
  cfg, videos = task
  out = []
  for video in videos:
    for frame in range(cfg.frames_per_video):
      ex = generate.render_example(cfg, video, frame)
      example = features.make_example(
          image=ex.image, depth=ex.depth, mask=ex.mask, face_box=ex.face_box,
          label=int(video.species == "live"), species=video.species, video_id=video.video_id,
          subject=f"s{video.subject:03d}", domain=video.domain, device=ex.device, frame=frame,
          depth_valid=True)  # rendered: every frame has its exact depth
      # Bytes, not BytesIO, cross the process boundary.
      example = {k: v.getvalue() if hasattr(v, "getvalue") else v for k, v in example.items()}
      out.append((f"{video.video_id}/{frame}", example))
  return out


def subject_name(task) -> str:
  cfg, videos = task
  return f"SynthFAS subject s{videos[0].subject:03d} ({len(videos)} videos)"
