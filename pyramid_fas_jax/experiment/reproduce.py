"""What the reproduction notebooks (notebooks/) call: check that the datasets are built, train one
config on one protocol (resuming a finished or interrupted run), and collect the results.

Each is the `pyramid-fas train` command as a function:
  run("configs/cdcn_ps.py", "oulu_npu/Protocol_1", data_dir, "runs/cdcn_ps/Protocol_1")
  == pyramid-fas train --config=configs/cdcn_ps.py:oulu_npu/Protocol_1 \
       --workdir=runs/cdcn_ps/Protocol_1 --config.data.data_dir=DATA_DIR
"""

import json
import pathlib
from collections.abc import Mapping, Sequence

from pyramid_fas_jax.experiment import demo
from pyramid_fas_jax.training import train


def require_datasets(data_dir, names: Sequence[str], builder_config: str = "default") -> None:
  """Raise FileNotFoundError naming each dataset of `names` not built under `data_dir`, with the
  command that builds it from the user's licensed download."""
  missing = [n for n in names if not (pathlib.Path(data_dir) / n / builder_config).is_dir()]
  if missing:
    steps = "\n".join(f"  python -m pyramid_fas_jax.data.builders {n} --config={builder_config} "
                      f"--data_dir={data_dir} --manual_dir=/path/to/{n}_archive" for n in missing)
    raise FileNotFoundError(
        f"{', '.join(missing)} not built in {data_dir} (looked for <name>/{builder_config}/). "
        "These datasets cannot be redistributed: download them under their licences, then "
        f"build them once (datasets/<name>/README.md shows each archive's layout):\n{steps}")


def load(config_path, arg: str, data_dir, overrides: Mapping | None = None):
  """The config of `--config=config_path:arg --config.data.data_dir=... --config.k=v ...`, locked
  like the command line's: an unknown override key raises KeyError."""
  config = demo.load_config(demo.REPO / config_path if not pathlib.Path(config_path).is_absolute()
                            else config_path, arg)
  config.data.data_dir = str(data_dir)
  config.lock()  # as the command line's lock_config: a mistyped override key is an error
  config.update_from_flattened_dict(dict(overrides or {}))
  return config


def run(config_path, arg: str, data_dir, workdir, overrides: Mapping | None = None) -> dict:
  """Train (or resume, or find finished) one run; return its final results.json content."""
  config = load(config_path, arg, data_dir, overrides)
  train.train_and_evaluate(config, workdir)
  # A finished run trains no step and returns nothing: its results are on disk either way.
  return json.loads((pathlib.Path(workdir) / "results.json").read_text())
