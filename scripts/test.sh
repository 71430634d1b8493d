#!/bin/sh
# Install what the tests need, then run every test tier that can run here.
#
#   sudo scripts/test.sh [PYTEST ARGS...]
#
# Tiers (pytest markers): unit, cli, host (real tracing on this machine),
# fleet and lab. Each tier skips with its measured reason where this machine
# cannot run it; CI runs this script as it is. The test venv ($TRACEKIT_TEST_VENV,
# default .venv-test) gets the versions of locks/test-py3.X.txt for its Python.
set -eu

me=test.sh
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$root/scripts/lib.sh"
log=$(mktemp)
trap 'heartbeat_stop; rm -f "$log"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

venv=${TRACEKIT_TEST_VENV:-$root/.venv-test}
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3 || true)
[ -n "$python" ] || die "no python3 found; install it first (apt-get install python3)"
version=$(python_version "$python") || die "$python does not run"
lock=$(lock_file "$root" test "$version")

# What the tests that cannot run without PKG do when it cannot be had here.
skipped_without() {
    case $1 in
        vagrant) echo "tests/cli/test_lab_recipes.py and the fleet tier's Vagrantfile test skip" ;;
        qemu-system-x86 | qemu-utils) echo "the kernel lab tier (tests/lab) skips" ;;
        debootstrap | debian-archive-keyring) echo "the fleet and lab tiers cannot build their userlands (they fail)" ;;
        linux-perf | linux-tools-*) echo "the host tier's perf tests skip or fail" ;;
        *) echo "the tests that need it fail or skip" ;;
    esac
}

# The packages the tiers need, by distribution:
#   gcc builds the uprobe target (libc6-dev: its headers, only recommended by gcc); perf is exercised by the host tier (Debian:
#   linux-perf; Ubuntu: linux-tools-*, and linux-perf where packaged, 26.04);
#   python3-venv makes this venv and the packaging test's; setpriv (util-linux)
#   runs the non-root tests; mount is not in a minimal userland.
#   The fleet tier (lab/fleet.py) bootstraps Debian/Ubuntu userlands with
#   debootstrap (signatures checked with gpg, whose key generation needs
#   gpg-agent, and the Debian keyring) and reaches its hosts with ssh,
#   ssh-keygen and ssh-keyscan. vagrant validates the Vagrantfile and provisions
#   a fleet host through it (no VM provider needed); Ubuntu 24.04 has no vagrant
#   package. The kernel lab (lab/kernel.py) boots Ubuntu's kernel with qemu (TCG).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    distro="$(os_field ID) $(os_field VERSION_ID)"
    wanted="gcc libc6-dev python3-venv python$version-venv util-linux mount debootstrap debian-archive-keyring gpg gpg-agent
            openssh-client vagrant qemu-system-x86 qemu-utils"
    optional=""  # installed along with the others when packaged, no message when not
    case $distro in
        ubuntu*) wanted="$wanted linux-tools-common linux-tools-generic"; optional="linux-perf" ;;
        *) wanted="$wanted linux-perf" ;;
    esac
    missing=""
    for pkg in $wanted; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        if ! run_step "updating apt's package lists (apt-get update)" "$log" apt-get update -q; then
            show_log_tail "$log"
            die "apt-get update failed (above)"
        fi
        ensure_universe_for "python$version-venv" "$log" || true  # the next loop names what is still missing
        installable="" unavailable=""
        for pkg in $optional; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
        done
        for pkg in $missing; do
            if apt_has_candidate "$pkg"; then
                installable="$installable $pkg"
            else
                case " $optional " in *" $pkg "*) continue ;; esac
                unavailable="$unavailable $pkg"
            fi
        done
        for pkg in $unavailable; do
            say "$pkg cannot be installed on $distro (no apt source offers it): $(skipped_without "$pkg")"
        done
        if [ -n "$installable" ]; then
            say "to install:$installable"
            # shellcheck disable=SC2086 # a list of package names
            if ! run_step "installing $(echo $installable | wc -w) packages (apt-get install --no-install-recommends)" \
                    "$log" apt_install --no-install-recommends $installable; then
                show_log_tail "$log"
                die "apt-get install failed (above)"
            fi
        fi
    fi
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || die "could not create the test venv $venv"
if ! pip_locked "installing the test dependencies from locks/${lock##*/} (pip: downloading and installing)" \
        "$log" "$venv" "$lock"; then
    show_log_tail "$log"
    die "installing the test dependencies failed (above)"
fi
if ! pip_checkout "installing tracekit from $root (pip, editable)" "$log" "$venv" -e "$root"; then
    show_log_tail "$log"
    die "installing tracekit into the test venv failed (above)"
fi

cd "$root"
set +e
"$venv/bin/python" -m pytest "$@"
rc=$?
set -e
# pytest's 5 means it collected no test at all: treat that as the failure it is.
[ "$rc" = 5 ] && say "pytest collected no tests"
exit "$rc"
