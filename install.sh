#!/bin/sh
# Install tracekit on this machine and run it.
#
#   sudo ./install.sh            install, `tracekit setup` this machine, then `tracekit doctor`
#   sudo ./install.sh ARGS...    install, then `tracekit ARGS...` (e.g. doctor, setup --check)
#
# tracekit gets its own virtual environment under $TRACEKIT_PREFIX (default
# /opt/tracekit) and a link in /usr/local/bin: Ubuntu 24.04 and Debian 12
# refuse `pip install` into the system Python (PEP 668), and elsewhere the
# venv keeps tracekit's dependencies apart from the distribution's.
set -eu

prefix=${TRACEKIT_PREFIX:-/opt/tracekit}
src=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3 || true)

die() { echo "install.sh: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (sudo ./install.sh): it installs packages and traces the kernel"
[ -n "$python" ] || die "no python3 found; install it first (apt-get install python3)"

# Debian and Ubuntu ship venv's pip bootstrap separately (python3-venv).
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    command -v apt-get >/dev/null || die "$python lacks the venv module and this is no apt system"
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    echo "installing python3-venv for Python $version" >&2
    install_venv() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv "python$version-venv" >/dev/null 2>&1; }
    if ! install_venv && ! { apt-get update -q >/dev/null 2>&1 && install_venv; }; then
        hint=""
        grep -qs '^ID=ubuntu' /etc/os-release && hint=" (on Ubuntu it is in the universe component: add-apt-repository universe)"
        die "could not install python3-venv$hint"
    fi
fi

[ -x "$prefix/venv/bin/python" ] || "$python" -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$src"
ln -sf "$prefix/venv/bin/tracekit" /usr/local/bin/tracekit

[ $# -eq 0 ] || exec "$prefix/venv/bin/tracekit" "$@"

"$prefix/venv/bin/tracekit" setup
echo
# doctor exits 1 while something setup could fix is missing: that is its
# report, not a failed install.
"$prefix/venv/bin/tracekit" doctor || echo "install.sh: installed; doctor (above) lists what this host still lacks" >&2
