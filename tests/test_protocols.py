"""Protocols of the real datasets against their published video counts.

Sources of the counts:
  OULU-NPU        the protocol table of Boulkenafet et al. (FG 2017), as asserted by the tests of
                  Idiap's bob.db.oulunpu (built from the official protocol files)
  CASIA-MFSD      Zhang et al. (ICB 2012): 50 subjects, 20 train / 30 test, 12 videos each;
                  file numbering as in Idiap's bob.db.casia_fasd
  Replay-Attack   Chingovska et al. (BIOSIG 2012) and the tests of Idiap's bob.db.replay:
                  200 real (60/60/80) and 1000 attack videos; per-protocol attack counts
  MSU-MFSD        Wen et al. (TIFS 2015): 280 videos of 35 subjects, train_sub_list.txt (15) and
                  test_sub_list.txt (20) of the release
  SiW-M           Liu et al. (CVPR 2019), table of attack videos per type (968 in all)
"""

import pytest

from pyramid_fas_jax import protocols
from pyramid_fas_jax.protocols import (
  casia_mfsd,
  casia_replay,
  msu_mfsd,
  ocim,
  oulu_npu,
  replay_attack,
  siw_m,
)

SPLITS = ("train", "dev", "test")


def _counts(module, protocol, names):
  """{split: (real, attack)} of `protocol` over `names`."""
  out = {}
  for split in SPLITS:
    chosen = module.split_videos(protocol, split, names)
    live = sum(module.parse(n)["species"] == "live" for n in chosen)
    out[split] = (live, len(chosen) - live)
  return out


def _replay_names():
  """The 1200 anti-spoofing videos of 15/15/20 clients (illustrative client numbers: the
  protocols depend on the set and the attack, not on the number)."""
  sets = {"train": range(1, 16), "devel": range(16, 31), "test": range(101, 121)}
  return [n for s, ids in sets.items() for c in ids for n in replay_attack.client_videos(s, c)]


OULU = {
    "Protocol_1": {"train": (240, 960), "dev": (180, 720), "test": (120, 480)},
    "Protocol_2": {"train": (360, 720), "dev": (270, 540), "test": (360, 720)},
    **{f"Protocol_3_{k}": {"train": (300, 1200), "dev": (225, 900), "test": (60, 240)}
       for k in range(1, 7)},
    **{f"Protocol_4_{k}": {"train": (200, 400), "dev": (150, 300), "test": (20, 40)}
       for k in range(1, 7)},
    "all": {"train": (360, 1440), "dev": (270, 1080), "test": (360, 1440)},
}


@pytest.mark.parametrize("protocol", sorted(OULU))
def test_oulu_npu_published_counts(protocol):
  assert _counts(oulu_npu, protocol, oulu_npu.all_videos()) == OULU[protocol]


def test_oulu_npu_protocol_rules():
  names = oulu_npu.all_videos()
  assert len(names) == len(set(names)) == 4950
  # Protocol 4: the test phone, session and PAIs never appear in training.
  train = [oulu_npu.parse(n) for n in oulu_npu.split_videos("Protocol_4_2", "train", names)]
  test = [oulu_npu.parse(n) for n in oulu_npu.split_videos("Protocol_4_2", "test", names)]
  assert {v["phone"] for v in test} == {2} and 2 not in {v["phone"] for v in train}
  assert {v["session"] for v in test} == {3} and 3 not in {v["session"] for v in train}
  assert {v["file"] for v in test} == {1, 3, 5} and {v["file"] for v in train} == {1, 2, 4}
  assert {v["user"] for v in test} == set(range(36, 56))
  assert oulu_npu.parse("1_1_01_1")["species"] == "live"
  assert [oulu_npu.parse(f"1_1_01_{f}")["species"] for f in (2, 3, 4, 5)] == [
      "print", "print", "replay", "replay"]


CASIA = {
    "official": {"train": (60, 180), "dev": (0, 0), "test": (90, 270)},
    **{f"quality/{q}": {"train": (20, 60), "dev": (0, 0), "test": (30, 90)}
       for q in casia_mfsd.QUALITIES},
    **{f"attack/{a}": {"train": (60, 60), "dev": (0, 0), "test": (90, 90)}
       for a in casia_mfsd.ATTACKS},
}


@pytest.mark.parametrize("protocol", sorted(CASIA))
def test_casia_mfsd_published_counts(protocol):
  assert len(casia_mfsd.all_videos()) == 600
  assert _counts(casia_mfsd, protocol, casia_mfsd.all_videos()) == CASIA[protocol]


def test_casia_mfsd_names():
  assert casia_mfsd.parse("test_release/1/HR_4") == dict(
      split="test", subject=21, file="HR_4", quality="high", kind="video", species="replay")
  assert casia_mfsd.parse("train_release/20/4")["kind"] == "warped"
  for bad in ("train_release/21/1", "test_release/1/9", "train/1/1", "train_release/1"):
    with pytest.raises(ValueError, match="CASIA-MFSD"):
      casia_mfsd.parse(bad)


