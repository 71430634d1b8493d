"""A real `tracekit setup debugfs` on this machine: real Ansible, real mounts.

It runs in a private mount namespace with an overlay over /etc (writes land
in a scratch directory; Ansible's atomic renames work there, unlike on a
bind-mounted file), so the mounts and fstab lines it makes vanish with the
namespace and this machine is left as it was."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lib.privatens import in_private_mounts, seen

TRACEKIT = [sys.executable, "-m", "tracekit"]


def fstab_seen(tmp_path):
    """/etc/fstab as the namespace saw it at the end."""
    return seen(tmp_path, "/etc/fstab").read_text()


def setup_cmd(tmp_path, *extra):
    facts_dir = tmp_path / "facts.d"
    return " ".join(shlex.quote(a) for a in TRACEKIT + ["setup", "debugfs", "--json", "--no-verify",
                                                         "--var", "tracekit_debugfs_facts_dir=%s" % facts_dir]
                    + list(extra)) + " 2>/dev/null"


@pytest.fixture
def host_mounts():
    with open("/proc/self/mountinfo") as f:
        before = sorted(line.split()[4] for line in f)
    yield
    with open("/proc/self/mountinfo") as f:
        assert sorted(line.split()[4] for line in f) == before, "the host's mount table changed"


def test_setup_debugfs_check_then_apply_then_idempotent(tmp_path, tracefs, host_mounts):
    original_fstab = Path("/etc/fstab").read_text()
    findmnt = "findmnt -n -o FSTYPE,OPTIONS --mountpoint /sys/kernel/debug"
    (rc_check, check), (_, fstab_after_check), (rc_facts, _), (rc_after_check, mounted_after_check), \
        (rc1, first), (rc2, second), (rc_mnt, mounts) = in_private_mounts(tmp_path, [
            "umount /sys/kernel/debug 2>/dev/null; " + setup_cmd(tmp_path, "--check"),
            "cat /etc/fstab",
            "test -e %s" % shlex.quote(str(tmp_path / "facts.d")),
            findmnt,
            setup_cmd(tmp_path),
            setup_cmd(tmp_path),
            findmnt + "; stat -c %a /sys/kernel/debug; findmnt -n -o FSTYPE --mountpoint /sys/kernel/tracing",
        ])
    # --check changes nothing: no fstab line, nothing mounted, no fact written.
    assert rc_check == 0, check
    assert fstab_after_check + "\n" == original_fstab
    assert rc_facts == 1
    assert rc_after_check == 1 and mounted_after_check == ""

    assert rc1 == 0, first
    summary = json.loads(first)["hosts"]["localhost"]["components"]["debugfs"]
    assert summary["failed"] == 0 and summary["changed"] >= 2
    assert rc2 == 0, second
    again = json.loads(second)["hosts"]["localhost"]["components"]["debugfs"]
    assert again["changed"] == 0 and again["failed"] == 0, "second run must change nothing: %s" % again

    assert rc_mnt == 0
    debugfs_line, debugfs_mode, tracefs_type = mounts.splitlines()
    assert debugfs_line.startswith("debugfs") and "nosuid,nodev,noexec" in debugfs_line
    assert debugfs_mode == "700"
    assert tracefs_type == "tracefs"
    fstab_lines = fstab_seen(tmp_path).splitlines()
    assert "debugfs /sys/kernel/debug debugfs nosuid,nodev,noexec,mode=700 0 0" in fstab_lines
    assert "tracefs /sys/kernel/tracing tracefs nosuid,nodev,noexec,mode=700 0 0" in fstab_lines
    fact = json.loads((tmp_path / "facts.d/tracekit_debugfs.fact").read_text())
    assert fact["mounts"] == ["/sys/kernel/debug", "/sys/kernel/tracing"]
    assert Path("/etc/fstab").read_text() == original_fstab


def test_setup_debugfs_tightens_a_world_readable_mount(tmp_path, tracefs, host_mounts):
    (rc, out), (rc_mnt, mounts) = in_private_mounts(tmp_path, [
        "umount /sys/kernel/debug 2>/dev/null; mount -t debugfs -o mode=755 debugfs /sys/kernel/debug && "
        + setup_cmd(tmp_path, "--var", "tracekit_debugfs_persist=false"),
        "findmnt -n -o OPTIONS --mountpoint /sys/kernel/debug; stat -c %a /sys/kernel/debug",
    ])
    assert rc == 0, out
    options, mode = mounts.splitlines()
    assert "mode=755" not in options and mode == "700"
    # persist=false: fstab untouched.
    assert fstab_seen(tmp_path) == Path("/etc/fstab").read_text()
