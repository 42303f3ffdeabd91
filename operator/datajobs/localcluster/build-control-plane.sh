#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
# kubectl, kubelet, kube-proxy, helm) from their published Go modules into a cache directory. Pinned versions; idempotent.
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

k8s_module() {  # the wrapper module every Kubernetes binary is built in; prints its directory
  local dir="$WORK/kubernetes-$K8S_VERSION" staging="v0.${K8S_VERSION#v1.}"
  mkdir -p "$dir"
  if [ ! -f "$dir/tools.go" ] || ! grep -q cmd/kube-proxy "$dir/tools.go"; then
    local modfile go_line
    modfile="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
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
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
    (cd "$dir" && go mod tidy) >&2
  fi
  echo "$dir"
}

k8s_ldflags() {
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
}

build_kubernetes() {
  if have kube-apiserver && have kube-controller-manager && have kube-scheduler; then return; fi
  local dir
  dir="$(k8s_module)"
  log "kubernetes $K8S_VERSION control plane in $dir"
  (cd "$dir" && go build -ldflags "$(k8s_ldflags)" -o "$OUT/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
}

build_kubectl() {  # the tests' kubectl, at the server's version (kubectl supports one minor of skew)
  if have kubectl; then return; fi
  local dir
  dir="$(k8s_module)"
  log "kubectl $K8S_VERSION in $dir"
  (cd "$dir" && go build -ldflags "$(k8s_ldflags)" -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl)
}

build_node() {  # the real node's kubelet and kube-proxy, from the same module as the control plane
  if have kubelet && have kube-proxy; then return; fi
  local dir
  dir="$(k8s_module)"
  log "kubelet and kube-proxy $K8S_VERSION in $dir"
  (cd "$dir" && go build -ldflags "$(k8s_ldflags)" -o "$OUT/" k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
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

# Usage: build-control-plane.sh [OUT] [all|etcd|kwok|kubernetes|kubectl|node|helm]
case "${2:-all}" in
  all) build_etcd; build_kwok; build_kubernetes; build_kubectl; build_node; build_helm ;;
  etcd|kwok|kubernetes|kubectl|node|helm) "build_$2" ;;
  *) log "unknown target: $2 (all, etcd, kwok, kubernetes, kubectl, node, helm)"; exit 2 ;;
esac
log "binaries in $OUT"
ls -la "$OUT" >&2
