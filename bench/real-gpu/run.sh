#!/usr/bin/env bash
# The real-GPU bench, from the folder bench/real-gpu/pack.ts made (it is copied there as run.sh):
#   ./run.sh [--quick] [--out DIR]      (results: DIR/real-gpu.json, default ./results)
# Needs only x86-64 Linux with a Vulkan driver (an NVIDIA one: its ICD file under /usr/share,
# /etc or /usr/local/nvidia), xz or python3 to unpack Node, and no Node or npm: the folder brings
# its own. Runs on Dawn's Vulkan backend (WEBGPU_BACKEND=vulkan unless set otherwise).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

if [ ! -x node ]; then
  if command -v xz >/dev/null; then
    xz -dkc node.xz > node.tmp
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open("node.xz"), open("node.tmp", "wb"))'
  fi
  chmod +x node.tmp && mv node.tmp node
fi

# The packed libraries (lib/: the Vulkan loader, libGLdispatch) only where the machine lacks them:
# links to the missing ones go in a folder of their own, so the machine's own are never shadowed.
rm -rf lib-missing && mkdir lib-missing
known="$( { ldconfig -p 2>/dev/null || true; } )"
for lib in lib/*; do
  name="$(basename "$lib")"
  if ! printf '%s\n' "$known" | grep -F "$name " >/dev/null; then
    echo "run.sh: no $name on this machine; using the packed one"
    ln -s "../lib/$name" "lib-missing/$name"
  fi
done
export LD_LIBRARY_PATH="$here/lib-missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# NVIDIA's ICD file where the standard places lack one (containers mount the driver elsewhere).
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then
      echo "run.sh: NVIDIA Vulkan ICD from $icd"
      export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
      break
    fi
  done
fi

export WEBGPU_BACKEND="${WEBGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
cat VERSION
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec ./node app/main.js "$@"
