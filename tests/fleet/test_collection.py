"""The tracekit.tracing collection on the fleet, used as a fleet would use it.

scripts/build-collection.py builds it from this checkout, `ansible-galaxy
collection install` puts it in a temporary collections path, and plain
ansible-playbook runs the playbooks of docs/collection.md as they are written
there against the lab hosts: the fleet playbook (the collection's setup and
verify playbooks) on all three, the roles-in-your-own-play example on a fresh
noble2. The ddebs role uses the archive method with the signed repository
served on 127.0.0.1, so the roles' own references (packages, apt_source) are
resolved inside the collection. Then the Vagrantfile provisions noble1 through
Vagrant itself, with a stand-in provider for the VM this machine cannot boot
(tests/fleet/vagrant_lab_provider.rb says why).

At the end every host is restarted fresh: the other fleet modules start from
fresh hosts."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tracekit import setup
from tracekit.agent import checks

from .conftest import REPO
# The signed debug-symbol repository on 127.0.0.1 that `tracekit setup`'s fleet
# tests use (a module-scoped fixture: this module gets its own).
from .test_setup_fleet import KEYRING, SOURCE_STEM, ddebs_repo, on_each, ssh  # noqa: F401

BIN = Path(sys.executable).parent
DOCS = REPO / "docs" / "collection.md"
RUN_TIMEOUT = 2400


def docs_playbooks():
    """The playbooks in docs/collection.md (YAML blocks that are plays), in order."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOCS.read_text(), flags=re.S | re.M)
    plays = [yaml.safe_load(b) for b in blocks]
    return [b for b, p in zip(blocks, plays) if isinstance(p, list)]


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collection")
    build = subprocess.run([sys.executable, str(REPO / "scripts" / "build-collection.py"), str(tmp / "dist")],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    install = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-p", str(tmp / "collections"),
                              build.stdout.strip()], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (tmp / "collections/ansible_collections/tracekit/tracing/MANIFEST.json").is_file(), install.stdout
    return tmp / "collections"


@pytest.fixture(scope="module")
def lab(fleet):
    yield fleet
    for name in fleet.names:  # fresh hosts for whatever runs next
        fleet.stop(name)
        fleet.start(name)


def playbook(lab, collections_path, project, *inventories):
    """ansible-playbook site.yml in ``project`` with the fleet's inventory and
    ``inventories``; returns (rc, output, seconds)."""
    argv = [str(BIN / "ansible-playbook"), "-i", str(lab.inventory)]
    for inventory in inventories:
        argv += ["-i", str(inventory)]
    env = dict(lab.env(), ANSIBLE_COLLECTIONS_PATH=str(collections_path))
    t0 = time.monotonic()
    proc = subprocess.run(argv + ["site.yml"], cwd=project, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT)
    return proc.returncode, proc.stdout, time.monotonic() - t0


def recap(output):
    """{host: {ok: n, changed: n, ...}} from every PLAY RECAP, summed."""
    totals = {}
    for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", output, flags=re.M):
        counts = totals.setdefault(host, {})
        for key, value in re.findall(r"(\w+)=(\d+)", fields):
            counts[key] = counts.get(key, 0) + int(value)
    return totals


def facts_files(lab, hosts):
    out = on_each(lab, "ls /etc/ansible/facts.d/tracekit_*.fact 2>/dev/null; true", hosts)
    return {h: sorted(re.findall(r"tracekit_(\w+)\.fact", text)) for h, text in out.items()}


def assert_verified(host, document):
    """Every check passed unless the host's own doctor rules its method out."""
    results = {r["id"]: r for r in document["results"]}
    assert list(results) == [c.id for c in checks.CHECKS], host
    for check in checks.CHECKS:
        blocked = [m for m in check.methods if document["doctor"][m]["status"] in ("unavailable", "missing")]
        assert results[check.id]["status"] == ("skipped" if blocked else "passed"), (host, results[check.id])
    assert document["state_changed"] == {} and document["exit_code"] == 0, host
    return results


def test_fleet_playbook_from_the_docs_sets_up_and_verifies_every_host(lab, collections_path, ddebs_repo, tmp_path):
    site = docs_playbooks()[0]
    assert "tracekit.tracing.setup" in site and "tracekit.tracing.verify" in site, site
    project = tmp_path / "project"
    project.mkdir()
    (project / "site.yml").write_text(site)
    # The fleet's own inventory: its `tracing` group and the role variables for
    # it, as a fleet would keep them in group_vars.
    (project / "tracing.yml").write_text(yaml.safe_dump({"tracing": {
        "children": {"debian": {}, "ubuntu": {}},
        "vars": {"tracekit_ddebs_method": "archive", "tracekit_ddebs_url": ddebs_repo.url,
                 "tracekit_ddebs_key": ddebs_repo.key, "tracekit_ddebs_key_fingerprints": [ddebs_repo.fingerprint]}}}))
    rc, output, seconds = playbook(lab, collections_path, project, project / "tracing.yml")
    print(f"docs fleet playbook on {len(lab.names)} hosts: rc {rc} in {seconds:.0f} s")
    assert rc == 0, output[-8000:]
    totals = recap(output)
    assert sorted(totals) == sorted(lab.names), output[-3000:]
    for host, counts in totals.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts)
    # Every default component ran from the collection and recorded itself.
    components = setup.select_components([])
    for host, recorded in facts_files(lab, lab.names).items():
        assert recorded == sorted(components), (host, recorded)
    # apt_source, included by its short name from inside the collection's ddebs role.
    for host, text in on_each(lab, f"cat {SOURCE_STEM}.* {KEYRING}").items():
        assert ddebs_repo.url in text and ddebs_repo.key.strip() in text, (host, text[:500])
    # Each host's verify result and artifacts came back where the playbook said.
    for host in lab.names:
        kept = project / "tracekit-verify" / host
        results = assert_verified(host, json.loads((kept / "verify.json").read_text()))
        if results["perf.flamegraph"]["status"] == "passed":
            assert (kept / "flamegraph.svg").read_text().lstrip().startswith("<?xml"), host
    # Nothing of the verify run stays on the hosts.
    left = on_each(lab, "ls -d /tmp/tracekit-verify-* 2>/dev/null; true")
    assert all(not text.strip() for text in left.values()), left


