"""Verify the converged fleet (molecule's testinfra verifier): every component's
packages, the debug-symbol archive as a signed apt source in the host's own
format, debugfs/tracefs mounted root-only and kept in /etc/fstab, each
role's local facts file, and `tracekit verify` across all the hosts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MOUNTS = [("debugfs", "/sys/kernel/debug"), ("tracefs", "/sys/kernel/tracing")]
COMPONENTS = ["debugfs", "ddebs", "headers", "perf", "bpftrace", "sysdig"]
FACTS = "/etc/ansible/facts.d"
SOURCE_STEM = "/etc/apt/sources.list.d/tracekit-ddebs"
KEYRING = "/etc/apt/keyrings/tracekit-ddebs.asc"
PROBE = "tracekit-probe-dbgsym"
# What create.yml serves (tests/lib/aptrepo.py serve writes these files).
APTREPO = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "aptrepo"
# The inventory lab/fleet.py wrote for the hosts create.yml started.
FLEET_INVENTORY = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "fleet" / "inventory.yml"


@pytest.fixture(scope="module")
def aptrepo():
    if not (APTREPO / "url").is_file():
        pytest.fail(f"no {APTREPO}/url: create.yml serves the debug-symbol repository")
    return {name: (APTREPO / name).read_text().strip() for name in ("url", "fingerprint", "signing-key.asc")}


@pytest.fixture(scope="module")
def release(host):
    info = host.system_info
    return info.distribution, info.codename


@pytest.fixture(scope="module")
def archive(release):
    """The suites and components the ddebs role uses when none are given."""
    distro, codename = release
    if distro == "ubuntu":
        return [codename, codename + "-updates"], ["main", "restricted", "universe", "multiverse"]
    return [codename + "-debug"], ["main"]


def fact(host, component):
    path = f"{FACTS}/tracekit_{component}.fact"
    f = host.file(path)
    assert f.exists, f"{path} missing; {FACTS} has: {host.run('ls -l %s', FACTS).stdout}"
    return json.loads(f.content_string)


def dpkg_diagnostics(host, names):
    return host.run("dpkg-query -W -f '${Package} ${Status}\\n' %s", " ".join(names)).stdout


@pytest.mark.parametrize("component", COMPONENTS)
def test_local_fact(host, component):
    recorded = fact(host, component)
    assert recorded["component"] == component, recorded


def test_packages_installed(host, release):
    perf = fact(host, "perf")
    if release[0] == "debian":
        assert "linux-perf" in perf["packages"], perf
    else:
        assert any(p.startswith("linux-tools-") and p != "linux-tools-common" for p in perf["packages"]), perf
    wanted = sorted(set(perf["packages"]) | {"trace-cmd", "bpftrace", "sysdig"})
    missing = [name for name in wanted if not host.package(name).is_installed]
    assert missing == [], f"not installed: {missing}\n{dpkg_diagnostics(host, wanted)}"
    ran = host.run("%s --version", perf["perf"])
    assert ran.rc == 0 and ran.stdout.strip() == perf["version"], f"{perf}: {ran.stdout} {ran.stderr}"


def test_no_headers_for_a_kernel_that_has_none(host):
    headers = fact(host, "headers")
    installed = host.run("dpkg-query -W -f '${Package} ${Status}\\n' 'linux-headers-*'").stdout
    if headers["unavailable"]:
        assert headers["packages"] == [] and " installed" not in installed, f"{headers}\n{installed}"
    else:
        assert host.package(f"linux-headers-{headers['kernel']}").is_installed \
            or host.file(f"/lib/modules/{headers['kernel']}/build").exists, f"{headers}\n{installed}"


def test_sysdig_driver_recorded(host):
    recorded = fact(host, "sysdig")
    assert recorded["driver"] in ("modern_ebpf", "kmod", "none"), recorded
    assert recorded["reason"], recorded


def test_debug_symbol_source(host, release, archive, aptrepo):
    distro, _ = release
    suites, components = archive
    listing = host.run("ls -l /etc/apt/sources.list.d/").stdout
    deb822 = host.file(f"/etc/apt/sources.list.d/{distro}.sources").exists
    source = host.file(SOURCE_STEM + (".sources" if deb822 else ".list"))
    other = host.file(SOURCE_STEM + (".list" if deb822 else ".sources"))
    assert source.exists and not other.exists, f"expected {source.path} only:\n{listing}"
    lines = source.content_string.splitlines()
    if deb822:
        want = [f"URIs: {aptrepo['url']}", f"Suites: {' '.join(suites)}",
                f"Components: {' '.join(components)}", f"Signed-By: {KEYRING}"]
    else:
        want = [f"deb [signed-by={KEYRING}] {aptrepo['url']} {suite} {' '.join(components)}" for suite in suites]
    assert [w for w in want if w not in lines] == [], source.content_string


def test_debug_symbol_key(host, aptrepo):
    keyring = host.file(KEYRING)
    assert keyring.exists and keyring.mode == 0o644, host.run("ls -l /etc/apt/keyrings").stdout
    assert keyring.content_string.strip() == aptrepo["signing-key.asc"]
    shown = host.run("gpg --batch --show-keys --with-colons %s", KEYRING).stdout
    assert f"fpr:::::::::{aptrepo['fingerprint']}:" in shown, shown


def test_apt_sees_the_archive(host, archive, aptrepo):
    policy = host.run("apt-cache policy %s", PROBE).stdout
    assert "Candidate: 1.0-1" in policy, policy
    for suite in archive[0]:
        assert f"{aptrepo['url'].rstrip('/')} {suite}/main amd64 Packages" in policy, policy


@pytest.mark.parametrize("fstype,path", MOUNTS)
def test_mounted_root_only(host, fstype, path):
    found = host.run("findmnt -n -o FSTYPE,OPTIONS --mountpoint %s", path)
    assert found.rc == 0, f"{path} is not mounted: {found.stderr}\n{host.run('findmnt -rn').stdout}"
    seen_type, options = found.stdout.split()
    assert seen_type == fstype, found.stdout
    assert {"nosuid", "nodev", "noexec"} <= set(options.split(",")), found.stdout
    assert host.file(path).mode == 0o700, f"{path} mode {oct(host.file(path).mode)}"


@pytest.mark.parametrize("fstype,path", MOUNTS)
def test_fstab_line(host, fstype, path):
    fstab = host.file("/etc/fstab").content_string
    want = f"{fstype} {path} {fstype} nosuid,nodev,noexec,mode=700 0 0"
    assert want in fstab.splitlines(), f"no {want!r} in /etc/fstab:\n{fstab}"


@pytest.fixture(scope="session")
def verify_report(tmp_path_factory):
    """`tracekit verify` once across every host of the scenario, as a lab user
    would run it after converge (results aggregated per host)."""
    if not FLEET_INVENTORY.is_file():
        pytest.fail(f"no {FLEET_INVENTORY}: create.yml starts the hosts with lab/fleet.py")
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path_factory.mktemp("ansible-home")), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([sys.executable, "-m", "tracekit", "verify", "-i", str(FLEET_INVENTORY), "--json",
                           "--artifacts", str(tmp_path_factory.mktemp("artifacts"))],
                          capture_output=True, text=True, timeout=900, env=env)
    try:
        document = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"tracekit verify printed no JSON (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return proc.returncode, document


def test_tracekit_verify_on_this_host(host, verify_report):
    """Every check passes, or is skipped because this host's doctor says its
    method cannot work here; nothing is left behind in tracefs."""
    from tracekit.agent import checks

    rc, document = verify_report
    name = host.backend.get_hostname()
    assert name in document["hosts"], f"{name} missing from verify's report: {sorted(document['hosts'])}"
    report = document["hosts"][name]
    results = {r["id"]: r for r in report["results"]}
    assert list(results) == [c.id for c in checks.CHECKS]
    for check in checks.CHECKS:
        blocked = [m for m in check.methods if report["doctor"][m]["status"] in ("unavailable", "missing")]
        expected = "skipped" if blocked else "passed"
        assert results[check.id]["status"] == expected, (check.id, results[check.id])
    assert report["state_changed"] == {}
    assert rc == 0
