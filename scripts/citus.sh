#!/usr/bin/env bash
# Distributed tests on Citus (part of README command 2; scripts/test.sh runs it after pg_regress):
# Citus 13.2.2, built from ../shared/vendor when it is not installed yet, a coordinator and two
# workers (ports 9700-9702 on 127.0.0.1, owned by the postgres OS user, in build/citus-cluster),
# clv_ext created on the coordinator (Citus propagates it to the workers), then tests/citus/sql
# through pg_regress against the coordinator. clv_ext must be installed already (test.sh does it).
# Without Citus and without the tarball (a clone with nothing beside it) it says so and passes.
#   scripts/citus.sh                          # every test in tests/citus/sql
#   CLV_CITUS_REGRESS="citus_rfm" scripts/citus.sh
#   CLV_CITUS_KEEP=1 scripts/citus.sh         # leave the cluster up afterwards, for psql:
#                                             #   psql -h 127.0.0.1 -p 9700 -U postgres clv_citus
#   CLV_CITUS_TARBALL=/path/citus-13.2.2.tar.gz, CLV_CITUS_PORT=9700 (workers on the next two)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CITUS_VERSION=13.2.2
CITUS_TARBALL=${CLV_CITUS_TARBALL:-$ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz}
CITUS_PORT=${CLV_CITUS_PORT:-9700}
CITUS_DB=clv_citus
CITUS_NODES=(coordinator worker1 worker2)

# Citus in this PostgreSQL, built from the tarball (and every citus-<version>-*.patch beside it)
# when missing: about 2 minutes with make -j2. Returns 1 when there is neither.
ensure_citus() {
    local libdir sharedir
    libdir=$("$PG_CONFIG" --pkglibdir)
    sharedir=$("$PG_CONFIG" --sharedir)
    if [ -f "$libdir/citus.so" ] && [ -f "$sharedir/extension/citus.control" ]; then
        return 0
    fi
    if [ ! -f "$CITUS_TARBALL" ]; then
        echo "skipping Citus tests: $CITUS_TARBALL not found (and Citus is not installed in $libdir)"
        return 1
    fi
    # The vendor README's list, less libcurl4-openssl-dev: configured --without-libcurl.
    local pkgs="postgresql-server-dev-$PG_MAJOR liblz4-dev libzstd-dev libkrb5-dev autoconf flex bison gcc make patch"
    local missing="" p
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        log "installing Citus build dependencies:$missing"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
    local src=$BUILD/citus-$CITUS_VERSION
    log "building Citus $CITUS_VERSION from $CITUS_TARBALL in $src (about 2 minutes, once)"
    rm -rf "$src"
    mkdir -p "$BUILD"
    tar xzf "$CITUS_TARBALL" -C "$BUILD"
    for p in "$(dirname "$CITUS_TARBALL")"/citus-"$CITUS_VERSION"-*.patch; do
        [ -f "$p" ] || continue
        log "applying $(basename "$p")"
        (cd "$src" && patch -p1 --quiet < "$p")
    done
    (cd "$src" && PG_CONFIG=$PG_CONFIG ./configure --without-libcurl >/dev/null && make -j2 >/dev/null)
    (cd "$src" && as_root make install >/dev/null)
}

node_port() { echo $((CITUS_PORT + $1)); }