REPLAY_ATTACKS = {"grandtest": (300, 300, 400), "print": (60, 60, 80), "mobile": (120, 120, 160),
                  "highdef": (120, 120, 160), "photo": (180, 180, 240), "video": (120, 120, 160),
                  "digitalphoto": (120, 120, 160)}


@pytest.mark.parametrize("protocol", sorted(REPLAY_ATTACKS))
def test_replay_attack_published_counts(protocol):
  names = _replay_names()
  assert len(names) == 1200
  counts = _counts(replay_attack, protocol, names)
  assert {s: c[0] for s, c in counts.items()} == {"train": 60, "dev": 60, "test": 80}
  assert tuple(counts[s][1] for s in SPLITS) == REPLAY_ATTACKS[protocol]


def test_replay_attack_names():
  v = replay_attack.parse(
      "devel/attack/hand/attack_mobile_client023_session01_mobile_video_adverse")
  assert v == dict(split="dev", client=23, light="adverse", kind="attack", support="hand",
                   device="mobile", sample="video", species="replay")
  assert replay_attack.parse(
      "test/real/client101_session01_webcam_authenticate_controlled_2")["species"] == "live"
  for bad in ("enroll/train/client001_session01_webcam_enroll_adverse",
              "train/attack/fixed/attack_print_client001_session01_mobile_video_adverse",
              "train/real/client001_session01_webcam_authenticate_adverse_3"):
    with pytest.raises(ValueError, match="Replay-Attack"):
      replay_attack.parse(bad)


def test_msu_mfsd_published_counts():
  names = msu_mfsd.all_videos()
  assert len(names) == len(set(names)) == 280
  assert len(msu_mfsd.TRAIN_SUBJECTS) == 15 and len(msu_mfsd.TEST_SUBJECTS) == 20
  assert _counts(msu_mfsd, "official", names) == {"train": (30, 90), "dev": (0, 0),
                                                  "test": (40, 120)}
  v = msu_mfsd.parse("scene01/attack/attack_client055_laptop_SD_printed_photo_scene01")
  assert (v["split"], v["species"], v["camera"]) == ("train", "print", "laptop")
  with pytest.raises(ValueError, match="train_sub_list"):
    msu_mfsd.parse("scene01/real/real_client004_laptop_SD_scene01")  # not in either list


def _siw_m_names(live_train=400, live_test=260):
  """Names with the published number of attack videos per type."""
  names = [f"Live/Train/Live_{i}" for i in range(live_train)]
  names += [f"Live/Test/Live_{i}" for i in range(live_test)]
  for species, (folder, prefix) in siw_m.FOLDERS.items():
    prefix = prefix if isinstance(prefix, str) else prefix[0]
    names += [f"{folder}/{prefix}_{i}" for i in range(siw_m.PUBLISHED_COUNTS[species])]
  return names


@pytest.mark.parametrize("held_out", siw_m.ATTACKS)
def test_siw_m_leave_one_out_counts(held_out):
  assert sum(siw_m.PUBLISHED_COUNTS.values()) == 968 and len(siw_m.ATTACKS) == 13
  names = _siw_m_names()
  protocol = f"leave_out/{held_out}"
  train = siw_m.split_videos(protocol, "train", names)
  test = siw_m.split_videos(protocol, "test", names)
  assert siw_m.split_videos(protocol, "dev", names) == []
  n = siw_m.PUBLISHED_COUNTS[held_out]
  assert len(train) == 400 + 968 - n and len(test) == 260 + n
  species_test = {siw_m.parse(x)["species"] for x in test}
  assert species_test == {"live", held_out}
  assert held_out not in {siw_m.parse(x)["species"] for x in train}


def test_siw_m_names():
  assert siw_m.parse("Partial/PaperCut/Partial_Mouth_3")["species"] == "partial_paper"
  assert siw_m.parse("Mask/MannequinHead/Mask_Mann_40")["species"] == "mannequin"
  assert siw_m.parse("Live/Test/Live_7") == dict(species="live", live_split="test")
  for bad in ("Live/Live_1", "Mask/HalfMask/Mask_Trans_1", "Replay/Replay_x"):
    with pytest.raises(ValueError, match="SiW-M"):
      siw_m.parse(bad)
  assert siw_m.SPECIES[0] == "live" and all(" " not in s for s in siw_m.SPECIES)


def _all_sources():
  names = {"oulu_npu": oulu_npu.all_videos(), "casia_mfsd": casia_mfsd.all_videos(),
           "replay_attack": _replay_names(), "msu_mfsd": msu_mfsd.all_videos()}
  return [dict(dataset=d, video_id=n) for d, ns in names.items() for n in ns]


