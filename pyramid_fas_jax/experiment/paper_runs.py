"""How long a paper run is: per dataset and protocol, the training videos and the optimizer steps
of the paper's two recipes (sec. IV-B) in the configs' epoch unit (data.epoch_unit 'video': an
epoch is one stored frame of every training video, as in the official CDCN training).

  python -m pyramid_fas_jax.experiment.paper_runs     # the README's "Steps of a paper run" table
  python -m pyramid_fas_jax.experiment.paper_runs --datasets   # its per-dataset summary

No data is read: the training videos are what each protocol module selects from the official
names (OULU-NPU, CASIA-MFSD and MSU-MFSD list theirs; Replay-Attack's follow from its clients per
set; SiW-M's from its published counts), and OCIM and CASIA<->Replay add up their sources. The
recipes are those of pyramid_fas_jax.experiment.config: `classification_config` (ResNet50,
VGG16, ...: SGD, batch 32, 80 epochs) and `fcn_config` (CDCN, CDCN++, DepthNet: Adam, batch 8,
800 epochs, lr halved after epoch 500). `splits.steps_per_epoch` gives the same numbers from a
built dataset, less any video the build could not store (`face_report.json`).
"""

from pyramid_fas_jax import protocols
from pyramid_fas_jax.experiment import config as fas
from pyramid_fas_jax.protocols import casia_mfsd, msu_mfsd, oulu_npu, replay_attack, siw_m

DATASETS = ("oulu_npu", "casia_mfsd", "replay_attack", "msu_mfsd", "siw_m", "ocim",
            "casia_replay")
# Replay-Attack's clients per archive set; the protocols depend on the set, not on the number.
REPLAY_CLIENTS = {"train": range(1, 16), "devel": range(16, 31), "test": range(101, 121)}
# SiW-M publishes 660 live videos but not how many its Live/Train folder holds; its protocol
# trains on 60% of the live videos (Liu et al., CVPR 2019, sec. 5.1). Attacks are exact.
SIW_M_LIVE_TRAIN = 396


def official_names(dataset: str) -> list[str]:
  """The video names of stored dataset `dataset`, enough for its protocols' training splits."""
  if dataset == "oulu_npu":
    return oulu_npu.all_videos()
  if dataset == "casia_mfsd":
    return casia_mfsd.all_videos()
  if dataset == "msu_mfsd":
    return msu_mfsd.all_videos()
  if dataset == "replay_attack":
    return [n for archive_set, clients in REPLAY_CLIENTS.items() for c in clients
            for n in replay_attack.client_videos(archive_set, c)]
  if dataset == "siw_m":
    names = [f"Live/Train/Live_{i}" for i in range(1, SIW_M_LIVE_TRAIN + 1)]
    for species, (folder, prefix) in siw_m.FOLDERS.items():
      prefix = prefix if isinstance(prefix, str) else prefix[0]
      names += [f"{folder}/{prefix}_{i}" for i in range(1, siw_m.PUBLISHED_COUNTS[species] + 1)]
    return names
  raise ValueError(f"no official names for {dataset!r}; expected one of "
                   "oulu_npu, casia_mfsd, replay_attack, msu_mfsd, siw_m")


def train_videos(dataset: str, protocol: str) -> int:
  """Training videos of `protocol` of `dataset` (a stored or a virtual dataset)."""
  module = protocols.for_dataset(dataset)
  sources = protocols.sources(dataset)
  if sources == (dataset,):
    names = official_names(dataset)
  else:
    names = [protocols.qualified(s, n) for s in sources for n in official_names(s)]
  return len(module.split_videos(protocol, "train", names))


def _recipes(dataset: str, protocol: str) -> tuple:
  arg = f"{dataset}/{protocol}"
  return (fas.classification_config(arg, "resnet50", "resnet_tiny"),
          fas.fcn_config(arg, "cdcn", "cdcn_tiny", theta=0.7, predictor_widths=(128, 64)))


def _rows_of(dataset: str) -> list[tuple[str, int]]:
  """(label, training videos) per protocol; consecutive protocols that differ only after their
  last '_' or '/' and train on as many videos share a row ('Protocol_3_{1,...,6}'). The
  '/source_dev' variants train on the same videos and are left out."""
  rows = []  # [prefix, [suffixes], videos]
  for protocol in protocols.for_dataset(dataset).PROTOCOLS:
    if protocol.endswith("/source_dev"):
      continue
    cut = max(protocol.rfind("_"), protocol.rfind("/")) + 1
    prefix, suffix = protocol[:cut], protocol[cut:]
    videos = train_videos(dataset, protocol)
    if rows and prefix and rows[-1][0] == prefix and rows[-1][2] == videos:
      rows[-1][1].append(suffix)
    else:
      rows.append([prefix, [suffix], videos])
  return [(prefix + (s[0] if len(s) == 1 else "{" + ",".join(s) + "}"), v) for prefix, s, v in rows]


