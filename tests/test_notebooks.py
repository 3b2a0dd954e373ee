"""The notebooks: generated from notebooks/generate.py, the quick start runs end to end in its
tiny setting, and each reproduction notebook runs up to the cell that needs real data, where it
stops with the build instructions."""

import json
import os
import pathlib
import subprocess
import sys

import naive_fas
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
REPRODUCTION = ["oulu_npu_table3.ipynb", "cross_dataset_tables4_5.ipynb", "siw_m_table6.ipynb"]
REAL_DATA_MARK = "# REQUIRES_REAL_DATA"


@pytest.fixture
def kernel_env(monkeypatch, tmp_path):
  """The kernel inherits this process's environment: the package from this checkout, tiny
  settings, and data and results in tmp_path."""
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
  monkeypatch.setenv("PYRAMID_FAS_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("PYRAMID_FAS_DATA_DIR", str(tmp_path / "no_data_here"))
  monkeypatch.setenv("PYRAMID_FAS_WORKDIR", str(tmp_path / "runs"))
  return tmp_path


def execute(nb, cwd, timeout=240):
  client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                   resources={"metadata": {"path": str(cwd)}})
  client.execute()
  return nb


def outputs_text(cell) -> str:
  parts = []
  for out in cell.get("outputs", []):
    parts.append(out.get("text", ""))
    parts.append("\n".join(out.get("traceback", [])))
    parts.append(str(out.get("data", {}).get("text/markdown", "")))
  return "\n".join(parts)


def test_notebooks_match_their_generator(tmp_path):
  subprocess.run([sys.executable, str(NOTEBOOKS / "generate.py"), str(tmp_path)], check=True)
  for name in ["quickstart.ipynb", *REPRODUCTION]:
    assert (tmp_path / name).read_text() == (NOTEBOOKS / name).read_text(), (
        f"notebooks/{name} differs from what notebooks/generate.py writes: regenerate it")


@pytest.mark.parametrize("name", ["quickstart.ipynb", *REPRODUCTION])
def test_notebook_is_clean_and_has_badge_and_install_cell(name):
  nb = nbformat.read(NOTEBOOKS / name, as_version=4)
  nbformat.validate(nb)
  assert "colab.research.google.com/github/" in nb.cells[0].source and name in nb.cells[0].source
  install = nb.cells[1].source
  assert "pip install" in install and 'find_spec("pyramid_fas_jax")' in install
  assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not cell.outputs and cell.execution_count is None, "commit notebooks without outputs"


@pytest.mark.slow
def test_quickstart_runs_end_to_end(kernel_env):
  nb = execute(nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4), kernel_env)
  run = kernel_env / "runs/quickstart"
  results = json.loads((run / "results.json").read_text())
  assert results["step"] == 8
  # The notebook's ACER, recomputed in plain Python from the run's score files.
  dev, test = (naive_fas.read(run / f"scores/{split}_frames_step8.txt", per_video=True)
               for split in ("dev", "test"))
  want = naive_fas.rates(test, naive_fas.eer(dev)[1])
  assert results["test"]["ACER"] == pytest.approx(float(want["ACER"]), abs=1e-9)
  assert (kernel_env / "runs/quickstart/masks.png").stat().st_size > 0
  assert any("image/png" in out.get("data", {}) for out in nb.cells[-1].outputs)


@pytest.mark.parametrize("name", REPRODUCTION)
def test_reproduction_notebook_runs_until_real_data_is_needed(kernel_env, name):
  nb = nbformat.read(NOTEBOOKS / name, as_version=4)
  marked = [i for i, c in enumerate(nb.cells) if c.source.startswith(REAL_DATA_MARK)]
  assert len(marked) == 1
  stop = marked[0]
  assert not any("reproduce.run" in c.source for c in nb.cells[:stop])
  nb.cells = nb.cells[:stop + 1]
  with pytest.raises(nbclient.exceptions.CellExecutionError) as error:
    execute(nb, kernel_env)
  # The stop is the data check, with the command that builds the missing dataset.
  assert error.value.ename == "FileNotFoundError"
  assert "python -m pyramid_fas_jax.data.builders" in outputs_text(nb.cells[stop])
  assert all(not any(o.get("output_type") == "error" for o in c.get("outputs", []))
             for c in nb.cells[:stop])
  # The table's layout rendered before any training, with the paper's rows labelled.
  assert "(paper, Table" in "\n".join(outputs_text(c) for c in nb.cells[:stop])


def test_reproduce_load_applies_data_dir_and_overrides(tmp_path):
  from pyramid_fas_jax.experiment import reproduce
  config = reproduce.load("configs/cdcn_ps.py", "oulu_npu/Protocol_2,single_scale", tmp_path,
                          {"batch_size": 16, "data.builder_config": "small"})
  assert (config.data.data_dir, config.batch_size) == (str(tmp_path), 16)
  assert (config.data.protocol, config.data.builder_config) == ("Protocol_2", "small")
  assert tuple(config.model.scales) == (32,)
  with pytest.raises(KeyError, match="batch_sise"):
    reproduce.load("configs/cdcn_ps.py", "oulu_npu/Protocol_2", tmp_path, {"batch_sise": 16})
  with pytest.raises(KeyError, match="dta"):
    reproduce.load("configs/cdcn_ps.py", "oulu_npu/Protocol_2", tmp_path, {"dta.data_dir": "x"})
