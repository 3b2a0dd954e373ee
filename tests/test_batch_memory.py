"""The batch `predict` and `evaluate` run in fits the memory available (models/memory.py): XLA's
estimate grows with the batch, 'auto' takes the largest power of two whose estimate fits, a
given batch that does not fit is refused before anything runs, and neither predict's nor
evaluate's outputs depend on the batch they ran in. The memory available is always injected
(a Budget, or $PYRAMID_FAS_MEMORY_MB), never this machine's."""

import pathlib
import types

import jax
import numpy as np
import pytest
import tiny_train_config
from flax import nnx

from pyramid_fas_jax import cli, models
from pyramid_fas_jax.evaluation import evaluator
from pyramid_fas_jax.models import inference, memory
from pyramid_fas_jax.training import checkpoint, distributed

pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
BATCHES = (1, 2, 4, 8, 16, 32)
UNCHECKED = memory.Budget(None, "not checked")


@pytest.fixture(scope="module")
def tiny():
  """(model, config, 5 normalised 32x32 images, {batch: memory.Fitted})."""
  config = tiny_train_config.get_config(None)
  model = models.build_model(config.model, nnx.Rngs(0))
  images = np.random.default_rng(0).normal(size=(5, 32, 32, 3)).astype(np.float32)
  graphdef, state = inference.eval_state(model)
  fitted = {b: inference.fit_predict(graphdef, state, images, None, b, UNCHECKED)
            for b in BATCHES}
  if any(f.need is None for f in fitted.values()):
    # Then the batch runs unchecked: test_fit_compiles_only_what_may_fit_... holds to that with
    # a stand-in program.
    pytest.skip(f"XLA gives no memory analysis on {jax.default_backend()}, jax {jax.__version__}")
  return model, config, images, fitted


def test_the_estimate_grows_with_the_batch(tiny):
  *_, fitted = tiny
  extra = [fitted[b].extra for b in BATCHES]
  assert all(isinstance(e, int) for e in extra), extra
  assert all(a < b for a, b in zip(extra, extra[1:])), extra
  # The state is resident already: what a batch adds leaves it out.
  assert all(f.need - f.extra == f.resident > 0 for f in fitted.values())


@pytest.mark.parametrize("fits", BATCHES)
def test_auto_takes_the_largest_power_of_two_whose_estimate_fits(tiny, monkeypatch, fits):
  model, _, images, fitted = tiny
  monkeypatch.setattr(memory, "CPU_CAP", 32)
  images = np.concatenate([images] * 8)  # 40 images: every batch up to 32 is a candidate
  lines = []
  for room in (fitted[fits].extra, (fitted[fits].extra + fitted[2 * fits].extra) // 2
               if fits < 32 else 10 * fitted[32].extra):
    inference.predict(model, images, room=memory.Budget(room, "test"), report=lines.append)
  assert all(line.startswith(f"batch {fits} (auto): estimated peak ") for line in lines), lines


def test_auto_stops_at_the_cap_and_at_the_images(tiny):
  model, _, images, _ = tiny
  plenty = memory.Budget(2**40, "test")
  lines = []
  inference.predict(model, np.concatenate([images] * 4), room=plenty, report=lines.append)
  inference.predict(model, images[:3], room=plenty, report=lines.append)
  assert [line.split(" (")[0] for line in lines] == [f"batch {memory.CPU_CAP}", "batch 4"]


def _fake_compiled(per_image: int | None, constant: int = 1000):
  """compile_at(batch) of a program XLA accounts `constant + batch x per_image` bytes for (no
  analysis where per_image is None, as XLA:CPU on some jax versions)."""
  def compile_at(batch):
    analysis = None if per_image is None else types.SimpleNamespace(
        argument_size_in_bytes=constant, output_size_in_bytes=0, alias_size_in_bytes=0,
        temp_size_in_bytes=batch * per_image)
    return types.SimpleNamespace(memory_analysis=lambda: analysis)
  return compile_at


