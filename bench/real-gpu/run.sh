#!/usr/bin/env bash
# The real-GPU bench, from the folder bench/real-gpu/pack.ts made (it is copied there as run.sh):
#   path/to/packed/run.sh [--quick] [--out DIR]   (writes DIR/real-gpu.json; DIR defaults to ./results)
# Needs only x86-64 Linux with a Vulkan driver (an NVIDIA one: its ICD file under /usr/share,
# /etc or /usr/local/nvidia), xz or python3 to unpack Node, and no Node or npm: the folder brings
# its own. Runs on Dawn's Vulkan backend (WEBGPU_BACKEND=vulkan unless set otherwise).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

# Node and the library links go to a temporary folder: the packed one stays as packed (and small
# enough to carry to a device machine), read-only is fine.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/webgpu-rnn-real-gpu.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
if command -v xz >/dev/null; then
  xz -dc "$here/node.xz" > "$tmp/node"
else
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$here/node.xz" "$tmp/node"
fi
chmod +x "$tmp/node"

# The packed libraries (lib/: the Vulkan loader, libGLdispatch) only where the machine lacks them:
# links to the missing ones go in a folder of their own, so the machine's own are never shadowed.
mkdir "$tmp/lib"
known="$( { ldconfig -p 2>/dev/null || true; } )"
for lib in "$here"/lib/*; do
  name="$(basename "$lib")"
  if ! printf '%s\n' "$known" | grep -F "$name " >/dev/null; then
    echo "run.sh: no $name on this machine; using the packed one"
    ln -s "$here/lib/$name" "$tmp/lib/$name"
  fi
done
export LD_LIBRARY_PATH="$tmp/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
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
cat "$here/VERSION"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$tmp/node" "$here/app/main.js" "$@"
