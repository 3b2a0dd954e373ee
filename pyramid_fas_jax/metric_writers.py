"""Metric logging without TensorFlow: metrics.jsonl plus TensorBoard event files.

clu.metric_writers needs TensorFlow, so the TensorBoard writer here encodes the two protobuf
messages it needs (Event, Summary.Value with simple_value) and the TFRecord framing by hand.
Only process 0 writes (`make_writer` returns a no-op writer elsewhere).
"""

import json
import math
import pathlib
import socket
import struct
import time

import jax
import numpy as np


def _crc32c_table():
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for b in data:
    crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
  length = struct.pack("<Q", len(data))
  return (length + struct.pack("<I", masked_crc32c(length)) + data
          + struct.pack("<I", masked_crc32c(data)))


def _varint(n: int) -> bytes:
  out = bytearray()
  n &= (1 << 64) - 1
  while True:
    b = n & 0x7F
    n >>= 7
    if n:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def _bytes_field(field: int, payload: bytes) -> bytes:
  return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def event(wall_time: float, step: int, *, file_version: str | None = None,
          scalars: dict[str, float] | None = None) -> bytes:
  """A serialized tensorflow.Event: wall_time (1, double), step (2, int64), file_version (3) or
  summary (5) holding Summary.Value{tag (1), simple_value (2, float)} entries."""
  msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
  if file_version is not None:
    msg += _bytes_field(3, file_version.encode())
  if scalars:
    values = b"".join(
        _bytes_field(1, _bytes_field(1, tag.encode()) + _varint(2 << 3 | 5)
                     + struct.pack("<f", value))
        for tag, value in scalars.items())
    msg += _bytes_field(5, values)
  return msg


class TensorBoardWriter:
  """Scalars into `logdir/events.out.tfevents.<time>.<host>`, readable by TensorBoard."""

  def __init__(self, logdir):
    logdir = pathlib.Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    self.path = logdir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}"
    self._file = open(self.path, "ab")
    self._file.write(tfrecord(event(now, 0, file_version="brain.Event:2")))
    self._file.flush()

  def write_scalars(self, step: int, scalars: dict[str, float]):
    self._file.write(tfrecord(event(time.time(), step, scalars=scalars)))
    self._file.flush()

  def close(self):
    self._file.close()


class JsonlWriter:
  """One JSON object per line: {"step": N, "time": t, name: value, ...}."""

  def __init__(self, path):
    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._file = open(self.path, "a")

  def write_scalars(self, step: int, scalars: dict[str, float]):
    row = {"step": int(step), "time": round(time.time(), 3)}
    row.update({k: (v if math.isfinite(v) else str(v)) for k, v in scalars.items()})
    self._file.write(json.dumps(row) + "\n")
    self._file.flush()

  def close(self):
    self._file.close()


class MetricWriter:
  """Fans scalars out to every writer; converts arrays to floats once."""

  def __init__(self, writers=()):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: dict):
    if not self.writers:
      return
    values = {k: float(np.asarray(v)) for k, v in scalars.items()}
    for w in self.writers:
      w.write_scalars(step, values)

  def close(self):
    for w in self.writers:
      w.close()


def make_writer(workdir) -> MetricWriter:
  if jax.process_index() != 0:
    return MetricWriter()
  workdir = pathlib.Path(workdir)
  return MetricWriter([JsonlWriter(workdir / "metrics.jsonl"), TensorBoardWriter(workdir / "tb")])
