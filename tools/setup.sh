#!/usr/bin/env bash
# Installs everything kerastransfer needs on a fresh Debian machine, as root:
# the Fashion-MNIST files from Debian, then the package with its test, serving and hub extras
# (hub: keras-hub, so the keras-hub backbone tests run instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  apt-get update -qq
  apt-get install -y -qq dataset-fashion-mnist
fi
python -m pip install --quiet --disable-pip-version-check -e ".[test,serving,hub]"
