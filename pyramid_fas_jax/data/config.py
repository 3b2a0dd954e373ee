"""Data settings: the fields the input pipeline reads from an experiment's ConfigDict."""

import ml_collections
from ml_collections import config_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_data_config() -> ml_collections.ConfigDict:
  """Defaults for every field the pipeline reads; experiment configs override a few.

  data.name            TFDS dataset name (synth_fas, oulu_npu, casia_mfsd, replay_attack,
                       msu_mfsd, siw_m) or a virtual cross-dataset one (ocim, casia_replay);
                       also names the protocol module (pyramid_fas_jax/protocols/<name>.py)
  data.builder_config  TFDS builder config ('tiny', 'small', 'default'; a virtual dataset
                       reads that config of each of its sources)
  data.data_dir        TFDS data dir; None = TFDS's default (~/tensorflow_datasets or
                       $TFDS_DATA_DIR). A str placeholder, None until set, so that
                       `--config.data.data_dir=DIR` can set it (a plain None field cannot
                       be overridden from the command line)
  data.protocol        protocol string, e.g. 'intra', 'cross_domain/lowlight',
                       'Protocol_4_2', 'leave_out/partial_paper', 'to_msu_mfsd' (see the
                       protocol module's PROTOCOLS)
  data.epoch_unit      what an epoch is, for num_epochs, steps_per_epoch and the lr schedule:
                       'video' (default, as the official CDCN training and the paper's
                       epochs): every training video once, at one of its stored frames drawn
                       at random, ceil(videos / batch_size) steps; 'frame': every stored frame
                       once, floor(frames / batch_size) steps (about 30x more on real data)
  data.num_workers     grain worker processes per JAX process; 0 decodes in-process (with
                       threads); -1 (default) = from the cores this process may use: one per
                       core but one, none on 2 cores or fewer (pipeline.auto_workers). The
                       saved iterator state depends on it, so a run stores the count it
                       resolved to in its config.json and resumes with that on any machine
  data.prefetch        batches read ahead, by each worker and by the process itself (with
                       one reading thread per core, shared among the workers, at most 16);
                       -1 (default) = about 4 in all, shared among the workers
                       (pipeline.auto_prefetch), stored like num_workers
  input.size           side of the square network input, pixels (depth and mask too)
  input.mean, input.std  per-channel RGB normalisation of [0, 1] pixels; ImageNet
                       statistics suit ImageNet-initialised backbones, (0.5,)*3 maps to [-1, 1].
                       Applied on the device, to the uint8 images the host sends
                       (data/normalize.py), as the colour jitter is
  input.eval_scale     face-box scale of the deterministic evaluation crop
  aug.scale_range      training crop side = U(scale_range) x the face box's longer side,
                       centred on the box (the paper's 0.8-1.3)
  aug.flip             random horizontal flip
  aug.brightness, aug.contrast, aug.saturation
                       colour jitter strengths: factors drawn from U(1 - s, 1 + s)
  aug.cutout           probability of one Cutout square on the image (labels untouched, as
                       in CDCN: the network must still infer what is under it)
  aug.cutout_size      the square's side as a fraction of input.size, drawn from U(0.1, s)
  batch_size           global training batch (all processes); must divide by process count
  eval_batch_size      global evaluation batch
  seed                 data order and augmentation seed; resume restores the iterator
                       state instead of reseeding
  """
  c = ml_collections.ConfigDict()
  c.data = ml_collections.ConfigDict(dict(
      name="synth_fas", builder_config="small", data_dir=config_dict.placeholder(str),
      protocol="intra", epoch_unit="video", num_workers=-1, prefetch=-1))
  c.input = ml_collections.ConfigDict(dict(
      size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD, eval_scale=1.0))
  c.aug = ml_collections.ConfigDict(dict(
      scale_range=(0.8, 1.3), flip=True, brightness=0.2, contrast=0.2, saturation=0.2,
      cutout=0.5, cutout_size=0.4))
  c.batch_size = 32
  c.eval_batch_size = 64
  c.seed = 0
  return c
