#!/usr/bin/env bash
# Install test of the Debian package built by scripts/deb.sh, against the system PostgreSQL.
#
#   scripts/deb_test.sh build/deb/postgresql-15-clv-ext_0.6.0_amd64.deb
#   CLV_DEB_APT=1 scripts/deb_test.sh ...   # install with `apt-get install ./x.deb`, remove with apt-get purge
#
# 1. Proves the server never saw the source tree: clv_ext files that `cargo pgrx install` (the test
#    suite) left in its pkglibdir and sharedir/extension, owned by no package, are moved aside to
#    $CLV_DEB_BACKUP (default /var/tmp/clv_ext-deb-test-backup), and a throwaway cluster (initdb as
#    postgres in a temporary directory, its own socket, port $CLV_DEB_PORT, default 55470) shows
#    that CREATE EXTENSION clv_ext fails.
# 2. dpkg -i; dpkg -L lists the library, control file and SQL scripts.
# 3. CREATE EXTENSION clv_ext; smoke queries with known values (RFM summaries of hand-checked rows,
#    BG/NBD fitted to the 2,357 CDNOW customers = the published parameters); ALTER EXTENSION UPDATE
#    from 0.1.0 through the packaged update scripts; DROP EXTENSION; the cluster is stopped.
# 4. dpkg -r and dpkg -P: none of the package's files remain, dpkg no longer lists it.
# Whatever happens, the cluster is stopped and removed, the package purged if this run installed
# it, and the files moved aside are put back. Prints one line: "deb: installed, ... removed cleanly".
# It refuses to start while other servers of that PostgreSQL or a cargo pgrx command run (they would
# lose clv_ext for a few seconds): CLV_DEB_ISOLATE=1 runs it in a private mount namespace instead
# (root, overlayfs), CLV_DEB_FORCE=1 runs it anyway.
set -Eeuo pipefail

