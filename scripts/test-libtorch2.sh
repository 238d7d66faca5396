#!/usr/bin/env bash
# The whole test suite on libtorch 2.6, on this Debian 12 machine: a Debian 13 root made by debootstrap from
# Debian's archive into a cache folder (libtorch-dev, python3-torch, python3-torchvision, Node 20, cmake, g++),
# this working tree copied into it, and `npm test` run there as on a fresh machine: its setup builds the addon
# with our normal build (cmake-js finding libtorch by itself) and the PyTorch references are Debian 13's 2.6.
#   npm run test:libtorch2            (needs root: debootstrap, chroot and the /proc mount)
# The root is made once (about 6 minutes, then 12 for the first build; 5 GB) and kept, as is its build folder; the cache:
# $RESNET_TORCH_CACHE, else ~/.cache/resnet-torch. Arguments go to the test runner (unit, integration, user, all).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || {
  echo "test-libtorch2: needs root (debootstrap, chroot); run it with sudo" >&2
  exit 1
}
command -v debootstrap >/dev/null || {
  echo "test-libtorch2: installing debootstrap (Debian 12's) with apt"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
}

cache="${RESNET_TORCH_CACHE:-$HOME/.cache/resnet-torch}"
root="$cache/debian-trixie/chroot"
# What scripts/setup.sh would install on Debian 13 for `npm test`, installed up front by the root's own apt
# (debootstrap's resolver alone leaves npm's dependencies half-configured).
# OpenBLAS: where oneDNN is off (device/runtime.h) libtorch's convolutions run on BLAS, and Debian's default one
# is the reference implementation, 10-50x slower.
packages=(nodejs npm libtorch-dev libgloo-dev python3-torch python3-torchvision clang-format cmake ninja-build g++ make
  python3 dataset-fashion-mnist fonts-dejavu-core libopenblas0-pthread)
if [ ! -e "$root/.ready" ]; then
  started=$SECONDS
  [ -e "$root/debootstrap.done" ] || {
    rm -rf "$root"
    mkdir -p "$(dirname "$root")"
    debootstrap --variant=minbase --include=ca-certificates trixie "$root" http://deb.debian.org/debian
    touch "$root/debootstrap.done"
  }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    bash -c 'apt-get update -q && apt-get install -y -q -f && apt-get install -y -q --no-install-recommends "$@" && apt-get clean' _ "${packages[@]}"
  touch "$root/.ready"
  echo "test-libtorch2: Debian 13 root made in $((SECONDS - started)) s"
fi

# This working tree (what git tracks or would track, its node_modules and dist) in /src. /src/build, the addon built
# there, is kept between runs: a file whose content changed gets a new time (the build must see it even when the
# copy kept here is newer than the edit), the others keep theirs.
stage="$root/src.stage"
rm -rf "$stage"
mkdir -p "$stage" "$root/src"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$stage"
(cd "$stage" && find . -type f -print0) | while IFS= read -r -d '' f; do
  cmp -s "$stage/$f" "$root/src/$f" || install -D -m "$(stat -c %a "$stage/$f")" "$stage/$f" "$root/src/$f"
done
(cd "$root/src" && find . -path ./build -prune -o -path ./node_modules -prune -o -type f -print0) |
  while IFS= read -r -d '' f; do [ -e "$stage/$f" ] || rm -f "$root/src/$f"; done
rm -rf "$stage" "$root/src/node_modules"
cp -a node_modules "$root/src/"
# Those are this tree's dependencies: newer than its lock file, whose copy above may have a new time, so that the
# root's setup does not reinstall them (and the root's npm has no access to the registry's certificates).
touch "$root/src/node_modules/.package-lock.json"

mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true' EXIT
started=$SECONDS
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  CI=true bash -c 'cd /src && echo "== Debian $(cat /etc/debian_version), Node $(node --version), PyTorch $(python3 -c "import torch; print(torch.__version__)")"
    if [ $# = 0 ]; then npm test; else bash scripts/setup.sh test && node scripts/test.js "$@"; fi' _ "$@"
echo "test-libtorch2: npm test on libtorch 2.6 passed in $((SECONDS - started)) s"