def test_fit_compiles_only_what_may_fit_and_runs_without_an_analysis():
  compiled = []

  def compile_at(make):
    return lambda batch: compiled.append(batch) or make(batch)

  room = memory.Budget(1000 + 5 * 100, "test")
  fitted = memory.fit(compile_at(_fake_compiled(100)), memory.auto_batches(32), room)
  # 32 needs 4200 > 1500, so 16 surely does not fit (extrapolated: 2100) and is not compiled;
  # 8 might (1050), but needs 1800.
  assert (fitted.batch, compiled) == (4, [32, 8, 4])
  compiled.clear()
  fitted = memory.fit(compile_at(_fake_compiled(None)), memory.auto_batches(32), room)
  assert (fitted.batch, fitted.need, compiled) == (32, None, [32])
  assert "no memory estimate" in fitted.line
  with pytest.raises(memory.BatchTooLarge, match=r"^even --batch_size=1 needs"):
    memory.fit(_fake_compiled(100), [4, 2, 1], memory.Budget(50, "test"))
  assert memory.fit(_fake_compiled(100), [4, 2, 1], memory.Budget(50, "test"),
                    refuse=False).batch == 1


def test_a_given_batch_over_the_budget_is_refused_before_anything_runs(tiny, monkeypatch):
  model, _, images, fitted = tiny
  calls = []
  run = jax.stages.Compiled.__call__
  monkeypatch.setattr(jax.stages.Compiled, "__call__",
                      lambda self, *a, **k: calls.append(1) or run(self, *a, **k))
  room = memory.Budget(fitted[8].extra - 1, "$TEST")
  with pytest.raises(memory.BatchTooLarge) as e:
    inference.predict(model, images, batch_size=8, room=room)
  assert calls == []
  assert str(e.value).startswith(f"--batch_size=8 needs an estimated {memory.mib(fitted[8].extra)}"
                                 f" per device ")
  assert f"but {memory.mib(room.bytes)} is available ($TEST)" in str(e.value)
  out = inference.predict(model, images, batch_size=8, room=room, allow_over_memory=True)
  assert calls and out["score"].shape == (5,)


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny, tmp_path_factory):
  model, config, images, _ = tiny
  directory = tmp_path_factory.mktemp("batch")
  np.save(directory / "x.npy", images)
  return checkpoint.save_model(directory / "model", model, config), directory / "x.npy"


def _predict(capsys, ckpt, x, out, *flags):
  with pytest.raises(SystemExit) as e:
    cli.main(["pyramid-fas", "predict", f"--checkpoint={ckpt}", f"--input={x}",
              f"--output={out}", *flags])
  stdout, stderr = capsys.readouterr()
  return e.value.code or 0, stdout, stderr


def test_predict_refuses_a_batch_over_the_memory_in_one_line(capsys, monkeypatch, tmp_path,
                                                               tiny_checkpoint):
  monkeypatch.setenv(memory.ENV, "0.01")
  code, stdout, stderr = _predict(capsys, *tiny_checkpoint, tmp_path / "o.npz", "--batch_size=4")
  assert code == 2 and stdout == "" and not (tmp_path / "o.npz").exists()
  (line,) = stderr.splitlines()
  assert line.startswith("pyramid-fas predict: --batch_size=4 needs an estimated ")
  assert "but 0.0 MiB is available ($PYRAMID_FAS_MEMORY_MB)" in line
  assert line.endswith("--allow_batch_over_memory to run it anyway")
  code, stdout, _ = _predict(capsys, *tiny_checkpoint, tmp_path / "o.npz", "--batch_size=4",
                             "--allow_batch_over_memory")
  assert code == 0 and stdout.startswith("batch 4 (as given): estimated peak ")


