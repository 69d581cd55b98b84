#!/usr/bin/env bash
# Debian/Ubuntu packages the gpu backend's optional modes need (idempotent; run as root or via sudo):
#   headlessgl: a C++ toolchain, python3 and the X/GL headers to build the `gl` addon from source,
#               plus Xvfb and Mesa llvmpipe (software OpenGL) to give it a display to run on;
#   webgpu:     Mesa lavapipe (software Vulkan) for the `webgpu` package's Dawn.
# Usage: scripts/ci-gpu-deps.sh            # installs what is missing; then `npm ci` builds `gl`
#        scripts/ci-gpu-deps.sh --list     # prints the package names, one a line, and installs nothing
# Run the tests under a virtual display so headlessgl can start: xvfb-run -a npm test
set -euo pipefail

packages=(
  build-essential python3 pkg-config
  libx11-dev libxext-dev libxi-dev mesa-common-dev libgl1-mesa-dev libglu1-mesa-dev libglew-dev
  xvfb xauth libgl1-mesa-dri
  mesa-vulkan-drivers libvulkan1
)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ci-gpu-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "ci-gpu-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
