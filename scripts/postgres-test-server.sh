#!/usr/bin/env bash
# A PostgreSQL server for the storage tests, from Debian's packages. Idempotent: installs
# `postgresql` when missing, makes the cluster listen on 127.0.0.1 only, starts it, makes
# sure role `provarmor` (with a password) and database `provarmor_test` exist, and prints
# the URL on stdout (everything else goes to stderr):
#   export PROVARMOR_TEST_POSTGRES_URL="$(scripts/postgres-test-server.sh)"
# The role may create roles (CREATEROLE): a storage test makes one with a connection limit.
# The password is PROVARMOR_TEST_POSTGRES_PASSWORD (default: provarmor-test; URL-safe
# characters only: it goes into the URL as it is). The server accepts connections from this
# machine only, so it guards nothing but test data.
set -euo pipefail

role=provarmor
database=provarmor_test
password="${PROVARMOR_TEST_POSTGRES_PASSWORD:-provarmor-test}"

say() { echo "postgres-test-server: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else (cd / && sudo -u postgres "$@"); fi
}

if ! command -v pg_lsclusters >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing postgresql from Debian's packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >&2
fi

# The first cluster (Debian makes `<version> main` on install); make one when there is none.
read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1) || true
if [ -z "${version:-}" ]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    cluster=main
    say "creating cluster $version/$cluster"
    as_root pg_createcluster "$version" "$cluster" >&2
    read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1)
fi

# Loopback only. A changed setting needs a restart of a running cluster.
conf="/etc/postgresql/$version/$cluster/conf.d/provarmor-test.conf"
wanted="listen_addresses = '127.0.0.1'"
if [ "$(as_root cat "$conf" 2>/dev/null || true)" != "$wanted" ]; then
    say "writing $conf"
    echo "$wanted" | as_root tee "$conf" >/dev/null
    if [ "$status" = online ]; then
        as_root pg_ctlcluster "$version" "$cluster" restart >&2
    fi
fi

if ! pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c' | grep -q online; then
    say "starting cluster $version/$cluster"
    if [ -d /run/systemd/system ]; then
        as_root systemctl start "postgresql@$version-$cluster" >&2
    else
        as_root pg_ctlcluster "$version" "$cluster" start >&2 || as_root service postgresql start >&2
    fi
fi
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
done
pg_isready -q -h 127.0.0.1 -p "$port" || { say "server on 127.0.0.1:$port is not ready"; exit 1; }

as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -v role="$role" -v database="$database" \
    -v password="$password" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SQL

say "ready: PostgreSQL $version on 127.0.0.1:$port"
echo "postgresql://$role:$password@127.0.0.1:$port/$database"