def test_predict_with_auto_batch_scores_as_batch_1(capsys, monkeypatch, tmp_path,
                                                   tiny_checkpoint):
  monkeypatch.setenv(memory.ENV, "1024")
  code, stdout, _ = _predict(capsys, *tiny_checkpoint, tmp_path / "auto.npz")
  assert code == 0 and stdout.startswith("batch 8 (auto): estimated peak "), stdout
  assert "of 1.00 GiB available ($PYRAMID_FAS_MEMORY_MB)" in stdout.splitlines()[0]
  code, stdout, _ = _predict(capsys, *tiny_checkpoint, tmp_path / "one.npz", "--batch_size=1")
  assert code == 0 and stdout.startswith("batch 1 (as given)")
  auto, one = np.load(tmp_path / "auto.npz"), np.load(tmp_path / "one.npz")
  for key in ("score", "logit", "mask_4", "features"):
    np.testing.assert_allclose(auto[key], one[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _evaluated(config, model, workdir, room, monkeypatch):
  monkeypatch.setattr(memory, "budget", lambda devices: room)
  sets = {}
  score_split = evaluator.score_split
  monkeypatch.setattr(evaluator, "score_split", lambda *a: sets.setdefault(a[2], score_split(*a)))
  results = evaluator.evaluate_model(config, model, workdir, 0, distributed.make_mesh(),
                                     checkpoint_path=None)
  monkeypatch.undo()
  return results, sets


def test_evaluate_lowers_a_batch_over_the_memory_and_scores_the_same(synth_tiny, tmp_path,
                                                                       monkeypatch, caplog):
  config = tiny_train_config.get_config(synth_tiny)
  config.eval_batch_size = 16  # the mesh's 4 devices: 16, 8 or 4
  model = models.build_model(config.model, nnx.Rngs(1))
  mesh = distributed.make_mesh()
  needs = {b: evaluator.fit_forward(_with_batch(config, b), model, mesh, UNCHECKED)[1].extra
           for b in (16, 8, 4)}
  assert needs[4] < needs[8] < needs[16]
  runs = {}
  for name, batch, room in (("16", 16, UNCHECKED), ("8", 8, UNCHECKED),
                            ("16 lowered", 16, memory.Budget(needs[4], "test"))):
    runs[name] = _evaluated(_with_batch(config, batch), model, tmp_path / name.replace(" ", "_"),
                            room, monkeypatch)
  assert "config.eval_batch_size=16 does not fit the memory available: evaluating in batches " \
         "of 4 instead" in caplog.text
  base_results, base_sets = runs["16"]
  for name, (results, sets) in runs.items():
    assert set(sets) == set(base_sets) == {"dev", "test"}
    for split, scores in sets.items():
      np.testing.assert_allclose(scores.scores, base_sets[split].scores, rtol=1e-5, atol=1e-6,
                                 err_msg=f"{name} {split}")
      np.testing.assert_array_equal(scores.video_ids, base_sets[split].video_ids)
    for split in ("dev", "test"):
      for key, value in base_results[split].items():
        if isinstance(value, float):
          assert results[split][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, key)
    written = pathlib.Path(tmp_path / name.replace(" ", "_") / "results.json")
    assert written.is_file()


def _with_batch(config, batch):
  config = config.copy_and_resolve_references()
  config.eval_batch_size = batch
  return config


def test_the_budget_is_what_the_devices_have_free(monkeypatch):
  def gpu(stats):
    return types.SimpleNamespace(platform="gpu", device_kind="H100", memory_stats=lambda: stats)

  monkeypatch.delenv(memory.ENV, raising=False)
  two = [gpu({"bytes_limit": 1000 * memory.MIB, "bytes_in_use": 200 * memory.MIB}),
         gpu({"bytes_limit": 1000 * memory.MIB, "bytes_in_use": 500 * memory.MIB})]
  room = memory.budget(two)
  assert room.bytes == int(memory.SAFETY * 500 * memory.MIB)
  assert room.source == f"{memory.SAFETY:.0%} of 500 MiB free on H100"
  assert memory.budget([gpu(None)]) == memory.Budget(None, "H100 reports no memory figures")
  monkeypatch.setattr(memory, "host_available", lambda: 4000 * memory.MIB)
  cpus = [types.SimpleNamespace(platform="cpu")] * 4
  assert memory.budget(cpus).bytes == int(memory.CPU_SAFETY * 1000 * memory.MIB)
  monkeypatch.setenv(memory.ENV, "64")
  assert memory.budget(two) == memory.Budget(64 * memory.MIB, f"${memory.ENV}")
  for bad in ("lots", "-5", "0", "nan", "inf"):
    monkeypatch.setenv(memory.ENV, bad)
    with pytest.raises(memory.errors.InputError,
                       match=rf"\$PYRAMID_FAS_MEMORY_MB='{bad}' is not a positive number"):
      memory.budget(two)


def test_predict_model_auto_batch_is_the_cpu_cap():
  # --model (onnxruntime, no JAX, no memory account) keeps its own copy of the CPU cap.
  from pyramid_fas_jax.commands import predict
  assert predict._RUNTIME_BATCH == memory.CPU_CAP
