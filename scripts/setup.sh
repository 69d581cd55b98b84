#!/usr/bin/env bash
# Installs everything dbn-node needs on a fresh Debian machine: the system packages (as root),
# then the npm dependencies (which builds the native BLAS addon and the TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium: the headless browser of test/observe/dashboard.test.ts (driven by playwright-core; nothing downloaded)
# qemu-user: test/kernels/native-prebuild.test.ts runs the prebuilt addon on emulated older CPUs (Nehalem, Haswell)
packages=(libopenblas-dev dataset-fashion-mnist chromium qemu-user)
if [ -f scripts/ci-gpu-deps.sh ]; then packages+=($(bash scripts/ci-gpu-deps.sh --list)); fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (run as root to install): ${missing[*]}" >&2
  fi
fi
# --system: the Debian packages only (CI runs npm ci itself)
if [ "${1:-}" != "--system" ]; then npm ci --no-audit --no-fund; fi
