#!/usr/bin/env bash
# Render a self-contained HTML page (clv_report()'s output) in headless Chromium, check it, and
# write a full-page screenshot:
#   scripts/render_html.sh PAGE.html OUT.png [MIN_SVG_COUNT]    (MIN_SVG_COUNT defaults to 1)
#   scripts/render_html.sh --self-test                           (sample pages, good and bad)
# Exit 0 and one summary line on stdout when the page passes; exit 1 and the problems on stderr
# when it does not: a JavaScript exception, a console message or browser log entry of level
# error or warning, a request that is not file:/data:/blob:/about: (blocked too), a failed load,
# an XML parse error, an outermost <svg> that is not rendered (no children, zero-sized box or
# getBBox), or fewer than MIN_SVG_COUNT rendered <svg>s. Exit 2: the tooling failed.
# Installs the Debian package chromium when it is missing (once, as root or through sudo); the
# DevTools client (render_html.py) uses only Python's standard library. Network for Chromium:
# none (every host name resolves to nothing, a dead proxy, and the page's requests are blocked).
# CLV_RENDER_TIMEOUT (seconds, default 50) bounds one render; Chromium is killed on every exit.
source "$(dirname "$0")/lib.sh"
HERE=$ROOT/scripts
RENDER_TIMEOUT=${CLV_RENDER_TIMEOUT:-50}

ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1; then
        log "installing Chromium (Debian package chromium, once)"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
    fi
}

TMP="" CHROME_PID="" CLIENT_PID=""
cleanup() {
    [ -n "$CLIENT_PID" ] && kill -TERM "$CLIENT_PID" 2>/dev/null
    if [ -n "$CHROME_PID" ]; then
        # Chromium runs in a process group of its own (setsid): end the browser and its children.
        kill -TERM -- "-$CHROME_PID" 2>/dev/null || true
        for _ in $(seq 20); do  # up to 2 s for every process of the group to end (zombies do not count)
            ps -e -o pgid=,stat= | awk -v g="$CHROME_PID" '$1 == g && $2 !~ /^Z/ { n++ } END { exit !n }' || break
            sleep 0.1
        done
        kill -KILL -- "-$CHROME_PID" 2>/dev/null || true
        wait "$CHROME_PID" 2>/dev/null || true
        CHROME_PID=""
    fi
    [ -n "$TMP" ] && rm -rf "$TMP"
    TMP=""
}

render() {
    local page=$1 out=$2 min=${3:-1} rc=0
    [ -f "$page" ] && [ -r "$page" ] || { echo "render_html: ERROR no readable page $page" >&2; exit 2; }
    [[ $min =~ ^[0-9]+$ ]] || { echo "render_html: ERROR MIN_SVG_COUNT must be a number, not $min" >&2; exit 2; }
    mkdir -p "$(dirname "$out")"
    rm -f "$out"
    ensure_chromium
    TMP=$(mktemp -d /tmp/render_html.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    local flags=(
        --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage
        --remote-debugging-port=0 "--user-data-dir=$TMP/profile"
        --no-first-run --no-default-browser-check --disable-extensions --disable-default-apps
        --disable-background-networking --disable-component-update --disable-sync
        --disable-breakpad --metrics-recording-only --mute-audio --hide-scrollbars
        --password-store=basic --use-mock-keychain
        --disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication
        # No network: no host name resolves, and anything by address goes to a dead proxy.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
        --proxy-server=127.0.0.1:9
        --window-size=1280,800
    )
    setsid chromium "${flags[@]}" about:blank </dev/null >"$TMP/chromium.log" 2>&1 &
    CHROME_PID=$!
    # In the background so that a signal to this script runs its traps at once (bash defers them
    # while a foreground child runs); cleanup ends the client too.
    timeout -k 2 "$RENDER_TIMEOUT" python3 "$HERE/render_html.py" \
        "$TMP/profile" "$CHROME_PID" "$page" "$out" "$min" "$((RENDER_TIMEOUT - 5))" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    case $rc in
        0|1) ;;
        124|137) echo "render_html: FAIL $page: no result within $RENDER_TIMEOUT s" >&2; rc=1 ;;
        *) echo "render_html: Chromium's log (last lines):" >&2; tail -n 15 "$TMP/chromium.log" >&2 ;;
    esac
    exit "$rc"
}

