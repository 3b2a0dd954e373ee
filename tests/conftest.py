"""Shared test set-up: 4 fake CPU devices, so sharding code runs as it would on 4 accelerators."""

import os

# Must happen before jax is imported anywhere in the test process.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


import pytest


@pytest.fixture(scope="session")
def astronaut():
  """scikit-image's astronaut: a real photograph of a face, RGB uint8 (512x512)."""
  from skimage import data
  return data.astronaut()


@pytest.fixture(scope="session")
def astronaut_png(astronaut, tmp_path_factory):
  """The astronaut as a PNG file."""
  import cv2

  path = tmp_path_factory.mktemp("astronaut") / "astronaut.png"
  cv2.imwrite(str(path), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
  return path


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory):
  """SynthFAS 'tiny' (72 frames of 64x64), built once per test session; returns data_dir."""
  from pyramid_fas_jax.data import builders

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  builders.build("synth_fas", data_dir, config="tiny", num_workers=1)
  return data_dir


@pytest.fixture(scope="session")
def synth_frames(tmp_path_factory):
  """SynthFAS 'tiny' with 3 stored frames per video (24 videos, 72 frames per split), built
  once per test session; returns data_dir. Its builder config is named 'frames3'."""
  import dataclasses

  from pyramid_fas_jax.data import builders

  tiny = builders.load_builder("synth_fas").builder_configs["tiny"]
  config = dataclasses.replace(tiny, name="frames3", frames_per_video=3, crop_size=48,
                               description="tiny, 3 frames per video")
  data_dir = str(tmp_path_factory.mktemp("tfds_frames"))
  builders.build("synth_fas", data_dir, config=config, num_workers=1)
  return data_dir


@pytest.fixture(scope="session")
def real_tiny(tmp_path_factory):
  """build(name) -> (data_dir, archive root): the fake archive of a real dataset
  (tests/fake_trees.py), built with config 'tiny' once per session into a shared data_dir."""
  import fake_trees

  from pyramid_fas_jax.data import builders

  data_dir = str(tmp_path_factory.mktemp("tfds_real"))
  roots = {}

  def build(name: str):
    if name not in roots:
      root = tmp_path_factory.mktemp(f"archive_{name}")
      fake_trees.TREES[name](root)
      builders.build(name, data_dir, config="tiny", manual_dir=str(root), partial=True,
                     num_workers=1)
      roots[name] = root
    return data_dir, roots[name]

  return build
