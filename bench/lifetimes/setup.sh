#!/usr/bin/env bash
# Create (idempotently) the Python venv holding lifetimes 0.11.3 for the benchmark,
# verify it by fitting BG/NBD on lifetimes' bundled CDNOW data, and print the venv's
# python path as the last line of stdout.
#   bench/lifetimes/setup.sh
#   CLV_BENCH_VENV=/some/dir PYTHON=python3.11 bench/lifetimes/setup.sh
# Logs go to stderr; only the verification summary and the path go to stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENV=${CLV_BENCH_VENV:-$REPO/build/lifetimes-venv}
PYTHON=${PYTHON:-python3}
REQS=$HERE/requirements.txt
STAMP=$VENV/.clv-bench-requirements
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { echo "setup.sh: $*" >&2; }

# numpy 1.23.5 / scipy 1.10.1 / pandas 1.5.3 ship wheels for CPython 3.8-3.11 only.
if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))'; then
    log "need CPython 3.8-3.11 (wheels of the pinned numpy/scipy/pandas); $PYTHON is $("$PYTHON" -V 2>&1)"
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python

if [ -f "$STAMP" ] && cmp -s "$STAMP" "$REQS" && "$PY" -c 'import lifetimes' 2>/dev/null; then
    log "requirements already installed in $VENV"
else
    log "installing pinned requirements (wheels only) into $VENV"
    rm -f "$STAMP"
    "$PY" -m pip install --only-binary=:all: -r "$REQS" >&2
    cp "$REQS" "$STAMP"
fi

# Verify the stack really works: the BG/NBD fit on CDNOW must give r ~ 0.243.
"$PY" - <<'EOF'
import lifetimes
from lifetimes import BetaGeoFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

assert lifetimes.__version__ == "0.11.3", lifetimes.__version__
d = load_cdnow_summary_data_with_monetary_value()
# note: d["T"], never d.T (that is the DataFrame transpose)
bgf = BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"])
r = bgf.params_["r"]
assert abs(r - 0.243) < 1e-3, "unexpected r=%r" % r
print("verified: lifetimes %s, CDNOW BG/NBD r=%.6f alpha=%.6f a=%.6f b=%.6f"
      % ((lifetimes.__version__,) + tuple(bgf.params_[k] for k in ("r", "alpha", "a", "b"))))
EOF

echo "$PY"
