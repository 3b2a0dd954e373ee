"""The launch scripts: their dry runs print the right commands, a preempted run (exit 75) is
requeued, and shellcheck passes them."""

import os
import pathlib
import re
import shlex
import shutil
import subprocess

import pytest

from pyramid_fas_jax.training import distributed

REPO = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"
SCRIPTS = sorted([*LAUNCH.glob("*.sh"), *LAUNCH.glob("*.sbatch")])
# Arguments that must reach `pyramid-fas train` word for word: spaces, parentheses, a quote.
TRAIN_ARGS = ["--config=configs/resnet50_ps.py:oulu_npu/Protocol_3_1",
              "--config.model.scales=(8, 4)", "--config.init_from=weights/it's here"]


def dry_run(script, *args, env=None):
  """The printed commands of a dry run, each split into words as a shell would."""
  clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
  out = subprocess.run(["bash", str(LAUNCH / script), *args], env={**clean, **(env or {})},
                       capture_output=True, text=True, check=True, timeout=30).stdout
  return [shlex.split(line) for line in out.splitlines() if line and not line.startswith("#")]


def test_the_readme_documents_exactly_the_launch_scripts_and_they_run():
  # The README's recipes are the independent list: a script it names must be there, and a
  # script it does not name is undocumented.
  named = set(re.findall(r"launch/([\w.]+\.(?:sh|sbatch))\b", (REPO / "README.md").read_text()))
  assert named == {p.name for p in SCRIPTS} == {"tpu_vm.sh", "tpu_worker_setup.sh",
                                                "slurm_gpu.sbatch"}
  for script in SCRIPTS:
    assert script.read_text().startswith("#!/usr/bin/env bash\n") and os.access(script, os.X_OK)
  # tpu_vm.sh runs tpu_worker_setup.sh on every worker under that name.
  assert "launch/tpu_worker_setup.sh" in (LAUNCH / "tpu_vm.sh").read_text()


def test_shellcheck():
  if shutil.which("shellcheck") is None:
    if os.environ.get("CI") == "true":
      pytest.fail("shellcheck is not installed; .ci/run installs it (apt-get install shellcheck)")
    pytest.skip("shellcheck is not installed (apt-get install shellcheck); CI runs this test")
  result = subprocess.run(["shellcheck", "--shell=bash", *map(str, SCRIPTS)],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr


def test_tpu_vm_dry_run():
  commands = dry_run("tpu_vm.sh", "--dry-run", "--tpu=fas-v4", "--zone=us-central2-b",
                     "--create", "--accelerator=v4-32", "--spot",
                     "--workdir=gs://my-runs/r50ps", "--data_dir=gs://my-data/tfds", *TRAIN_ARGS)
  create, archive, scp, setup, train = commands
  assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "fas-v4"]
  assert {"--accelerator-type=v4-32", "--zone=us-central2-b", "--spot"} <= set(create)
  assert archive[0] == "git" and "archive" in archive
  assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"] and "--worker=all" in scp
  for ssh in (setup, train):
    assert ssh[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "fas-v4"]
    assert "--worker=all" in ssh
  setup_cmd = [w for w in setup if w.startswith("--command=")][0]
  assert "tpu_worker_setup.sh my-runs my-data" in setup_cmd
  # The remote command is itself a shell line: split it again and find the arguments unchanged.
  remote = shlex.split([w for w in train if w.startswith("--command=")][0][len("--command="):])
  train_words = remote[remote.index("train") + 1:]
  assert train_words == [*TRAIN_ARGS, "--workdir=/gcs/my-runs/r50ps",
                         "--config.data.data_dir=/gcs/my-data/tfds"]
  assert remote[remote.index("train") - 1].endswith(".venv/bin/pyramid-fas")


def test_tpu_vm_rerun_skips_setup_and_detaches():
  (train,) = dry_run("tpu_vm.sh", "--tpu=t", "--zone=z", "--skip_setup", "--detach",
                     "--workdir=/mnt/shared/run", *TRAIN_ARGS, env={"DRY_RUN": "1"})
  remote = shlex.split([w for w in train if w.startswith("--command=")][0][len("--command="):])
  assert remote[:3] == ["nohup", "bash", "-c"] and ">" in remote
  inner = shlex.split(remote[3])
  assert inner[inner.index("train") + 1:] == [*TRAIN_ARGS, "--workdir=/mnt/shared/run"]


@pytest.mark.parametrize("missing", ["--tpu=t", "--workdir=gs://b/r", TRAIN_ARGS[0]])
def test_tpu_vm_refuses_incomplete_arguments(missing):
  args = [a for a in ["--tpu=t", "--zone=z", "--workdir=gs://b/r", TRAIN_ARGS[0]] if a != missing]
  result = subprocess.run(["bash", str(LAUNCH / "tpu_vm.sh"), "--dry-run", *args],
                          capture_output=True, text=True, check=False)
  assert result.returncode == 2 and "required" in result.stderr


