"""House rules for the roles in provision/roles, checked on the files."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tracekit.paths import provision_dir

ROLES = sorted(p.name for p in (provision_dir() / "roles").iterdir() if p.is_dir())
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("role", ROLES)
def test_every_public_variable_is_prefixed_specified_and_defaulted(role):
    root = provision_dir() / "roles" / role
    defaults = yaml.safe_load((root / "defaults/main.yml").read_text()) or {}
    specs = yaml.safe_load((root / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    assert all(name.startswith("tracekit_%s_" % role) for name in defaults), defaults
    # Every default is documented and typed in argument_specs, and nothing else is.
    assert sorted(specs) == sorted(defaults)
    assert all(spec.get("type") and spec.get("description") for spec in specs.values())


@pytest.mark.parametrize("role", ROLES)
def test_only_builtin_modules_run(role):
    root = provision_dir() / "roles" / role
    for path in (root / "tasks").glob("*.yml"):
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            modules = [k for k in task if "." in k and not k.startswith("_")]
            assert all(m.startswith("ansible.builtin.") for m in modules), (path, modules)
            assert "ignore_errors" not in task, path


def _tasks(tasks):
    for task in tasks:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key, []))


def test_ansible_lint_passes_with_the_production_profile():
    lint = Path(sys.executable).with_name("ansible-lint")
    if not lint.exists():
        pytest.fail("ansible-lint is not installed next to %s (pip install -e .[test])" % sys.executable)
    proc = subprocess.run([str(lint), "provision/roles", "molecule"], cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600,
                          env=dict(os.environ, PATH="%s:%s" % (lint.parent, os.environ.get("PATH", "")),
                                   NO_COLOR="1"))
    assert proc.returncode == 0, proc.stdout[-3000:]
