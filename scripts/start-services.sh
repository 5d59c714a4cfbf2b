#!/bin/sh
# Start the services the test suite talks to, when they are not running (idempotent):
# PostgreSQL on 127.0.0.1:5432 (database "test", trust authentication) and Redis on
# 127.0.0.1:6379. Machines that run them already (CI's, developers') are left alone.
# Tests that need a service that is still down skip locally and fail in CI (CI=true).
set -eu

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() { # name check-command
    i=0
    while [ "$i" -lt 60 ]; do
        if "$2"; then return 0; fi
        i=$((i + 1))
        sleep 0.5
    done
    echo "start-services: $1 is still not reachable" >&2
    return 1
}

status=0
if command -v pg_isready >/dev/null 2>&1 && ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        for dir in /etc/postgresql/*/; do
            version=$(basename "$dir")
            echo "start-services: starting PostgreSQL $version"
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
        wait_for PostgreSQL pg_up || status=1
    else
        echo "start-services: PostgreSQL is not running and not installed here; its tests will skip" >&2
    fi
fi

if ! { command -v redis-cli >/dev/null 2>&1 && redis_up; }; then
    if command -v redis-server >/dev/null 2>&1; then
        echo "start-services: starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log
        wait_for Redis redis_up || status=1
    else
        echo "start-services: Redis is not running and not installed here; its tests will skip" >&2
    fi
fi
exit "$status"
