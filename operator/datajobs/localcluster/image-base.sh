#!/usr/bin/env bash
# The Python base images for local builds: Debian bookworm minbase with python3 and venv (the Dockerfile's
# build stage makes its pip from ensurepip), as a docker-archive tar; the build stage's base adds the
# packages named after the ref (a C compiler and the Python headers, for the masking worker's helper).
# images.py keys each cached base by this file's content and those packages: change the recipe here and
# the bases (and so the application image) are rebuilt.
#
#   image-base.sh <out.tar> <image-ref> [<extra-package>,...]
set -euo pipefail
out=${1:?usage: image-base.sh <out.tar> <image-ref> [<extra-package>,...]}
ref=${2:?usage: image-base.sh <out.tar> <image-ref> [<extra-package>,...]}
suite=bookworm
packages=python3,python3-venv,ca-certificates${3:+,$3}

work=$(mktemp -d "${TMPDIR:-/tmp}/datajobs-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

# No documentation, manuals or translations (only the licences stay); no apt lists or caches.
mmdebstrap --quiet --mode=root --variant=minbase --format=tar --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
  "$suite" "$work/rootfs.tar" \
  "deb http://deb.debian.org/debian $suite main" \
  "deb http://deb.debian.org/debian $suite-updates main" \
  "deb http://deb.debian.org/debian-security $suite-security main"

# One layer, the config of a plain Debian image.
umoci init --layout "$work/oci"
umoci new --image "$work/oci:base"
umoci raw add-layer --image "$work/oci:base" "$work/rootfs.tar"
umoci config --image "$work/oci:base" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env LANG=C.UTF-8 --config.cmd python3 \
  --os linux --architecture "$(dpkg --print-architecture)"
rm -f "$out.tmp"
skopeo copy --quiet "oci:$work/oci:base" "docker-archive:$out.tmp:$ref"
mv -f "$out.tmp" "$out"
