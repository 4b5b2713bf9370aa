#!/usr/bin/env bash
# Build the Debian package postgresql-NN-clv-ext_<version>_amd64.deb from `cargo pgrx package`.
#
#   scripts/deb.sh [PG_MAJOR]          # default 15; output in build/deb/
#
# Runs `cargo pgrx package` against /usr/lib/postgresql/NN/bin/pg_config (or $PG_CONFIG) unless
# CLV_DEB_SKIP_BUILD=1 (then the existing target/release/clv_ext-pgNN is packaged as it is), lays
# the files out where Debian's postgresql-NN looks for them, strips the library's debug symbols,
# computes Depends (postgresql-NN plus the shared libraries clv_ext.so links: by dpkg-shlibdeps, or
# from its GLIBC_x.y symbol versions without dpkg-dev or with CLV_DEB_NO_SHLIBDEPS=1) and builds
# the .deb with `dpkg-deb --root-owner-group`. Maintainer: $DEBFULLNAME/$DEBEMAIL, else git's
# user.name/email. No maintainer scripts: installing only adds files, nothing restarts.
# Same commit and library -> same .deb (dates from the commit). See docs/packages.md.
CLV_PG_MAJOR=${1:-${CLV_PG_MAJOR:-15}}
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

die() { echo "deb.sh: $*" >&2; exit 1; }
[[ $PG_MAJOR =~ ^[0-9]+$ ]] || die "PG_MAJOR must be a number, got '$PG_MAJOR'"
for tool in dpkg-deb dpkg strip objdump gzip md5sum python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg binutils gzip python3)"
done

VERSION=$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$ROOT/Cargo.toml" | sed -n 1p)
[ -n "$VERSION" ] || die "no version in Cargo.toml"
ARCH=$(dpkg --print-architecture)
PKG=postgresql-$PG_MAJOR-clv-ext
OUT=$ROOT/target/release/clv_ext-pg$PG_MAJOR
DEB_DIR=$ROOT/build/deb
DEB=$DEB_DIR/${PKG}_${VERSION}_$ARCH.deb

