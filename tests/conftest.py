"""Shared test set-up: 4 fake CPU devices, so sharding code runs as it would on 4 accelerators."""

import os

# Must happen before jax is imported anywhere in the test process.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory):
  """SynthFAS 'tiny' (72 frames of 64x64), built once per test session; returns data_dir."""
  from pyramid_fas_jax.data import builders  # pylint: disable=g-import-not-at-top

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  builders.build("synth_fas", data_dir, config="tiny")
  return data_dir
