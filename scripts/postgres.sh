#!/usr/bin/env bash
# Throwaway PostgreSQL for tests and benchmarks: install the Debian package if missing, start a private
# cluster on a free loopback port in its own temp dir (as a non-root user), stop and remove it.
#
#   scripts/postgres.sh install          install the `postgresql` package when no initdb is found
#   scripts/postgres.sh start            start a cluster; prints `PGDIR=<dir>` and `DSN=<libpq URI>` lines
#   scripts/postgres.sh stop <dir>       stop the cluster started in <dir> and delete <dir>
#
# The cluster trusts local connections, listens on 127.0.0.1 only and runs with fsync off: it is for
# tests, never for data anyone wants to keep.
set -euo pipefail

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return 0; fi
  if command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then pg_config --bindir; return 0; fi
  return 1
}

install() {
  if bindir >/dev/null; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "postgres.sh: PostgreSQL is not installed and we are not root: run 'apt-get install postgresql'" >&2
    exit 1
  fi
  echo "postgres.sh: installing the Debian postgresql package" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends postgresql >&2; then
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends postgresql >&2
  fi
  bindir >/dev/null || { echo "postgres.sh: installed postgresql but found no initdb" >&2; exit 1; }
}

# Run a command as the cluster's owner: postgres refuses to run as root.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  install
  local bin dir port tries=0
  bin=$(bindir)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/datajobs-pg.XXXXXX")
  chmod 0755 "$dir"
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  while :; do
    port=$(( 20000 + RANDOM % 40000 ))
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off \
       -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" >/dev/null 2>&1; then
      break
    fi
    tries=$((tries + 1))
    if (( tries >= 10 )); then
      echo "postgres.sh: the cluster did not start; log:" >&2; tail -n 30 "$dir/postgres.log" >&2; exit 1
    fi
  done
  echo "PGDIR=$dir"
  echo "DSN=postgresql://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=${1:?usage: postgres.sh stop <dir>} bin
  bin=$(bindir)
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
    */datajobs-pg.*) rm -rf "$dir" ;;
    *) echo "postgres.sh: refusing to delete $dir (not a datajobs-pg dir)" >&2; exit 1 ;;
  esac
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start | stop <dir>" >&2; exit 2 ;;
esac