def vagrant_provision(lab, host, tmp_path):
    """`vagrant provision` of the repository's Vagrantfile against ``host``;
    returns (output, {play: recap counts}, Vagrant's data directory)."""
    vagrant = shutil.which("vagrant")
    assert vagrant, "vagrant is not installed (scripts/test.sh installs it)"
    home, dot = tmp_path / "vagrant-home", tmp_path / "dot"
    home.mkdir(exist_ok=True)
    (home / "Vagrantfile").write_text('require "%s"\n' % (Path(__file__).parent / "vagrant_lab_provider.rb"))
    env = dict(os.environ, VAGRANT_HOME=str(home), VAGRANT_DOTFILE_PATH=str(dot), VAGRANT_CWD=str(REPO),
               VAGRANT_DEFAULT_PROVIDER="tracekit_lab", VAGRANT_CHECKPOINT_DISABLE="1", ANSIBLE_NOCOLOR="1",
               TRACEKIT_LAB_PORT=str(lab.ports[host]), TRACEKIT_LAB_KEY=str(lab.state / "id_ed25519"),
               # The trigger's script and the provisioners run the test environment's python and Ansible.
               PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
    t0 = time.monotonic()
    proc = subprocess.run([vagrant, "provision", "--no-color"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT)
    print(f"vagrant provision ({host}): rc {proc.returncode} in {time.monotonic() - t0:.0f} s")
    assert proc.returncode == 0, proc.stdout[-8000:]
    out = proc.stdout
    assert "Running trigger: tracekit collection" in out and "installed tracekit.tracing in" in out, out[:3000]
    plays = re.findall(r"^PLAY \[(tracekit \w+)", out, flags=re.M)
    recaps = re.findall(r"^default\s+: (ok=.*)$", out, flags=re.M)
    assert plays == ["tracekit setup", "tracekit verify"] and len(recaps) == 2, out[-3000:]
    counts = {play: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", r)} for play, r in zip(plays, recaps)}
    for play, c in counts.items():
        assert c["failed"] == 0 and c["unreachable"] == 0, (play, c)
    return out, counts, dot


# A marker, not a skip in the test: the lab fixture would bring hosts up first.
@pytest.mark.skipif(shutil.which("vagrant") is None,
                    reason="vagrant is not installed (not packaged on every release, e.g. Ubuntu 24.04; "
                    "scripts/test.sh installs it where it is)")
def test_vagrantfile_sets_up_and_verifies_a_lab_host(lab, tmp_path):
    """`vagrant provision` with the repository's Vagrantfile: its trigger builds
    and installs the collection, its provisioners run the setup and verify
    playbooks against a fresh noble1; a second provision changes nothing."""
    lab.stop("noble1")
    lab.start("noble1")  # fresh again
    repo_dotfile = (REPO / ".vagrant").exists()
    _, counts, dot = vagrant_provision(lab, "noble1", tmp_path)
    assert counts["tracekit setup"]["changed"] > 0, counts
    inventory = (dot / "provisioners/ansible/inventory/vagrant_ansible_inventory").read_text()
    assert f"ansible_port={lab.ports['noble1']}" in inventory, inventory
    assert facts_files(lab, ["noble1"]) == {"noble1": sorted(setup.select_components([]))}
    assert_verified("noble1", json.loads((dot / "tracekit/verify/default/verify.json").read_text()))
    _, counts, _ = vagrant_provision(lab, "noble1", tmp_path)
    assert counts["tracekit setup"]["changed"] == 0, f"a second provision changed: {counts}"
    assert (REPO / ".vagrant").exists() == repo_dotfile, "vagrant wrote into the checkout"


def test_roles_in_your_own_play_from_the_docs_on_a_fresh_host(lab, collections_path, tmp_path):
    own = docs_playbooks()[1]
    assert "tracekit.tracing.packages" in own, own
    lab.stop("noble2")
    lab.start("noble2")  # fresh again
    assert facts_files(lab, ["noble2"]) == {"noble2": []}
    project = tmp_path / "project"
    project.mkdir()
    (project / "site.yml").write_text(own)
    (project / "web.yml").write_text(yaml.safe_dump({"web": {"hosts": {"noble2": {}}}}))
    rc, output, seconds = playbook(lab, collections_path, project, project / "web.yml")
    print(f"docs role playbook on a fresh noble2: rc {rc} in {seconds:.0f} s")
    assert rc == 0, output[-8000:]
    assert sorted(recap(output)) == ["noble2"], output[-3000:]
    # Only the chosen components, and the perf the role recorded is the one that runs.
    assert facts_files(lab, ["noble2"]) == {"noble2": ["bpftrace", "debugfs", "perf"]}
    perf = json.loads(ssh(lab, "noble2", "cat /etc/ansible/facts.d/tracekit_perf.fact").stdout)
    assert ssh(lab, "noble2", f"{perf['perf']} --version").stdout.strip() == perf["version"], perf
    assert ssh(lab, "noble2", "bpftrace --version").returncode == 0
