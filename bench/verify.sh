#!/bin/sh
# Benchmark: the whole `tracekit verify` suite on this machine (hyperfine).
# Target (issue #4): median <= 20 s.  tracefs is mounted for the runs when it
# is not, and unmounted again afterwards.
#
#   sudo bench/verify.sh [TRACEKIT_BINARY] [RUNS]
set -eu
. "$(dirname "$0")/common.sh"
bench_start verify.sh 10 "$@"
scratch=$(mktemp -d)
mounted=""
cleanup() { [ -z "$mounted" ] || umount /sys/kernel/tracing; rm -rf "$scratch"; }
trap cleanup EXIT INT TERM
if ! mountpoint -q /sys/kernel/tracing; then mount -t tracefs tracefs /sys/kernel/tracing; mounted=1; fi
hyperfine -N --warmup 1 --runs "$runs" --export-json "$scratch/verify.json" \
    -n "tracekit verify" "$tracekit verify --json --artifacts $scratch/artifacts" >/dev/null 2>&1
python3 - "$scratch/verify.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("tracekit verify: median %.2f s  (min %.2f, max %.2f, %d runs)" % (r["median"], r["min"], r["max"], len(r["times"])))
verdict = "PASS" if r["median"] <= 20 else "FAIL"
print("target: whole suite median <= 20 s: %s (%.2f s)" % (verdict, r["median"]))
sys.exit(0 if verdict == "PASS" else 1)
PY