# The sample pages, each with the MIN_SVG_COUNT, exit status and message it must give.
self_test() {
    local dir; dir=$(mktemp -d /tmp/render_html_selftest.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$dir'" EXIT
    local chart='<svg xmlns="http://www.w3.org/2000/svg" width="320" height="160" viewBox="0 0 320 160" role="img" aria-label="chart">
  <rect x="0" y="0" width="320" height="160" fill="#f7f7f7"/>
  <polyline fill="none" stroke="#2a6fdb" stroke-width="2" points="10,150 60,120 110,130 160,80 210,90 260,40 310,20"/>
  <g fill="#e4572e"><rect x="20" y="100" width="30" height="50"/><rect x="70" y="70" width="30" height="80"/></g>
  <text x="10" y="14" font-size="12">Expected transactions</text></svg>'
    cat > "$dir/a_good.html" <<EOF
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>clv_report self-test</title>
<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{border:1px solid #999;padding:4px 8px}
.charts{display:flex;gap:1em;flex-wrap:wrap}</style></head>
<body><h1>Customer lifetime value</h1>
<table><tr><th>segment</th><th>customers</th><th>mean CLV</th></tr>
<tr><td>champions</td><td>120</td><td>431.20</td></tr><tr><td>at risk</td><td>310</td><td>57.80</td></tr></table>
<div class="charts">$chart
$chart
$chart</div>
<script>document.querySelector('h1').dataset.ok = '1';</script>
</body></html>
EOF
    cat > "$dir/b_js_error.html" <<EOF
<!DOCTYPE html><html><head><meta charset="utf-8"><title>js error</title></head><body>$chart
<script>window.addEventListener('load', () => { undefinedFunction(); });</script></body></html>
EOF
    cat > "$dir/c_external.html" <<EOF
<!DOCTYPE html><html><head><meta charset="utf-8"><title>external image</title></head><body>$chart
<img src="https://example.com/x.png" alt="x"></body></html>
EOF
    cat > "$dir/d_no_svg.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>no svg</title></head><body><p>No charts.</p></body></html>
EOF
    cat > "$dir/e_broken_svg.html" <<EOF
<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken svg</title></head><body>$chart
<svg width="0" height="0"><rect width="10" height="10"/></svg></body></html>
EOF
    cat > "$dir/f_xml_parse_error.xhtml" <<'EOF'
<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>xml parse error</title></head><body>
<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><rect width="10" height="10"></svg>
</body></html>
EOF
    cat > "$dir/g_console_warning.html" <<EOF
<!DOCTYPE html><html><head><meta charset="utf-8"><title>console warning</title></head><body>$chart
<script>console.warn('something is off');</script></body></html>
EOF
    # name min expected-exit pattern (grep -E, in stdout+stderr)
    local cases=(
        "a_good.html 3 0 3 svg rendered \(min 3\), title 'clv_report self-test'"
        "b_js_error.html 1 1 JavaScript exception.*undefinedFunction is not defined"
        "c_external.html 1 1 network request to https://example.com/x.png"
        "d_no_svg.html 1 1 only 0 rendered <svg>"
        "e_broken_svg.html 1 1 <svg> no. 2 .*is not rendered"
        "f_xml_parse_error.xhtml 1 1 XML parse error"
        "g_console_warning.html 1 1 console.warning: something is off"
    )
    local passed=0 failed=0 c name min want pattern rc t0 t1 outp
    for c in "${cases[@]}"; do
        read -r name min want pattern <<<"$c"
        t0=$(date +%s.%N)
        rc=0
        outp=$("$HERE/render_html.sh" "$dir/$name" "$dir/${name%.*}.png" "$min" 2>&1) || rc=$?
        t1=$(date +%s.%N)
        if [ "$rc" = "$want" ] && grep -Eq -- "$pattern" <<<"$outp"; then
            passed=$((passed + 1))
            printf 'ok   %-26s exit %s  %.1f s\n' "$name" "$rc" "$(echo "$t1 - $t0" | bc)"
        else
            failed=$((failed + 1))
            printf 'FAIL %-26s exit %s (want %s, and /%s/)  %.1f s\n' "$name" "$rc" "$want" "$pattern" "$(echo "$t1 - $t0" | bc)"
        fi
        sed 's/^/     | /' <<<"$outp"
    done
    echo "render_html self-test: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}

case "${1:-}" in
    --self-test) [ $# = 1 ] || { echo "usage: $0 --self-test" >&2; exit 2; }; ensure_chromium; self_test ;;
    ""|-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) [ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: $0 PAGE.html OUT.png [MIN_SVG_COUNT]" >&2; exit 2; }
       render "$@" ;;
esac
