"""SynthFAS: a procedurally generated face anti-spoofing benchmark with exact labels.

Live subjects are parametric 3-D faces ray-traced under a capture domain's light and camera;
attacks (print, replay, 3-D mask, partial paper patch) are simulated with their own physics.
The depth label is the rendered depth of live faces and 0 for attacks; the liveness mask is
exact to the pixel. Nothing is downloaded: build it with

  tfds build datasets/synth_fas --config=small --file_format=array_record

or from Python (no tfds CLI, no TensorFlow):

  from pyramid_fas_jax.data import builders
  builders.build("synth_fas", data_dir="~/tensorflow_datasets", config="small")

Splits `train`, `dev` and `test` hold disjoint subjects; the protocols in
pyramid_fas_jax/protocols/synth_fas.py select within them (intra, cross_domain/<domain>,
cross_attack/<species>).
"""

import dataclasses

import tensorflow_datasets as tfds

from pyramid_fas_jax.data import features, metadata_index, workers
from pyramid_fas_jax.data.synth import encode, generate


@dataclasses.dataclass
class SynthFasConfig(tfds.core.BuilderConfig):
  crop_size: int = 320
  num_subjects: int = 90
  frames_per_video: int = 4
  live_videos: int = 2
  seed: int = 0
  split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / dev / test subjects

  def synth(self) -> generate.SynthConfig:
    return generate.SynthConfig(crop_size=self.crop_size, num_subjects=self.num_subjects,
                                frames_per_video=self.frames_per_video,
                                live_videos=self.live_videos, seed=self.seed,
                                split_fractions=self.split_fractions)


class Builder(tfds.core.GeneratorBasedBuilder):
  """SynthFAS dataset builder."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "Initial release: 5 species (live, print, replay, mask3d, partial), 4 domains "
               "(studio, office, lowlight, outdoor), exact depth and liveness masks.",
      "1.1.0": "Feature depth_valid (always True: rendered depth is exact); a per-split "
               "metadata index (metadata-<split>.json) for fast start-up. Same images.",
  }
  BUILDER_CONFIGS = [
      SynthFasConfig(name="default", description="320-pixel crops for 256x256 inputs (GPU runs): "
                     "90 subjects x 4 domains x 6 videos x 4 frames = 8,640 frames."),
      SynthFasConfig(name="small", crop_size=128, num_subjects=36, frames_per_video=3,
                     description="128-pixel crops for the CPU demo (64-96 pixel inputs): "
                     "36 subjects x 4 domains x 6 videos x 3 frames = 2,592 frames."),
      # Subjects are rendered from (seed, video index) and listed subject by subject, so the
      # first 22 subjects, the training split, are `small`'s own; the other 48 give a test split
      # on which a model at ACER 15% has a 95% interval of about +-4 points (README, SynthFAS
      # "Resolution"), against +-8.5 on `small`'s 7 test subjects.
      SynthFasConfig(name="bench", crop_size=128, num_subjects=70, frames_per_video=3,
                     split_fractions=(22 / 70, 14 / 70, 34 / 70),
                     description="`small`'s 22 training subjects with 14 dev and 34 test "
                     "subjects, for comparisons that resolve 4 points of test ACER: 70 subjects "
                     "x 4 domains x 6 videos x 3 frames = 5,040 frames."),
      # A held-out domain is a quarter of a test split: the same +-4 points there need 4 times
      # `bench`'s test subjects. The first 70 subjects are `bench`'s (same videos, same splits).
      SynthFasConfig(name="bench_cross", crop_size=128, num_subjects=172, frames_per_video=3,
                     split_fractions=(22 / 172, 14 / 172, 136 / 172),
                     description="`bench` with 136 test subjects, for the cross_domain "
                     "protocols: 136 videos per attack species in the held-out domain's test; "
                     "172 subjects x 4 domains x 6 videos x 3 frames = 12,384 frames."),
      SynthFasConfig(name="tiny", crop_size=64, num_subjects=3, frames_per_video=1,
                     description="64-pixel crops for unit tests: 3 subjects (one per split) "
                     "x 4 domains x 6 videos = 72 frames; builds in seconds."),
  ]
  # Worker processes for rendering; set by pyramid_fas_jax.data.builders.build.
  num_workers = 1

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=features.fas_features(generate.SPECIES),
        homepage="https://github.com/pyramid-fas-jax/pyramid-fas-jax",
    )

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager, download_config)
    metadata_index.write(self)  # record positions are known only now that the splits exist

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # everything is generated
    return {split: self._generate_examples(split) for split in generate.SPLITS}

  def _generate_examples(self, split: str):
    cfg = self.builder_config.synth()
    by_subject = {}
    for video in generate.videos(cfg):
      if video.split == split:
        by_subject.setdefault(video.subject, []).append(video)
    tasks = [(cfg, vids) for _, vids in sorted(by_subject.items())]
    for examples in workers.imap(encode.subject_examples, tasks, self.num_workers,
                                 name=encode.subject_name):
      yield from examples
