"""`tracekit setup` across the fleet: the real CLI, real apt inside each host.

bookworm1 (Debian 12), noble1 and noble2 (Ubuntu 24.04) get debugfs, ddebs,
headers, perf, bpftrace and sysdig through `python -m tracekit setup -i
<inventory> --json`. Packages come from the distributions' mirrors, each host
downloading its own. The debug-symbol archive is a signed repository this test
builds and serves on 127.0.0.1 (the hosts share this machine's network
namespace); its key is pinned by fingerprint, and the suites are left to each
host's distribution (noble, noble-updates / bookworm-debug).

The tests run in order on one fleet: --check on fresh hosts, the real
converge, a second run that changes nothing, then one host taken away
mid-run (last: noble2 comes back fresh, not converged; the fleet fixture's
teardown checks that nothing is left behind)."""

from __future__ import annotations

import difflib
import json
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from tests.lib.aptrepo import PackageSpec, SigningKey, build_repo, serve

from .conftest import REPO

COMPONENTS = ["debugfs", "ddebs", "headers", "perf", "bpftrace", "sysdig"]
UBUNTU_COMPONENTS = ["main", "restricted", "universe", "multiverse"]
# What the ddebs role configures when tracekit_ddebs_suites is unset.
REPO_SUITES = {"noble": UBUNTU_COMPONENTS, "noble-updates": UBUNTU_COMPONENTS, "bookworm-debug": ["main"]}
PROBE = PackageSpec("tracekit-probe-dbgsym", "1.0-1")
SOURCE_STEM = "/etc/apt/sources.list.d/tracekit-ddebs"
KEYRING = "/etc/apt/keyrings/tracekit-ddebs.asc"
FACTS = "/etc/ansible/facts.d"
MOUNTS = [("debugfs", "/sys/kernel/debug"), ("tracefs", "/sys/kernel/tracing")]
RUN_TIMEOUT = 1800


@dataclass
class Repo:
    url: str
    key: str
    fingerprint: str
    requests: list


@pytest.fixture(scope="module")
def ddebs_repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("ddebs")
    with SigningKey.generate(base / "key") as key:
        for suite, components in REPO_SUITES.items():
            for component in components:
                build_repo(base / "repo", key, suite, component, [PROBE] if component == "main" else ())
    with serve(base / "repo") as server:
        yield Repo(server.url, key.armored_public, key.fingerprint, server.requests)


def setup_argv(fleet, repo, *extra):
    # --no-verify: these tests are about setup; verify across the fleet has its own test.
    argv = [sys.executable, "-m", "tracekit", "setup", *COMPONENTS, "-i", str(fleet.inventory), "--json", "--no-verify",
            "--var", "tracekit_ddebs_method=archive",
            "--var", f"tracekit_ddebs_url={repo.url}",
            "--var", f"tracekit_ddebs_key={json.dumps(repo.key)}",
            "--var", f"tracekit_ddebs_key_fingerprints={json.dumps([repo.fingerprint])}"]
    return argv + list(extra)


