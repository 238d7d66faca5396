#!/usr/bin/env bash
# A user's route on pip's PyTorch 2.15: the package packed as npm would publish it (`npm pack`), installed into a
# fresh project (`npm install <tarball>`, then its install script approved and run as npm 11 asks:
# `npm install-scripts approve resnet-torch`, `npm rebuild resnet-torch`) where the only libtorch is the
# torch of an activated venv (the project's, scripts/torch-venv.sh); the install builds the addon against it; then
# a script as a user writes it (test/user-route/app.js) trains a few iterations, saves, loads and predicts a PNG.
# Debian's libtorch, where installed, is hidden for the whole route: a private mount namespace puts empty folders
# over its headers and CMake configs and /dev/null over its libraries (root; the host sees nothing of it).
# No LD_LIBRARY_PATH: the addon's rpath must find torch/lib and the nvidia-* wheels' libraries by itself.
#   scripts/test-user-route.sh          (CI runs it; about 6 minutes here, most of it the addon's build)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if [ "${1:-}" != --inside ]; then
  python="$(bash scripts/torch-venv.sh)"
  work="$(mktemp -d /tmp/resnet-user-route.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  echo "user route: packing the package"
  npm pack --silent --pack-destination "$work" >"$work/pack.log" 2>&1 || { cat "$work/pack.log"; exit 1; }
  if dpkg-query -W -f='${Status}' libtorch1.13 2>/dev/null | grep -q "install ok installed"; then
    [ "$(id -u)" = 0 ] || { echo "user route: Debian's libtorch is installed; hiding it needs root" >&2; exit 1; }
    exec unshare --mount --propagation private env -u LD_LIBRARY_PATH RESNET_ROUTE_WORK="$work" \
      RESNET_ROUTE_PYTHON="$python" RESNET_ROUTE_HIDE=1 bash "$0" --inside
  fi
  RESNET_ROUTE_WORK="$work" RESNET_ROUTE_PYTHON="$python" env -u LD_LIBRARY_PATH bash "$0" --inside
  exit
fi

work="$RESNET_ROUTE_WORK"
if [ "${RESNET_ROUTE_HIDE:-0}" = 1 ]; then
  mkdir -p "$work/empty"
  hidden=0
  while read -r f; do
    if [ -d "$f" ] && [[ "$f" =~ ^/usr/include/(ATen|c10|caffe2|torch)$|/cmake/(ATen|Caffe2|Torch)$ ]]; then
      mount --bind "$work/empty" "$f" && hidden=$((hidden + 1))
    elif [ -f "$f" ] && [ ! -L "$f" ] && [[ "$f" == *.so* ]]; then
      mount --bind /dev/null "$f" && hidden=$((hidden + 1))
    fi
  done < <(dpkg -L libtorch1.13 libtorch-dev 2>/dev/null)
  echo "user route: Debian's libtorch hidden ($hidden headers folders, CMake configs and libraries)"
fi

# The user's shell: the venv activated, nothing of ours on the paths.
export PATH="$(dirname "$RESNET_ROUTE_PYTHON"):$PATH" VIRTUAL_ENV="$(dirname "$(dirname "$RESNET_ROUTE_PYTHON")")"
unset RESNET_TORCH_ADDON RESNET_TORCH_PYTHON PYTHON LIBTORCH Torch_DIR
echo "user route: python3 is $(command -v python3), torch $(python3 -c 'import torch; print(torch.__version__)')"
node "$root/scripts/find-libtorch.js" --json | grep -E '"(source|torchDir)"'

mkdir -p "$work/app"
cd "$work/app"
cat >package.json <<'EOF'
{ "name": "user-app", "version": "1.0.0", "private": true }
EOF
tarball="$(ls "$work"/resnet-torch-*.tgz)"
start=$SECONDS
{
  npm install --no-audit --no-fund "$tarball" && npm install-scripts approve resnet-torch &&
    npm rebuild resnet-torch --foreground-scripts
} >install.log 2>&1 || { tail -60 install.log; exit 1; }
[ -e node_modules/resnet-torch/build/Release/resnet_torch.node ] || { tail -60 install.log; exit 1; }
grep -E "libtorch|CUDA|c10d|oneDNN" install.log | grep -E '^-- ' || true
echo "user route: npm install (with the addon's build) took $((SECONDS - start)) s"
cp "$root/test/user-route/app.js" .
torch_lib="$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
EXPECT_LIBTORCH="$(python3 -c 'import torch; print(torch.__version__.split("+")[0])')" EXPECT_TORCH_LIB="$torch_lib" \
  node app.js
