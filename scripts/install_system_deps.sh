#!/usr/bin/env bash
# Install the Debian packages xbar-circuit needs, only those that are missing:
#   ngspice, libngspice0, libngspice0-dev (SPICE reference; PySpice opens libngspice.so),
#   python3-venv, python3-dev, gcc (virtualenv and the Cython extension build).
# Runs apt-get as root, or through sudo when not root. Idempotent.
#
# ngspice with KLU: Debian 12's own ngspice (39) is built without the KLU sparse matrix
# solver, which makes crossbars above 64x64 take minutes to hours. When the installed
# ngspice lacks KLU, the <codename>-backports suite (ngspice 46, built with KLU) is added
# for the same mirror the machine's apt sources already name, and ngspice is installed
# from it. Where that is not possible the script keeps ngspice 39 and says so.
# Set XBAR_NO_BACKPORTS=1 to keep whatever ngspice the system has.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
# Where apt's sources live (overridable so that the parsing below can be tested).
APT_SOURCES_DIR="${APT_SOURCES_DIR:-/etc/apt/sources.list.d}"
APT_SOURCES_LIST="${APT_SOURCES_LIST:-/etc/apt/sources.list}"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    SUDO="none"
fi

ngspice_major() {
    # Major version of the ngspice on PATH ("39" from "ngspice-39"), empty when absent.
    command -v ngspice >/dev/null 2>&1 || return 0
    local text
    text="$(ngspice --version 2>/dev/null || true)"
    grep -o 'ngspice-[0-9]*' <<<"$text" | head -1 | cut -d- -f2 || true
}

ngspice_has_klu() {
    # A tiny deck with `.option klu`: an ngspice built with KLU says "KLU" in its output
    # (ngspice 46: "Using KLU as Direct Linear Solver"); one without ignores the option.
    local dir out
    dir="$(mktemp -d)"
    printf 'solver probe\nV1 a 0 1\nR1 a 0 1k\n.option klu\n.op\n.end\n' > "$dir/probe.cir"
    out="$(cd "$dir" && timeout 30 ngspice -b probe.cir 2>&1 || true)"
    rm -rf "$dir"
    grep -qi 'klu' <<<"$out"
}

apt_mirror_uri() {
    # The first Debian mirror URI the apt sources name for the release suite itself
    # (not -security), from deb822 *.sources files or one-line sources.list entries.
    local codename="$1" file uri
    for file in "$APT_SOURCES_DIR"/*.sources; do
        [ -f "$file" ] || continue
        uri="$(awk -v suite="$codename" '
            /^[[:space:]]*$/ { if (uris != "" && ok) { print uris; exit } uris=""; ok=0; next }
            /^URIs:/ { uris=$2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok=1 }
            END { if (uris != "" && ok) print uris }' "$file" | head -1)"
        if [ -n "$uri" ]; then echo "$uri"; return 0; fi
    done
    for file in "$APT_SOURCES_LIST" "$APT_SOURCES_DIR"/*.list; do
        [ -f "$file" ] || continue
        uri="$(awk -v suite="$codename" '
            $1 == "deb" { n = 2; if ($2 ~ /^\[/) { while ($n !~ /\]$/) n++; n++ }
                          if ($(n + 1) == suite) { print $n; exit } }' "$file")"
        if [ -n "$uri" ]; then echo "$uri"; return 0; fi
    done
    return 1
}

apt_signed_by() {
    # The Signed-By keyring of the deb822 stanza that names the mirror, if any.
    local uri="$1" file key
    for file in "$APT_SOURCES_DIR"/*.sources; do
        [ -f "$file" ] || continue
        key="$(awk -v uri="$uri" '
            /^[[:space:]]*$/ { if (hit && key != "") { print key; exit } hit=0; key=""; next }
            /^URIs:/ { for (i = 2; i <= NF; i++) if ($i == uri) hit=1 }
            /^Signed-By:/ { key=$2 }
            END { if (hit && key != "") print key }' "$file" | head -1)"
        if [ -n "$key" ]; then echo "$key"; return 0; fi
    done
    return 1
}

install_ngspice_with_klu() {
    # Add <codename>-backports for the machine's own mirror; install ngspice from it.
    local codename uri key list
    codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")"
    if [ -z "$codename" ]; then
        echo "ngspice: cannot tell the Debian release (/etc/os-release); keeping ngspice $(ngspice_major)" >&2
        return 1
    fi
    if ! uri="$(apt_mirror_uri "$codename")"; then
        echo "ngspice: no apt source names a mirror for '$codename'; cannot add $codename-backports" >&2
        return 1
    fi
    list="$APT_SOURCES_DIR/xbar-${codename}-backports.sources"
    if [ ! -f "$list" ]; then
        key="$(apt_signed_by "$uri" || true)"
        echo "adding the $codename-backports suite of $uri ($list) for ngspice with KLU"
        {
            echo "Types: deb"
            echo "URIs: $uri"
            echo "Suites: $codename-backports"
            echo "Components: main"
            [ -n "$key" ] && echo "Signed-By: $key"
        } | $SUDO tee "$list" >/dev/null
    fi
    $SUDO apt-get update -qq || true
    local policy
    policy="$(apt-cache policy ngspice 2>/dev/null || true)"
    if ! grep -q -- "$codename-backports" <<<"$policy"; then
        echo "ngspice: $codename-backports offers no ngspice here" >&2
        return 1
    fi
    echo "installing ngspice, libngspice0, libngspice0-dev from $codename-backports"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        -t "$codename-backports" ngspice libngspice0 libngspice0-dev
}

need=()
command -v ngspice >/dev/null 2>&1 || need+=(ngspice)
# PySpice's shared mode opens the unversioned libngspice.so (from libngspice0-dev).
if ! ldconfig -p 2>/dev/null | grep -q 'libngspice\.so '; then
    need+=(libngspice0 libngspice0-dev)
fi
command -v gcc >/dev/null 2>&1 || need+=(gcc)
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need+=(python3-venv)
fi
if ! "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' >/dev/null 2>&1; then
    need+=(python3-dev)
fi

if [ ${#need[@]} -gt 0 ]; then
    if [ "$SUDO" = "none" ]; then
        echo "error: missing Debian packages: ${need[*]}; run as root: apt-get install ${need[*]}" >&2
        exit 1
    fi
    echo "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ "${XBAR_NO_BACKPORTS:-0}" != "1" ] && command -v ngspice >/dev/null 2>&1 \
        && ! ngspice_has_klu; then
    if [ "$SUDO" = "none" ]; then
        echo "ngspice $(ngspice_major) has no KLU solver; as root, add $(. /etc/os-release; echo "$VERSION_CODENAME")-backports and" \
             "apt-get install -t <codename>-backports ngspice libngspice0 libngspice0-dev" >&2
    elif ! install_ngspice_with_klu; then
        echo "ngspice: keeping ngspice $(ngspice_major) without KLU: everything works, but" \
             "SPICE runs above 64x64 take minutes (docs/ngspice.md, 'Cost')" >&2
    fi
fi

if command -v ngspice >/dev/null 2>&1; then
    if ngspice_has_klu; then solver="KLU"; else solver="Sparse 1.3, no KLU"; fi
    echo "system dependencies: present (ngspice $(ngspice_major), matrix solver $solver)"
else
    echo "system dependencies: present"
fi
