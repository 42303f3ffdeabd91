#!/usr/bin/env bash
# The real node's runtime from Debian packages: containerd, runc, the CNI plugins, iptables, and the tools
# the node needs to enter and wire its namespaces. The kubelet and kube-proxy are built from
# the pinned Kubernetes module with the control plane (`make control-plane`).
#
#   scripts/node.sh install    install what is missing (needs root; a no-op when everything is there)
#   scripts/node.sh check      exit 0 when everything is there, else name what is missing
set -euo pipefail

# command or file -> package
declare -A PROVIDES=(
  [containerd]=containerd [runc]=runc [ctr]=containerd [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables [conntrack]=conntrack [nsenter]=util-linux [unshare]=util-linux [ip]=iproute2
)

missing() {
  local want
  for want in "${!PROVIDES[@]}"; do
    if [[ $want == /* ]]; then [[ -e $want ]] || echo "${PROVIDES[$want]}"
    else command -v "$want" >/dev/null || echo "${PROVIDES[$want]}"; fi
  done | sort -u
}

case "${1:-}" in
  check)
    todo=$(missing)
    if [[ -n $todo ]]; then echo "node.sh: missing packages: $todo" >&2; exit 1; fi ;;
  install)
    todo=$(missing)
    [[ -z $todo ]] && exit 0
    if [[ $(id -u) -ne 0 ]]; then
      echo "node.sh: missing $todo and not root: the real node needs root; the fake (kwok) nodes remain" >&2
      exit 1
    fi
    echo "node.sh: installing $todo (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -q --no-install-recommends $todo >&2; then
      apt-get update -q >&2
      # shellcheck disable=SC2086
      apt-get install -y -q --no-install-recommends $todo >&2
    fi
    # The Debian package would start a host-wide containerd under an init system; the node runs its own.
    command -v containerd >/dev/null ;;
  *) echo "usage: $0 install|check" >&2; exit 2 ;;
esac