def run_setup(fleet, repo, *extra):
    """(exit code, parsed --json summary, stderr, seconds)"""
    t0 = time.monotonic()
    proc = subprocess.run(setup_argv(fleet, repo, *extra), cwd=REPO, env=fleet.env(), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - t0
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"no JSON on stdout (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    print(f"tracekit setup {' '.join(extra)}: rc {proc.returncode} in {seconds:.0f} s")
    return proc.returncode, result, proc.stderr, seconds


def ssh(fleet, host, script, check=True):
    """Run a shell script on a host as root (stdin-fed, so no quoting)."""
    argv = ["ssh", "-F", "/dev/null", "-i", str(fleet.state / "id_ed25519"), "-p", str(fleet.ports[host]),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={fleet.state / 'known_hosts'}", "-o", "ConnectTimeout=5",
            "root@127.0.0.1", "sh", "-s"]
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"{host}: rc {proc.returncode}\n{script}\n{proc.stdout}\n{proc.stderr}"
    return proc


def on_each(fleet, script, hosts=None):
    return {h: ssh(fleet, h, script).stdout for h in hosts or fleet.names}


SNAPSHOT = r"""
section() { echo "@@@ $1"; }
section sources
for f in /etc/apt/sources.list.d/* /etc/apt/keyrings/*; do
    [ -e "$f" ] || continue
    echo "== $f"; cat "$f"
done
section packages
dpkg-query -W -f '${Package} ${Version} ${Status}\n'
section fstab
cat /etc/fstab 2>/dev/null
section mounts
cat /proc/self/mountinfo
"""


def snapshot(fleet):
    """Per host: {section: text} of what --check must not change."""
    result = {}
    for host, out in on_each(fleet, SNAPSHOT).items():
        parts = re.split(r"^@@@ (\w+)\n", out, flags=re.M)[1:]
        result[host] = dict(zip(parts[::2], parts[1::2]))
        assert set(result[host]) == {"sources", "packages", "fstab", "mounts"}, out
    return result


def os_release(fleet):
    out = on_each(fleet, ". /etc/os-release; echo $ID $VERSION_CODENAME")
    return {h: tuple(v.split()) for h, v in out.items()}


def expected_archive(distro, codename):
    """The suites and components the ddebs role must use when none are given."""
    if distro == "ubuntu":
        return [codename, codename + "-updates"], UBUNTU_COMPONENTS
    return [codename + "-debug"], ["main"]


def assert_host_summary(name, host):
    assert host["failures"] == [], f"{name}: {host['failures']}"
    assert host["unreachable"] is False, name
    assert set(host["components"]) >= set(COMPONENTS) | {"packages"}, f"{name}: {sorted(host['components'])}"


# --------------------------------------------------------------------------- a. --check


def test_check_on_fresh_hosts_changes_nothing(fleet, ddebs_repo):
    fresh = on_each(fleet, f"ls {SOURCE_STEM}.* {KEYRING} {FACTS} 2>/dev/null; true")
    assert all(not out.strip() for out in fresh.values()), f"hosts are not fresh: {fresh}"
    before = snapshot(fleet)
    ddebs_repo.requests.clear()
    rc, result, stderr, _ = run_setup(fleet, ddebs_repo, "--check")
    after = snapshot(fleet)

    assert rc == 0, f"{json.dumps(result, indent=1)}\n{stderr[-5000:]}"
    assert set(result["hosts"]) == set(fleet.names)
    for name, host in result["hosts"].items():
        assert_host_summary(name, host)
        assert host["changed"] > 0, f"{name}: --check on a fresh host reports nothing to change"
    for name in fleet.names:
        for section, text in before[name].items():
            diff = "".join(difflib.unified_diff(text.splitlines(True), after[name][section].splitlines(True),
                                                "before", "after"))
            assert not diff, f"{name}: --check changed {section}:\n{diff}"
    # The role proved the repository (its scratch apt-get update ran in check mode).
    fetched = {path for path in ddebs_repo.requests if path.endswith("/InRelease")}
    assert fetched >= {f"/dists/{s}/InRelease" for s in REPO_SUITES}, fetched


# --------------------------------------------------------------------------- b. converge


@pytest.fixture(scope="module")
def converged(fleet, ddebs_repo):
    return run_setup(fleet, ddebs_repo)


def test_converge_sets_up_every_component_on_every_host(converged, fleet):
    rc, result, stderr, _ = converged
    assert rc == 0, f"{json.dumps(result, indent=1)}\n{stderr[-5000:]}"
    assert result["status"] == "successful"
    assert set(result["hosts"]) == set(fleet.names)
    for name, host in result["hosts"].items():
        assert_host_summary(name, host)
    facts = on_each(fleet, f"cd {FACTS} && for f in tracekit_*.fact; do echo \"@@@ $f\"; cat \"$f\"; done")
    for name, out in facts.items():
        parts = re.split(r"^@@@ tracekit_(\w+)\.fact\n", out, flags=re.M)[1:]
        recorded = dict(zip(parts[::2], parts[1::2]))
        assert sorted(recorded) == sorted(COMPONENTS), f"{name}: facts for {sorted(recorded)}"
        for component, text in recorded.items():
            assert json.loads(text)["component"] == component, f"{name}: {text}"


def host_facts(fleet, host, component):
    return json.loads(ssh(fleet, host, f"cat {FACTS}/tracekit_{component}.fact").stdout)


def installed(fleet, host):
    out = ssh(fleet, host, "dpkg-query -W -f '${Package} ${Status}\\n'").stdout
    return {line.split()[0] for line in out.splitlines() if line.endswith(" install ok installed")}


def test_packages_are_installed(converged, fleet):
    releases = os_release(fleet)
    for name in fleet.names:
        have = installed(fleet, name)
        perf = host_facts(fleet, name, "perf")
        if releases[name][0] == "debian":
            assert "linux-perf" in perf["packages"], perf
        else:
            assert any(p.startswith("linux-tools-") and p != "linux-tools-common" for p in perf["packages"]), perf
        wanted = set(perf["packages"]) | {"trace-cmd", "bpftrace", "sysdig"}
        assert wanted - have == set(), f"{name}: not installed: {sorted(wanted - have)}"
        # The perf the role recorded is the one that runs.
        ran = ssh(fleet, name, f"{perf['perf']} --version").stdout.strip()
        assert ran and ran == perf["version"], (name, ran, perf)


def test_debug_symbol_archive_is_a_signed_source_in_the_hosts_own_format(converged, fleet, ddebs_repo):
    releases = os_release(fleet)
    for name in fleet.names:
        distro, codename = releases[name]
        suites, components = expected_archive(distro, codename)
        own_deb822 = ssh(fleet, name, f"test -e /etc/apt/sources.list.d/{distro}.sources", check=False).returncode == 0
        present = ssh(fleet, name, f"ls {SOURCE_STEM}.*").stdout.split()
        if own_deb822:
            assert present == [SOURCE_STEM + ".sources"], (name, present)
            text = ssh(fleet, name, f"cat {SOURCE_STEM}.sources").stdout
            for line in (f"URIs: {ddebs_repo.url}", f"Suites: {' '.join(suites)}",
                         f"Components: {' '.join(components)}", f"Signed-By: {KEYRING}"):
                assert line in text.splitlines(), f"{name}: no {line!r} in\n{text}"
        else:
            assert present == [SOURCE_STEM + ".list"], (name, present)
            text = ssh(fleet, name, f"cat {SOURCE_STEM}.list").stdout
            for suite in suites:
                line = f"deb [signed-by={KEYRING}] {ddebs_repo.url} {suite} {' '.join(components)}"
                assert line in text.splitlines(), f"{name}: no {line!r} in\n{text}"
        assert ssh(fleet, name, f"cat {KEYRING}").stdout == ddebs_repo.key, f"{name}: {KEYRING} is not the test key"
        policy = ssh(fleet, name, f"apt-cache policy {PROBE.name}").stdout
        assert f"Candidate: {PROBE.version}" in policy, f"{name}:\n{policy}"
        for suite in suites:
            assert f"{ddebs_repo.url.rstrip('/')} {suite}/main amd64 Packages" in policy, f"{name}:\n{policy}"
        fact = host_facts(fleet, name, "ddebs")
        assert fact["archive"] == {"url": ddebs_repo.url, "suites": suites, "components": components}, fact


def test_debugfs_and_tracefs_are_mounted_root_only_and_persisted(converged, fleet):
    for name in fleet.names:
        fstab = ssh(fleet, name, "cat /etc/fstab").stdout.splitlines()
        for fstype, path in MOUNTS:
            seen = ssh(fleet, name, f"findmnt -n -o FSTYPE --mountpoint {path}; stat -c %a {path}").stdout.split()
            assert seen == [fstype, "700"], (name, path, seen)
            line = f"{fstype} {path} {fstype} nosuid,nodev,noexec,mode=700 0 0"
            assert line in fstab, f"{name}: no {line!r} in /etc/fstab: {fstab}"


def test_headers_report_none_for_this_kernel_and_install_none(converged, fleet):
    _, result, _, _ = converged
    release = platform.release()  # the hosts run this machine's kernel
    want = (f"no kernel headers exist for {release}: no package linux-headers-{release} in the configured "
            f"apt sources and no /lib/modules/{release}/build")
    for name in fleet.names:
        notices = [n["message"] for n in result["hosts"][name]["notices"] if n["component"] == "headers"]
        assert len(notices) == 1 and notices[0].startswith(want), (name, notices)
        headers = sorted(p for p in installed(fleet, name) if p.startswith("linux-headers-"))
        assert headers == [], (name, headers)


def major_minor(version):
    match = re.match(r"(?:\d+:)?(\d+)\.(\d+)", version)
    return tuple(int(x) for x in match.groups()) if match else (0, 0)


def test_sysdig_driver_follows_the_hosts_own_facts(converged, fleet):
    kernel_ok = major_minor(platform.release()) >= (5, 8)
    for name in fleet.names:
        # The build decides, not the version: Ubuntu's 0.36.0+repack has no --modern-bpf.
        probe = ssh(fleet, name, "dpkg-query -W -f '${Version}\\n' sysdig; "
                                 "sysdig --help | grep -q -- --modern-bpf && echo yes || echo no; "
                                 "for f in /sys/kernel/btf/vmlinux /proc/modules /lib/modules/$(uname -r)/build; "
                                 "do test -e $f && echo yes || echo no; done").stdout.split()
        version, built_with_modern, btf, modules, build = probe[0], *(p == "yes" for p in probe[1:])
        if built_with_modern and major_minor(version) >= (0, 31) and btf and kernel_ok:
            want = "modern_ebpf"
        elif modules and build:
            want = "kmod"
        else:
            want = "none"
        fact = host_facts(fleet, name, "sysdig")
        assert fact["driver"] == want, f"{name}: sysdig {version}, btf={btf}, modules={modules}, build={build}: {fact}"


# --------------------------------------------------------------------------- c. idempotence


def test_second_run_changes_nothing(converged, fleet, ddebs_repo):
    rc, result, stderr, _ = run_setup(fleet, ddebs_repo)
    assert rc == 0, f"{json.dumps(result, indent=1)}\n{stderr[-5000:]}"
    for name, host in result["hosts"].items():
        assert_host_summary(name, host)
        changed = {c: n["changed"] for c, n in host["components"].items() if n["changed"]}
        assert changed == {}, f"{name}: second run changed {changed}"


def test_a_relative_inventory_path_is_read_from_the_callers_directory(converged, fleet):
    """`-i inventory.yml` beside it: ansible-playbook runs in ansible-runner's
    private data directory, where the relative path used to name no file and
    was taken for a host name (every host "unreachable")."""
    argv = [sys.executable, "-m", "tracekit", "setup", "debugfs", "--check", "--no-verify", "--json",
            "-i", fleet.inventory.name]
    proc = subprocess.run(argv, cwd=fleet.state, env=fleet.env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout)
    assert set(result["hosts"]) == set(fleet.names), result["hosts"].keys()
    for name, host in result["hosts"].items():
        assert host["failures"] == [] and host["unreachable"] is False, f"{name}: {host}"
        assert host["changed"] == 0, f"{name}: --check on a converged host would change {host['components']}"


# --------------------------------------------------------------------------- d. a host lost mid-run


def test_verify_runs_on_every_host_and_aggregates(converged, fleet, tmp_path):
    """tracekit verify across the converged fleet: every host runs the same
    checks (shipped in the zip application) and its results come back, with
    skips carrying the host's own doctor reasons, and artifacts per host."""
    from tracekit.agent import checks

    proc = subprocess.run([sys.executable, "-m", "tracekit", "verify", "-i", str(fleet.inventory), "--json",
                           "--junit", str(tmp_path / "junit.xml"), "--artifacts", str(tmp_path / "artifacts")],
                          cwd=REPO, env=fleet.env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    document = json.loads(proc.stdout)
    assert sorted(document["hosts"]) == sorted(fleet.names), proc.stderr[-2000:]
    for host, doc in document["hosts"].items():
        results = {r["id"]: r for r in doc["results"]}
        assert list(results) == [c.id for c in checks.CHECKS], host
        # Every check passes unless the host's own doctor rules its method out.
        for check in checks.CHECKS:
            blocked = [m for m in check.methods if doc["doctor"][m]["status"] in ("unavailable", "missing")]
            expected = "skipped" if blocked else "passed"
            assert results[check.id]["status"] == expected, (host, results[check.id])
        assert doc["state_changed"] == {}, host
        if results["perf.flamegraph"]["status"] == "passed":
            assert (tmp_path / "artifacts" / host / "flamegraph.svg").exists()
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_host_lost_mid_run_is_reported_and_the_others_finish(converged, fleet, ddebs_repo):
    victim = "noble2"
    others = [n for n in fleet.names if n != victim]
    proc = subprocess.Popen(setup_argv(fleet, ddebs_repo), cwd=REPO, env=fleet.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, lines, started = [], [], False
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    try:
        # Wait for the first result for the victim inside a component's role:
        # facts were gathered and the play is working on the hosts.
        in_component = False
        for line in proc.stderr:
            lines.append(line)
            if re.match(r"(\w+): ", line) and not line.startswith("Gathering"):
                in_component = True
            if in_component and re.match(rf"\s+(ok|changed|skipped)\s+{victim}$", line):
                started = True
                break
        assert started, "the run ended before working on %s:\n%s" % (victim, "".join(lines[-40:]))
        fleet.stop(victim)
        print(f"stopped {victim} after: {''.join(lines[-2:])!r}")
        lines += proc.stderr.readlines()
        proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    fleet.start(victim)  # a fresh noble2 again, for whatever runs next
    result = json.loads(out[0])
    assert proc.returncode != 0, result
    lost = result["hosts"][victim]
    assert lost["unreachable"] is True, lost
    assert lost["failures"] and all(f["message"] for f in lost["failures"]), lost
    print(f"{victim}: {lost['failures']}")
    for name in others:
        assert_host_summary(name, result["hosts"][name])
