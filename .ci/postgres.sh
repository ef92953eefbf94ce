# Sourced by .ci/test.sh: a throw-away PostgreSQL server on a free loopback
# port for the ember-postgres tests.
#   start_postgres   initdb + start (about 1 s); exports
#                    EMBER_TEST_POSTGRES_URL   postgres://postgres@127.0.0.1:PORT/postgres
#                    EMBER_TEST_POSTGRES_DATA  its data directory (tests restart it with pg_ctl)
#                    EMBER_TEST_POSTGRES_BIN   the directory of pg_ctl
#   stop_postgres    stops it and removes its files
# Both are idempotent. The server runs as the `postgres` OS user when we are
# root (PostgreSQL refuses to run as root), else as the current user.
# Any major version will do: pg_bin_dir finds the server's binaries (PG_BIN
# overrides); .ci/setup.sh installs the distribution's PostgreSQL if none.

# Prints the directory holding initdb, pg_ctl and postgres: $PG_BIN, else the
# newest /usr/lib/postgresql/*/bin (Debian, Ubuntu), else `pg_config
# --bindir`, else where the initdb on PATH really is. Fails if none has them.
pg_bin_dir() {
  local dir candidates=()
  if [ -n "${PG_BIN:-}" ]; then
    candidates=("$PG_BIN")
  else
    while IFS= read -r dir; do
      candidates+=("$dir")
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV)
    if command -v pg_config >/dev/null 2>&1; then
      candidates+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    if command -v initdb >/dev/null 2>&1; then
      candidates+=("$(dirname "$(readlink -f "$(command -v initdb)")")")
    fi
  fi
  for dir in "${candidates[@]}"; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

_pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_postgres() {
  if [ -n "${PG_ROOT:-}" ] && [ -d "$PG_ROOT/data" ] \
      && _pg_as_owner "$EMBER_TEST_POSTGRES_BIN/pg_ctl" -D "$PG_ROOT/data" status >/dev/null 2>&1; then
    return 0
  fi
  local bin
  if ! bin=$(pg_bin_dir); then
    echo "postgres: no PostgreSQL server binaries (initdb, pg_ctl, postgres)${PG_BIN:+ in $PG_BIN}; run .ci/setup.sh" >&2
    return 1
  fi
  PG_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ember-pg.XXXXXX")
  chmod 755 "$PG_ROOT"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_ROOT"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  if ! _pg_as_owner "$bin/initdb" -D "$PG_ROOT/data" -A trust -U postgres -E UTF8 --locale=C \
      -N >"$PG_ROOT/initdb.log" 2>&1; then
    echo "postgres: initdb failed:" >&2
    cat "$PG_ROOT/initdb.log" >&2
    return 1
  fi
  # In postgresql.conf, so that a plain `pg_ctl -D DATA start` restarts it
  # the same way. No fsync: a test server, never crashed on purpose.
  _pg_as_owner tee -a "$PG_ROOT/data/postgresql.conf" >/dev/null <<EOF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_ROOT'
fsync = off
full_page_writes = off
max_connections = 200
EOF
  if ! _pg_as_owner "$bin/pg_ctl" -D "$PG_ROOT/data" -l "$PG_ROOT/server.log" -w -t 30 \
      start >/dev/null 2>&1; then
    echo "postgres: the server did not start:" >&2
    cat "$PG_ROOT/server.log" >&2
    return 1
  fi
  export EMBER_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export EMBER_TEST_POSTGRES_DATA="$PG_ROOT/data"
  export EMBER_TEST_POSTGRES_BIN="$bin"
  echo "postgres: PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port"
}

stop_postgres() {
  if [ -n "${PG_ROOT:-}" ] && [ -d "$PG_ROOT" ]; then
    _pg_as_owner "${EMBER_TEST_POSTGRES_BIN:-$(pg_bin_dir)}/pg_ctl" \
      -D "$PG_ROOT/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_ROOT"
  fi
  PG_ROOT=""
  unset EMBER_TEST_POSTGRES_URL EMBER_TEST_POSTGRES_DATA EMBER_TEST_POSTGRES_BIN
}
