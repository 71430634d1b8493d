"""Host tier: real tracing on this machine.  Needs root; tracefs is mounted
for the session if it was not, and unmounted again afterwards."""

import os
import subprocess

import pytest

from tracekit import doctor
from tracekit.agent import checks, verify

TRACEFS = "/sys/kernel/tracing"


def mounts():
    """(mount point, filesystem type) of each line of this namespace's mount table."""
    with open("/proc/self/mountinfo") as f:
        return [(line.split()[4], line.split(" - ")[1].split()[0]) for line in f]


def _mounted(path):
    return any(point == path for point, _ in mounts())


@pytest.fixture(scope="session")
def tracefs():
    if os.geteuid() != 0:
        pytest.skip("host tier needs root (euid is %d)" % os.geteuid())
    mounted_here = False
    if not _mounted(TRACEFS):
        subprocess.run(["mount", "-t", "tracefs", "tracefs", TRACEFS], check=True)
        mounted_here = True
    yield TRACEFS
    if mounted_here:
        subprocess.run(["umount", TRACEFS], check=True)


@pytest.fixture(scope="session")
def report(tracefs):
    return doctor.diagnose()


@pytest.fixture(scope="session")
def verdicts(report):
    return {v.id: v for v in report.verdicts}


@pytest.fixture(scope="session")
def check_context(report):
    ctx = checks.Context(report.facts)
    yield ctx
    ctx.close()


@pytest.fixture
def unchanged_tracing_state(tracefs):
    """Fails the test if the global tracing state differs afterwards, or a
    debugfs or tracefs was mounted or unmounted (tools mount them on the way).
    Judged by verify's own rule, so the one-time allocation of the global ring
    buffer (buffer_size_kb "7 (expanded: 1408)" -> "1410", seen when CI's fresh
    machine ran function_graph first) is not called a change here either."""
    before = checks.snapshot_tracing_state(tracefs)
    mounts_before = tracing_mounts()
    yield before
    after = checks.snapshot_tracing_state(tracefs)
    changed = verify.state_changes(before, after)
    assert not changed, "tracing state changed: %r" % changed
    assert tracing_mounts() == mounts_before, "debugfs/tracefs mounts changed"


def tracing_mounts():
    return sorted(point for point, fstype in mounts() if fstype in ("debugfs", "tracefs"))
