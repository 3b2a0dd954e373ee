#!/usr/bin/env bash
# Train on every worker of a Cloud TPU VM slice (big_vision's run_tpu.sh recipe).
#
#   launch/tpu_vm.sh --tpu=NAME --zone=ZONE [--create --accelerator=v4-32 --spot] \
#       --workdir=gs://BUCKET/runs/r50ps --data_dir=gs://BUCKET/tfds \
#       --config=configs/resnet50_ps.py:oulu_npu/Protocol_1 [--config.key=value ...]
#
# Steps, each printed instead of run with --dry-run (or DRY_RUN=1):
#   1. create the TPU VM (--create; a preempted one is deleted and created again),
#   2. copy this checkout (tracked files, uncommitted edits included) to every worker,
#   3. on every worker: a venv with `pip install -e .[tpu]`, gcsfuse, the buckets mounted,
#   4. `pyramid-fas train` on every worker (--worker=all); the processes find each other.
# --skip_setup goes straight to 4. Preemption: training saves on SIGTERM and exits 75; this
# script then says so and exits 75 too (where gcloud passes the workers' status on), and
# rerunning the same command (--create recreates a preempted TPU) resumes from the checkpoints
# in the workdir: `until launch/tpu_vm.sh --create ...; [[ $? != 75 ]]; do :; done` loops.
#
# Why gcsfuse: the workdir's metrics.jsonl, score files and results.json are written with
# open(), which does not understand gs:// (Orbax would), so gs://BUCKET/path is mounted at
# /gcs/BUCKET/path on every worker and training sees ordinary paths. Every other argument is
# passed to `pyramid-fas train` unchanged.
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

DRY_RUN="${DRY_RUN:-0}"
tpu="" zone="" project="" accelerator="v4-8" version="tpu-ubuntu2204-base"
create=0 spot=0 setup=1 detach=0 workdir="" data_dir=""
remote_dir="pyramid-fas-jax"
train_args=()
for arg in "$@"; do
  case "$arg" in
    --dry-run|--dry_run) DRY_RUN=1 ;;
    --tpu=*) tpu="${arg#*=}" ;;
    --zone=*) zone="${arg#*=}" ;;
    --project=*) project="${arg#*=}" ;;
    --accelerator=*) accelerator="${arg#*=}" ;;
    --version=*) version="${arg#*=}" ;;
    --create) create=1 ;;
    --spot) spot=1 ;;
    --skip_setup|--skip-setup) setup=0 ;;
    --detach) detach=1 ;;
    --workdir=*) workdir="${arg#*=}" ;;
    --data_dir=*) data_dir="${arg#*=}" ;;
    -h|--help) usage 0 ;;
    *) train_args+=("$arg") ;;
  esac
done

die() { echo "tpu_vm.sh: $*" >&2; exit 2; }
[[ -n "$tpu" && -n "$zone" ]] || die "--tpu=NAME and --zone=ZONE are required (--help)"
[[ -n "$workdir" ]] || die "--workdir=gs://BUCKET/path (or a path every worker shares) is required"
printf '%s\n' "${train_args[@]}" | grep -q '^--config=' || die "--config=configs/X.py[:arg] is required"

# Shell-quote one word the way Python's shlex.quote does: bare when safe, else '...'.
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then printf '%s' "$1"
  else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
quote_all() {
  local out="" word
  for word in "$@"; do out+="${out:+ }$(quote "$word")"; done
  printf '%s' "$out"
}
run() {
  if [[ "$DRY_RUN" == 1 ]]; then quote_all "$@"; echo; else "$@"; fi
}

# gs://BUCKET/path -> /gcs/BUCKET/path, where tpu_worker_setup.sh mounts BUCKET.
buckets=()
for path in "$workdir" "$data_dir"; do
  if [[ "$path" == gs://* ]]; then
    rest="${path#gs://}"
    bucket="${rest%%/*}"
    [[ " ${buckets[*]:-} " == *" $bucket "* ]] || buckets+=("$bucket")
  fi
done
local_path() {
  if [[ "$1" == gs://* ]]; then printf '/gcs/%s' "${1#gs://}"; else printf '%s' "$1"; fi
}
train_args+=("--workdir=$(local_path "$workdir")")
if [[ -n "$data_dir" ]]; then
  train_args+=("--config.data.data_dir=$(local_path "$data_dir")")
fi

gcloud_tpu=(gcloud compute tpus tpu-vm)
where=(--zone="$zone")
[[ -n "$project" ]] && where+=(--project="$project")
ssh_all() { run "${gcloud_tpu[@]}" ssh "$tpu" "${where[@]}" --worker=all --command="$1"; }

if [[ "$create" == 1 ]]; then
  state=""
  if [[ "$DRY_RUN" != 1 ]]; then
    state="$("${gcloud_tpu[@]}" describe "$tpu" "${where[@]}" --format='value(state)' \
      2>/dev/null || true)"
  fi
  if [[ "$state" == PREEMPTED || "$state" == TERMINATED ]]; then
    run "${gcloud_tpu[@]}" delete "$tpu" "${where[@]}" --quiet
    state=""
  fi
  if [[ -z "$state" ]]; then
    create_cmd=("${gcloud_tpu[@]}" create "$tpu" "${where[@]}"
                --accelerator-type="$accelerator" --version="$version")
    [[ "$spot" == 1 ]] && create_cmd+=(--spot)
    run "${create_cmd[@]}"
  fi
fi

if [[ "$setup" == 1 ]]; then
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # `git stash create` snapshots uncommitted edits of tracked files without touching the tree.
  snapshot="$(git -C "$repo" stash create 2>/dev/null || true)"
  archive="${TMPDIR:-/tmp}/pyramid-fas-jax-$$.tar.gz"
  run git -C "$repo" archive --format=tar.gz -o "$archive" "${snapshot:-HEAD}"
  run "${gcloud_tpu[@]}" scp "$archive" "$tpu:pyramid-fas-jax.tar.gz" "${where[@]}" --worker=all
  ssh_all "mkdir -p $remote_dir && tar -xzf pyramid-fas-jax.tar.gz -C $remote_dir && \
bash $remote_dir/launch/tpu_worker_setup.sh $(quote_all "${buckets[@]}")"
  [[ "$DRY_RUN" == 1 ]] || rm -f "$archive"
fi

train="cd $remote_dir && .venv/bin/pyramid-fas train $(quote_all "${train_args[@]}")"
if [[ "$detach" == 1 ]]; then
  # Survives a dropped ssh connection; follow with `tail -f ~/pyramid-fas-train.log` on a worker.
  train="nohup bash -c $(quote "$train") > pyramid-fas-train.log 2>&1 &"
fi
PREEMPTED=75  # pyramid_fas_jax/commands/exit_codes.py: stopped on SIGTERM after saving
status=0
ssh_all "$train" || status=$?
if [[ "$status" == "$PREEMPTED" ]]; then
  echo "tpu_vm.sh: training saved and stopped on SIGTERM (exit $PREEMPTED: preempted);" \
    "rerun this command (with --create if the TPU was preempted) to resume" >&2
fi
exit "$status"
