"""The five real-dataset builders on fake archives in the official layouts (tests/fake_trees.py):
counts per split and species, labels, crops and depth; the archive checks; the protocols through
the input pipeline, cross-dataset ones included."""

import collections
import json
import pathlib
import sys

import fake_trees
import pytest
import tensorflow_datasets as tfds

from pyramid_fas_jax.data import builders, pipeline, splits
from pyramid_fas_jax.experiment import config as data_config
from pyramid_fas_jax.faces import preprocess
from pyramid_fas_jax.protocols import oulu_npu

# {split: {species: videos}} of each fake archive (2 frames stored per video).
EXPECTED = {
    "oulu_npu": {s: {"live": 4, "print": 8, "replay": 8} for s in ("train", "dev", "test")},
    "casia_mfsd": {"train": {"live": 6, "print": 12, "replay": 6},
                   "test": {"live": 3, "print": 6, "replay": 3}},
    "replay_attack": {s: {"live": 2, "print": 1, "replay": 2} for s in ("train", "dev", "test")},
    "msu_mfsd": {s: {"live": 2, "print": 2, "replay": 4} for s in ("train", "test")},
    "siw_m": {"full": {"live": 2, "replay": 1, "print": 1, "half_mask": 1, "partial_paper": 2}},
}


def _version_dir(data_dir, name) -> pathlib.Path:
  return pathlib.Path(data_dir) / name / "tiny" / str(builders.load_builder(name).VERSION)


def _read(data_dir, name):
  sources = tfds.data_source(f"{name}/tiny", data_dir=data_dir)
  out = {}
  for split, source in sources.items():
    names = source.dataset_info.features["species"].names
    out[split] = (names, [source[i] for i in range(len(source))])
  return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_builder_counts_labels_and_maps(real_tiny, name):
  data_dir, _ = real_tiny(name)
  stored = _read(data_dir, name)
  assert sorted(stored) == sorted(EXPECTED[name])
  for split, (species_names, examples) in stored.items():
    assert species_names[0] == "live"
    frames = collections.Counter()
    videos = collections.defaultdict(set)
    for ex in examples:
      species = species_names[ex["species"]]
      video = ex["video_id"].decode()
      frames[video] += 1
      videos[species].add(video)
      live = species == "live"
      assert ex["label"] == int(live)
      assert ex["depth_valid"]  # every face of the fake archives has a mesh fit
      assert ex["image"].shape == (64, 64, 3)
      assert (ex["mask"] == (255 if live else 0)).all()
      if live:
        assert ex["depth"].max() > 200 and (ex["depth"][:4] == 0).all()  # face vs background
      else:
        assert (ex["depth"] == 0).all()
      ymin, xmin, ymax, xmax = ex["face_box"]
      assert 0 <= ymin < ymax <= 1 and 0 <= xmin < xmax <= 1
      assert ymax - ymin == pytest.approx(1 / 1.5, abs=0.03)  # tiny: context 1.5
    assert {s: len(v) for s, v in videos.items()} == EXPECTED[name][split], split
    assert set(frames.values()) == {2}, split  # tiny: frames 0 and 2 of every video


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_face_report_lists_every_video(real_tiny, name):
  data_dir, _ = real_tiny(name)
  report = json.loads((_version_dir(data_dir, name) / "face_report.json").read_text())
  assert sorted(report) == sorted(EXPECTED[name])
  for split, summary in report.items():
    assert summary["videos"] == sum(EXPECTED[name][split].values())
    assert summary["frames_stored"] == summary["frames_sampled"] == 2 * summary["videos"]
    assert summary["frames_without_face"] == 0 and summary["videos_without_frames"] == []
    assert summary["videos_with_low_face_rate"] == []


def test_metadata_is_official(real_tiny):
  data_dir, _ = real_tiny("oulu_npu")
  _, examples = _read(data_dir, "oulu_npu")["test"]
  ex = next(e for e in examples if e["video_id"] == b"2_3_36_5")
  assert (ex["subject"], ex["domain"], ex["device"]) == (b"36", b"session3", b"phone2")
  data_dir, _ = real_tiny("replay_attack")
  _, examples = _read(data_dir, "replay_attack")["dev"]
  ids = {e["video_id"].decode() for e in examples}
  assert "devel/attack/fixed/attack_print_client003_session01_highdef_photo_controlled" in ids


def test_msu_rotated_video_is_turned_upright(real_tiny):
  """Client 3's Android real video is stored upside down (as in the release): MTCNN and the
  mesh model fail on it as stored, the builder's fix makes every frame usable."""
  data_dir, root = real_tiny("msu_mfsd")
  path = root / "scene01/real/real_client003_android_SD_scene01.mp4"
  pre = preprocess.Preprocessor(preprocess.Settings(crop_size=64, detect_size=320, smooth=1))
  as_stored = pre(path, live=True)
  assert as_stored.missing or as_stored.no_depth
  fixed = pre(path, live=True, fix="rotate_180")
  assert not fixed.missing and not fixed.no_depth
  report = json.loads((_version_dir(data_dir, "msu_mfsd") / "face_report.json").read_text())
  stats = report["train"]["per_video"]["scene01/real/real_client003_android_SD_scene01"]
  assert stats["stored"] == 2 and not stats["no_face"] and not stats["no_depth"]
  # Untagged (OpenCV writes no rotation tag), so the listed fix applies.
  assert stats["orientation"] == {"rotation_tag": 0, "fix": "rotate_180", "fix_applied": True}