def rows() -> list[dict]:
  """One dict per table row: dataset, protocols (label), videos, and per recipe its batch,
  epochs, steps per epoch, steps and (where its lr steps down) the step after which it does."""
  out = []
  for dataset in DATASETS:
    for label, videos in _rows_of(dataset):
      first = label.replace("{", "").split(",")[0].rstrip("}")
      row = dict(dataset=dataset, protocols=label, videos=videos, recipes=[])
      for cfg in _recipes(dataset, first):
        per_epoch = -(-videos // cfg.batch_size)  # = splits.steps_per_epoch for 'video'
        # optim.make_schedule: the lr steps down at the start of epoch lr_step_epochs (1-based).
        lr_step = ((cfg.optim.lr_step_epochs - 1) * per_epoch if cfg.optim.schedule == "step"
                   else None)
        row["recipes"].append(dict(batch=cfg.batch_size, epochs=cfg.num_epochs,
                                   steps_per_epoch=per_epoch, steps=cfg.num_epochs * per_epoch,
                                   lr_step=lr_step, lr_step_epochs=cfg.optim.lr_step_epochs))
      out.append(row)
  return out


def markdown_table() -> str:
  """The README's table."""
  table = rows()
  sgd, adam = table[0]["recipes"]
  head = ("| `dataset/protocol` | train videos "
          f"| SGD, batch {sgd['batch']}: steps/epoch | {sgd['epochs']} epochs: steps "
          f"| Adam, batch {adam['batch']}: steps/epoch | {adam['epochs']} epochs: steps "
          f"| Adam: lr halved from epoch {adam['lr_step_epochs']}, after step |")
  lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
  for r in table:
    s, a = r["recipes"]
    name = f"`{r['dataset']}/{r['protocols']}`" + (" *" if r["dataset"] == "siw_m" else "")
    lines.append(f"| {name} | {r['videos']:,} | {s['steps_per_epoch']:,} | {s['steps']:,} "
                 f"| {a['steps_per_epoch']:,} | {a['steps']:,} | {a['lr_step']:,} |")
  return "\n".join(lines) + "\n"


# Per stored dataset: its main protocol (the one the summary quotes steps for) and build command.
_SUMMARY = {
    "oulu_npu": ("Protocol_1", "--manual_dir=/data/Oulu_NPU"),
    "casia_mfsd": ("official", "--manual_dir=/data/CASIA_faceAntisp"),
    "replay_attack": ("grandtest", "--manual_dir=/data/replayattack"),
    "msu_mfsd": ("official", "--manual_dir=/data/MSU-MFSD"),
    "siw_m": ("leave_out/print", "--manual_dir=/data/SiW-M"),
}


def archive_videos(dataset: str) -> int:
  """Videos of the full release of stored dataset `dataset`."""
  if dataset == "siw_m":
    return siw_m.LIVE_VIDEOS + sum(siw_m.PUBLISHED_COUNTS.values())
  return len(official_names(dataset))


def dataset_table() -> str:
  """The README's per-dataset summary: build command, videos, frames the `default` build keeps
  at most, the epoch unit and a paper run's steps on the dataset's main protocol."""
  from pyramid_fas_jax.data import real_builder

  default = next(c for c in real_builder.CONFIGS if c.name == "default")
  lines = ["| dataset | build (`python -m pyramid_fas_jax.data.builders ...`) | videos "
           f"| frames stored (`default`: every {default.frame_step}th, at most "
           f"{default.max_frames} a video) | epoch | paper run: SGD / Adam steps |",
           "|---|---|---:|---:|---|---|"]
  for dataset, (protocol, flags) in _SUMMARY.items():
    videos = archive_videos(dataset)
    train = train_videos(dataset, protocol)
    sgd, adam = (cfg.num_epochs * -(-train // cfg.batch_size)
                 for cfg in _recipes(dataset, protocol))
    lines.append(f"| `{dataset}` | `{dataset} {flags}` | {videos:,} "
                 f"| <= {videos * default.max_frames:,} | {train:,} training videos of "
                 f"`{protocol}`, one random stored frame each | {sgd:,} / {adam:,} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  import sys

  print(dataset_table() if "--datasets" in sys.argv[1:] else markdown_table(), end="")
