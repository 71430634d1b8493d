"""The Vagrantfile (docs/lab.md) as far as this machine can take it without
a VM: Vagrant loads and validates it. tests/fleet/test_collection.py runs its
trigger and Ansible provisioners against a lab host."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def vagrant(tmp_path, *args, **extra_env):
    found = shutil.which("vagrant")
    if not found:
        pytest.skip("vagrant is not installed (not packaged on every release, e.g. Ubuntu 24.04; "
                    "scripts/test.sh installs it where it is)")
    # Vagrant's home and data directory in tmp_path: nothing written to the checkout or ~/.vagrant.d.
    env = dict(os.environ, VAGRANT_HOME=str(tmp_path / "home"), VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"),
               VAGRANT_CWD=str(REPO), VAGRANT_CHECKPOINT_DISABLE="1", **extra_env)
    return subprocess.run([found, *args, "--no-color"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)


def test_vagrantfile_validates(tmp_path):
    proc = vagrant(tmp_path, "validate", "--ignore-provider")
    assert proc.returncode == 0, proc.stdout
    assert "Vagrantfile validated successfully." in proc.stdout
    assert not (tmp_path / "dot" / "tracekit").exists(), "validate must not build anything"
    # Vagrant's trigger runs the build script by its path.
    assert os.access(REPO / "scripts" / "build-collection.py", os.X_OK)


def test_vagrantfile_is_really_evaluated(tmp_path):
    proc = vagrant(tmp_path, "validate", "--ignore-provider", TRACEKIT_VAGRANT_MEMORY="lots")
    assert proc.returncode != 0, proc.stdout
    assert 'invalid value for Integer(): "lots"' in proc.stdout, proc.stdout