def test_slurm_dry_run_one_process_per_gpu():
  commands = dry_run("slurm_gpu.sbatch", "--dry-run", "--install", "--nodes=4",
                     "--gpus_per_node=8", "--partition=a100", "--workdir=/shared/runs/x",
                     *TRAIN_ARGS)
  pip, sbatch, srun = commands[-3:]
  assert pip[1:] == ["install", "--quiet", "-e", f"{REPO}[cuda12]"]
  assert sbatch[0] == "sbatch"
  assert {"--nodes=4", "--ntasks-per-node=8", "--gpus-per-node=8",
          "--partition=a100"} <= set(sbatch)
  assert str(LAUNCH / "slurm_gpu.sbatch") in sbatch
  assert sbatch[-4:] == ["--workdir=/shared/runs/x", *TRAIN_ARGS]
  assert srun[0] == "srun" and {"--nodes=4", "--ntasks-per-node=8", "--gpu-bind=none"} <= set(srun)
  assert not any(w.startswith("--gpus-per-task") for w in sbatch + srun)
  assert srun[srun.index("train") + 1:] == ["--workdir=/shared/runs/x", *TRAIN_ARGS]


def test_slurm_dry_run_one_process_per_node():
  sbatch, srun = dry_run("slurm_gpu.sbatch", "--dry-run", "--per_node", "--gpus_per_node=4",
                         "--workdir=w", *TRAIN_ARGS)
  assert {"--ntasks-per-node=1", "--gpus-per-node=4", "--cpus-per-task=32"} <= set(sbatch)
  assert "--ntasks-per-node=1" in srun


def test_slurm_inside_the_job_runs_srun_with_the_allocation():
  (srun,) = dry_run("slurm_gpu.sbatch", "--workdir=w", *TRAIN_ARGS,
                    env={"DRY_RUN": "1", "SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "3",
                         "SLURM_NTASKS_PER_NODE": "8", "SLURM_SUBMIT_DIR": "/shared/pfj"})
  assert srun[:3] == ["srun", "--nodes=3", "--ntasks-per-node=8"]
  assert "/shared/pfj/.venv/bin/pyramid-fas" in srun and "--chdir=/shared/pfj" in srun
  assert srun[srun.index("train") + 1:] == ["--workdir=w", *TRAIN_ARGS]


def _fake_tools(tmp_path, **exit_codes):
  """Executables named like the keys on a PATH of their own: each appends its arguments to
  calls.txt and exits with its code."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name, code in exit_codes.items():
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls.txt"\nexit {code}\n')
    tool.chmod(0o755)
  return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def _calls(tmp_path):
  path = tmp_path / "calls.txt"
  return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("train_status, requeued", [(75, True), (0, False), (1, False),
                                                    (2, False)])
def test_slurm_job_requeues_itself_when_preempted(tmp_path, train_status, requeued):
  env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
  env.update(_fake_tools(tmp_path, srun=train_status, scontrol=0),
             SLURM_JOB_ID="7", SLURM_JOB_NUM_NODES="1", SLURM_NTASKS_PER_NODE="2")
  result = subprocess.run(["bash", str(LAUNCH / "slurm_gpu.sbatch"), "--workdir=w", *TRAIN_ARGS],
                          env=env, capture_output=True, text=True, check=False, timeout=30)
  assert result.returncode == train_status  # the job ends with training's status
  calls = _calls(tmp_path)
  assert calls[0].startswith("srun --nodes=1 --ntasks-per-node=2")
  if requeued:
    assert calls[1:] == ["scontrol requeue 7"]
    assert result.stderr.startswith("slurm_gpu.sbatch: training saved and stopped on SIGTERM "
                                    "(exit 75); requeueing job 7 to resume")
  else:
    assert calls[1:] == [] and result.stderr == ""


@pytest.mark.parametrize("train_status", [75, 0, 1])
def test_tpu_vm_reports_a_preempted_run(tmp_path, train_status):
  env = dict(os.environ, **_fake_tools(tmp_path, gcloud=train_status))
  result = subprocess.run(["bash", str(LAUNCH / "tpu_vm.sh"), "--tpu=t", "--zone=z",
                           "--skip_setup", "--workdir=/mnt/run", *TRAIN_ARGS],
                          env=env, capture_output=True, text=True, check=False, timeout=30)
  assert result.returncode == train_status
  (call,) = _calls(tmp_path)
  assert call.startswith("gcloud compute tpus tpu-vm ssh t --zone=z --worker=all --command=")
  if train_status == 75:
    assert result.stderr.startswith("tpu_vm.sh: training saved and stopped on SIGTERM (exit 75: "
                                    "preempted); rerun this command")
  else:
    assert result.stderr == ""


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_NTASKS": "4", "SLURM_STEP_TASKS_PER_NODE": "1(x4)",
      "CUDA_VISIBLE_DEVICES": "4,5,6,7"}, [0, 1, 2, 3]),
    ({"SLURM_NTASKS": "16", "SLURM_STEP_TASKS_PER_NODE": "8(x2)",
      "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}, None),
    ({"SLURM_NTASKS": "1", "SLURM_TASKS_PER_NODE": "1", "CUDA_VISIBLE_DEVICES": "0,1"}, None),
    ({"SLURM_NTASKS": "3", "SLURM_TASKS_PER_NODE": "1(x2),2", "CUDA_VISIBLE_DEVICES": "0,1"},
     None),
    ({"TPU_WORKER_HOSTNAMES": "a,b"}, None),
])
def test_slurm_local_device_ids(env, expected):
  assert distributed.slurm_local_device_ids(env) == expected
