#!/usr/bin/env bash
# Redis and PostgreSQL on loopback for the server-backend tests (sourced by .ci/run).
# Installs Debian's redis-server and postgresql when missing, starts both in a
# temporary directory, exports MEMSTRATA_TEST_REDIS_URL / MEMSTRATA_TEST_DATABASE_URL
# and stops both when the sourcing shell exits.
memstrata_services_start() {
    if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server postgresql
    fi
    local pgbin
    pgbin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
    MEMSTRATA_SERVICES_DIR=$(mktemp -d /tmp/memstrata-services.XXXXXX)
    chmod 755 "$MEMSTRATA_SERVICES_DIR"
    local redis_port=${MEMSTRATA_TEST_REDIS_PORT:-16379} pg_port=${MEMSTRATA_TEST_PG_PORT:-15432}

    redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
        --dir "$MEMSTRATA_SERVICES_DIR" --pidfile "$MEMSTRATA_SERVICES_DIR/redis.pid" \
        --logfile "$MEMSTRATA_SERVICES_DIR/redis.log"
    export MEMSTRATA_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"

    local pgdata="$MEMSTRATA_SERVICES_DIR/pg"
    local as_pg=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$MEMSTRATA_SERVICES_DIR"
        as_pg=(runuser -u postgres --)
    fi
    "${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -U postgres -A trust >/dev/null
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -l "$MEMSTRATA_SERVICES_DIR/pg.log" -w \
        -o "-k /tmp -h 127.0.0.1 -p $pg_port -c fsync=off" start >/dev/null
    export MEMSTRATA_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
    MEMSTRATA_PG_CTL=("${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata")
    trap memstrata_services_stop EXIT
}

memstrata_services_stop() {
    [ -n "${MEMSTRATA_SERVICES_DIR:-}" ] || return 0
    if [ -f "$MEMSTRATA_SERVICES_DIR/redis.pid" ]; then
        kill "$(cat "$MEMSTRATA_SERVICES_DIR/redis.pid")" 2>/dev/null || true
    fi
    "${MEMSTRATA_PG_CTL[@]}" stop -m fast >/dev/null 2>&1 || true
    rm -rf "$MEMSTRATA_SERVICES_DIR"
    MEMSTRATA_SERVICES_DIR=
}

memstrata_services_start
