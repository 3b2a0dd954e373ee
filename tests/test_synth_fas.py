"""SynthFAS: the generator's physics and labels, the TFDS builder, and the protocols."""

import collections
import filecmp
import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from pyramid_fas_jax.data import builders, features
from pyramid_fas_jax.data.synth import attacks, domains, faces, generate, render
from pyramid_fas_jax.protocols import synth_fas as protocol

TINY = generate.SynthConfig(crop_size=64, num_subjects=3, frames_per_video=1)


def _text(x):
  return x.decode() if isinstance(x, bytes) else x


@pytest.fixture(scope="module")
def sources(synth_tiny):
  return tfds.data_source("synth_fas/tiny", data_dir=synth_tiny)


@pytest.fixture(scope="module")
def examples(sources):
  return {split: [src[i] for i in range(len(src))] for split, src in sources.items()}


def test_builder_counts_per_split_and_species(examples):
  per_split = len(TINY.domains) * (TINY.live_videos + len(generate.SPECIES) - 1)
  assert {s: len(e) for s, e in examples.items()} == {s: per_split for s in generate.SPLITS}
  for split, exs in examples.items():
    counts = collections.Counter(generate.SPECIES[e["species"]] for e in exs)
    assert counts == {"live": 8, "print": 4, "replay": 4, "mask3d": 4, "partial": 4}, split
    assert collections.Counter(_text(e["domain"]) for e in exs) == {
        d: 6 for d in domains.DOMAINS}, split
  subjects = {s: {_text(e["subject"]) for e in exs} for s, exs in examples.items()}
  assert not subjects["train"] & subjects["dev"] and not subjects["dev"] & subjects["test"]
  assert not subjects["train"] & subjects["test"]


def test_feature_shapes_and_labels(sources, examples):
  assert sources["train"].dataset_info.features["species"].names == list(generate.SPECIES)
  for e in examples["train"]:
    assert e["image"].shape == (64, 64, 3) and e["image"].dtype == np.uint8
    assert e["depth"].shape == (64, 64, 1) and e["mask"].shape == (64, 64, 1)
    assert e["face_box"].shape == (4,)
    y0, x0, y1, x1 = e["face_box"]
    assert 0 <= y0 < y1 <= 1 and 0 <= x0 < x1 <= 1
    assert e["label"] == int(e["species"] == 0)
    assert set(np.unique(e["mask"])) <= {0, 255}


def test_decoded_colours_are_rgb(examples):
  """The stored JPEG decodes to the generator's RGB image, not to its BGR mirror."""
  videos = {v.video_id: v for v in generate.videos(TINY)}
  for e in examples["dev"][:6]:
    rendered = generate.render_example(TINY, videos[_text(e["video_id"])], int(e["frame"])).image
    stored = e["image"].astype(np.float32)
    err = np.abs(stored - rendered).mean()
    swapped = np.abs(stored - rendered[..., ::-1]).mean()
    assert err < 3.0 and swapped > 2 * err + 2, (_text(e["video_id"]), err, swapped)


def test_depth_is_zero_for_attacks_and_normalised_for_live(examples):
  for e in (e for exs in examples.values() for e in exs):
    depth = e["depth"][..., 0]
    if e["label"] == 0:
      assert depth.max() == 0, _text(e["video_id"])
    else:
      assert depth.max() == 255  # the nearest face point is 1
      assert (depth > 0).mean() > 0.05  # a face, not a speck
      assert (e["mask"] == 255).all()  # a live capture is live everywhere


def test_attack_masks_cover_the_instrument(examples):
  for e in (e for exs in examples.values() for e in exs):
    spoof = e["mask"][..., 0] == 0
    species = generate.SPECIES[e["species"]]
    if species in ("print", "replay"):
      assert spoof.mean() > 0.5, _text(e["video_id"])  # the sheet or screen fills the view
    if species in ("mask3d", "partial"):
      y0, x0, y1, x1 = (e["face_box"] * 64).round().astype(int)
      outside = spoof.copy()
      outside[max(y0 - 2, 0):y1 + 2, max(x0 - 2, 0):x1 + 2] = False
      assert spoof.any() and not outside.any(), _text(e["video_id"])


def _scene(size=96, pose=(12.0, 4.0, 0.0)):
  maps = generate.subject_maps(TINY, 1)
  rng = np.random.default_rng(5)
  cam = attacks.subject_camera(maps.params, size, 1.6, pose)
  light = domains.sample_light(domains.DOMAINS["studio"], rng)
  return maps, cam, light, domains.background("studio", rng, size)


