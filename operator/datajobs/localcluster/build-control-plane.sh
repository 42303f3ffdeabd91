#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
# helm) from their published Go modules into a cache directory. Pinned versions; idempotent.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"
HELM_VERSION="${HELM_VERSION:-v3.19.5}"
OUT="${1:-${DATAJOBS_CACHE:-$HOME/.cache/datajobs}/bin-k8s-${K8S_VERSION}}"
WORK="$(dirname "$OUT")/build"
mkdir -p "$OUT" "$WORK"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[build-control-plane] %s\n' "$*" >&2; }
have() { [ -x "$OUT/$1" ]; }

build_kubernetes() {
  if have kube-apiserver && have kube-controller-manager && have kube-scheduler; then return; fi
  local dir="$WORK/kubernetes-$K8S_VERSION" staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$dir"
  log "kubernetes $K8S_VERSION (staging $staging) in $dir"
  local modfile
  modfile="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  local go_line
  go_line="$(awk '$1=="go"{print $2; exit}' "$modfile")"
  {
    echo "module datajobs.local/k8sbuild"
    echo
    echo "go $go_line"
    echo
    echo "godebug default=go${go_line%.*}"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$modfile"
    echo ")"
  } > "$dir/go.mod"
  cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  (cd "$dir" && go mod tidy && go build -ldflags "$ldflags" -o "$OUT/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
}

build_etcd() {
  if have etcd; then return; fi
  local dir="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  log "etcd $ETCD_VERSION in $dir"
  cat > "$dir/go.mod" <<MOD
module datajobs.local/etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$dir" && go mod tidy && go build -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3)
}

build_go_install() {  # name module version
  if have "$1"; then return; fi
  log "$2@$3"
  GOBIN="$OUT" go install -ldflags "-s -w" "$2@$3"
}

build_kwok() { build_go_install kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"; }
build_helm() { build_go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"; }

# Usage: build-control-plane.sh [OUT] [all|etcd|kwok|kubernetes|helm]
case "${2:-all}" in
  all) build_etcd; build_kwok; build_kubernetes; build_helm ;;
  etcd|kwok|kubernetes|helm) "build_$2" ;;
  *) log "unknown target: $2 (all, etcd, kwok, kubernetes, helm)"; exit 2 ;;
esac
log "binaries in $OUT"
ls -la "$OUT" >&2
