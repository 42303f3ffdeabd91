#!/usr/bin/env bash
# The heavy steps of the local image builds (images.py decides what to build, keys and caches it).
# No Docker, no registry: Go + umoci + skopeo for the pause image, buildah for the Dockerfile.
#
#   image-build.sh install                                  install the Debian packages the builds need
#   image-build.sh pause <src-dir> <out.tar> <ref>          static pause binary -> docker-archive tar
#   image-build.sh app <repo> <base.tar> <base-ref> <build.tar> <build-ref> <out.tar> <ref> <store>
#                                                           `buildah bud` of <repo>/Dockerfile: its build
#                                                           stage on the build base (with a compiler), the
#                                                           runtime on the base, its steps cached in the
#                                                           buildah store <store>
#   image-build.sh clean-store <store>                      remove a buildah store
# Tars are written to <out>.tmp.<pid> and renamed, so a cached tar is always complete.
set -euo pipefail

# runc: the image tests run the built image with it, as containerd runs a pod's containers.
PACKAGES=(buildah umoci skopeo mmdebstrap runc)

install() {
  local need=() p
  for p in "${PACKAGES[@]}"; do command -v "$p" >/dev/null || need+=("$p"); done
  # The pause program needs any Go >= 1.19; the control plane's build already wants one on PATH.
  command -v go >/dev/null || need+=(golang-go)
  if ((${#need[@]} == 0)); then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "image-build.sh: missing ${need[*]} and we are not root: run 'apt-get install ${need[*]}'" >&2
    exit 1
  fi
  echo "image-build.sh: installing the Debian packages ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${need[@]}" >&2; then
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${need[@]}" >&2
  fi
}

arch() { go env GOARCH; }

pause() {
  local src=${1:?src} out=${2:?out} ref=${3:?ref} work
  work=$(mktemp -d "${TMPDIR:-/tmp}/datajobs-pause.XXXXXX")
  trap 'rm -rf "$work"' RETURN
  mkdir -p "$work/rootfs"
  (cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go build -trimpath -ldflags='-s -w -buildid=' -o "$work/rootfs/pause" .)
  tar --create --file "$work/layer.tar" --directory "$work/rootfs" --owner=0 --group=0 --numeric-owner \
    --mtime=@0 --sort=name pause
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:pause"
  umoci raw add-layer --image "$work/oci:pause" "$work/layer.tar"
  # 65535 is the uid the upstream pause image runs as; the sandbox needs no privilege.
  umoci config --image "$work/oci:pause" --config.entrypoint /pause --config.user 65535:65535 \
    --os linux --architecture "$(arch)" --created 1970-01-01T00:00:00Z
  rm -f "$out.tmp.$$"
  skopeo copy --quiet "oci:$work/oci:pause" "docker-archive:$out.tmp.$$:$ref"
  mv -f "$out.tmp.$$" "$out"
}

app() {
  local repo=${1:?repo} base_tar=${2:?base} base_ref=${3:?base-ref} build_tar=${4:?build} build_ref=${5:?build-ref}
  local out=${6:?out} ref=${7:?ref} store=${8:?store}
  local b=(buildah --root "$store/root" --runroot "$store/run" --storage-driver overlay)
  prepare_store "$store"
  "${b[@]}" inspect --type image "$base_ref" >/dev/null 2>&1 \
    || "${b[@]}" pull --quiet "docker-archive:$base_tar" >/dev/null
  "${b[@]}" inspect --type image "$build_ref" >/dev/null 2>&1 \
    || "${b[@]}" pull --quiet "docker-archive:$build_tar" >/dev/null
  # The build's RUN steps trust the CAs this host trusts (a TLS-inspecting proxy's, say) when they fetch
  # from the package index; the bundle is mounted for the build only, never copied into the image.
  local trust=()
  if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    trust=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  fi
  # --layers: the store keeps each step's result, so a source edit reuses the dependencies' layer.
  "${b[@]}" bud --isolation chroot --pull-never --layers "${trust[@]}" \
    --build-arg "PYTHON_IMAGE=$base_ref" --build-arg "BUILD_IMAGE=$build_ref" --tag "$ref" --file "$repo/Dockerfile" "$repo"
  rm -f "$out.tmp.$$"
  "${b[@]}" push --quiet "$ref" "docker-archive:$out.tmp.$$:$ref"
  mv -f "$out.tmp.$$" "$out"
  "${b[@]}" rmi "$ref" >/dev/null  # the tar is the product; the cached steps stay
}

# Before a build (one at a time, under images.py's lock): what a killed build left (working containers,
# mounts) goes, and the whole store once it outgrows STORE_MAX_MB (the next build then starts cold).
STORE_MAX_MB=${STORE_MAX_MB:-4096}
prepare_store() {
  local store=${1:?store} used
  mkdir -p "$store"
  "${b[@]}" rm --all >/dev/null 2>&1 || true
  unmount_below "$store"
  used=$(du -sm "$store" | cut -f1)
  if ((used > STORE_MAX_MB)); then
    echo "image-build.sh: the buildah store holds ${used} MB (> ${STORE_MAX_MB}): starting it afresh" >&2
    clean_store "$store"
    mkdir -p "$store"
  fi
}

unmount_below() {
  local mnt
  while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done \
    < <(awk -v s="${1:?dir}/" 'index($2, s) == 1 {print $2}' /proc/self/mounts | sort -r)
}

# Removes a buildah storage directory entirely, also one a killed build left behind (overlay mounts).
clean_store() {
  local store=${1:?store}
  [[ -d "$store" ]] || return 0
  buildah --root "$store/root" --runroot "$store/run" --storage-driver overlay rm --all >/dev/null 2>&1 || true
  unmount_below "$store"
  rm -rf "$store"
}

cmd=${1:-}
shift || true
case "$cmd" in
  install) install ;;
  pause) pause "$@" ;;
  app) app "$@" ;;
  clean-store) clean_store "$@" ;;
  *) echo "usage: image-build.sh install|pause|app|clean-store ..." >&2; exit 2 ;;
esac
