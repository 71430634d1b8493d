#!/bin/sh
# Benchmarks on fleet-lab hosts (lab/fleet.py: fresh Ubuntu noble userlands
# over this machine's kernel, sshd on 127.0.0.1):
#
# 1. Fresh install: `tracekit setup` of every default component on a fresh
#    host, against one `apt-get update && apt-get install` of the same
#    package set (read back from the tracekit host's records) on an identical
#    fresh host.  Target (issue #3): tracekit within 1.2x.  Two rounds with
#    the order swapped, so neither side always meets a warm mirror first.
#    A third identical host gets Ansible's floor: a play that only gathers
#    the same facts, updates the lists and installs the same set with the
#    apt module, through the same ansible-playbook and connection settings.
#    What Ansible alone costs over apt-get, apart from anything tracekit does.
# 2. Converged run on 3 hosts against 1 host (hyperfine, same run).
#    Target: 3 hosts <= 1.5x one host.
#
# ddebs is set up by debuginfod: the debug archives are not reachable from
# every machine.  Needs root, debootstrap and network to the mirrors.
#
#   sudo bench/fleet.sh [TRACEKIT_BINARY] [RUNS]
set -eu
. "$(dirname "$0")/common.sh"
bench_start fleet.sh 5 "$@"
python=/usr/bin/python3
fleet="$python $here/../lab/fleet.py"

