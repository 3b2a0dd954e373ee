"""Which examples a protocol split holds: the metadata side of the data, no grain and no JAX.

`of(config.data, split)` is the Split of protocol split `split` ('train', 'dev', 'test') of the
dataset config.data describes (name, protocol, builder_config, data_dir), one object per process
for the same data and split. Everything it knows is read on first use, from the metadata index
each stored split keeps beside its records (metadata_index.py), once per process; builds
without one are scanned, with a warning. It answers:
  exists       whether the protocol defines the split (cross-dataset protocols may have no dev)
  keys         ((stored dataset, stored split), index) of every example, in storage order
  examples     their metadata (video_id, species, label, frame, subject, ...), in that order: the
               order of the `index` field of evaluation batches
  videos       video id -> positions of its stored frames in `examples`
  species      the species list, 'live' first; batches' `species` index into it
  virtual      whether the dataset reads several stored datasets as one
  unacquired   the split's videos without any stored frame, failures to acquire
and `source()` gives random access to its decoded examples, which the grain streams of
pipeline.py read.

A virtual dataset (data.name 'ocim' or 'casia_replay') reads the stored datasets its protocol
module lists in SOURCES as one: species renumbered into their union ('live' first), videos
named '<dataset>:<official name>'.

What an epoch is (data.epoch_unit) is a question about the training split too: `epoch_size`
and `steps_per_epoch` answer it.

A dataset that is not built raises DatasetNotBuiltError (`require_built` asks before a command
writes anything), a record file that cannot be read UnreadableRecordError; both name the
data_dir or file and the build command that remedies it (errors.InputError: one line, exit 2).
"""

import dataclasses
import functools
import pathlib

import numpy as np

from pyramid_fas_jax import errors, protocols


class DatasetNotBuiltError(errors.InputError, FileNotFoundError):
  """The dataset a config names is not built in the data_dir it is looked for in."""


class UnreadableRecordError(errors.InputError):
  """A stored record file is truncated or corrupt."""


def _text(x) -> str:
  return x.decode() if isinstance(x, bytes) else str(x)


def _tfds_name(name: str, builder_config: str | None) -> str:
  return f"{name}/{builder_config}" if builder_config else name


def _build_command(name: str, builder_config, data_dir, overwrite: bool = False) -> str:
  """README's build command of dataset `name`/`builder_config` into `data_dir`."""
  where = f" --data_dir={data_dir}" if data_dir else ""
  config = f" --config={builder_config}" if builder_config else ""
  again = " --overwrite" if overwrite else ""
  command = f"`python -m pyramid_fas_jax.data.builders {name}{config}{where}{again}"
  if name == "synth_fas":
    # The notebooks call the Python form.
    return (f"{command}` (in Python: pyramid_fas_jax.data.builders.build('synth_fas', "
            f"{data_dir!r}, config={builder_config!r}{', overwrite=True' if overwrite else ''}))")
  return (f"{command} --manual_dir=<the official archive, extracted>` (see "
          f"datasets/{name}/README.md)")


def _load_dataset(name: str, builder_config, data_dir, decoders) -> dict:
  # Imported here: questions a process has already asked (the cached metadata) need no TFDS.
  import tensorflow_datasets as tfds

  from pyramid_fas_jax.data import builders
  builders.build_on_first_use(name, builder_config, data_dir)  # SynthFAS only: no archive
  try:
    return tfds.data_source(_tfds_name(name, builder_config), data_dir=data_dir, download=False,
                            decoders=decoders)
  except Exception as e:  # TFDS raises several types for a dataset that is not there
    # TFDS's own message (chained below) lists every dataset it knows; lead with ours.
    looked_in = data_dir or tfds.core.constants.DATA_DIR
    raise DatasetNotBuiltError(
        f"dataset {_tfds_name(name, builder_config)} is not built in data_dir={str(looked_in)!r} "
        f"({type(e).__name__}); build it with {_build_command(name, builder_config, data_dir)}, "
        "or point --config.data.data_dir at its build") from e


def require_built(data) -> None:
  """Raise DatasetNotBuiltError unless every stored dataset `data` (a config's data) reads is
  built; reads their metadata, which the splits then share."""
  _stored(data.name, data.builder_config, data.data_dir)


def _record_file(source, index: int) -> str:
  """The file holding example `index` of a TFDS data source (its split's files if unknown)."""
  try:
    instructions = source.dataset_info.splits[source.split].file_instructions
  except Exception:  # an unexpected TFDS layout: name the split's folder instead
    return f"the {source.split} files in {source.dataset_info.data_dir}"
  for instruction in instructions:
    if index < instruction.take:
      return str(instruction.filename)
    index -= instruction.take
  return ", ".join(str(i.filename) for i in instructions)


