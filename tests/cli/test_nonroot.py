"""doctor as an unprivileged user: what it cannot read is unknown, never a
traceback.  Runs the real command under setpriv as nobody."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tracekit import doctor

NOBODY = 65534


def as_nobody(argv):
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        pytest.skip("needs root and setpriv to switch to uid %d (euid %d, setpriv %s)"
                    % (NOBODY, os.geteuid(), setpriv))
    return subprocess.run([setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                           "--inh-caps=-all", "--bounding-set=-all"] + argv,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          cwd="/", timeout=60, env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"})


@pytest.fixture(scope="module")
def nonroot_doctor():
    probe = as_nobody([sys.executable, "-c", "import tracekit.cli"])
    if probe.returncode != 0:
        pytest.skip("uid %d cannot import tracekit from %s: %s" % (
            NOBODY, sys.executable, probe.stderr.strip().splitlines()[-1:]))
    return as_nobody([sys.executable, "-m", "tracekit", "doctor", "--json"])


def test_nonroot_reports_unknown_instead_of_failing(nonroot_doctor):
    result = nonroot_doctor
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1)
    document = json.loads(result.stdout)
    facts = document["facts"]
    assert facts["process"]["uid"] == NOBODY
    assert not any(facts["process"]["capabilities"].values())
    methods = {m["id"]: m for m in document["methods"]}
    tracefs_readable = facts["tracefs"].get("readable")
    if not tracefs_readable:
        # tracefs is root-only (mode 0700) on Debian and Ubuntu.
        assert methods["uprobe"]["status"] in (doctor.UNKNOWN, doctor.UNAVAILABLE)
        assert methods["uprobe"]["status"] != doctor.READY
    assert methods["bpftrace.uprobe"]["status"] != doctor.READY or facts["kernel_probes"]["bpf_prog_load"] == "ok"


def test_nonroot_human_output(nonroot_doctor):
    result = as_nobody([sys.executable, "-m", "tracekit", "doctor"])
    assert "Traceback" not in result.stderr
    assert result.returncode == nonroot_doctor.returncode
    assert "uid %d" % NOBODY in result.stdout


def test_nonroot_setup_of_this_machine_is_refused_in_one_line():
    mounts_before = open("/proc/self/mountinfo").read()
    result = as_nobody([sys.executable, "-m", "tracekit", "setup", "debugfs"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tracekit: error: setting up this machine needs root (uid is %d): run `sudo tracekit setup`, "
        "or pass -i/--inventory for hosts reached over SSH" % NOBODY]
    assert open("/proc/self/mountinfo").read() == mounts_before


def test_nonroot_verify_of_this_machine_is_refused_in_one_line():
    result = as_nobody([sys.executable, "-m", "tracekit", "verify"])
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "needs root" in result.stderr
