#!/bin/sh
# Benchmark: wall time of `tracekit doctor --json` on this machine.
# Target (issue #2): median <= 0.2 s.  For scale, `bpftool feature probe`
# (which reports far less) is timed in the same run when it is installed.
#
#   bench/doctor.sh [TRACEKIT_BINARY]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tracekit=${1:-${TRACEKIT:-}}
if [ -z "$tracekit" ]; then
    for candidate in "$here/../.venv-test/bin/tracekit" /usr/local/bin/tracekit "$(command -v tracekit || true)"; do
        [ -x "$candidate" ] && { tracekit=$candidate; break; }
    done
fi
[ -n "$tracekit" ] || { echo "bench/doctor.sh: no tracekit found; pass its path" >&2; exit 2; }
if ! command -v hyperfine >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "bench/doctor.sh: needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
set -- "$tracekit doctor --json"
if command -v bpftool >/dev/null; then set -- "$@" "bpftool feature probe"; fi
# -i: doctor exits 1 when setup could fix something; that is a result, not an error.
hyperfine -N -i --warmup 3 --runs 40 --export-json "$out/doctor.json" "$@" >/dev/null 2>&1

python3 - "$out/doctor.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
by_cmd = {r["command"]: r for r in results}
for r in results:
    print("%-45s median %.3f s  (min %.3f, max %.3f, %d runs)" % (
        r["command"][-45:], r["median"], r["min"], r["max"], len(r["times"])))
doctor = next(r for r in results if "doctor" in r["command"])
verdict = "PASS" if doctor["median"] <= 0.2 else "FAIL"
print("target: tracekit doctor --json median <= 0.200 s: %s (%.3f s)" % (verdict, doctor["median"]))
bpftool = by_cmd.get("bpftool feature probe")
if bpftool:
    print("ratio doctor / bpftool feature probe (same run): %.2f" % (doctor["median"] / bpftool["median"]))
sys.exit(0 if verdict == "PASS" else 1)
PY
