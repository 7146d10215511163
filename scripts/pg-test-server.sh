#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from the Debian packages (apt-get install postgresql):
# a fresh cluster in a temporary directory, on a free loopback port, trust authentication, no fsync.
# As root (CI), the server runs as the unprivileged `postgres` user through runuser: PostgreSQL
# refuses to run as root.
#
#   eval "$(scripts/pg-test-server.sh start)"   # exports PAYMENT_TEST_POSTGRES and PAYMENT_TEST_POSTGRES_DIR
#   cargo test                                   # the PostgreSQL tests now run instead of skipping loudly
#   scripts/pg-test-server.sh stop "$PAYMENT_TEST_POSTGRES_DIR"
#
# Never point PAYMENT_TEST_POSTGRES at a database that matters: the tests create schemas in it.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-test-server: PostgreSQL is not installed (apt-get install postgresql)" >&2
  exit 2
fi

as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
  dir=${2:-$(mktemp -d "${TMPDIR:-/tmp}/payment-mcp-pg.XXXXXX")}
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  port=${PG_TEST_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
  as_server "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  echo "export PAYMENT_TEST_POSTGRES=postgres://postgres@127.0.0.1:$port/postgres"
  echo "export PAYMENT_TEST_POSTGRES_DIR=$dir"
  ;;
stop)
  dir=${2:?usage: pg-test-server.sh stop DIR}
  as_server "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: pg-test-server.sh start [DIR] | stop DIR" >&2
  exit 2
  ;;
esac
