# Shared helpers of the reliability scripts (fuzz.sh, sqlsmith.sh, load.sh, binary_client.sh).
# Source it after scripts/lib.sh. They use their own port (CLV_PORT, default 55440), so they can
# run while the test suite's cluster (55432) is up.
source "$(dirname "${BASH_SOURCE[0]}")/pyenv.sh"

# Address-space cap of every backend of the throwaway cluster (bytes; 0 = none). A runaway
# allocation then fails inside the backend (ERROR 53200, or an abort that the scripts report)
# instead of waking the kernel's OOM killer for the whole machine. The watchdogs' RSS cap
# (CLV_MEM_CAP_MB) normally stops such a backend long before.
CLV_AS_LIMIT=${CLV_AS_LIMIT:-6442450944}

# Settings for the reliability clusters: the SQLSTATE in every log line (to find XX000 in the
# log), whole query texts in pg_stat_activity and in the log's "Failed process was running" line.
CLV_EXTRA_CONF=${CLV_EXTRA_CONF:-"log_line_prefix = '%m [%p] %e '
track_activity_query_size = 65536"}

# start_cluster from lib.sh in build/NAME-<pid> (its own directory and socket, so two runs of the
# same script do not stop each other's server), then $CLV_EXTRA_CONF added to postgresql.auto.conf
# and the server restarted (same options) under `prlimit --as=$CLV_AS_LIMIT`, which every backend
# inherits. On exit the cluster is stopped and its directory removed (CLV_KEEP_CLUSTER=1 keeps it);
# directories of earlier runs whose script is gone are removed too.
start_limited_cluster() {
    export CLV_PORT=${CLV_PORT:-55440}
    local old pid pre=()
    for old in "$BUILD/$1"-*; do
        pid=${old##*-}
        [ -d "$old" ] && [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null || continue
        as_pg "$PGBIN/pg_ctl" -D "$old/data" -m immediate stop >/dev/null 2>&1 || true
        as_root rm -rf "$old" || true
    done
    start_cluster "$1-$$"
    trap cleanup_limited_cluster EXIT
    printf '%s\n' "$CLV_EXTRA_CONF" | as_pg tee -a "$CLUSTER_DIR/data/postgresql.auto.conf" >/dev/null
    [ "${CLV_AS_LIMIT:-0}" != 0 ] && pre=(prlimit --as="$CLV_AS_LIMIT" --)
    # as lib.sh starts it: no RUST_BACKTRACE (no Rust backtrace in error details)
    as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "${pre[@]}" \
        "$PGBIN/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -m fast restart >/dev/null
    SERVER_LOG=$CLUSTER_DIR/server.log
    export SERVER_LOG
}

cleanup_limited_cluster() {
    stop_cluster
    if [ -z "${CLV_KEEP_CLUSTER:-}" ] && [ -n "${CLUSTER_DIR:-}" ]; then as_root rm -rf "$CLUSTER_DIR" || true; fi
}

# A fresh directory for one run's logs, build/reliability-logs/NAME-<time>-<pid>; the five latest
# runs of each script are kept.
run_log_dir() {
    local base=$BUILD/reliability-logs dir
    dir=$base/$1-$(date +%Y%m%d-%H%M%S)-$$
    mkdir -p "$dir"
    ls -dt "$base/$1"-2* 2>/dev/null | tail -n +6 | xargs -r rm -rf
    echo "$dir"
}

# The clv_ext library the server loads (to notice a reinstall during a run).
clv_library() { echo "$("$PG_CONFIG" --pkglibdir)/clv_ext.so"; }
