"""The grain streams of a protocol split (splits.py says which examples it holds): TFDS
ArrayRecord -> per-process shard -> shuffle -> joint augmentation -> batch -> worker processes;
then a global jax.Array on the mesh. Here: the transforms (a stored example -> a batch row), the
training and evaluation streams, the evaluation split's padding, worker and read-ahead sizing,
and `to_global_batch`.

Batches are dicts of numpy arrays, the maps in uint8 (a quarter of float32's bytes to the
device, which makes them float inside the jitted step: normalize.device_batch):
  image    uint8 (B, H, W, 3)    RGB, cropped, flipped and resized; the device normalises it with
                                 input.mean / input.std
  depth    uint8 (B, H, W)       the depth label * 255 (0 for attacks), at the image's resolution
  mask     uint8 (B, H, W)       exactly 0/1, 1 = live pixel
  label    int32 (B,)            1 = bona fide
  species  int32 (B,)            index into the dataset's species list (0 = live)
  depth_valid float32 (B,)       1 where `depth` is a label: attacks and live frames with a
                                 depth fit; 0 for a live frame stored without one (the depth
                                 losses weight samples by it). Builds without the feature: 1
training batches of a config with colour jitter or Cutout add their parameters (jitter,
jitter_order, cutout: normalize.AUGMENT_KEYS), which to_global_batch sends along;
and host-only metadata that never goes to the device:
  video_id (B,) str, species_name (B,) str, frame (B,) int32; evaluation batches add
  valid (B,) bool (False on the rows that pad the last batch) and index (B,) int32 (position in
  the split's `examples`, splits.Split).
"""

import dataclasses
import signal

import grain
import jax
import numpy as np
from absl import flags

from pyramid_fas_jax.data import augment, cpus, normalize, splits

DEVICE_KEYS = ("image", "depth", "mask", "label", "species", "depth_valid")


def _text(x) -> str:
  return x.decode() if isinstance(x, bytes) else str(x)


@dataclasses.dataclass(frozen=True)
class _Transform:
  """Decoded TFDS example -> batch row. Plain fields only: it is pickled to grain workers.

  The row's maps are uint8 and its augmentation parameters drawn (normalize.py says what the
  device makes of them); `mean` and `std` are the normalisation the device applies."""
  species: tuple[str, ...]
  size: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  eval_scale: float
  aug: augment.AugmentParams | None  # None: deterministic evaluation crop

  def __call__(self, example: dict, rng: np.random.Generator | None = None) -> dict:
    if self.aug is None:
      matrix = augment.eval_matrix(self, example["image"].shape[:2], example["face_box"])
      image, depth, mask = augment.warp(example, matrix, self.size)
      drawn = {}
    else:
      image, depth, mask, drawn = self._augmented(example, rng)
    species = int(example["species"])
    return {
        "image": image, "depth": depth, "mask": mask,
        "label": np.int32(example["label"]), "species": np.int32(species),
        "depth_valid": np.float32(example.get("depth_valid", True)),
        "video_id": _text(example["video_id"]), "species_name": self.species[species],
        "frame": np.int32(example["frame"]), "valid": np.bool_(True), **drawn,
    }

  def _augmented(self, example: dict, rng: np.random.Generator) -> tuple:
    # The draws keep the order the host-side augmentation had (scale, flip, jitter factors and
    # order, Cutout), so a seed gives the batches it gave then.
    scale = rng.uniform(*self.aug.scale_range)
    flip = bool(self.aug.flip and rng.random() < 0.5)
    matrix = augment.crop_matrix(example["face_box"], example["image"].shape[:2], scale,
                                 self.size, flip)
    image, depth, mask = augment.warp(example, matrix, self.size)
    drawn = {}
    factors, order = augment.jitter_params(rng, self.aug)
    if self.aug.brightness > 0 or self.aug.contrast > 0 or self.aug.saturation > 0:
      drawn.update(jitter=factors, jitter_order=order)
    if self.aug.cutout > 0:
      drawn["cutout"] = augment.cutout_box(rng, self.aug, self.size)
    return image, depth, mask, drawn


