"""scripts/build-collection.py: the tracekit.tracing collection is built
without network from provision/roles as they are, carries every role with its
argument specs, and its playbooks parse once installed with ansible-galaxy.
(tests/fleet/test_collection.py runs it against the lab hosts.)"""

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from tracekit import __version__
from tracekit.agent import facts as agent_facts

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "provision" / "roles"
BUILD = REPO / "scripts" / "build-collection.py"
BIN = Path(sys.executable).parent


def run(argv, **kwargs):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=300, **kwargs)


def without_network():
    """A command prefix that runs its command in a new network namespace (only
    a loopback that is down), or None where this machine cannot make one."""
    for prefix in (["unshare", "--net"], ["unshare", "--map-root-user", "--net"]):
        if run(prefix + ["true"]).returncode == 0:
            return prefix
    return None


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    prefix = without_network()
    if prefix is None:
        pytest.skip("cannot make a network namespace here (unshare --net failed, also with a user namespace)")
    out = tmp_path_factory.mktemp("dist")
    proc = run(prefix + [sys.executable, str(BUILD), str(out)], env=dict(os.environ, PATH="%s:%s" % (
        BIN, os.environ.get("PATH", ""))))
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == out / ("tracekit-tracing-%s.tar.gz" % __version__), proc.stdout
    return path


def members(path):
    with tarfile.open(path) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}


def test_build_without_network_carries_every_role_as_it_is(artifact):
    files = members(artifact)
    info = json.loads(files["MANIFEST.json"])["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("tracekit", "tracing", __version__)
    roles = sorted(p.name for p in ROLES.iterdir() if p.is_dir())
    assert {"packages", "apt_source", "debugfs", "perf"} <= set(roles)
    for role in roles:
        assert "roles/%s/meta/argument_specs.yml" % role in files, role
        for source in (ROLES / role).rglob("*"):
            if source.is_file():
                name = "roles/" + str(source.relative_to(ROLES))
                assert files.get(name) == source.read_bytes(), "%s differs from %s" % (name, source)
    shipped_roles = {n.split("/")[1] for n in files if n.startswith("roles/")}
    assert sorted(shipped_roles) == roles
    assert yaml.safe_load(files["meta/runtime.yml"])["requires_ansible"] == ">=2.15.0"
    assert files["README.md"] == (REPO / "docs" / "collection.md").read_bytes()


def test_shipped_agent_is_tracekits_and_runs(artifact, tmp_path):
    agent = tmp_path / "tracekit-agent.pyz"
    agent.write_bytes(members(artifact)["playbooks/files/tracekit-agent.pyz"])
    with zipfile.ZipFile(agent) as archive:
        shipped = set(archive.namelist())
    assert {"__main__.py", "tracekit/hostrun.py", "tracekit/doctor.py", "tracekit/agent/checks.py"} <= shipped
    proc = run(["/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable, str(agent), "facts"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["schema"] == agent_facts.SCHEMA


def include_role_names(tasks):
    """Every include_role/import_role name in a task list, blocks included."""
    for task in tasks or []:
        for key in ("block", "rescue", "always"):
            yield from include_role_names(task.get(key))
        for module in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if module in task:
                yield task[module]["name"]


@pytest.fixture(scope="module")
def installed(artifact, tmp_path_factory):
    path = tmp_path_factory.mktemp("collections")
    proc = run([str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(path), str(artifact)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = path / "ansible_collections" / "tracekit" / "tracing"
    assert (root / "MANIFEST.json").is_file(), proc.stdout
    return path, root


def test_installed_playbooks_parse_and_every_role_reference_resolves(installed):
    path, root = installed
    roles = {p.name for p in (root / "roles").iterdir()}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_NOCOLOR="1")
    for playbook in ("tracekit.tracing.setup", "tracekit.tracing.verify"):
        proc = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook], env=env)
        assert proc.returncode == 0, playbook + proc.stdout + proc.stderr
    # The setup playbook names the collection's own roles, fully qualified.
    (play,) = yaml.safe_load((root / "playbooks" / "setup.yml").read_text())
    named = list(include_role_names(play["tasks"]))
    assert "tracekit.tracing.packages" in named and "tracekit.tracing.debugfs" in named
    assert all(n.startswith("tracekit.tracing.") and n.split(".")[-1] in roles for n in named), named
    # Inside the roles a short name is one of the collection's roles (Ansible
    # looks in the role's own collection first) or a template over component names.
    for tasks_file in (root / "roles").glob("*/tasks/*.yml"):
        for name in include_role_names(yaml.safe_load(tasks_file.read_text())):
            assert name in roles or name.startswith("{{"), "%s includes %s" % (tasks_file, name)
    # The verify play runs the agent shipped beside it.
    (play,) = yaml.safe_load((root / "playbooks" / "verify.yml").read_text())
    script = next(t for t in play["tasks"][2]["block"] if "ansible.builtin.script" in t)
    assert script["ansible.builtin.script"]["cmd"].split()[0] == "tracekit-agent.pyz"
    assert (root / "playbooks" / "files" / "tracekit-agent.pyz").is_file()


def test_unknown_check_fails_before_anything_runs(installed, tmp_path):
    path, _ = installed
    site = tmp_path / "site.yml"
    site.write_text(yaml.safe_dump([{"name": "verify", "ansible.builtin.import_playbook": "tracekit.tracing.verify",
                                     "vars": {"tracekit_verify_checks": ["uprobe", "bogus"]}}]))
    proc = run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(site)],
               env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_NOCOLOR="1"))
    assert proc.returncode == 2, proc.stdout
    assert "unknown check bogus; valid: ftrace.function" in proc.stdout, proc.stdout
    assert "TASK [Verify |" not in proc.stdout, proc.stdout
