#!/bin/sh
# Install tracekit on this machine and run it.
#
#   sudo ./install.sh            install, then `tracekit doctor`
#   sudo ./install.sh ARGS...    install, then `tracekit ARGS...`
#
# Ubuntu 22.04/24.04 and Debian 12 refuse `pip install` into the system Python
# (PEP 668), so tracekit gets its own virtual environment under $TRACEKIT_PREFIX
# (default /opt/tracekit) and a link in /usr/local/bin.
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
    echo "installing python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; } \
        || die "could not install python3-venv"
fi

[ -x "$prefix/venv/bin/python" ] || "$python" -m venv "$prefix/venv"
"$prefix/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$src"
ln -sf "$prefix/venv/bin/tracekit" /usr/local/bin/tracekit

[ $# -gt 0 ] || set -- doctor
exec "$prefix/venv/bin/tracekit" "$@"