def _transform(config, species, train: bool) -> _Transform:
  aug = None
  if train:
    a = config.aug
    aug = augment.AugmentParams(
        scale_range=tuple(a.scale_range), flip=bool(a.flip), brightness=float(a.brightness),
        contrast=float(a.contrast), saturation=float(a.saturation), cutout=float(a.cutout),
        cutout_size=float(a.cutout_size))
  return _Transform(species=tuple(species), size=int(config.input.size),
                    mean=tuple(config.input.mean), std=tuple(config.input.std),
                    eval_scale=float(config.input.eval_scale), aug=aug)


def _processes(process_index, process_count) -> tuple[int, int]:
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  if not 0 <= pi < pc:
    raise ValueError(f"process_index={pi} is not in [0, process_count={pc})")
  return pi, pc


def _per_process(global_batch: int, pc: int, what: str) -> int:
  if global_batch <= 0 or global_batch % pc:
    raise ValueError(f"{what}={global_batch} must be a positive multiple of the process "
                     f"count {pc}: each process loads {what} / {pc} examples")
  return global_batch // pc


AUTO = -1  # data.num_workers / data.prefetch: chosen from this machine's cores


def auto_workers(n_cores: int) -> int:
  """data.num_workers=-1: a worker process per core but one, left to the train loop (which
  dispatches steps and transfers batches); none on 2 cores or fewer, where a worker process would
  only take turns with the loop on the same cores (benchmarks/input_pipeline.py measures it);
  at most 16, grain's own limit on reading threads."""
  return 0 if n_cores <= 2 else min(n_cores - 1, 16)