@pytest.mark.parametrize("region", attacks.PATCH_REGIONS)
def test_partial_mask_is_exactly_the_patch(region):
  maps, cam, light, bg = _scene()
  pp = attacks.PatchParams(region=region, offset=(0.01, 0.0),
                           print=attacks.sample_patch(np.random.default_rng(0),
                                                      domains.DOMAINS["studio"], 0.4).print)
  shot = attacks.partial(maps, cam, light, bg, pp, np.random.default_rng(1))
  live = attacks.live(maps, cam, light, bg)
  surf = render.trace(maps, cam)
  patch = attacks.patch_region(surf, maps.params, region)
  np.testing.assert_array_equal(shot.spoof, patch)
  assert patch.any() and (shot.depth == 0).all()
  # Under the patch the paper is seen; away from its edge the live face is untouched.
  near = np.pad(patch, 1)
  near = np.any([near[dy:dy + patch.shape[0], dx:dx + patch.shape[1]]
                 for dy in range(3) for dx in range(3)], axis=0)
  away = ~near
  np.testing.assert_array_equal(shot.radiance[away], live.radiance[away])
  assert np.abs(shot.radiance[patch] - live.radiance[patch]).mean() > 0.01
  u, v = surf.point[..., 0][patch], surf.point[..., 1][patch]
  p = maps.params
  if region == "eyes":
    assert np.all(np.abs(v - p.eye_v) < 0.2)
    assert (surf.attrs[..., faces.EYE][patch] > 0.5).sum() > 10  # it hides the eyes
  elif region == "mouth":
    assert np.all(np.abs(v - p.mouth_v) < 0.25)
    assert (surf.attrs[..., faces.LIPS][patch] > 0.5).sum() > 10  # and the lips
  else:
    assert np.all(u > 0) if region == "left_half" else np.all(u < 0)


def test_live_depth_follows_geometry():
  maps, cam, light, bg = _scene(pose=(0.0, 0.0, 0.0))
  shot = attacks.live(maps, cam, light, bg)
  surf = render.trace(maps, cam)
  # The nearest face point is the nose tip, on the vertical midline below the eyes.
  y, x = np.unravel_index(np.argmax(shot.depth), shot.depth.shape)
  assert abs(surf.point[y, x, 0]) < 0.1 and surf.point[y, x, 1] < maps.params.eye_v
  assert shot.depth.max() == 1.0 and shot.depth[~shot.face].max() == 0.0


def test_mask3d_is_matte_and_uniform():
  """The mask has the subject's relief but no skin texture: flat albedo, no specular."""
  maps, cam, light, bg = _scene()
  mp = attacks.MaskParams(material=np.array((0.6, 0.5, 0.4), np.float32), painted=0.0,
                          eye_holes=True)
  shot = attacks.mask3d(maps, cam, light, bg, mp)
  surf = render.trace(maps, cam)
  # Eye holes are live. The mask stands proud of the face, so its eye holes sit a pixel off
  # the bare face's eyes: compare with the eyes' interior.
  eyes = cv2.erode((surf.attrs[..., faces.EYE] > 0.5).astype(np.uint8), np.ones((3, 3))) > 0
  assert shot.spoof.any() and eyes.any() and not (shot.spoof & eyes).any()
  ratio = shot.radiance[shot.spoof] / np.array((0.6, 0.5, 0.4), np.float32)
  # One material: every channel sees the same shading.
  assert np.abs(ratio[:, 0] - ratio[:, 2]).max() < 0.25 * ratio.max()


def test_same_seed_same_bytes(synth_tiny, tmp_path):
  """Another build (two worker processes, other order) writes byte-identical files."""
  other = builders.build("synth_fas", str(tmp_path), config="tiny", num_workers=2)
  first = os.path.join(synth_tiny, "synth_fas", "tiny", str(other.version))
  names = sorted(os.listdir(first))
  assert names == sorted(os.listdir(other.data_dir))
  assert sum(".array_record-" in n for n in names) == 3
  for name in names:
    assert filecmp.cmp(os.path.join(first, name), os.path.join(other.data_dir, name),
                       shallow=False), name


