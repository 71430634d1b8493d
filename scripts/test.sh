#!/bin/sh
# Install what the tests need, then run every test tier that can run here.
#
#   sudo scripts/test.sh [PYTEST ARGS...]
#
# Tiers (pytest markers): unit, cli, host (real tracing on this machine),
# fleet and lab. Each tier skips with its measured reason where this machine
# cannot run it; CI runs this script as it is.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${TRACEKIT_TEST_VENV:-$root/.venv-test}
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # gcc builds the uprobe target, perf is exercised by the host tier,
    # python3-venv makes the environments the packaging test builds.
    # The fleet tier (lab/fleet.py) bootstraps Debian/Ubuntu userlands with
    # debootstrap (signatures checked with gpg and the Debian keyring) and
    # reaches its hosts with ssh, ssh-keygen and ssh-keyscan. vagrant
    # validates the Vagrantfile and provisions a fleet host through it (no VM
    # provider is needed for that). The kernel lab (lab/kernel.py) boots
    # Ubuntu's kernel with qemu (TCG) on a qcow2 overlay.
    missing=""
    for pkg in gcc linux-perf python3-venv util-linux \
               debootstrap debian-archive-keyring gpg openssh-client vagrant \
               qemu-system-x86 qemu-utils; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
    done
    if [ -n "$missing" ]; then
        echo "installing:$missing" >&2
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
    fi
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
log=$(mktemp)
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[test]" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "test.sh: installing the test dependencies failed" >&2
    exit 1
fi
rm -f "$log"

cd "$root"
set +e
"$venv/bin/python" -m pytest "$@"
rc=$?
set -e
# pytest's 5 means it collected no test at all: treat that as the failure it is.
[ "$rc" = 5 ] && echo "test.sh: pytest collected no tests" >&2
exit "$rc"
