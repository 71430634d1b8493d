#!/bin/sh
# Refresh the dependency locks that install.sh and scripts/test.sh install from.
#
#   scripts/lock.sh [--upgrade] [3.X ...]
#
# One pair per supported Python (the one each supported release ships):
#   locks/runtime-py3.X.txt   tracekit's dependencies (install.sh)
#   locks/test-py3.X.txt      the same plus the `test` extra (scripts/test.sh)
# Both also pin the build backend ([build-system] requires; the test lock also
# editables, for the editable install), since the checkout itself is installed
# with --no-build-isolation and --no-deps.
#
# Pins already in a lock are kept while pyproject.toml allows them (uv reads
# the existing file as its preferences); --upgrade resolves the newest allowed
# versions instead. Every pin carries the hashes of all its wheels and only
# wheels are allowed (--only-binary): a fresh host needs no compiler. uv comes
# from PyPI into a scratch venv (removed afterwards) unless $UV names one; it
# resolves for Pythons that are not installed here. Review the diff, then run
# scripts/test.sh before committing it.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
upgrade=""
if [ "${1:-}" = --upgrade ]; then upgrade=--upgrade; shift; fi
# jammy 3.10, bookworm 3.11, noble 3.12, trixie 3.13, resolute 3.14
versions=${*:-3.10 3.11 3.12 3.13 3.14}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
uv=${UV:-}
if [ -z "$uv" ]; then
    echo "lock.sh: installing uv into a scratch venv" >&2
    python3 -m venv "$scratch/uv"
    "$scratch/uv/bin/python" -m pip install --quiet --disable-pip-version-check uv
    uv=$scratch/uv/bin/uv
fi
# Its cache stays in the scratch directory, never in the checkout. uv must not
# fetch an interpreter for --python-version: resolving needs none.
UV_CACHE_DIR=${UV_CACHE_DIR:-$scratch/cache}
UV_PYTHON_DOWNLOADS=never
export UV_CACHE_DIR UV_PYTHON_DOWNLOADS

# [build-system] requires as requirement lines (no TOML parser needed on 3.10).
python3 - "$root/pyproject.toml" >"$scratch/build.in" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
table = re.search(r"^\[build-system\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
print("\n".join(re.findall(r'"([^"]+)"', re.search(r"^requires\s*=\s*\[(.*?)\]", table, re.M | re.S).group(1))))
EOF

{ cat "$scratch/build.in"; echo editables; } >"$scratch/build-editable.in"

mkdir -p "$root/locks"
cd "$root"
for version in $versions; do
    for kind in runtime test; do
        extra="" build=$scratch/build.in
        if [ "$kind" = test ]; then
            # test.sh installs the checkout editable: hatchling then needs editables.
            extra="--extra test" build=$scratch/build-editable.in
        fi
        echo "lock.sh: locks/$kind-py$version.txt" >&2
        # shellcheck disable=SC2086 # $extra and $upgrade are zero or more words
        "$uv" pip compile --quiet $upgrade $extra --python "$(command -v python3)" --python-version "$version" \
            --python-platform x86_64-unknown-linux-gnu --generate-hashes --only-binary :all: \
            --custom-compile-command "scripts/lock.sh" \
            --output-file "locks/$kind-py$version.txt" pyproject.toml - <"$build"
    done
done
