#!/usr/bin/env bash
# Compile check of every translation unit of native/ against several libtorch versions, without linking:
#   scripts/check-libtorch.sh [1.13|2.6 ...] [--cuda]
# 1.13 is this machine's own libtorch (Debian 12's libtorch-dev, /usr/include); 2.6 is Debian 13's libtorch-dev,
# fetched from Debian's archive into a cache folder by a private apt (nothing on the host changes). --cuda adds
# the CUDA variant (RESNET_WITH_CUDA) against Debian 13's libtorch-cuda-dev and the CUDA headers it includes
# (nvidia-cuda-dev, a 930 MB download, cached), with /usr/local/cuda after them for what those lack.
# Every variant compiles the distributed code (c10d with Gloo; the CUDA one with NCCL too, libnccl-dev's header).
# Our own code compiles with -Werror; libtorch's headers are system headers (their warnings are theirs).
# The cache: $RESNET_TORCH_CACHE, else ~/.cache/resnet-torch.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=()
cuda=0
for a in "$@"; do
  case "$a" in
    --cuda) cuda=1 ;;
    1.13 | 2.6) versions+=("$a") ;;
    *)
      echo "usage: scripts/check-libtorch.sh [1.13|2.6 ...] [--cuda]" >&2
      exit 2
      ;;
  esac
done
[ ${#versions[@]} -gt 0 ] || versions=(1.13 2.6)

cache="${RESNET_TORCH_CACHE:-$HOME/.cache/resnet-torch}"
trixie="$cache/debian-trixie"
jobs="$(nproc)"

# A private apt for Debian 13: its own sources, lists and cache; the host's packages and lists stay as they are.
trixie_apt() {
  mkdir -p "$trixie/lists/partial" "$trixie/apt-cache/archives/partial" "$trixie/debs"
  : >"$trixie/status"
  cat >"$trixie/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main contrib non-free
EOF
  apt-get -q -o Dir::Etc::SourceList="$trixie/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$trixie/lists" -o Dir::State::status="$trixie/status" \
    -o Dir::Cache="$trixie/apt-cache" -o APT::Sandbox::User=root "$@"
}

# Debian 13 packages unpacked into $trixie/ROOT (each once; the .deb files stay in the cache). libtorch-cuda-dev
# replaces libtorch-dev (the same headers, configured for CUDA), so the CPU and CUDA variants get a root each.
trixie_unpack() {
  local root="$trixie/$1"
  shift
  local missing=()
  for p in "$@"; do [ -e "$root.unpacked/$p" ] || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ -n "$(ls "$trixie/lists" 2>/dev/null | grep -v partial)" ] || trixie_apt update >&2
  (cd "$trixie/debs" && trixie_apt download "${missing[@]}" >&2)
  mkdir -p "$root" "$root.unpacked"
  for p in "${missing[@]}"; do
    dpkg-deb -x "$(ls -t "$trixie/debs/${p}"_*.deb | head -1)" "$root"
    touch "$root.unpacked/$p"
  done
}

# check NAME INCLUDE_FLAGS... : every .cpp with -fsyntax-only, in parallel.
check() {
  local name="$1"
  shift
  local flags=(-std=gnu++17 -fPIC -Wall -Wextra -Wno-unused-parameter -Werror -D_GLIBCXX_USE_CXX11_ABI=1
    -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
    -Inative -I"$(node -p "require('node-api-headers').include_dir")" -I"$(node -p "require('node-addon-api').include_dir")"
    "$@")
  local started=$SECONDS
  # No precompiled header: each file includes only what it uses, and loading a 500 MB one costs more than that.
  find native -name '*.cpp' | sort | xargs -P "$jobs" -I{} sh -c 'g++ "$@" -fsyntax-only {} || { echo "FAILED: {}" >&2; exit 255; }' _ "${flags[@]}"
  echo "libtorch $name: $(find native -name '*.cpp' | wc -l) translation units compile ($((SECONDS - started)) s)"
}

c10d=(-DRESNET_WITH_C10D -DUSE_C10D_GLOO -idirafter native/compat)
for v in "${versions[@]}"; do
  case "$v" in
    1.13)
      [ -e /usr/include/torch/csrc/api/include/torch/torch.h ] || {
        echo "libtorch 1.13: Debian 12's libtorch-dev is not installed (scripts/setup.sh installs it)" >&2
        exit 1
      }
      [ -e /usr/include/gloo/config.h ] || {
        echo "libtorch 1.13: Gloo's headers are missing (libgloo-dev; scripts/setup.sh installs it)" >&2
        exit 1
      }
      check 1.13-cpu "${c10d[@]}" -isystem /usr/include/torch/csrc/api/include
      ;;
    2.6)
      trixie_unpack root-cpu libtorch-dev libfmt-dev libgloo-dev
      inc="$trixie/root-cpu/usr/include"
      check 2.6-cpu "${c10d[@]}" -isystem "$inc/torch/csrc/api/include" -isystem "$inc"
      if [ "$cuda" = 1 ]; then
        trixie_unpack root-cuda libtorch-cuda-dev libfmt-dev nvidia-cuda-dev libgloo-dev libnccl-dev
        inc="$trixie/root-cuda/usr/include"
        check 2.6-cuda -DRESNET_WITH_CUDA "${c10d[@]}" -DRESNET_WITH_NCCL -DUSE_C10D_NCCL \
          -isystem "$inc/torch/csrc/api/include" -isystem "$inc" -idirafter /usr/local/cuda/include
      fi
      ;;
  esac
done
