#!/usr/bin/env bash
# Run the store, registry and backup tests against a throwaway PostgreSQL server.
#
#   scripts/test-postgres.sh [pytest args...]      (or: make test-postgres)
#
# 1. Finds the server binaries under /usr/lib/postgresql/*/bin; when they are missing and this
#    runs as root, installs Debian's `postgresql` package with apt-get (otherwise says what to
#    install and exits 2).
# 2. Creates a private data directory, runs initdb (trust authentication) and starts the server
#    on a free port, listening on 127.0.0.1 only, with its unix socket inside the temp directory.
#    PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
# 3. Creates a login role `warden` (CREATEDB: the tests make a fresh database per test) and
#    exports WARDEN_TEST_POSTGRES_URL=postgresql+psycopg://warden@127.0.0.1:PORT/warden.
# 4. Runs pytest on the store/registry/backup tests (the SQLite variants run too), then stops
#    the server and removes the data directory, whatever the outcome (trap).
#
# The server is tuned for throwaway tests (fsync off): never point it at data you keep.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

find_pg_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

PGBIN=$(find_pg_bin || true)
if [ -z "$PGBIN" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "test-postgres: installing PostgreSQL from Debian's packages (apt-get)" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
        PGBIN=$(find_pg_bin || true)
    fi
    if [ -z "$PGBIN" ]; then
        echo "test-postgres: PostgreSQL server binaries (initdb, pg_ctl) not found under" \
            "/usr/lib/postgresql/*/bin; install them with: sudo apt-get install postgresql" >&2
        exit 2
    fi
fi

# Who runs the server: postgres refuses root.
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        echo "test-postgres: running as root but there is no 'postgres' user to run the server;" \
            "create one (useradd --system postgres) or run this script as a normal user" >&2
        exit 2
    fi
    as_server() { runuser -u postgres -- "$@"; }
    SERVER_USER=postgres
else
    as_server() { "$@"; }
    SERVER_USER=$(id -un)
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-pg.XXXXXX")
DATA="$TMP/data"
SOCK="$TMP/sock"
mkdir -p "$DATA" "$SOCK"
chmod 0700 "$TMP" "$DATA"
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$TMP"
fi

STARTED=0
cleanup() {
    local rc=$?
    if [ "$STARTED" -eq 1 ]; then
        as_server "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "test-postgres: initdb ($PGBIN) as $SERVER_USER in $DATA" >&2
as_server "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    >"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; exit 2; }

OPTS="-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$SOCK"
OPTS="$OPTS -c max_connections=300 -c fsync=off -c synchronous_commit=off"
OPTS="$OPTS -c full_page_writes=off"
# No autovacuum: its workers hold connections to the per-test databases that the non-superuser
# test role may not terminate, which made `DROP DATABASE … WITH (FORCE)` fail at teardown.
OPTS="$OPTS -c autovacuum=off"
as_server "$PGBIN/pg_ctl" -D "$DATA" -l "$TMP/server.log" -o "$OPTS" -w -t 60 start >/dev/null \
    || { cat "$TMP/server.log" >&2; exit 2; }
STARTED=1
echo "test-postgres: server $("$PGBIN/postgres" --version) on 127.0.0.1:$PORT" >&2

psql_admin() { as_server "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 "$@"; }
psql_admin -c "CREATE ROLE warden LOGIN CREATEDB"
psql_admin -c "CREATE DATABASE warden OWNER warden"

export WARDEN_TEST_POSTGRES_URL="postgresql+psycopg://warden@127.0.0.1:$PORT/warden"
echo "test-postgres: WARDEN_TEST_POSTGRES_URL=$WARDEN_TEST_POSTGRES_URL" >&2

TESTS=()
for path in tests/store tests/registry tests/audit tests/access tests/cli/test_cli_store.py \
    tests/cli/test_cli_registry.py tests/cli/test_cli_backup.py \
    tests/cli/test_cli_governance.py tests/cli/test_cli_audit.py tests/cli/test_cli_access.py; do
    [ -e "$path" ] && TESTS+=("$path")
done

set +e
"$PYTHON" -m pytest -q "${TESTS[@]}" "$@"
rc=$?
set -e
exit "$rc"
