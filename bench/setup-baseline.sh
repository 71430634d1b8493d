#!/bin/sh
# The plain shell script a person would write for what a converged
# `tracekit setup` (default components, ddebs by debuginfod) checks on a
# Debian host: the same idempotent work, no Ansible.  bench/setup.sh times it
# beside tracekit for the ratio.  Debian only (linux-perf).
set -eu
release=$(uname -r)
facts=/etc/ansible/facts.d

# debugfs: fstab lines, mounts, mode.
for fs in "debugfs /sys/kernel/debug" "tracefs /sys/kernel/tracing"; do
    set -- $fs
    grep -q "^[^#]*[[:space:]]$2[[:space:]]" /etc/fstab ||
        echo "$1 $2 $1 nosuid,nodev,noexec,mode=700 0 0" >> /etc/fstab
    mountpoint -q "$2" || mount -t "$1" -o nosuid,nodev,noexec,mode=700 "$1" "$2"
    [ "$(stat -c %a "$2")" = 700 ] || mount -o remount,mode=700 "$2"
done

# ddebs by debuginfod: the package's profile script, for login shells.
profile=/usr/share/libdebuginfod-common/debuginfod.sh
cmp -s "$profile" /etc/profile.d/tracekit-debuginfod.sh || cp "$profile" /etc/profile.d/tracekit-debuginfod.sh
rm -f /etc/debuginfod/tracekit.urls

# Every package component's packages in one transaction (a no-op when present).
[ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -60 | head -1)" ] || apt-get update -q
headers=""
apt-cache show --no-all-versions "linux-headers-$release" >/dev/null 2>&1 && headers="linux-headers-$release"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    libdebuginfod-common libdebuginfod1 $headers linux-perf trace-cmd bpfcc-tools python3-bpfcc \
    libbpf-tools bpftrace systemtap systemtap-runtime sysdig >/dev/null
[ -n "$headers" ] || echo "no kernel headers exist for $release" >&2

# The tools start; what systemtap and sysdig lack is worked out.
perf --version >/dev/null
bpftrace --version >/dev/null
stap -V >/dev/null 2>&1
for need in "/lib/modules/$release/build/.config" /proc/modules /sys/kernel/btf/vmlinux; do
    [ -e "$need" ] || echo "missing: $need" >&2
done
sysdig --version >/dev/null

# The records tracekit doctor reads.
mkdir -p "$facts"
for component in debugfs ddebs headers perf bcc bpftrace systemtap sysdig; do
    printf '{"component": "%s"}\n' "$component" > "$facts/tracekit_$component.fact"
done
