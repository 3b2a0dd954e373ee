"""The TF-free TensorBoard writer: CRC32C, TFRecord framing and the Event encoding, read back by an
independent decoder written here."""

import json
import struct

import numpy as np

from pyramid_fas_jax import metric_writers as mw


def test_crc32c_known_vectors():
  # RFC 3720 (iSCSI) check value and the all-zero 32-byte vector.
  assert mw.crc32c(b"123456789") == 0xE3069283
  assert mw.crc32c(bytes(32)) == 0x8A9136AA


def _read_varint(buf, i):
  shift = value = 0
  while True:
    b = buf[i]
    i += 1
    value |= (b & 0x7F) << shift
    shift += 7
    if not b & 0x80:
      return value, i


def _fields(buf):
  i, out = 0, []
  while i < len(buf):
    key, i = _read_varint(buf, i)
    field, wire = key >> 3, key & 7
    if wire == 0:
      v, i = _read_varint(buf, i)
    elif wire == 1:
      v, i = struct.unpack("<d", buf[i:i + 8])[0], i + 8
    elif wire == 5:
      v, i = struct.unpack("<f", buf[i:i + 4])[0], i + 4
    else:
      n, i = _read_varint(buf, i)
      v, i = buf[i:i + n], i + n
    out.append((field, v))
  return out


def _records(path):
  data = path.read_bytes()
  i, records = 0, []
  while i < len(data):
    (n,) = struct.unpack("<Q", data[i:i + 8])
    assert struct.unpack("<I", data[i + 8:i + 12])[0] == mw.masked_crc32c(data[i:i + 8])
    payload = data[i + 12:i + 12 + n]
    assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == mw.masked_crc32c(payload)
    records.append(payload)
    i += 16 + n
  return records


def test_event_file_round_trip(tmp_path):
  w = mw.make_writer(tmp_path)
  w.write_scalars(7, {"train/loss": np.float32(0.25), "lr": 1e-3})
  w.write_scalars(300, {"train/loss": 0.125})
  w.close()
  (event_file,) = (tmp_path / "tb").iterdir()
  records = [dict(_fields(r)) for r in _records(event_file)]
  assert records[0][3] == b"brain.Event:2"
  assert records[1][2] == 7 and records[2][2] == 300
  values = [dict(_fields(v)) for f, v in _fields(records[1][5]) if f == 1]
  assert [(v[1], round(v[2], 6)) for v in values] == [(b"train/loss", 0.25), (b"lr", 0.001)]
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert rows[0]["step"] == 7 and rows[0]["train/loss"] == 0.25 and rows[1]["step"] == 300