OCIM = {"to_msu_mfsd": (2400, 160), "to_casia_mfsd": (2280, 360),
        "to_replay_attack": (2160, 480), "to_oulu_npu": (720, 1800)}


@pytest.mark.parametrize("protocol", sorted(OCIM))
def test_ocim_counts(protocol):
  records = _all_sources()
  train = ocim.split_videos(protocol, "train", records)
  test = ocim.split_videos(protocol, "test", records)
  assert (len(train), len(test)) == OCIM[protocol]
  target = protocol[3:]
  assert {x.split(":")[0] for x in test} == {target}
  assert {x.split(":")[0] for x in train} == set(ocim.SOURCES) - {target}
  assert ocim.split_videos(protocol, "dev", records) == []
  dev = ocim.split_videos(f"{protocol}/source_dev", "dev", records)
  expected_dev = {"oulu_npu": 1350, "replay_attack": 360}
  assert len(dev) == sum(n for d, n in expected_dev.items() if d != target)
  assert ocim.split_videos(f"{protocol}/source_dev", "train", records) == train


def test_casia_replay_counts():
  records = [r for r in _all_sources() if r["dataset"] in casia_replay.SOURCES]
  get = lambda p, s: casia_replay.split_videos(p, s, records)
  assert (len(get("to_replay_attack", "train")), len(get("to_replay_attack", "test"))) == (240, 480)
  assert (len(get("to_casia_mfsd", "train")), len(get("to_casia_mfsd", "test"))) == (360, 360)
  assert len(get("to_casia_mfsd/source_dev", "dev")) == 360
  assert get("to_replay_attack/source_dev", "dev") == []  # CASIA-MFSD has no dev set
  assert get("to_replay_attack", "test")[0].startswith("replay_attack:test/")


def test_names_and_metadata_dicts_agree():
  """The issue's interface (official names) and the pipeline's (one dict per frame)."""
  names = oulu_npu.all_videos()[:300]
  frames = [dict(video_id=n, split="x", frame=f) for n in names for f in range(3)]
  for module, protocol in ((oulu_npu, "Protocol_3_1"), (oulu_npu, "Protocol_2")):
    for split in SPLITS:
      assert module.split_videos(protocol, split, names) == module.split_videos(
          protocol, split, frames)


@pytest.mark.parametrize("spec", [
    "oulu_npu/Protocol_1", "oulu_npu/Protocol_4_2", "oulu_npu/all", "casia_mfsd/official",
    "casia_mfsd/attack/cut", "replay_attack/grandtest", "msu_mfsd/official",
    "siw_m/leave_out/partial_paper", "ocim/to_msu_mfsd", "ocim/to_oulu_npu/source_dev",
    "casia_replay/to_replay_attack", "synth_fas/intra"])
def test_config_specs_resolve(spec):
  """'dataset/protocol' as configs spell it (config.parse_arg splits at the first '/')."""
  dataset, protocol = spec.split("/", 1)
  module = protocols.for_dataset(dataset)
  assert protocol in module.PROTOCOLS


def test_every_listed_protocol_runs():
  inputs = {"oulu_npu": oulu_npu.all_videos(), "casia_mfsd": casia_mfsd.all_videos(),
            "replay_attack": _replay_names(), "msu_mfsd": msu_mfsd.all_videos(),
            "siw_m": _siw_m_names(3, 3), "ocim": _all_sources()[::7],
            "casia_replay": [r for r in _all_sources() if r["dataset"] in casia_replay.SOURCES]}
  for dataset, videos in inputs.items():
    module = protocols.for_dataset(dataset)
    for protocol in module.PROTOCOLS:
      chosen = [module.split_videos(protocol, s, videos) for s in SPLITS]
      assert chosen[0] and chosen[2], (dataset, protocol)
      assert not set(chosen[0]) & set(chosen[2]), (dataset, protocol)


def test_errors_name_the_bad_input():
  with pytest.raises(ValueError, match="Protocol_5"):
    oulu_npu.split_videos("Protocol_5", "train", [])
  with pytest.raises(ValueError, match="valid"):
    oulu_npu.split_videos("Protocol_1", "valid", [])
  with pytest.raises(ValueError, match="'7_1_01_1'"):
    oulu_npu.split_videos("Protocol_1", "train", ["7_1_01_1"])
  with pytest.raises(ValueError, match="not one of the source datasets"):
    ocim.split_videos("to_msu_mfsd", "train", [dict(dataset="siw_m", video_id="Paper/Paper_1")])
  with pytest.raises(ValueError, match="to_msu"):
    ocim.split_videos("to_msu", "train", [])
  with pytest.raises(ValueError, match="no protocols for dataset 'celeba_spoof'"):
    protocols.for_dataset("celeba_spoof")
  with pytest.raises(ValueError, match="not a dataset name"):
    protocols.for_dataset("_common")
  assert protocols.sources("ocim") == ocim.SOURCES
  assert protocols.sources("oulu_npu") == ("oulu_npu",)