def auto_prefetch(workers: int) -> int:
  """data.prefetch=-1: about 4 batches read ahead in all, shared among the workers (at least one
  each): enough to cover a slow batch, without holding many batches' memory per worker."""
  return max(1, -(-4 // max(workers, 1)))


def num_workers(config) -> int:
  """data.num_workers with -1 (auto) resolved for this machine (auto_workers)."""
  workers = int(config.data.num_workers)
  if workers == AUTO:
    return auto_workers(cpus.cores())
  if workers < 0:
    raise ValueError(f"data.num_workers={workers} must be >= 0 (0 = in-process) or -1 (auto)")
  return workers


def prefetch(config) -> int:
  """data.prefetch with -1 (auto) resolved (auto_prefetch)."""
  ahead = int(config.data.prefetch)
  if ahead == AUTO:
    return auto_prefetch(num_workers(config))
  if ahead < 1:
    raise ValueError(f"data.prefetch={ahead} must be >= 1 or -1 (auto)")
  return ahead


def resolve_auto(config, stored: dict | None = None):
  """A copy of `config` with data.num_workers and data.prefetch at -1 (auto) replaced by numbers,
  once per run: the values of `stored` (the run's stored config, as a JSON tree) where it has
  them, since grain restores a saved iterator state only with the worker count that saved it,
  so a run resumed on a machine with other cores goes on with its own; else this machine's.
  train writes the result into the run's config.json."""
  config = config.copy_and_resolve_references()
  old = (stored or {}).get("data", {})
  for field, resolve in (("num_workers", num_workers), ("prefetch", prefetch)):
    if int(config.data[field]) == AUTO:
      value = old.get(field)
      config.data[field] = int(value) if value is not None and int(value) != AUTO else (
          resolve(config))
  return config


def _read_options(config, per_element: int = 1) -> grain.ReadOptions:
  """Reading threads (the cores, shared among data.num_workers processes, at most grain's 16)
  and read-ahead (data.prefetch batches of `per_element` examples, or one element per thread).

  grain's default read-ahead is 500 elements; an element of the training stream is a whole
  batch, so it would decode 500 batches ahead: minutes of CPU at start-up, taken from the first
  compile, and gigabytes of memory at 256x256.
  """
  threads = max(1, min(16, cpus.cores() // max(num_workers(config), 1)))
  ahead = max(prefetch(config) * per_element, threads)
  return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=ahead)


def _prefetch(ds: grain.IterDataset, config) -> grain.IterDataset:
  workers = num_workers(config)
  if workers == 0:
    return ds
  if not flags.FLAGS.is_parsed():
    # grain's workers read grain's absl flags; outside an absl app (tests, notebooks) they
    # have never been parsed, so take their defaults.
    flags.FLAGS.mark_as_parsed()
  ds = ds.mp_prefetch(grain.MultiprocessingOptions(
      num_workers=workers, per_worker_buffer_size=prefetch(config)),
      worker_init_fn=_ignore_sigint)
  # Workers hand over shared-memory arrays; plain copies free the shared memory at once
  # instead of whenever the caller drops the batch (or at interpreter exit, noisily).
  return ds.map(_plain_arrays)


def _ignore_sigint(worker_index: int, worker_count: int) -> None:
  # Ctrl-C reaches the terminal's whole process group: the main process stops the run (a
  # checkpoint, or one line) and closes its workers; a worker's own KeyboardInterrupt would only
  # add a traceback per worker.
  del worker_index, worker_count
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _plain_arrays(batch: dict) -> dict:
  return {k: np.array(v) for k, v in batch.items()}


@dataclasses.dataclass(frozen=True)
class _FrameOfVideo:
  """A video (the positions of its stored frames in `examples`) -> one frame drawn uniformly at
  random, transformed. grain seeds `rng` from (seed, position in the stream); the draw comes
  first and the augmentation goes on with the same generator, so the two are independent."""
  examples: splits.Records
  transform: _Transform

  def __call__(self, frames: tuple[int, ...], rng: np.random.Generator) -> dict:
    return self.transform(self.examples[frames[int(rng.integers(len(frames)))]], rng)


def _train_stream(examples, transform, seed: int, global_batch: int,
                  videos: list[tuple[int, ...]] | None = None) -> grain.MapDataset:
  """The global training stream, one example per position, endless; `examples` is random
  access to the split's stored frames and `transform(example, rng)` makes a batch row.

  videos=None (epoch_unit 'frame'): every stored frame once per epoch, in an order reshuffled
  every epoch from `seed`; the stream runs across epoch boundaries.

  Otherwise (epoch_unit 'video', `videos` the frames of each video: splits.Split.videos): as the
  official CDCN training (Spoofing_train: one item per video of the protocol list, one of its frames
  drawn uniformly at random each time; DataLoader(shuffle=True) every epoch) each epoch visits every
  video once, in an order reshuffled every epoch from `seed`, at a frame drawn from the position's
  generator. Where we must differ: the jitted step has one batch shape, so there is no short last
  batch (the official loader's drop_last=False); the epoch is instead ceil(videos / batch) whole
  global batches, the videos in order, then the first ceil(videos / batch) * batch - videos of that
  order again, each at a frame drawn anew. So an epoch has the official number of optimizer steps,
  every epoch starts on a batch boundary, and step s is in epoch s // steps_per_epoch for the data
  and the lr schedule alike. The frame is drawn among the frames the build stored (up to 30 spread
  over the video with builder config `default`); the official code draws among every frame it
  extracted.
  """
  if videos is None:
    ds = grain.MapDataset.source(examples).shuffle(seed=seed).repeat(None)
    return ds.random_map(transform, seed=seed)
  order = grain.MapDataset.source(videos).shuffle(seed=seed)
  # grain's concatenation and slices read epoch e of `order` in epoch e of the result, so every
  # part of an epoch follows that epoch's order.
  whole, rest = divmod(splits.epoch_steps(len(videos), global_batch) * global_batch, len(videos))
  epoch = grain.MapDataset.concatenate([order] * whole + ([order[:rest]] if rest else []))
  return epoch.repeat(None).random_map(_FrameOfVideo(examples, transform), seed=seed)


def make_train_iterator(config, split: splits.Split | None = None, *,
                        process_index: int | None = None,
                        process_count: int | None = None) -> grain.DatasetIterator:
  """Infinite iterator of this process's training batches (config.batch_size / processes) of
  `split`, by default the protocol's train split (splits.of(config.data, 'train')).

  The stream is defined globally (see _train_stream): data.epoch_unit 'video' visits every
  training video of the protocol once per epoch at one stored frame drawn at random, 'frame'
  every stored frame; the order is reshuffled every epoch from config.seed, cut into global
  batches, and process p takes rows [p * b, (p + 1) * b) of each. The frame drawn and the
  augmentation come from a generator seeded by (seed, position in the global stream). So the
  global batch of every step is the same whatever the number of processes, and `get_state()` /
  `set_state()` resume the exact same batches. Batches are formed before the worker processes
  deal them out, so data.num_workers does not change the stream, but it does shape the saved
  state: restore a state with the num_workers that saved it (train stores the count that
  data.num_workers=-1 resolves to: resolve_auto).
  """
  pi, pc = _processes(process_index, process_count)
  per = _per_process(int(config.batch_size), pc, "batch_size")
  unit = splits.epoch_unit(config.data)
  split = splits.of(config.data, "train") if split is None else split
  n = len(split.keys)
  if unit == "frame" and n < pc * per:
    raise ValueError(f"{split.split} split of {split.tfds_name} / {split.protocol} has "
                     f"{n} examples, fewer than one global batch ({pc * per})")
  videos = list(split.videos.values()) if unit == "video" else None
  ds = _train_stream(split.source(), _transform(config, split.species, train=True),
                     int(config.seed), pc * per, videos)
  # Chunks of `per` consecutive examples; chunk t * pc + p is process p's share of batch t.
  ds = ds.batch(per, drop_remainder=True)[pi::pc]
  return iter(_prefetch(ds.to_iter_dataset(_read_options(config)), config))


class _Padded:
  """This process's share of an evaluation split, padded to whole batches."""

  def __init__(self, records: splits.Records, positions: np.ndarray, n: int):
    self._records, self._positions, self._n = records, positions, n

  def __len__(self) -> int:
    return len(self._positions)

  def __getitem__(self, i: int) -> dict:
    pos = int(self._positions[i])
    example = dict(self._records[pos % self._n])
    example["_valid"] = pos < self._n
    example["_index"] = pos % self._n
    return example


@dataclasses.dataclass(frozen=True)
class _EvalTransform:
  inner: _Transform

  def __call__(self, example: dict) -> dict:
    out = self.inner(example)
    out["valid"] = np.bool_(example["_valid"])
    out["index"] = np.int32(example["_index"])
    return out


def make_eval_iterator(config, split: str | splits.Split, *, process_index: int | None = None,
                       process_count: int | None = None, batch_size: int | None = None):
  """One deterministic pass over protocol split `split` ('dev' or 'test'; 'train' works too; a
  name of a split of config.data, or a splits.Split).

  No augmentation: a centred crop of input.eval_scale x the face box. The split is padded to
  whole global batches (config.eval_batch_size unless `batch_size`); padding rows repeat real
  examples with valid=False, so every process yields the same number of batches and every
  example is scored exactly once across processes.
  """
  pi, pc = _processes(process_index, process_count)
  global_batch = int(config.eval_batch_size if batch_size is None else batch_size)
  per = _per_process(global_batch, pc, "eval_batch_size")
  split = splits.of(config.data, split) if isinstance(split, str) else split
  n = len(split.keys)
  padded = -(-n // global_batch) * global_batch
  positions = np.arange(padded)[pi::pc]
  source = _Padded(split.source(), positions, n)
  transform = _EvalTransform(_transform(config, split.species, False))
  ds = grain.MapDataset.source(source).map(transform)
  ds = ds.to_iter_dataset(_read_options(config, per)).batch(per, drop_remainder=False)
  return iter(_prefetch(ds, config))


def to_global_batch(batch: dict, mesh: jax.sharding.Mesh, keys=None) -> dict:
  """Process-local numpy batch -> global jax.Arrays sharded along the mesh axis 'data': `keys`,
  by default DEVICE_KEYS and the augmentation parameters the batch carries."""
  if keys is None:
    keys = DEVICE_KEYS + tuple(k for k in normalize.AUGMENT_KEYS if k in batch)
  if "data" not in mesh.axis_names:
    raise ValueError(f"mesh axes {mesh.axis_names} have no 'data' axis to shard the batch on")
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  missing = [k for k in keys if k not in batch]
  if missing:
    raise KeyError(f"batch has no {missing}; it has {sorted(batch)}")
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(batch[k]))
          for k in keys}