def read_example(source, index: int, dataset: str) -> dict:
  """source[index], or UnreadableRecordError naming the file and the rebuild command."""
  try:
    return source[index]
  except (RuntimeError, OSError, ValueError) as e:  # riegeli, a vanished file, a bad proto
    info = source.dataset_info
    # TFDS keeps a build in <data_dir>/<name>[/<config>]/<version>.
    data_dir = str(pathlib.Path(info.data_dir).parents[1 + bool(info.config_name)])
    raise UnreadableRecordError(
        f"record file {_record_file(source, index)} cannot be read (example {index}: "
        f"{(str(e).splitlines() or [type(e).__name__])[0][:100]}); it is truncated or corrupt: "
        f"rebuild the dataset with {_build_command(dataset, info.config_name, data_dir, True)}"
    ) from e


def _load_sources(name: str, builder_config, data_dir, decoders=None) -> dict:
  """(stored dataset, stored split) -> TFDS data source, for every dataset `name` reads:
  itself, or the SOURCES of a virtual cross-dataset protocol module."""
  return {(dataset, split): source
          for dataset in protocols.sources(name)
          for split, source in _load_dataset(dataset, builder_config, data_dir,
                                             decoders).items()}


def _is_virtual(name: str) -> bool:
  return protocols.sources(name) != (name,)


@functools.lru_cache(maxsize=8)
def _stored(name: str, builder_config: str, data_dir: str | None) -> tuple:
  """(per-example records, videos without a stored frame, species list, ((dataset, build
  version), ...)) of every stored split of every source, from the metadata indexes (no image
  decoded). The species list is the union over sources, 'live' first, for virtual datasets.

  Each record: dataset, split (stored), index (position in the split), video_id (official),
  subject, domain, device, species (name), frame, label, depth_valid."""
  from pyramid_fas_jax.data import metadata_index  # imports TFDS: see _load_dataset
  sources = _load_sources(name, builder_config, data_dir, decoders=metadata_index.SKIP_IMAGES)
  records, unacquired, species, versions = [], [], [], {}
  for (dataset, split), source in sources.items():
    versions[dataset] = str(source.dataset_info.version)
    names = source.dataset_info.features["species"].names
    species += [n for n in names if n not in species]
    stored, missing = metadata_index.load(source, dataset, split)
    records += stored
    unacquired += missing
  return tuple(records), tuple(unacquired), tuple(species), tuple(sorted(versions.items()))


def _video_key(record: dict, virtual: bool) -> str:
  """The name protocols return for a record: official, or '<dataset>:<official>'."""
  return protocols.qualified(record["dataset"], record["video_id"]) if virtual else (
      record["video_id"])


def _split_videos(name: str, protocol: str, split: str, records) -> list[str]:
  """The videos protocol `protocol` of dataset `name` puts in `split`, among those `records`
  (metadata dicts) name."""
  return protocols.for_dataset(name).split_videos(protocol, split, records)


class Records:
  """Random access to chosen ((dataset, split), index) pairs of several TFDS data sources.

  `species` (the pipeline's species list) renumbers each source's species where sources of a
  virtual dataset list theirs differently; `qualify` names videos '<dataset>:<video_id>'.
  """

  def __init__(self, sources: dict, records: list, species: tuple[str, ...] | None = None,
               qualify: bool = False):
    self._sources = sources
    self._records = records
    self._qualify = qualify
    self._remap = {}
    for key, source in sources.items():
      names = tuple(source.dataset_info.features["species"].names)
      if species is not None and names != tuple(species[:len(names)]):
        self._remap[key] = np.asarray([species.index(n) for n in names], np.int64)

  def __len__(self) -> int:
    return len(self._records)

  def __getitem__(self, i: int) -> dict:
    key, index = self._records[i]
    example = read_example(self._sources[key], index, key[0])
    if key in self._remap:
      example = dict(example, species=self._remap[key][int(example["species"])])
    if self._qualify:
      example = dict(example, video_id=protocols.qualified(key[0], _text(example["video_id"])))
    return example


