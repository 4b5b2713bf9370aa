#!/usr/bin/env bash
# The set-up as a new user meets it: clone this repository's committed HEAD into a fresh directory
# of mode 700 (as /root or a `mktemp -d` folder is) with nothing beside it - no ../shared - and run
# README command 2 there. Passes only when the suite needs nothing outside the clone and works
# when the postgres OS user cannot enter the checkout. Takes as long as a cold build plus the
# suite (about 25 minutes on 2 cores); run it after every change to scripts/.
#   scripts/check-fresh-clone.sh            # clones HEAD of this checkout
#   KEEP=1 scripts/check-fresh-clone.sh     # keep the clone for inspection
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PARENT=$(mktemp -d /tmp/clv-fresh.XXXXXX)
chmod 700 "$PARENT"
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$PARENT"; }
trap cleanup EXIT
git clone --quiet "$SRC" "$PARENT/clv_ext"
cd "$PARENT/clv_ext"
echo "==> fresh clone of $(git rev-parse --short HEAD) in $PARENT (mode $(stat -c %a "$PARENT")), beside it: $(ls -A "$PARENT" | tr '\n' ' ')"
if [ -e "$PARENT/shared" ]; then echo "unexpected ../shared beside the clone" >&2; exit 1; fi
./scripts/test.sh
