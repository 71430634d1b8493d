"""The molecule scenario a lab user runs (molecule/default), run in full as
they would: create, check, converge, idempotence, testinfra verify, destroy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, mount_points


def test_molecule_default_scenario(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("molecule's fleet needs root (euid is %d)" % os.geteuid())
    bin_dir = Path(sys.executable).parent
    molecule = bin_dir / "molecule"
    assert molecule.exists(), "molecule is not installed next to %s (pip install -e .[test])" % sys.executable
    mounts_before = mount_points()
    # molecule looks up ansible-config and friends on PATH: the test environment's.
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ.get("PATH", "")), NO_COLOR="1",
               MOLECULE_NO_LOG="false")
    proc = subprocess.run([str(molecule), "test"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=2400)
    # The scenario's test_sequence (molecule.yml) runs check before converge,
    # then idempotence and verify; any failing step fails the command.
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert mount_points() == mounts_before