@dataclasses.dataclass(frozen=True)
class Split:
  """Protocol split `split` of stored dataset(s) `name` (see the module docstring). Built by
  `of`; its lists are shared by every caller, so read them, never change them."""
  name: str
  builder_config: str | None
  data_dir: str | None
  protocol: str
  split: str

  @property
  def tfds_name(self) -> str:
    """'<name>/<builder_config>', as TFDS and the error messages name the build."""
    return _tfds_name(self.name, self.builder_config)

  @functools.cached_property
  def virtual(self) -> bool:
    return _is_virtual(self.name)

  def _metadata(self) -> tuple:
    return _stored(self.name, self.builder_config, self.data_dir)

  @property
  def species(self) -> tuple[str, ...]:
    return self._metadata()[2]

  @property
  def provenance(self) -> dict:
    """What the provenance of a score of this split records of its data: the dataset, builder
    config, protocol and split, and the build version of every stored dataset it reads."""
    return {"dataset": self.name, "builder_config": self.builder_config,
            "protocol": self.protocol, "split": self.split,
            "version": dict(self._metadata()[3])}

  @functools.cached_property
  def _chosen(self) -> list[str]:
    return _split_videos(self.name, self.protocol, self.split, self._metadata()[0])

  @property
  def exists(self) -> bool:
    """Whether the protocol defines the split (cross-dataset protocols may have no dev set)."""
    return bool(self._chosen)

  @functools.cached_property
  def examples(self) -> list[dict]:
    """Metadata of every example of the split, in storage order, no image decoded: dataset,
    split (stored), index, video_id, subject, domain, device, species (name), frame, label,
    depth_valid. Virtual datasets name videos '<dataset>:<official name>', so video ids stay
    unique across their sources. Raises ValueError where the protocol selects no example."""
    chosen = set(self._chosen)
    # The stored records themselves where the name is official: no second copy in memory.
    examples = [r if video == r["video_id"] else dict(r, video_id=video)
                for r in self._metadata()[0]
                for video in (_video_key(r, self.virtual),) if video in chosen]
    if not examples:
      raise ValueError(f"protocol {self.protocol!r} selects no examples for split "
                       f"{self.split!r} of {self.tfds_name}")
    return examples

  @functools.cached_property
  def keys(self) -> list[tuple[tuple[str, str], int]]:
    """((stored dataset, stored split), index) of every example, in the order of `examples`."""
    return [((e["dataset"], e["split"]), e["index"]) for e in self.examples]

  @functools.cached_property
  def videos(self) -> dict[str, tuple[int, ...]]:
    """Each video's stored frames, as positions in `examples`, videos in the order their first
    frame is stored. A video is what the protocol names one."""
    frames = {}
    for position, example in enumerate(self.examples):
      frames.setdefault(example["video_id"], []).append(position)
    return {video: tuple(f) for video, f in frames.items()}

  @functools.cached_property
  def unacquired(self) -> list[dict]:
    """The videos of the split that have no stored frame (no face in any sampled frame),
    sorted by video id: failures to acquire, which evaluation counts by its
    eval.failure_to_acquire rule. Each dict has video_id (qualified for virtual datasets),
    species, label, subject, domain, device, dataset and split (stored). Empty for builds
    without a metadata index."""
    records, unacquired, *_ = self._metadata()
    if not unacquired:
      return []
    # Chosen together with the stored videos, as one archive: the protocol sees every video.
    chosen = set(_split_videos(self.name, self.protocol, self.split, records + unacquired))
    picked = [dict(v, video_id=_video_key(v, self.virtual)) for v in unacquired
              if _video_key(v, self.virtual) in chosen]
    return sorted(picked, key=lambda v: v["video_id"])

  def source(self) -> Records:
    """Random access to the split's examples as TFDS decodes them (images and all), in the
    order of `examples`: species renumbered into `species`, video ids as in `examples`."""
    keys = self.keys
    sources = _load_sources(self.name, self.builder_config, self.data_dir)
    return Records(sources, keys, self.species, self.virtual)


@functools.lru_cache(maxsize=32)
def _split(*fields) -> Split:
  return Split(*fields)


def of(data, split: str) -> Split:
  """The Split `split` of the dataset `data` (a config's `data`) describes."""
  return _split(data.name, data.builder_config, data.data_dir, data.protocol, split)


EPOCH_UNITS = ("video", "frame")


def epoch_unit(data) -> str:
  """data.epoch_unit, checked."""
  unit = data.epoch_unit
  if unit not in EPOCH_UNITS:
    raise ValueError(f"data.epoch_unit={unit!r} is not one of {EPOCH_UNITS}: 'video' = one "
                     "stored frame of every training video per epoch, 'frame' = every frame")
  return unit


def epoch_steps(units: int, global_batch: int) -> int:
  """Optimizer steps per epoch of `units` videos: ceil, as the official DataLoader (batch
  global_batch, drop_last=False) takes ceil(videos / batch) steps per epoch."""
  return -(-units // global_batch)


def epoch_size(config) -> int:
  """What one epoch visits: training videos (epoch_unit 'video') or stored frames ('frame')."""
  train = of(config.data, "train")
  frames = len(train.keys)
  return len(train.videos) if epoch_unit(config.data) == "video" else frames


def steps_per_epoch(config) -> int:
  """Global batches per epoch, the unit of num_epochs and of the lr schedule's epochs.

  'video': ceil(videos / batch_size), the official CDCN training's optimizer steps per epoch
  (pipeline.py's training stream fills the last batch up). 'frame': floor(frames / batch_size),
  at least 1; that stream runs on across epoch boundaries.
  """
  batch = int(config.batch_size)
  if epoch_unit(config.data) == "video":
    return epoch_steps(epoch_size(config), batch)
  return max(epoch_size(config) // batch, 1)
