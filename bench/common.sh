# Sourced by the benchmark scripts: their arguments [TRACEKIT_BINARY] [RUNS]
# and what every one of them needs (root, hyperfine).
#   bench_start NAME DEFAULT_RUNS "$@"   sets here, tracekit (absolute), runs
bench_start() {
    name=$1 default_runs=$2; shift 2
    here=$(cd "$(dirname "$0")" && pwd)
    tracekit=${1:-"$here/../.venv-test/bin/tracekit"}
    runs=${2:-$default_runs}
    [ -x "$tracekit" ] || { echo "bench/$name: no tracekit at $tracekit; pass its path" >&2; exit 2; }
    # Absolute: some benchmarks run it from another directory or namespace.
    tracekit=$(cd "$(dirname "$tracekit")" && pwd)/$(basename "$tracekit")
    [ "$(id -u)" = 0 ] || { echo "bench/$name: needs root" >&2; exit 2; }
    command -v hyperfine >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine >/dev/null
}