die0() { echo "deb_test: $*" >&2; exit 2; }
[ $# = 1 ] || die0 "usage: $0 DEB_FILE"
[ -f "$1" ] || die0 "no such file: $1"
DEB=$(realpath "$1")
PKG=$(dpkg-deb -f "$DEB" Package) || die0 "$DEB is not a Debian package"
VERSION=$(dpkg-deb -f "$DEB" Version)
[[ $PKG =~ ^postgresql-([0-9]+)-clv-ext$ ]] || die0 "$DEB holds $PKG, not postgresql-NN-clv-ext"
# shellcheck disable=SC2034  # read by lib.sh
CLV_PG_MAJOR=${BASH_REMATCH[1]}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -E   # lib.sh sets -euo pipefail; keep the ERR trap in functions too
SELF=$(realpath "${BASH_SOURCE[0]}")
# psql runs as the postgres OS user, who may not be able to enter the caller's directory (a clone
# under /root): from / it does not say "could not change directory".
cd /

# CLV_DEB_ISOLATE=1: run the test in a private mount namespace where /usr and /var are overlays of
# the real ones. The moves, dpkg -i and dpkg -r happen in the overlays only; the rest of the machine
# (other clusters, a concurrent `cargo pgrx install`) sees nothing, and the overlays vanish at the end.
if [ "${CLV_DEB_ISOLATE:-0}" = 1 ] && [ -z "${CLV_DEB_NS_DIR:-}" ]; then
    [ "$(id -u)" = 0 ] || die0 "CLV_DEB_ISOLATE=1 needs root (unshare --mount)"
    ns=$(mktemp -d /tmp/clv_ext_debns.XXXXXX)
    CLV_DEB_NS_DIR=$ns unshare --mount --propagation private "$BASH" "$SELF" "$DEB" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' INT TERM HUP   # the test inside cleans up, then we do
    rc=0
    while :; do
        wait "$child" && rc=0 || rc=$?
        kill -0 "$child" 2>/dev/null || break   # wait returned because of a signal: wait again
    done
    rm -rf "$ns"
    exit "$rc"
fi
if [ -n "${CLV_DEB_NS_DIR:-}" ]; then
    for d in usr var; do
        mkdir -p "$CLV_DEB_NS_DIR/$d.upper" "$CLV_DEB_NS_DIR/$d.work"
        mount -t overlay "clv_ext_deb_$d" -o "lowerdir=/$d,upperdir=$CLV_DEB_NS_DIR/$d.upper,workdir=$CLV_DEB_NS_DIR/$d.work" "/$d" ||
            die0 "cannot mount an overlay on /$d (CLV_DEB_ISOLATE=1 needs overlayfs)"
    done
fi

PORT=${CLV_DEB_PORT:-55470}
BACKUP=${CLV_DEB_BACKUP:-/var/tmp/clv_ext-deb-test-backup}
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
PSQL=$PGBIN/psql
STARTED=$(date +%s.%N)
CLUSTER=""        # temporary cluster directory, once created
INSTALLED=0       # this run installed the package (so the cleanup purges it)
EXTRA_FILES=()    # files this run put beside the package's (the 0.1.0 script for the upgrade check)
STEP="start"
# dpkg and apt print the postgresql-common trigger's chatter: keep it in a log, show it on failure.
DPKG_LOG=$(mktemp /tmp/clv_ext_debtest_dpkg.XXXXXX)

# fds 3 and 4: the real stderr and stdout, for the messages of a trap that fires while a command's
# output goes to a log.
exec 3>&2 4>&1
fail() { echo "deb_test: FAILED ($STEP): $*" >&3; exit 1; }
trap 'echo "deb_test: command failed (line $LINENO, $STEP): $BASH_COMMAND" >&2' ERR

# dpkg's view of the package: "installed", "config-files", ..., or "" when it does not know it.
pkg_status() { dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null || true; }

# Put the files moved aside back (unless something put a file at the same path since).
restore_backup() {
    local f kept=0
    [ -f "$BACKUP/.moved" ] || return 0
    while IFS= read -r f; do
        if [ -e "$f" ]; then   # a concurrent cargo pgrx install?
            echo "deb_test: $f exists again, keeping it; the moved-aside copy stays in $BACKUP$f" >&2
            kept=1
        else
            as_root mv "$BACKUP$f" "$f"
        fi
    done < "$BACKUP/.moved"
    if [ "$kept" = 0 ]; then as_root rm -rf "$BACKUP"; else as_root rm -f "$BACKUP/.moved"; fi
}

cleanup() {
    local rc=$? f
    trap - ERR
    set +e
    exec 1>&4 2>&3   # not into a log that a trap interrupted
    if [ -n "$CLUSTER" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$CLUSTER/data" -m immediate stop >/dev/null 2>&1
        [ "$rc" = 0 ] || { echo "--- last lines of the server log:" >&2; tail -n 15 "$CLUSTER/server.log" >&2 2>/dev/null; }
        as_root rm -rf "$CLUSTER"
    fi
    for f in "${EXTRA_FILES[@]}"; do as_root rm -f "$f"; done
    if [ "$INSTALLED" = 1 ] && [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != not-installed ]; then
        echo "deb_test: purging $PKG after the failure" >&2
        quiet as_root dpkg -P "$PKG"
    fi
    rm -f "$DPKG_LOG"
    restore_backup
    [ "$rc" = 0 ] || [ "$STEP" = preconditions ] || [ -e "$BACKUP" ] || echo "deb_test: cleaned up: cluster removed, package not installed, files moved aside restored" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'fail "interrupted"' INT TERM HUP

quiet() { "$@" >"$DPKG_LOG" 2>&1 || { cat "$DPKG_LOG" >&2; return 1; }; }

q() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
expect() {   # expect NAME EXPECTED ACTUAL
    [ "$2" = "$3" ] || fail "$1: expected
$2
got
$3"
}

# --- 1. the server has never seen the source tree ---------------------------------------------
STEP="preconditions"
[ "$(id -u)" = 0 ] || command -v sudo >/dev/null || fail "run as root (dpkg -i)"
if [ -n "$(pkg_status)" ] && [ "$(pkg_status)" != not-installed ]; then
    fail "$PKG is already installed ($(dpkg-query -W -f='${Version}' "$PKG")): remove it first (dpkg -P $PKG)"
fi
if [ -e "$BACKUP" ]; then
    fail "$BACKUP exists: an earlier run was killed before it restored the files it moved aside.
Put them back with: cp -a $BACKUP/usr / && rm -rf $BACKUP  (or remove $BACKUP if they are not wanted)"
fi
[ -x "$PGBIN/initdb" ] || fail "no PostgreSQL $PG_MAJOR server at $PGBIN (apt-get install postgresql-$PG_MAJOR)"
# Moving clv_ext's files aside breaks, for the seconds the test takes, every other server of this
# PostgreSQL that loads the library or creates the extension then, and races a concurrent install.
if [ -z "${CLV_DEB_NS_DIR:-}" ] && [ "${CLV_DEB_FORCE:-0}" != 1 ]; then
    busy=$(ps -eo pid=,args= | awk -v b="$PGBIN/postgres" '$2 == b {
              d = "?"; for (i = 3; i < NF; i++) if ($i == "-D") d = $(i + 1); printf " server %s (-D %s)", $1, d }')
    busy+=$(ps -eo pid=,args= | awk '$2 ~ /cargo-pgrx$/ && $3 == "pgrx" { printf " %s (cargo pgrx %s)", $1, $4 }')
    [ -z "$busy" ] || fail "in use:$busy.
Stop those first, or run with CLV_DEB_ISOLATE=1 (a private mount namespace: nothing else sees the
test's changes), or CLV_DEB_FORCE=1"
fi

STEP="moving aside files of cargo pgrx install"
mapfile -t deb_paths < <(dpkg-deb --fsys-tarfile "$DEB" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$')
mapfile -t found < <({ find "$PKGLIBDIR" "$PKGLIBDIR/bitcode" "$EXTDIR" -maxdepth 1 -name 'clv_ext*' 2>/dev/null
                       for f in "${deb_paths[@]}"; do [ ! -e "$f" ] || echo "$f"; done; } | sort -u)
moved=0
for f in "${found[@]}"; do
    if owner=$(dpkg -S "$f" 2>/dev/null); then
        fail "$f belongs to the package ${owner%%:*}: cannot show a server without clv_ext; remove that package first"
    fi
done
if [ "${#found[@]}" -gt 0 ]; then
    as_root mkdir -p "$BACKUP"
    for f in "${found[@]}"; do
        as_root mkdir -p "$BACKUP$(dirname "$f")"
        as_root mv "$f" "$BACKUP$f"
        echo "$f" | as_root tee -a "$BACKUP/.moved" >/dev/null
        moved=$((moved + 1))
    done
fi
echo "deb_test: moved aside $moved clv_ext file(s) not owned by any package to $BACKUP" >&2

STEP="throwaway cluster"
CLUSTER=$(mktemp -d /tmp/clv_ext_debtest.XXXXXX)
as_root chown postgres "$CLUSTER"
chmod 0755 "$CLUSTER"
as_pg "$PGBIN/initdb" -D "$CLUSTER/data" -A trust -U postgres -E UTF8 --no-locale --no-sync >/dev/null
as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w \
    -o "-p $PORT -k $CLUSTER -c listen_addresses=''" start >/dev/null
export PGHOST=$CLUSTER PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
unset PGSERVICE PGPASSWORD

STEP="before install"
expect "clv_ext available before the install" "0" "$(q -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'clv_ext'")"
if out=$(q -c 'CREATE EXTENSION clv_ext' 2>&1); then
    fail "CREATE EXTENSION clv_ext succeeded before the package was installed"
fi
case $out in
    *clv_ext.control*|*"is not available"*) ;;
    *) fail "CREATE EXTENSION clv_ext failed before the install, but not for want of the extension: $out" ;;
esac

# --- 2. install --------------------------------------------------------------------------------
STEP="install"
INSTALLED=1
if [ "${CLV_DEB_APT:-0}" = 1 ]; then
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$DEB" ||
        fail "apt-get install $DEB failed"
else
    quiet as_root dpkg -i "$DEB" || fail "dpkg -i $DEB failed"
fi
expect "dpkg status" "install ok installed" "$(dpkg-query -W -f='${Status}' "$PKG")"
expect "installed version" "$VERSION" "$(dpkg-query -W -f='${Version}' "$PKG")"
listed=$(dpkg -L "$PKG")
for f in "$PKGLIBDIR/clv_ext.so" "$EXTDIR/clv_ext.control" "$EXTDIR/clv_ext--$VERSION.sql"; do
    grep -qxF "$f" <<<"$listed" || fail "dpkg -L $PKG does not list $f"
    [ -f "$f" ] || fail "$f is listed by dpkg -L but not on disk"
done
mapfile -t pkg_files < <(while IFS= read -r f; do [ -d "$f" ] || echo "$f"; done <<<"$listed")

# --- 3. use it ---------------------------------------------------------------------------------
STEP="CREATE EXTENSION"
expect "pg_available_extensions" "$VERSION" "$(q -c "SELECT default_version FROM pg_available_extensions WHERE name = 'clv_ext'")"
q -c 'CREATE EXTENSION clv_ext' || fail "CREATE EXTENSION clv_ext failed"
expect "extversion" "$VERSION" "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'clv_ext'")"

STEP="smoke query"
# RFM summaries of hand-checked rows (tests/regress/sql/rfm_basics.sql): lifetimes' semantics.
RFM_SQL="
SET extra_float_digits = 0;
CREATE TEMP TABLE tx (customer int, ts date, amount numeric);
INSERT INTO tx VALUES
  (1, '1997-01-01', 29.33), (1, '1997-01-18', 29.73), (1, '1997-08-02', 14.96), (1, '1997-12-12', 26.48),
  (2, '1997-03-01', 10), (2, '1997-03-01', 5), (2, '1997-03-08', 7), (2, '1997-03-09', 1),
  (3, '1997-09-30', 42), (4, '1997-10-01', 8),
  (5, '1997-05-01', 20), (5, '1997-06-01', 30), (5, '1997-06-01', -30), (5, '1997-07-01', 12),
  (6, NULL, 99), (6, '1997-02-01', 10), (6, '1997-02-10', NULL);
SELECT customer, frequency(d), round(recency(d, 'week')::numeric, 4), round(tenure(d, 'week')::numeric, 4),
       round(monetary_value(d)::numeric, 4), transactions(d), total_amount(d)
FROM (SELECT customer, rfm(ts, amount, '1997-09-30') AS d FROM tx GROUP BY customer) s ORDER BY customer;"
RFM_EXPECTED="1|2|30.4286|38.8571|22.3450|3|74.02
2|2|1.1429|30.4286|4.0000|4|23
3|0|0.0000|0.0000|0.0000|1|42
4||||||
5|2|8.7143|21.7143|6.0000|4|32
6|1|1.2857|34.4286|0.0000|2|10"
expect "rfm() of the hand-checked rows" "$RFM_EXPECTED" "$(q -c "$RFM_SQL")"
# BG/NBD fitted to the 2,357 CDNOW customers: the published r, alpha, a, b (tests/data/README.md).
CDNOW=$ROOT/tests/data/cdnow/cdnow_customers_summary_with_transactions.csv
if [ -f "$CDNOW" ]; then
    BGNBD_SQL="
CREATE TEMP TABLE cdnow (id int, x float8, t_x float8, t float8, zbar float8);
\\copy cdnow FROM '$CDNOW' (FORMAT csv, HEADER)
SELECT round((j->'params'->>'r')::numeric, 3), round((j->'params'->>'alpha')::numeric, 3),
       round((j->'params'->>'a')::numeric, 3), round((j->'params'->>'b')::numeric, 3),
       (j->'fit'->>'n_customers')::float8::int
FROM (SELECT bgnbd_fit(x, t_x, t)::jsonb AS j FROM cdnow) q;"
    expect "bgnbd_fit on CDNOW" "0.243|4.414|0.793|2.426|2357" "$(q <<<"$BGNBD_SQL")"
    smoke="RFM + BG/NBD on CDNOW"
else
    smoke="RFM"
fi
q -c 'DROP EXTENSION clv_ext' || fail "DROP EXTENSION clv_ext failed"

# Upgrade path: a database created with 0.1.0 (its install script, kept in tests/upgrade/) goes to
# this version through the packaged update scripts and library.
OLD_SQL=$ROOT/tests/upgrade/clv_ext--0.1.0.sql
upgraded=""
if [ -f "$OLD_SQL" ] && [ -f "$EXTDIR/clv_ext--0.1.0--0.2.0.sql" ]; then
    STEP="ALTER EXTENSION UPDATE from 0.1.0"
    EXTRA_FILES+=("$EXTDIR/clv_ext--0.1.0.sql")
    as_root install -m 0644 "$OLD_SQL" "$EXTDIR/clv_ext--0.1.0.sql"
    q -c 'CREATE DATABASE upgrade_check'
    q -d upgrade_check -c "CREATE EXTENSION clv_ext VERSION '0.1.0'" -c 'ALTER EXTENSION clv_ext UPDATE'
    expect "extversion after ALTER EXTENSION UPDATE" "$VERSION" \
        "$(q -d upgrade_check -c "SELECT extversion FROM pg_extension WHERE extname = 'clv_ext'")"
    expect "rfm() after the update" "$RFM_EXPECTED" "$(q -d upgrade_check -c "$RFM_SQL")"
    q -d upgrade_check -c 'DROP EXTENSION clv_ext'
    q -c 'DROP DATABASE upgrade_check'
    as_root rm -f "$EXTDIR/clv_ext--0.1.0.sql"
    EXTRA_FILES=()
    upgraded=", ALTER EXTENSION UPDATE from 0.1.0 ok"
fi

STEP="stopping the cluster"
as_pg "$PGBIN/pg_ctl" -D "$CLUSTER/data" -m fast -w stop >/dev/null
as_root rm -rf "$CLUSTER"
CLUSTER=""

# --- 4. remove -------------------------------------------------------------------------------
STEP="remove"
if [ "${CLV_DEB_APT:-0}" = 1 ]; then
    quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$PKG" || fail "apt-get remove $PKG failed"
else
    quiet as_root dpkg -r "$PKG" || fail "dpkg -r $PKG failed"
fi
for f in "${pkg_files[@]}" "/usr/share/doc/$PKG"; do
    [ ! -e "$f" ] || fail "$f is still there after removing $PKG"
done
if [ "${CLV_DEB_APT:-0}" = 1 ]; then
    # Without conffiles, removing it already forgot it; apt-get purge would not find it.
    [ -z "$(pkg_status)" ] || [ "$(pkg_status)" = not-installed ] || quiet as_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$PKG" || fail "apt-get purge $PKG failed"
else
    quiet as_root dpkg -P "$PKG" || fail "dpkg -P $PKG failed"
fi
listed_l=$(dpkg -l "$PKG" 2>/dev/null || true)
state=$(awk -v p="$PKG" '$2 == p { print substr($1, 1, 2) }' <<<"$listed_l")
[ -z "$state" ] || [ "$state" = un ] || [ "$state" = pn ] || fail "dpkg -l still lists $PKG (state $state) after purge"
[ -z "$(pkg_status)" ] || [ "$(pkg_status)" = not-installed ] || fail "dpkg still knows $PKG ($(pkg_status)) after purge"
INSTALLED=0
left=$(find "$PKGLIBDIR" "$EXTDIR" -maxdepth 1 -name 'clv_ext*' 2>/dev/null)
[ -z "$left" ] || fail "clv_ext files left after the purge: $left"

STEP="restoring the files moved aside"
restore_backup
STEP="done"
elapsed=$(echo "$(date +%s.%N) - $STARTED" | bc)
how=dpkg; [ "${CLV_DEB_APT:-0}" = 1 ] && how=apt
[ -z "${CLV_DEB_NS_DIR:-}" ] || how="$how, isolated"
printf 'deb: installed (%s), CREATE EXTENSION + smoke query (%s) ok%s, removed cleanly; %s moved-aside files restored (%.1f s)\n' \
    "$how" "$smoke" "$upgraded" "$moved" "$elapsed"