# Stop a server on a port of ours left by an earlier run, even one whose directory is no longer
# $CITUS_DIR (pg_dir's temporary fallback): ask it where its data is and stop that, when it is
# one of ours (a citus-cluster or clv_ext.* directory); anything else on the port is an error.
stop_leftover() {
    local port=$1 data
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" || return 0
    data=$(psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SHOW data_directory' 2>/dev/null || true)
    if [[ $data == */citus-cluster/* || $data == /tmp/clv_ext.*/* ]]; then
        log "stopping a Citus node left by an earlier run ($data, port $port)"
        as_pg "$PGBIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    else
        echo "port $port is taken by another server (${data:-unknown data directory}); set CLV_CITUS_PORT" >&2
        exit 1
    fi
}

stop_citus() {
    local n
    for n in "${CITUS_NODES[@]}"; do
        if [ -f "$CITUS_DIR/$n/postmaster.pid" ]; then
            as_pg "$PGBIN/pg_ctl" -D "$CITUS_DIR/$n" -m fast stop >/dev/null 2>&1 || true
        fi
    done
}

on_exit() {
    if [ -n "${CLV_CITUS_KEEP:-}" ]; then
        log "the Citus cluster stays up (CLV_CITUS_KEEP): psql -h 127.0.0.1 -p $CITUS_PORT -U postgres $CITUS_DB"
    else
        stop_citus
    fi
}

start_citus() {
    CITUS_DIR=$(pg_dir "$BUILD/citus-cluster")
    local i n pids=()
    for i in "${!CITUS_NODES[@]}"; do
        n=${CITUS_NODES[$i]}
        if [ -f "$CITUS_DIR/$n/postmaster.pid" ]; then
            as_pg "$PGBIN/pg_ctl" -D "$CITUS_DIR/$n" -m immediate stop >/dev/null 2>&1 || true
        fi
        stop_leftover "$(node_port "$i")"
        as_pg rm -rf "$CITUS_DIR/$n" "$CITUS_DIR/$n.log"
    done
    trap on_exit EXIT
    log "starting a Citus cluster in $CITUS_DIR: coordinator :$CITUS_PORT, workers :$((CITUS_PORT + 1)) :$((CITUS_PORT + 2))"
    for n in "${CITUS_NODES[@]}"; do
        as_pg "$PGBIN/initdb" -D "$CITUS_DIR/$n" -A trust -U postgres -E UTF8 --no-locale >/dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    for i in "${!CITUS_NODES[@]}"; do
        n=${CITUS_NODES[$i]}
        # 127.0.0.1 only: the nodes connect to each other over it (initdb -A trust lets them in).
        as_pg tee -a "$CITUS_DIR/$n/postgresql.conf" >/dev/null <<EOF
port = $(node_port "$i")
listen_addresses = '127.0.0.1'
unix_socket_directories = '$CITUS_DIR'
shared_preload_libraries = 'citus'
max_connections = 200
max_worker_processes = 16
max_parallel_workers = 4
fsync = off
synchronous_commit = off
full_page_writes = off
# CREATE EXTENSION citus turns ssl on with a self-signed certificate; between local nodes it only
# costs handshakes.
citus.node_conninfo = 'sslmode=disable'
EOF
        # As lib.sh starts its clusters: no RUST_BACKTRACE (no Rust backtrace in error details).
        as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$CITUS_DIR/$n" \
            -l "$CITUS_DIR/$n.log" -w start >/dev/null
    done
    for i in "${!CITUS_NODES[@]}"; do
        psql_q -h 127.0.0.1 -p "$(node_port "$i")" -U postgres -d postgres \
            -c "CREATE DATABASE $CITUS_DB" -c '\c '"$CITUS_DB" -c "CREATE EXTENSION citus"
    done
    psql_q -h 127.0.0.1 -p "$CITUS_PORT" -U postgres -d "$CITUS_DB" >/dev/null <<EOF
SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT);
SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 1)));
SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 2)));
CREATE EXTENSION clv_ext;
EOF
    # The tests' helper functions (citus_test.*), on the coordinator only.
    psql_q -h 127.0.0.1 -p "$CITUS_PORT" -U postgres -d "$CITUS_DB" -f "$ROOT/tests/citus/helpers.sql"
}

# Sourced (bench/citus_bench.sh starts its own cluster with the functions above): stop here.
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0
if [ "${CLV_CITUS:-1}" = 0 ]; then
    echo "skipping Citus tests: CLV_CITUS=0"
    exit 0
fi
# The extension must be installed (scripts/test.sh installs it before it runs this script).
if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/clv_ext.control" ]; then
    echo "clv_ext is not installed in $PG_CONFIG's PostgreSQL: run scripts/test.sh (it installs it) or cargo pgrx install" >&2
    exit 1
fi
# Every connection below names its server; none may go elsewhere (test.sh exports its own cluster's).
unset PGHOST PGPORT PGDATABASE PGUSER
ensure_citus || exit 0
start_citus

log "distributed SQL tests on Citus (pg_regress, tests/citus)"
OUT=$(pg_dir "$BUILD/citus-regress")
as_root rm -rf "$OUT/sql" "$OUT/expected" "$OUT/results" "$OUT/regression.diffs" "$OUT/regression.out"
cp -r "$ROOT/tests/citus/sql" "$ROOT/tests/citus/expected" "$OUT/"
as_root chown -R postgres "$OUT"
TESTS=${CLV_CITUS_REGRESS:-$(ls "$ROOT"/tests/citus/sql/*.sql | xargs -n1 basename | sed 's/\.sql$//' | sort)}
# --use-existing: the database, citus and clv_ext are set up above on every node, as Citus needs.
if ! as_pg "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" --use-existing \
    --host=127.0.0.1 --port="$CITUS_PORT" --user=postgres --inputdir="$OUT" --outputdir="$OUT" \
    --dbname="$CITUS_DB" $TESTS; then
    cat "$OUT/regression.diffs" 2>/dev/null | head -300
    exit 1
fi