def _builder(name, tmp_path):
  return builders.load_builder(name)(config="tiny", data_dir=str(tmp_path))


def test_check_names_every_missing_and_unreadable_file(real_tiny, tmp_path):
  _, root = real_tiny("casia_mfsd")
  builder = _builder("casia_mfsd", tmp_path)
  with pytest.raises(ValueError) as e:
    builder._checked_videos(root)
  message = str(e.value)
  assert "564 problem(s)" in message  # 600 official videos, 36 in the fake archive
  assert f"{root / 'test_release/30/HR_4.avi'}: missing" in message
  assert message.count(": missing") == 564
  # A corrupt file is named even when building from a partial archive.
  broken = root.parent / "casia_broken"
  fake_trees.write_video(broken / "train_release/1/1.avi", seed=0)
  (broken / "train_release/1/2.avi").write_bytes(b"\x00" * 100)
  builder.require_complete = False
  with pytest.raises(ValueError) as e:
    builder._checked_videos(broken)
  bad = broken / "train_release/1/2.avi"
  (line,) = str(e.value).splitlines()[1:]
  assert line.strip() in (f"OpenCV cannot open video {bad}", f"{bad}: no decodable frame")
  (broken / "train_release/1/2.avi").unlink()
  assert [v.video_id for v in builder._checked_videos(broken)] == ["train_release/1/1"]


def test_replay_check_expects_every_video_of_each_client(real_tiny, tmp_path):
  _, root = real_tiny("replay_attack")
  builder = _builder("replay_attack", tmp_path)
  with pytest.raises(ValueError) as e:
    builder._checked_videos(root)
  message = str(e.value)
  # 3 clients x 24 videos, 15 present; and 1 client per set instead of 15/15/20.
  assert message.count(": missing") == 57
  assert "client001_session01_webcam_authenticate_controlled_2.mov: missing" in message
  assert "videos of 1 clients, expected 20" in message


def test_oulu_protocol_files_are_checked(tmp_path):
  """The archive's Protocols/*.txt are compared with pyramid_fas_jax.protocols.oulu_npu."""
  builder_module = sys.modules[builders.load_builder("oulu_npu").__module__]
  check = builder_module.protocol_file_problems
  names = oulu_npu.all_videos()
  for protocol, files in builder_module._PROTOCOL_FILES.items():
    for split, rel in files.items():
      path = tmp_path / rel
      path.parent.mkdir(parents=True, exist_ok=True)
      rows = []
      for n in oulu_npu.split_videos(protocol, split, names):
        species = oulu_npu.parse(n)["species"]
        rows.append(f"{'+1' if species == 'live' else '-1' if species == 'print' else '-2'},{n}")
      path.write_text("\n".join(rows) + "\n")
  assert check(tmp_path) == []
  test_4_2 = tmp_path / "Protocol_4/Test_2.txt"
  lines = test_4_2.read_text().splitlines()
  test_4_2.write_text("\n".join(lines[1:] + ["+1,1_1_01_2", "garbage"]) + "\n")
  problems = check(tmp_path)
  assert any(f"does not list {lines[0].split(',')[1]}" in p for p in problems)
  assert any("lists 1_1_01_2" in p for p in problems)
  assert any(f"{test_4_2}:{len(lines) + 1}:" in p and "garbage" in p for p in problems)


def _config(data_dir, name, protocol, **overrides):
  c = data_config.default_data_config()
  c.data.name, c.data.protocol = name, protocol
  c.data.builder_config, c.data.data_dir = "tiny", data_dir
  c.input.size = 32
  c.batch_size, c.eval_batch_size = 4, 6
  for key, value in overrides.items():
    setattr(c, key, value)
  return c


def _videos(config, split):
  return {m["video_id"] for m in splits.of(config.data, split).examples}


def test_oulu_protocols_through_the_pipeline(real_tiny):
  data_dir, _ = real_tiny("oulu_npu")
  config = _config(data_dir, "oulu_npu", "Protocol_4_1")
  # Fake archive: users 1/21/36, phones 1-2, sessions 1 and 3, files 1-5.
  assert _videos(config, "train") == {"2_1_01_1", "2_1_01_2", "2_1_01_4"}
  assert _videos(config, "dev") == {"2_1_21_1", "2_1_21_2", "2_1_21_4"}
  assert _videos(config, "test") == {"1_3_36_1", "1_3_36_3", "1_3_36_5"}
  batch = next(pipeline.make_train_iterator(config, process_index=0, process_count=1))
  assert batch["image"].shape == (4, 32, 32, 3)
  assert set(batch["video_id"]) <= {"2_1_01_1", "2_1_01_2", "2_1_01_4"}
  config.data.protocol = "Protocol_1"
  assert len(_videos(config, "test")) == 10 and len(_videos(config, "train")) == 10