def test_other_seed_other_images():
  video = generate.videos(TINY)[0]
  a = generate.render_example(TINY, video, 0)
  b = generate.render_example(TINY, video, 0)
  c = generate.render_example(generate.SynthConfig(64, 3, 1, seed=1), video, 0)
  assert features.encode_jpeg(a.image).getvalue() == features.encode_jpeg(b.image).getvalue()
  assert features.encode_png(a.depth).getvalue() == features.encode_png(b.depth).getvalue()
  assert not np.array_equal(a.image, c.image)


def test_encoders_reject_bad_input():
  with pytest.raises(ValueError, match="uint8"):
    features.encode_jpeg(np.zeros((4, 4, 3), np.float32))
  with pytest.raises(ValueError, match="channel"):
    features.encode_png(np.zeros((4, 4, 3), np.uint8))
  with pytest.raises(ValueError, match="start with 'live'"):
    features.fas_features(["print", "live"])


def _records(examples):
  return [dict(split=s, video_id=_text(e["video_id"]), domain=_text(e["domain"]),
               species=generate.SPECIES[e["species"]]) for s, exs in examples.items() for e in exs]


def test_protocols(examples):
  records = _records(examples)
  by_id = {r["video_id"]: r for r in records}
  intra = {s: protocol.split_videos("intra", s, records) for s in protocol.SPLITS}
  assert sum(map(len, intra.values())) == len(records)
  for split in protocol.SPLITS:
    assert all(by_id[v]["split"] == split for v in intra[split])

  train = protocol.split_videos("cross_domain/lowlight", "train", records)
  test = protocol.split_videos("cross_domain/lowlight", "test", records)
  assert train and all(by_id[v]["domain"] != "lowlight" for v in train)
  assert test and all(by_id[v]["domain"] == "lowlight" and by_id[v]["split"] == "test"
                      for v in test)

  train = protocol.split_videos("cross_attack/mask3d", "train", records)
  test = protocol.split_videos("cross_attack/mask3d", "test", records)
  assert {by_id[v]["species"] for v in train} == {"live", "print", "replay", "partial"}
  assert {by_id[v]["species"] for v in test} == {"live", "mask3d"}

  with pytest.raises(ValueError, match="unknown SynthFAS protocol"):
    protocol.split_videos("cross_domain/moon", "train", records)
  with pytest.raises(ValueError, match="unknown split"):
    protocol.split_videos("intra", "val", records)


def test_load_builder_names_the_bad_dataset():
  with pytest.raises(ValueError, match="unknown dataset 'nope'.*synth_fas"):
    builders.load_builder("nope")


def test_bench_trains_on_small_and_tests_on_34_subjects():
  from datasets.synth_fas import synth_fas_dataset_builder as synth
  configs = {c.name: c.synth() for c in synth.Builder.BUILDER_CONFIGS}
  by_split = {name: collections.defaultdict(set) for name in ("small", "bench")}
  for name in by_split:
    for video in generate.videos(configs[name]):
      by_split[name][video.split].add(video.subject)
  assert [len(by_split["bench"][s]) for s in generate.SPLITS] == [22, 14, 34]
  assert by_split["bench"]["train"] == by_split["small"]["train"]
  # Rendering is seeded by (seed, video index): the training videos are small's own, so a
  # model trained on either build saw the same images.
  train = {name: [(v.index, v.video_id) for v in generate.videos(configs[name])
                  if v.split == "train"] for name in by_split}
  assert train["bench"] == train["small"]
  # 34 test subjects x 4 domains: 136 videos per attack species, 272 live.
  test = [v for v in generate.videos(configs["bench"]) if v.split == "test"]
  counts = collections.Counter(v.species for v in test)
  assert counts == {"live": 272, "print": 136, "replay": 136, "mask3d": 136, "partial": 136}


def test_bench_cross_is_bench_with_four_times_the_test_subjects():
  from datasets.synth_fas import synth_fas_dataset_builder as synth
  configs = {c.name: c.synth() for c in synth.Builder.BUILDER_CONFIGS}
  bench = generate.videos(configs["bench"])
  cross = generate.videos(configs["bench_cross"])
  assert cross[:len(bench)] == bench  # the same videos (index, id, split), so the same images
  test = [v for v in cross if v.split == "test"]
  assert len({v.subject for v in test}) == 136
  held_out = collections.Counter(v.species for v in test if v.domain == "lowlight")
  assert held_out == {"live": 272, "print": 136, "replay": 136, "mask3d": 136, "partial": 136}
