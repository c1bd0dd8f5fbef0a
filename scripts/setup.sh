#!/usr/bin/env bash
# Installs the Debian packages paro needs to build, test and render reports.
# Idempotent: packages already present are skipped by apt.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config
  libhdf5-dev hdf5-tools libeigen3-dev libcli11-dev catch2 libfmt-dev
  nlohmann-json3-dev libpng-dev zlib1g-dev libdeflate-dev libkainjow-mustache-dev
  python3-h5py python3-numpy python3-matplotlib python3-jsonschema python3-pil python3-pip python3-torch
  jupyter-nbconvert python3-nbclient python3-ipykernel python3-nbformat
  chromium
  clang libclang-rt-dev libomp-dev
  libopenmpi-dev openmpi-bin
  zsh groff-base man-db
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
