#!/usr/bin/env bash
# Build Prometheus and promtool from the published Go module into their own cache directory.
# Pinned version; idempotent. Tags: remove_all_sd (only the file and http discovery the tests use)
# and no builtinassets (the web UI is not embedded: its assets are built with npm; the HTTP API,
# which the tests use, is complete without them).
set -euo pipefail

PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"  # Prometheus 3.16.0
OUT="${1:-${DATAJOBS_CACHE:-$HOME/.cache/datajobs}/bin-prometheus-${PROMETHEUS_MODULE_VERSION}}"
WORK="$(dirname "$OUT")/build-prometheus/prometheus-$PROMETHEUS_MODULE_VERSION"
mkdir -p "$OUT" "$WORK"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"

log() { printf '[build-prometheus] %s\n' "$*" >&2; }

if [ -x "$OUT/prometheus" ] && [ -x "$OUT/promtool" ]; then
  log "prometheus and promtool already in $OUT"
  exit 0
fi

if [ ! -f "$WORK/go.mod" ]; then
  cat > "$WORK/go.mod" <<MOD
module datajobs.local/prometheusbuild

go 1.26

require github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION
MOD
  cat > "$WORK/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
GO
fi

version="$(cd "$WORK" && go list -m -f '{{.Dir}}' github.com/prometheus/prometheus 2>/dev/null | xargs -r -I{} cat {}/VERSION || true)"
ldflags="-s -w -X github.com/prometheus/common/version.Version=${version:-$PROMETHEUS_MODULE_VERSION} -X github.com/prometheus/common/version.Branch=module -X github.com/prometheus/common/version.Revision=$PROMETHEUS_MODULE_VERSION"
log "prometheus ${version:-?} (module $PROMETHEUS_MODULE_VERSION) in $WORK"
(cd "$WORK" && go build -tags remove_all_sd,netgo -ldflags "$ldflags" -o "$OUT/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
log "binaries in $OUT"
ls -la "$OUT" >&2
