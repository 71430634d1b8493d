#!/bin/sh
# Benchmark: a converged re-run of `tracekit setup` on this machine (all
# default components; ddebs by debuginfod, since the debug archive is not
# reachable from every machine), and the same idempotent work as a plain
# shell script (bench/setup-baseline.sh), timed in the same hyperfine run.
# Target (issue #3): tracekit's median <= 12 s; the ratio is printed.
# --no-verify: setup's own work (verify has its own benchmark, bench/verify.sh).
#
# Both run in one private mount namespace with scratch overlays on /etc,
# debconf's database and apt's lists, converged once before timing: this
# machine's fstab, mounts and apt configuration are left as they were.
# Packages the components want are installed for real (as setup would).
#
#   sudo bench/setup.sh [TRACEKIT_BINARY] [RUNS]
set -eu
. "$(dirname "$0")/common.sh"
bench_start setup.sh 10 "$@"

scratch=$(mktemp -d)
holder=""
cleanup() { [ -z "$holder" ] || kill "$holder" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$scratch"; }
trap cleanup EXIT INT TERM
overlays=""
for dir in /etc /var/cache/debconf /var/lib/apt/lists; do
    name=$(echo "$dir" | tr / -)
    mkdir -p "$scratch/upper$name" "$scratch/work$name"
    overlays="$overlays mount -t overlay overlay -o lowerdir=$dir,upperdir=$scratch/upper$name,workdir=$scratch/work$name $dir;"
done
# The namespace lives as long as this sleeping holder; each run enters it.
unshare -m --propagation private sh -c "$overlays touch $scratch/ready; exec sleep 86400" &
holder=$!
while [ ! -e "$scratch/ready" ]; do sleep 0.1; done

in_ns="nsenter -t $holder -m --"
setup="$in_ns $tracekit setup --no-verify --var tracekit_ddebs_method=debuginfod"
echo "converging once (not timed)..." >&2
$setup >"$scratch/converge.log" 2>&1 || { echo "bench/setup.sh: the converging run failed:" >&2; tail -20 "$scratch/converge.log" >&2; exit 1; }
$in_ns "$here/setup-baseline.sh" 2>/dev/null

hyperfine -N --warmup 1 --runs "$runs" --export-json "$scratch/setup.json" \
    -n "tracekit setup (converged)" "$setup" \
    -n "shell script (same work)" "$in_ns $here/setup-baseline.sh" >/dev/null 2>&1

python3 - "$scratch/setup.json" <<'PY'
import json, sys
results = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
for name, r in results.items():
    print("%-28s median %6.2f s  (min %.2f, max %.2f, %d runs)" % (name, r["median"], r["min"], r["max"], len(r["times"])))
tk, sh = results["tracekit setup (converged)"], results["shell script (same work)"]
verdict = "PASS" if tk["median"] <= 12 else "FAIL"
print("target: converged tracekit setup median <= 12 s: %s (%.2f s)" % (verdict, tk["median"]))
print("ratio tracekit / shell script (same run): %.1f" % (tk["median"] / sh["median"]))
sys.exit(0 if verdict == "PASS" else 1)
PY
