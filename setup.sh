#!/usr/bin/env bash
# One-time (idempotent) set-up of everything sparknet-hw needs on a fresh Debian machine:
# apt packages (Icarus Verilog, speech engines for the offline corpus, board loaders),
# a virtual environment in .venv with the pinned CPU torch, and the project in editable mode.
# A second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")"

APT_PACKAGES=(iverilog espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k
              festvox-us-slt-hts sox libsndfile1 openfpgaloader dfu-util)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.sparknet-hw-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] pip: installing pinned torch and the project (a minute on a fresh machine)"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch is pinned here and in pyproject so pip never pulls a CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
echo "[setup] ready: $(.venv/bin/python -c 'import sparknet_hw, torch; print("sparknet_hw", sparknet_hw.__version__, "torch", torch.__version__)')"
