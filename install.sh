#!/bin/sh
# Install tracekit on this machine and run it.
#
#   sudo ./install.sh            install, `tracekit setup` this machine, then `tracekit doctor`
#   sudo ./install.sh ARGS...    install, then `tracekit ARGS...` (e.g. doctor, setup --check)
#
# tracekit gets its own virtual environment under $TRACEKIT_PREFIX (default
# /opt/tracekit) and a link in $TRACEKIT_BINDIR (default /usr/local/bin):
# Ubuntu 24.04 and Debian 12 refuse `pip install` into the system Python
# (PEP 668), and elsewhere the venv keeps tracekit's dependencies apart from
# the distribution's. The dependencies come from the lock for this Python
# (locks/runtime-py3.X.txt, hashes checked; scripts/lock.sh refreshes it).
set -eu

me=install.sh
src=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$src/scripts/lib.sh"
trap heartbeat_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

prefix=${TRACEKIT_PREFIX:-/opt/tracekit}
bindir=${TRACEKIT_BINDIR:-/usr/local/bin}
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3 || true)

[ "$(id -u)" = 0 ] || die "run as root (sudo ./install.sh): it installs packages and traces the kernel"
[ -n "$python" ] || die "no python3 found; install it first (apt-get install python3)"
version=$(python_version "$python") || die "$python does not run"
lock=$(lock_file "$src" runtime "$version")
log=$(mktemp)
trap 'heartbeat_stop; rm -f "$log"' EXIT

# Debian and Ubuntu ship venv's pip bootstrap separately (python3-venv); a
# minimal Ubuntu has only the main component and Ubuntu keeps it in universe.
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    command -v apt-get >/dev/null || die "$python lacks the venv module and this is no apt system"
    venv_pkgs="python3-venv python$version-venv"
    # shellcheck disable=SC2086 # two package names
    if ! run_step "installing python3-venv for Python $version (apt-get install)" "$log" apt_install $venv_pkgs; then
        if ! run_step "updating apt's package lists (apt-get update)" "$log" apt-get update -q; then
            show_log_tail "$log"
            die "apt-get update failed (above); fix the apt sources and run sudo ./install.sh again"
        fi
        for pkg in $venv_pkgs; do
            ensure_universe_for "$pkg" "$log" ||
                die "no apt source offers $pkg; add the one that has it (on Ubuntu: universe) and run sudo ./install.sh again"
        done
        # shellcheck disable=SC2086
        if ! run_step "installing python3-venv for Python $version (apt-get install)" "$log" apt_install $venv_pkgs; then
            show_log_tail "$log"
            die "could not install $venv_pkgs (apt's messages above)"
        fi
    fi
fi

venv=$prefix/venv
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || die "could not create the virtual environment $venv"
if ! pip_locked "installing tracekit's dependencies from locks/${lock##*/} (pip: downloading and installing)" \
        "$log" "$venv" "$lock"; then
    show_log_tail "$log"
    die "pip could not install the locked dependencies (above); fix the cause and run sudo ./install.sh again"
fi
if ! pip_checkout "installing tracekit from $src (pip)" "$log" "$venv" --force-reinstall "$src"; then
    show_log_tail "$log"
    die "pip could not install tracekit from $src (above)"
fi
mkdir -p "$bindir"
ln -sf "$venv/bin/tracekit" "$bindir/tracekit"
say "installed $("$venv/bin/tracekit" --version) as $bindir/tracekit"

if [ $# -gt 0 ]; then
    rm -f "$log"
    exec "$venv/bin/tracekit" "$@"
fi

setup_rc=0
"$venv/bin/tracekit" setup || setup_rc=$?
echo
# doctor exits 1 while something setup could fix is missing: that is its
# report, not a failed install.
doctor_rc=0
"$venv/bin/tracekit" doctor || doctor_rc=$?
if [ "$setup_rc" != 0 ]; then
    say "tracekit is installed, but \`tracekit setup\` (or the verify it ends with) failed with exit $setup_rc;" \
        "its messages are above, doctor's report after them. Fix the cause, then run \`sudo tracekit setup\` again."
    exit "$setup_rc"
fi
case $doctor_rc in
    0) say "done: tracekit is installed and this machine is set up; doctor (above) says what it can trace. Try \`sudo tracekit verify\`." ;;
    1) say "done: tracekit is installed and set up; doctor (above) lists what this host still lacks and the command that fixes each." ;;
    *) say "tracekit is installed and set up, but \`tracekit doctor\` failed with exit $doctor_rc (above)."
       exit "$doctor_rc" ;;
esac
