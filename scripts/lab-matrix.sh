#!/bin/sh
# Regenerate the support matrix: the kernel lab of each release, then the README.
#
#   sudo scripts/lab-matrix.sh [RELEASE...]     # default: every release of lab/kernel.py
#
# For each release, `molecule test -s kernel` (TRACEKIT_LAB_RELEASE=RELEASE) boots
# that release's stock kernel under qemu (TCG), runs `tracekit setup` (default
# components; dbgsym where the kernel's debug package is reachable) and then
# `tracekit verify --json`, and destroys the VM. Its verify.json, lab.json and setup
# summary are copied to docs/support/RELEASE/, and scripts/support-matrix.py writes
# the README's table from docs/support/. One VM at a time (2 CPUs; TCG keeps a core
# busy). How long each release takes is in docs/lab.md; a release that fails keeps
# its last documents, the script goes on with the others and exits 1.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${TRACEKIT_TEST_VENV:-$root/.venv-test}
[ -x "$venv/bin/molecule" ] || { echo "lab-matrix.sh: no molecule in $venv (run scripts/test.sh once)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "lab-matrix.sh: run as root (the kernel lab builds images and boots VMs)" >&2; exit 2; }
[ $# -gt 0 ] || set -- jammy noble resolute bookworm trixie

cd "$root"
failed=""
for release in "$@"; do
    case $release in
        jammy|noble|resolute|bookworm|trixie) ;;
        *) echo "lab-matrix.sh: unknown release $release (jammy noble resolute bookworm trixie)" >&2; exit 2 ;;
    esac
    results=$root/build/kernel-lab/$release
    rm -rf "$results"
    mkdir -p "$results"
    start=$(date +%s)
    echo "lab-matrix.sh: $release: molecule test -s kernel (log: $results/molecule.log)" >&2
    if TRACEKIT_LAB_RELEASE=$release TRACEKIT_LAB_RESULTS=$results PATH="$venv/bin:$PATH" NO_COLOR=1 \
            "$venv/bin/molecule" test -s kernel >"$results/molecule.log" 2>&1; then
        rc=0
    else
        rc=$?
    fi
    seconds=$(( $(date +%s) - start ))
    echo "lab-matrix.sh: $release: rc $rc in ${seconds} s" >&2
    # verify.json is tracekit's result even when molecule's assertions failed on it.
    if [ -f "$results/verify.json" ]; then
        dest=$root/docs/support/$release
        mkdir -p "$dest"
        cp "$results/verify.json" "$results/lab.json" "$dest/"
        setup=$(ls "$results"/setup-*.json 2>/dev/null | head -n1)
        [ -z "$setup" ] || cp "$setup" "$dest/setup.json"
        printf '{"release": "%s", "molecule_rc": %s, "seconds": %s, "finished": "%s"}\n' \
            "$release" "$rc" "$seconds" "$(date -u +%FT%TZ)" >"$dest/run.json"
    fi
    [ "$rc" = 0 ] || failed="$failed $release"
done

"$venv/bin/python" scripts/support-matrix.py
if [ -n "$failed" ]; then
    echo "lab-matrix.sh: molecule failed for:$failed (logs under build/kernel-lab/)" >&2
    exit 1
fi