scratch=$(mktemp -d)
cleanup() {
    for state in "$scratch"/state-*; do [ -d "$state" ] && $fleet down --state "$state" >/dev/null 2>&1 || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT INT TERM
$fleet rootfs noble >/dev/null
setup="$tracekit setup --no-verify --var tracekit_ddebs_method=debuginfod"
ansible_playbook="$(dirname "$tracekit")/ansible-playbook"
cat > "$scratch/floor.yml" <<'YAML'
- name: Ansible's floor, the packages only
  hosts: all
  become: true
  gather_facts: true
  gather_subset: ["!all", "!min", distribution, platform, local]
  tasks:
    - name: Update the lists
      ansible.builtin.apt:
        update_cache: true
    - name: Install the package set
      ansible.builtin.apt:
        name: "{{ packages.split() }}"
        install_recommends: false
YAML

ssh_to() {  # ssh_to STATE HOST COMMAND...
    state=$1 host=$2; shift 2
    port=$($python -c "import json,sys; print({h['name']: h['port'] for h in json.load(open(sys.argv[1]))['hosts']}[sys.argv[2]])" "$state/hosts.json" "$host")
    ssh -q -p "$port" -i "$state/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
        -o UserKnownHostsFile="$state/known_hosts" -o StrictHostKeyChecking=yes root@127.0.0.1 "$@"
}

seconds() { $python -c "import time; print('%.3f' % time.monotonic())"; }

fresh_install_round() {  # round ORDER(tracekit-first|apt-first)
    round=$1 order=$2
    state="$scratch/state-fresh-$round"
    $fleet up --state "$state" tk=noble apt=noble floor=noble >/dev/null
    run_tracekit() {
        t0=$(seconds)
        $setup -i "$state/inventory.yml" --limit tk --json >"$scratch/tk-$round.json" 2>"$scratch/tk-$round.log" ||
            { echo "bench/fleet.sh: tracekit setup failed:" >&2; tail -5 "$scratch/tk-$round.log" >&2; exit 1; }
        t1=$(seconds); echo "$t0 $t1" > "$scratch/tk-$round.time"
    }
    run_apt() {
        # The same packages tracekit's roles recorded installing (round 1's
        # records when apt goes first).
        packages=$(cat "$scratch/packages")
        t0=$(seconds)
        ssh_to "$state" apt "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages >/dev/null"
        t1=$(seconds); echo "$t0 $t1" > "$scratch/apt-$round.time"
    }
    run_floor() {
        t0=$(seconds)
        ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 "$ansible_playbook" -i "$state/inventory.yml" --limit floor \
            -e "packages='$(cat "$scratch/packages")'" "$scratch/floor.yml" >"$scratch/floor-$round.log" 2>&1 ||
            { echo "bench/fleet.sh: the floor play failed:" >&2; tail -5 "$scratch/floor-$round.log" >&2; exit 1; }
        t1=$(seconds); echo "$t0 $t1" > "$scratch/floor-$round.time"
    }
    if [ "$order" = tracekit-first ]; then
        run_tracekit
        # Exactly what tracekit asked apt to install (apt's own log of its
        # command lines): the components' packages, the probe toolchain and
        # the debuginfod client.
        ssh_to "$state" tk "cat /var/log/apt/history.log" | $python -c '
import re, sys
packages = set()
for line in sys.stdin:
    match = re.match(r"Commandline: \S*apt-get .* install (.*)$", line)
    if match:
        words = iter(match.group(1).split())
        for word in words:
            if word == "-o":
                next(words, None)  # an option and its value
            elif not word.startswith("-"):
                packages.add(word.split("=")[0])  # the apt module pins the candidate version
print(" ".join(sorted(packages)))' > "$scratch/packages"
        [ -s "$scratch/packages" ] || { echo "bench/fleet.sh: no apt-get install in the tracekit host's apt history" >&2; exit 1; }
        run_apt
        run_floor
    else
        run_apt
        run_floor
        run_tracekit
    fi
    $fleet down --state "$state" >/dev/null
}

echo "fresh install, round 1 (tracekit first)..." >&2
fresh_install_round 1 tracekit-first
echo "fresh install, round 2 (apt-get first)..." >&2
fresh_install_round 2 apt-first

echo "converged runs, 1 host and 3 hosts..." >&2
state="$scratch/state-converged"
$fleet up --state "$state" noble1=noble noble2=noble noble3=noble >/dev/null
$setup -i "$state/inventory.yml" >"$scratch/converge.log" 2>&1 ||
    { echo "bench/fleet.sh: converging 3 hosts failed:" >&2; tail -20 "$scratch/converge.log" >&2; exit 1; }
hyperfine -N --warmup 1 --runs "$runs" --export-json "$scratch/converged.json" \
    -n "converged, 1 host" "$setup -i $state/inventory.yml --limit noble1" \
    -n "converged, 3 hosts" "$setup -i $state/inventory.yml" >/dev/null 2>&1

# The lab's hosts run on this machine's own CPUs: how busy all of them were
# during one more converged run of each (busy jiffies from /proc/stat), to
# tell a run that waits from one that has no CPU left.
busy() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
for hosts in 1 3; do
    limit=""; [ "$hosts" = 1 ] && limit="--limit noble1"
    b0=$(busy); t0=$(seconds)
    $setup -i "$state/inventory.yml" $limit >/dev/null 2>&1
    t1=$(seconds); b1=$(busy)
    echo "$hosts $t0 $t1 $b0 $b1" >> "$scratch/cpu"
done

$python - "$scratch" <<'PY'
import json, statistics, sys
from pathlib import Path
scratch = Path(sys.argv[1])
def took(name):
    t0, t1 = map(float, (scratch / name).read_text().split())
    return t1 - t0
packages = (scratch / "packages").read_text().split()
print("package set (%d): %s" % (len(packages), " ".join(packages)))
tk = [took("tk-1.time"), took("tk-2.time")]
apt = [took("apt-1.time"), took("apt-2.time")]
floor = [took("floor-1.time"), took("floor-2.time")]
for i in range(2):
    print("fresh install round %d: tracekit setup %.1f s, apt-get update+install %.1f s, ratio %.2f;"
          " Ansible's floor (update+install play) %.1f s, ratio %.2f"
          % (i + 1, tk[i], apt[i], tk[i] / apt[i], floor[i], floor[i] / apt[i]))
ratio = statistics.median(tk) / statistics.median(apt)
fresh = "PASS" if ratio <= 1.2 else "FAIL"
print("target: fresh install within 1.2x of apt-get: %s (median %.1f s vs %.1f s, ratio %.2f)"
      % (fresh, statistics.median(tk), statistics.median(apt), ratio))
print("Ansible's floor: median %.1f s, ratio %.2f to apt-get; tracekit's roles add %.1f s to it"
      % (statistics.median(floor), statistics.median(floor) / statistics.median(apt),
         statistics.median(tk) - statistics.median(floor)))
results = {r["command"]: r for r in json.load(open(scratch / "converged.json"))["results"]}
one, three = results["converged, 1 host"], results["converged, 3 hosts"]
for name, r in results.items():
    print("%-20s median %6.2f s  (min %.2f, max %.2f, %d runs)" % (name, r["median"], r["min"], r["max"], len(r["times"])))
scale = three["median"] / one["median"]
fleet = "PASS" if scale <= 1.5 else "FAIL"
print("target: converged 3 hosts <= 1.5x 1 host: %s (ratio %.2f, same run)" % (fleet, scale))
import os
hz, cpus = os.sysconf("SC_CLK_TCK"), os.cpu_count()
for line in (scratch / "cpu").read_text().splitlines():
    hosts, t0, t1, b0, b1 = line.split()
    wall, cpu = float(t1) - float(t0), (int(b1) - int(b0)) / hz
    print("converged, %s host(s), one more run: %.1f s, all CPUs busy %.1f s of %.1f (%.0f%% of %d CPUs)"
          % (hosts, wall, cpu, wall * cpus, 100 * cpu / (wall * cpus), cpus))
sys.exit(0 if fresh == fleet == "PASS" else 1)
PY
