"""doctor as an unprivileged user: what it cannot read is unknown, never a
traceback.  Runs the real command under setpriv as nobody."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import tracekit
from tracekit import doctor

NOBODY = 65534
REPO = Path(__file__).resolve().parents[2]


def as_nobody(argv, env=None):
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        pytest.skip("needs root and setpriv to switch to uid %d (euid %d, setpriv %s)"
                    % (NOBODY, os.geteuid(), setpriv))
    return subprocess.run([setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                           "--inh-caps=-all", "--bounding-set=-all"] + argv,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          cwd="/", timeout=60, env=dict({"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"},
                                                        **(env or {})))


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)  # same file, no data copied; nobody may only read it
    except OSError:
        shutil.copy2(src, dst)


def readable_copy(into):
    """A Python that uid NOBODY can run and import tracekit with, made under
    ``into`` (mode 0755): the virtual environment (hard links, or copies across
    filesystems) when tests run in one, and this tracekit package on PYTHONPATH
    (ahead of the venv's editable-install hook, which names the checkout).
    Returns (python, env)."""
    os.chmod(into, 0o755)
    python = sys.executable
    if sys.prefix != sys.base_prefix:
        venv = Path(into) / "venv"
        shutil.copytree(sys.prefix, venv, symlinks=True, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("__pycache__"))
        python = str(venv / Path(sys.executable).relative_to(sys.prefix))
    src = Path(into) / "src"
    shutil.copytree(Path(tracekit.__file__).parent, src / "tracekit", ignore=shutil.ignore_patterns("__pycache__"))
    if (REPO / "provision").is_dir() and not (src / "tracekit" / "provision").exists():
        shutil.copytree(REPO / "provision", src / "provision")
    return python, {"PYTHONPATH": str(src)}


@pytest.fixture(scope="module")
def nobody_python():
    """(python, env) for the tests' tracekit as uid NOBODY: this Python, or,
    when NOBODY cannot read the checkout or its venv (a checkout under /root,
    a 0750 home), a readable copy of both."""
    # The tracekit these tests imported, not whichever the venv's editable hook names.
    here = {"PYTHONPATH": str(Path(tracekit.__file__).parent.parent)}
    probe = as_nobody([sys.executable, "-c", "import tracekit.cli"], here)
    if probe.returncode == 0:
        yield sys.executable, here
        return
    into = tempfile.mkdtemp(prefix="tracekit-nonroot-", dir="/tmp")
    try:
        python, env = readable_copy(into)
        probe = as_nobody([python, "-c", "import tracekit.cli"], env)
        if probe.returncode != 0:
            pytest.skip("uid %d cannot import tracekit even from a readable copy (%s): %s" % (
                NOBODY, into, probe.stderr.strip().splitlines()[-1:]))
        yield python, env
    finally:
        shutil.rmtree(into)


def tracekit_as_nobody(nobody_python, *args):
    python, env = nobody_python
    return as_nobody([python, "-m", "tracekit"] + list(args), env)


@pytest.fixture(scope="module")
def nonroot_doctor(nobody_python):
    return tracekit_as_nobody(nobody_python, "doctor", "--json")


def test_a_readable_copy_serves_a_checkout_nobody_cannot_read():
    # Made even where this checkout is readable, so the copy is tested here too.
    into = tempfile.mkdtemp(prefix="tracekit-nonroot-", dir="/tmp")
    try:
        python, env = readable_copy(into)
        probe = as_nobody([python, "-c", "import tracekit.cli; print(tracekit.cli.__file__)"], env)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip() == os.path.join(into, "src", "tracekit", "cli.py")
    finally:
        shutil.rmtree(into)


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


def test_nonroot_human_output(nonroot_doctor, nobody_python):
    result = tracekit_as_nobody(nobody_python, "doctor")
    assert "Traceback" not in result.stderr
    assert result.returncode == nonroot_doctor.returncode
    assert "uid %d" % NOBODY in result.stdout


def test_nonroot_setup_of_this_machine_is_refused_in_one_line(nobody_python):
    mounts_before = open("/proc/self/mountinfo").read()
    result = tracekit_as_nobody(nobody_python, "setup", "debugfs")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tracekit: error: setting up this machine needs root (uid is %d): run `sudo tracekit setup`, "
        "or pass -i/--inventory for hosts reached over SSH" % NOBODY]
    assert open("/proc/self/mountinfo").read() == mounts_before


def test_nonroot_verify_of_this_machine_is_refused_in_one_line(nobody_python):
    result = tracekit_as_nobody(nobody_python, "verify")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "needs root" in result.stderr
