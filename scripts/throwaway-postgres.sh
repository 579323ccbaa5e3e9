#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests.
#
#   throwaway-postgres.sh start DIR   initdb + start in DIR, print SQLAlchemy URL
#   throwaway-postgres.sh url DIR     print the URL of a cluster started in DIR
#   throwaway-postgres.sh stop DIR    stop the cluster and delete DIR
#   throwaway-postgres.sh pause DIR   stop the server, keep its data (outage tests)
#   throwaway-postgres.sh resume DIR  start it again on the same port
#
# Only stdout of `start`/`url` is the URL; all chatter goes to stderr, so
# callers can do  url=$(throwaway-postgres.sh start "$dir").
# Durability is switched off (fsync, full_page_writes, synchronous_commit):
# the data is thrown away anyway and this makes tests much faster.
set -euo pipefail

DB_NAME=taxfree_test
DB_USER=taxfree
MARKER=.throwaway-postgres    # written by `start`; `stop` only deletes DIRs holding it

die() { echo "throwaway-postgres: $*" >&2; exit 1; }
log() { echo "throwaway-postgres: $*" >&2; }

usage() { die "usage: $0 start|stop|url DIR"; }
[[ $# -eq 2 ]] || usage
cmd=$1
[[ -n $2 ]] || usage
dir=$(realpath -m -- "$2")
[[ $dir != / ]] || die "refusing to use / as DIR"
# Run from / so `runuser -u postgres` never trips over an unreadable cwd.
cd /

# Newest installed server version, e.g. /usr/lib/postgresql/15/bin.
pg_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n1)
    [[ -n $d && -x $d/pg_ctl ]] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin (run scripts/system-packages.sh)"
    echo "$d"
}

# PostgreSQL refuses to run as root: as root, run its tools as user postgres.
if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
    as_pg() { runuser -u postgres -- "$@"; }
    PG_OWNER=postgres
else
    as_pg() { "$@"; }
    PG_OWNER=$(id -un)
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

log_tail() {
    if [[ -f $dir/postgres.log ]]; then
        echo "---- last lines of $dir/postgres.log ----" >&2
        tail -n 30 "$dir/postgres.log" >&2
        echo "----" >&2
    fi
}

start() {
    local bin port password attempt
    bin=$(pg_bin)
    mkdir -p "$dir"
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty"
    touch "$dir/$MARKER"
    [[ $PG_OWNER == "$(id -un)" ]] || chown -R "$PG_OWNER:" "$dir"
    chmod 700 "$dir"
    as_pg test -w "$dir" || die "$dir is not writable by user $PG_OWNER (is a parent directory private?)"

    as_pg "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }

    # A port picked by bind(0) could be taken before postgres binds it:
    # retry on "Address already in use", fail at once on anything else.
    for attempt in 1 2 3; do
        port=$(free_port)
        [[ ! -f $dir/postgres.log ]] || : >"$dir/postgres.log"
        as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 -s \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir'" \
            -o "-c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
            -o "-c max_connections=200" \
            start >&2 && break
        log "start attempt $attempt on port $port failed"
        log_tail
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -s stop >/dev/null 2>&1 || true
        grep -q "already in use" "$dir/postgres.log" 2>/dev/null && [[ $attempt -lt 3 ]] \
            || die "could not start PostgreSQL in $dir"
    done

    local ok=
    for _ in $(seq 1 100); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then ok=1; break; fi
        sleep 0.1
    done
    [[ -n $ok ]] || { log_tail; die "PostgreSQL on port $port did not become ready"; }

    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    # One statement per psql call: CREATE DATABASE cannot run in a transaction.
    local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres)
    as_pg "${psql[@]}" -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$password'" >&2 \
        && as_pg "${psql[@]}" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >&2 \
        || { log_tail; die "could not create role/database"; }

    local url="postgresql+psycopg://$DB_USER:$password@127.0.0.1:$port/$DB_NAME"
    echo "$url" >"$dir/url"
    echo "$url"
}

stop() {
    [[ -e $dir ]] || return 0                       # already gone: nothing to do
    if [[ ! -e $dir/$MARKER ]]; then
        rmdir "$dir" 2>/dev/null && return 0        # empty (e.g. start never ran)
        die "$dir was not created by this script; not deleting it"
    fi
    if [[ -f $dir/data/postmaster.pid ]]; then
        # immediate: no checkpoint, the data is about to be deleted anyway.
        as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w -t 30 -s stop >&2 \
            || log "pg_ctl stop failed (server already dead?)"
    fi
    rm -rf -- "$dir"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    pause) as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 30 -s stop >&2 ;;
    # restart reuses the options of the last start (postmaster.opts): same port.
    resume) as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 -s restart >&2 ;;
    url) [[ -f $dir/url ]] || die "no cluster started in $dir"; cat "$dir/url" ;;
    *) usage ;;
esac