def test_siw_m_leave_one_out_through_the_pipeline(real_tiny):
  data_dir, _ = real_tiny("siw_m")
  config = _config(data_dir, "siw_m", "leave_out/partial_paper")
  assert _videos(config, "test") == {"Live/Test/Live_2", "Partial/PaperCut/Partial_Eye_1",
                                     "Partial/PaperCut/Partial_Mouth_1"}
  assert _videos(config, "train") == {"Live/Train/Live_1", "Replay/Replay_1", "Paper/Paper_1",
                                      "Mask/HalfMask/Mask_Half_1"}
  assert not splits.of(config.data, "dev").exists


def test_cross_dataset_through_the_pipeline(real_tiny):
  """casia_replay/to_replay_attack reads two stored datasets as one: train on CASIA-MFSD's
  training set, test on Replay-Attack's test set; species renumbered into their union."""
  for name in ("casia_mfsd", "replay_attack"):
    data_dir, _ = real_tiny(name)
  config = _config(data_dir, "casia_replay", "to_replay_attack")
  train = splits.of(config.data, "train").examples
  test = splits.of(config.data, "test").examples
  assert len({m["video_id"] for m in train}) == 36 - 12  # CASIA train_release subjects 1-2
  assert {m["video_id"].split(":")[0] for m in train} == {"casia_mfsd"}
  assert {m["video_id"] for m in test} == {
      f"replay_attack:{n}" for n in fake_trees.replay_names() if n.startswith("test/")}
  assert not splits.of(config.data, "dev").exists
  config.data.protocol = "to_casia_mfsd/source_dev"
  assert {m["video_id"].split(":")[0] for m in splits.of(config.data, "dev").examples} == {
      "replay_attack"}
  config.data.protocol = "to_replay_attack"
  batches = list(pipeline.make_eval_iterator(config, "test", process_index=0, process_count=1))
  rows = [(v, s, int(sp)) for b in batches
          for v, s, sp, ok in zip(b["video_id"], b["species_name"], b["species"], b["valid"]) if ok]
  assert len(rows) == 10 and all(v.startswith("replay_attack:") for v, _, _ in rows)
  assert {(s, sp) for _, s, sp in rows} == {("live", 0), ("print", 1), ("replay", 2)}
  batch = next(pipeline.make_train_iterator(config, process_index=0, process_count=1))
  assert all(v.startswith("casia_mfsd:train_release/") for v in batch["video_id"])


def test_ocim_through_the_pipeline(real_tiny):
  for name in ("oulu_npu", "casia_mfsd", "replay_attack", "msu_mfsd"):
    data_dir, _ = real_tiny(name)
  config = _config(data_dir, "ocim", "to_msu_mfsd")
  train = _videos(config, "train")
  by_source = collections.Counter(v.split(":")[0] for v in train)
  # OULU-NPU 'all' train = user 1 (20 videos), CASIA train 24, Replay-Attack train 5.
  assert by_source == {"oulu_npu": 20, "casia_mfsd": 24, "replay_attack": 5}
  assert {v.split(":")[0] for v in _videos(config, "test")} == {"msu_mfsd"}
  assert len(_videos(config, "test")) == 8
  config.data.protocol = "to_msu_mfsd/source_dev"
  dev = collections.Counter(v.split(":")[0] for v in _videos(config, "dev"))
  assert dev == {"oulu_npu": 20, "replay_attack": 5}


def test_missing_dataset_hint(tmp_path):
  config = _config(str(tmp_path), "msu_mfsd", "official")
  with pytest.raises(FileNotFoundError, match="pyramid_fas_jax.data.builders msu_mfsd"):
    len(splits.of(config.data, "train").keys)


def test_custom_frame_sampling(real_tiny, tmp_path):
  """A RealFasConfig of one's own: every 2nd frame, at most 1 per video, 48-pixel crops."""
  from pyramid_fas_jax.data import real_builder
  _, root = real_tiny("siw_m")
  cfg = real_builder.RealFasConfig(name="one_frame", crop_size=48, frame_step=2, max_frames=1,
                                   detect_size=320, smooth=1)
  builders.build("siw_m", str(tmp_path), cfg, manual_dir=str(root), partial=True)
  source = tfds.data_source("siw_m/one_frame", data_dir=str(tmp_path))["full"]
  examples = [source[i] for i in range(len(source))]
  assert len(examples) == len(fake_trees.SIW_M_FILES)
  assert {int(e["frame"]) for e in examples} == {0}
  assert all(e["image"].shape == (48, 48, 3) for e in examples)
