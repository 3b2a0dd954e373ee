#!/usr/bin/env bash
# Runs on every TPU VM worker (launch/tpu_vm.sh calls it from the copied checkout):
#   bash pyramid-fas-jax/launch/tpu_worker_setup.sh [BUCKET ...]
# Installs the package with the `tpu` extra into pyramid-fas-jax/.venv and mounts each
# BUCKET at /gcs/BUCKET with gcsfuse. Safe to rerun: a reinstall only updates what changed and
# a mounted bucket is left as it is.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[tpu]'

if [[ "$#" -gt 0 ]] && ! command -v gcsfuse >/dev/null; then
  keyring=/usr/share/keyrings/cloud.google.gpg
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
    | sudo gpg --dearmor --yes -o "$keyring"
  echo "deb [signed-by=$keyring] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -cs) main" \
    | sudo tee /etc/apt/sources.list.d/gcsfuse.list >/dev/null
  sudo apt-get update -qq
  sudo apt-get install -y -qq gcsfuse
fi
for bucket in "$@"; do
  mount="/gcs/$bucket"
  sudo mkdir -p "$mount"
  sudo chown "$(id -u):$(id -g)" "$mount"
  # --implicit-dirs: folders written by other tools (gsutil, TFDS) show up without placeholders.
  mountpoint -q "$mount" || gcsfuse --implicit-dirs "$bucket" "$mount"
done