if [ "${CLV_DEB_SKIP_BUILD:-0}" != 1 ]; then
    [ -x "$PG_CONFIG" ] || die "no pg_config at $PG_CONFIG (apt-get install postgresql-server-dev-$PG_MAJOR)"
    features=()
    [ "$PG_MAJOR" = 15 ] || features=(--no-default-features --features "pg$PG_MAJOR")
    log "cargo pgrx package --pg-config $PG_CONFIG ${features[*]}"
    (cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" "${features[@]}")
fi

# Where `cargo pgrx package` put the files: under $OUT, at the paths that pg_config names (Debian's
# pg_config: /usr/lib/postgresql/NN/lib and /usr/share/postgresql/NN/extension).
if [ -x "$PG_CONFIG" ]; then
    SRC_LIB=$OUT$("$PG_CONFIG" --pkglibdir)
    SRC_EXT=$OUT$("$PG_CONFIG" --sharedir)/extension
else
    SRC_LIB=$OUT/usr/lib/postgresql/$PG_MAJOR/lib
    SRC_EXT=$OUT/usr/share/postgresql/$PG_MAJOR/extension
fi
[ -f "$SRC_LIB/clv_ext.so" ] || die "no $SRC_LIB/clv_ext.so: run without CLV_DEB_SKIP_BUILD=1 (cargo pgrx package)"
[ -f "$SRC_EXT/clv_ext.control" ] || die "no $SRC_EXT/clv_ext.control"
[ -f "$SRC_EXT/clv_ext--$VERSION.sql" ] ||
    die "no $SRC_EXT/clv_ext--$VERSION.sql: the package output is not of version $VERSION (stale? rebuild it)"
grep -q "^default_version = '$VERSION'" "$SRC_EXT/clv_ext.control" ||
    die "$SRC_EXT/clv_ext.control does not say default_version = '$VERSION'"
if [ -f "$ROOT/META.json" ] && ! grep -q "\"version\": \"$VERSION\"" "$ROOT/META.json"; then
    echo "deb.sh: warning: META.json does not carry version $VERSION" >&2
fi

log "laying out $PKG $VERSION ($ARCH)"
umask 022
WORK=$(mktemp -d /tmp/clv_ext_deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# dpkg-shlibdeps wants the files under debian/<package>/ beside a debian/control.
TREE=$WORK/debian/$PKG
LIBDIR=/usr/lib/postgresql/$PG_MAJOR/lib
EXTDIR=/usr/share/postgresql/$PG_MAJOR/extension
DOCDIR=/usr/share/doc/$PKG
install -d "$TREE/DEBIAN" "$TREE$LIBDIR" "$TREE$EXTDIR" "$TREE$DOCDIR"
install -m 0644 "$SRC_LIB/clv_ext.so" "$TREE$LIBDIR/clv_ext.so"
strip --strip-unneeded "$TREE$LIBDIR/clv_ext.so"
chmod 0644 "$TREE$LIBDIR/clv_ext.so"   # Debian installs shared libraries 0644 (lintian: shlib-with-executable-bit)
for f in "$SRC_EXT"/clv_ext.control "$SRC_EXT"/clv_ext--*.sql; do
    install -m 0644 "$f" "$TREE$EXTDIR/"
done

MAINTAINER="${DEBFULLNAME:-$(git -C "$ROOT" config user.name || echo clv_ext maintainers)} <${DEBEMAIL:-$(git -C "$ROOT" config user.email || echo root@localhost)}>"
# Dates from the commit, so that the same commit gives the same package (dpkg-deb also uses
# SOURCE_DATE_EPOCH for its archive timestamps).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}

# The Rust crates linked into the .so (Cargo.lock, no build): their licences go into copyright, and
# the local ones (clv_ext, crates/...) are checked for sources newer than the packaged library.
(cd "$ROOT" && cargo metadata --offline --format-version 1 --filter-platform x86_64-unknown-linux-gnu 2>/dev/null |
python3 -c '
import json, os, sys
m = json.load(sys.stdin)
pk = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
root = next(p["id"] for p in m["packages"] if p["name"] == "clv_ext" and p["source"] is None)
seen, todo = set(), [root]
while todo:  # normal (linked) dependencies; proc macros and build scripts are not in the library
    i = todo.pop()
    if i in seen or any("proc-macro" in t["kind"] for t in pk[i]["targets"]):
        continue
    seen.add(i)
    todo += [d["pkg"] for d in nodes[i]["deps"] if any(k["kind"] is None for k in d["dep_kinds"])]
for i in sorted(seen, key=lambda i: (pk[i]["name"], pk[i]["version"])):
    p = pk[i]
    if p["source"] is None:
        print("local", os.path.dirname(p["manifest_path"]), file=sys.stderr)
        continue
    lic = p["license"]
    if not lic:
        f = os.path.join(os.path.dirname(p["manifest_path"]), p["license_file"] or "LICENSE")
        head = open(f, errors="replace").read(400) if os.path.exists(f) else ""
        lic = "Apache-2.0 (its LICENSE file)" if "Apache License" in head and "2.0" in head else "see its license file"
    print(" %s %s: %s" % (p["name"], p["version"], lic))
' > "$WORK/crates" 2> "$WORK/local") || true
crates=$(cat "$WORK/crates")
local_dirs=$(sed -n 's/^local //p' "$WORK/local")
[ -n "$local_dirs" ] || local_dirs="$ROOT/src $ROOT/crates"
newer=$(for d in $local_dirs; do find "$d" -maxdepth 1 -name Cargo.toml -newer "$SRC_LIB/clv_ext.so"
        [ ! -d "$d/src" ] || find "$d/src" -type f -newer "$SRC_LIB/clv_ext.so"; done | sed -n 1,3p)
[ -z "$newer" ] || echo "deb.sh: warning: newer than the packaged clv_ext.so (packaging it anyway):" "${newer//$'\n'/ }" >&2
# copyright (machine-readable format), with the licences of those crates.
{
    cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: clv_ext
Upstream-Contact: $MAINTAINER
Comment: Built with cargo pgrx package from clv_ext $VERSION${crates:+ (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)).
 clv_ext.so statically links these Rust crates (from Cargo.lock), each under the licence named:
$crates}

Files: *
Copyright: the clv_ext authors
License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy of
 the License at http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 License for the specific language governing permissions and limitations under
 the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0".
EOF
} > "$TREE$DOCDIR/copyright"
cat > "$WORK/changelog.Debian" <<EOF
$PKG ($VERSION) unstable; urgency=medium

  * clv_ext $VERSION, packaged from cargo pgrx package output by scripts/deb.sh.

 -- $MAINTAINER  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n < "$WORK/changelog.Debian" > "$TREE$DOCDIR/changelog.Debian.gz"
chmod 0644 "$TREE$DOCDIR"/*

# Depends: the server, plus what the library links (libc6, libgcc-s1 for Rust's unwinding).
SO=$TREE$LIBDIR/clv_ext.so
shlibs=""
if [ "${CLV_DEB_NO_SHLIBDEPS:-0}" != 1 ] && command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: clv-ext\n\nPackage: %s\nArchitecture: %s\n' "$PKG" "$ARCH" > "$WORK/debian/control"
    shlibs=$(cd "$WORK" && dpkg-shlibdeps -O "-p$PKG" "$SO" 2>"$WORK/shlibdeps.err" | sed -n 's/^shlibs:Depends=//p') ||
        { cat "$WORK/shlibdeps.err" >&2; shlibs=""; }
    rm -f "$WORK/debian/control"
fi
if [ -z "$shlibs" ]; then
    # Without dpkg-shlibdeps: the newest glibc symbol version the library needs, and libgcc-s1 if linked.
    glibc=$(objdump -T "$SO" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1 || true)
    shlibs="libc6 (>= ${glibc:-2.17})"
    if readelf -d "$SO" | grep 'NEEDED.*libgcc_s\.so\.1' >/dev/null; then
        gcc=$(objdump -T "$SO" | grep -o 'GCC_[0-9][0-9.]*' | sed 's/GCC_//' | sort -uV | tail -n 1 || true)
        shlibs="$shlibs, libgcc-s1${gcc:+ (>= ${gcc%.0})}"
    fi
fi
DEPENDS="postgresql-$PG_MAJOR, $shlibs"
# Installed-Size in KiB, counted as dpkg-gencontrol does (each file rounded up, 1 per directory).
INSTALLED_SIZE=$(find "$TREE" -path "$TREE/DEBIAN" -prune -o \( -type f -printf '%s\n' \) -o \( -type d -printf '1024\n' \) |
                 awk '{ kib += int(($1 + 1023) / 1024) } END { print kib }')
cat > "$TREE/DEBIAN/control" <<EOF
Package: $PKG
Source: clv-ext
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_SIZE
Depends: $DEPENDS
Section: database
Priority: optional
Description: customer-lifetime-value analytics for PostgreSQL $PG_MAJOR (clv_ext)
 clv_ext is a PostgreSQL extension (Rust, pgrx) that turns a transactions
 table into per-customer RFM summaries (the semantics of Python lifetimes'
 summary_data_from_transaction_data) and fits BG/NBD, Pareto/NBD, MBG/NBD,
 BG/BB and Gamma-Gamma models with SQL aggregates, with row-level CLV scoring,
 RFM scores and segments, value tiers, K-means clusters and a pipeline to
 materialized views.
 .
 This package holds the extension for PostgreSQL $PG_MAJOR: the library and
 the control and SQL scripts, including the update scripts for
 ALTER EXTENSION clv_ext UPDATE. Enable it per database with
 CREATE EXTENSION clv_ext.
EOF
(cd "$TREE" && find usr -type f -printf '%P\n' | LC_ALL=C sort | sed 's|^|usr/|' | xargs md5sum) > "$TREE/DEBIAN/md5sums"
chmod 0644 "$TREE/DEBIAN/control" "$TREE/DEBIAN/md5sums"
find "$TREE" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$DEB_DIR"
rm -f "$DEB"
dpkg-deb --root-owner-group -Zxz --build "$TREE" "$DEB" >/dev/null
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Architecture\|Installed-Size\|Depends\):/  \1:/p' >&2
if command -v lintian >/dev/null; then
    log "lintian"
    lintian --no-tag-display-limit "$DEB" >&2 || true
fi
printf '%s %s bytes (%s KiB installed; library %s -> %s bytes stripped)\n' "$DEB" "$(stat -c %s "$DEB")" \
    "$INSTALLED_SIZE" "$(stat -c %s "$SRC_LIB/clv_ext.so")" "$(stat -c %s "$SO")"
