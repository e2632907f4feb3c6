#!/usr/bin/env bash
# Runs a command with a throw-away PostgreSQL server on a loopback port, then removes it.
#   scripts/with_postgres.sh pytest ...
# Exports MULTI_AGENT_TEST_PG_URL (postgresql+asyncpg://...) and MULTI_AGENT_TEST_PG_BIN.
# The server runs with fsync=off (fast tests); MULTI_AGENT_PG_FSYNC=on makes it durable, as in
# production (the benchmarks use that).
# Without PostgreSQL binaries (initdb/pg_ctl) it warns and runs the command anyway: the
# PostgreSQL tests then skip, unless MULTI_AGENT_REQUIRE_PG=1 (CI sets it) makes them fail.
set -u
if ! command -v initdb >/dev/null 2>&1 || ! command -v pg_ctl >/dev/null 2>&1; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PATH="$d:$PATH"; done
fi
if ! command -v initdb >/dev/null 2>&1; then
  echo "with_postgres: initdb not found; PostgreSQL tests will be skipped" >&2
  exec "$@"
fi
PORT="${MULTI_AGENT_TEST_PG_PORT:-$(( 54000 + RANDOM % 900 ))}"
DIR="$(mktemp -d /tmp/multi_agent_pg.XXXXXX)"
chmod 755 "$DIR"
as_pg() {
  if [ "$(id -u)" = "0" ]; then
    chown -R postgres "$DIR"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
as_pg initdb -D "$DIR/data" -U postgres -A trust --no-sync >"$DIR/initdb.log" 2>&1 || {
  cat "$DIR/initdb.log" >&2; echo "with_postgres: initdb failed" >&2; exit 1; }
as_pg pg_ctl -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=${MULTI_AGENT_PG_FSYNC:-off} -c max_connections=300" start >/dev/null || {
  cat "$DIR/server.log" >&2; echo "with_postgres: server did not start" >&2; exit 1; }
stop() {
  as_pg pg_ctl -D "$DIR/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$DIR"
}
trap stop EXIT
as_pg psql -h 127.0.0.1 -p "$PORT" -U postgres -c "CREATE DATABASE multi_agent_test" >/dev/null
export MULTI_AGENT_TEST_PG_URL="postgresql+asyncpg://postgres@127.0.0.1:$PORT/multi_agent_test"
export MULTI_AGENT_TEST_PG_DIR="$DIR"
export MULTI_AGENT_TEST_PG_PORT="$PORT"
echo "with_postgres: PostgreSQL on 127.0.0.1:$PORT" >&2
"$@"
