"""A real `tracekit setup` of this machine's package components: real apt,
real packages installed, every role's record checked against the machine.

The packages stay installed (that is the point of the command); the roles'
records go to a scratch facts directory.  Configuration-only components
(debugfs, ddebs) have their own tests in private mount namespaces."""

import json
import os
import platform
import subprocess
import sys

import pytest

from tests.lib.privatens import in_private_mounts, seen

TRACEKIT = [sys.executable, "-m", "tracekit"]
PACKAGE_COMPONENTS = ["headers", "perf", "bcc", "bpftrace", "systemtap", "sysdig"]


def setup(facts_dir, components, *extra):
    argv = TRACEKIT + ["setup", "--json"] + components + list(extra)
    # The packages role records apt's answers there too.
    for component in components + ["packages"]:
        argv += ["--var", "tracekit_%s_facts_dir=%s" % (component, facts_dir)]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=1800)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def installed(package):
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True)
    return proc.stdout == "install ok installed"


@pytest.fixture(scope="module")
def converged(tmp_path_factory, tracefs):
    if os.geteuid() != 0:
        pytest.skip("setup needs root (euid %d)" % os.geteuid())
    facts_dir = tmp_path_factory.mktemp("facts.d")
    first = setup(facts_dir, PACKAGE_COMPONENTS)
    second = setup(facts_dir, PACKAGE_COMPONENTS)
    facts = {p.stem[len("tracekit_"):]: json.loads(p.read_text()) for p in facts_dir.glob("tracekit_*.fact")}
    return first, second, facts


def test_every_package_component_converges(converged):
    (rc, result, stderr), _, facts = converged
    assert rc == 0, (result, stderr)
    host = result["hosts"]["localhost"]
    assert host["failures"] == []
    assert set(host["components"]) >= set(PACKAGE_COMPONENTS) | {"packages"}
    assert sorted(facts) == sorted(PACKAGE_COMPONENTS)
    for component in ("perf", "bcc", "bpftrace", "systemtap", "sysdig"):
        packages = facts[component]["packages"]
        assert packages, component
        assert [p for p in packages if not installed(p)] == [], component


def test_setup_ends_with_verify_and_it_passes(converged):
    (_, result, _), _, _ = converged
    verify = result["verify"]["hosts"]["localhost"]
    assert verify["exit_code"] == 0 and verify["state_changed"] == {}
    statuses = {r["status"] for r in verify["results"]}
    assert statuses <= {"passed", "skipped"} and "passed" in statuses


def test_second_run_changes_nothing(converged):
    _, (rc, result, stderr), _ = converged
    assert rc == 0, (result, stderr)
    changed = {c: n["changed"] for c, n in result["hosts"]["localhost"]["components"].items() if n["changed"]}
    assert changed == {}


def test_the_tools_recorded_are_the_ones_that_run(converged):
    _, _, facts = converged
    perf = subprocess.run([facts["perf"]["perf"], "--version"], stdout=subprocess.PIPE, universal_newlines=True)
    assert perf.stdout.strip() == facts["perf"]["version"]
    bpftrace = subprocess.run(["bpftrace", "--version"], stdout=subprocess.PIPE, universal_newlines=True)
    assert bpftrace.stdout.strip() == facts["bpftrace"]["version"]
    assert facts["systemtap"]["version"].startswith("Systemtap translator/driver")


def test_headers_for_this_kernel_are_installed_or_precisely_unavailable(converged):
    (_, result, _), _, facts = converged
    release = platform.release()
    headers = facts["headers"]
    build_tree = os.path.exists("/lib/modules/%s/build/Makefile" % release)
    notices = [n["message"] for n in result["hosts"]["localhost"]["notices"] if n["component"] == "headers"]
    if build_tree:
        assert headers["unavailable"] is None and notices == []
        return
    # This machine's custom kernel: nobody packages its headers.
    assert headers["unavailable"].startswith("no kernel headers exist for %s: no package linux-headers-%s "
                                             "in the configured apt sources" % (release, release))
    assert headers["packages"] == [] and notices and notices[0].startswith(headers["unavailable"])
    # ... and no other kernel's headers were installed instead.
    listed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", "linux-headers-*"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    assert [line for line in listed.splitlines() if line.endswith(" installed")] == []


def test_systemtap_reports_what_its_probes_lack(converged):
    _, _, facts = converged
    release = platform.release()
    limits = facts["systemtap"]["limits"]
    has_build = os.path.exists("/lib/modules/%s/build/.config" % release)
    assert any(l.startswith("no kernel build tree for %s" % release) for l in limits) == (not has_build)
    assert any("no loadable modules" in l for l in limits) == (not os.path.exists("/proc/modules"))


def test_sysdig_driver_decision_follows_the_kernel(converged):
    (_, result, _), _, facts = converged
    sysdig = facts["sysdig"]
    release = platform.release()
    modern = (tuple(int(x) for x in sysdig["version"].split(".")[:2]) >= (0, 31)
              and os.path.exists("/sys/kernel/btf/vmlinux"))
    kmod = os.path.exists("/proc/modules") and os.path.exists("/lib/modules/%s/build/Makefile" % release)
    expected = "modern_ebpf" if modern else ("kmod" if kmod else "none")
    assert sysdig["driver"] == expected, sysdig
    notices = [n["message"] for n in result["hosts"]["localhost"]["notices"] if n["component"] == "sysdig"]
    assert notices == [sysdig["reason"]] and "(%s)" % sysdig["driver"] in sysdig["reason"]


def test_required_headers_fail_alone_and_the_rest_still_runs(tmp_path, converged):
    release = platform.release()
    if os.path.exists("/lib/modules/%s/build/Makefile" % release):
        pytest.skip("headers exist for %s here" % release)
    rc, result, _ = setup(tmp_path, ["headers", "bpftrace"], "--var", "tracekit_headers_required=true")
    assert rc == 1
    host = result["hosts"]["localhost"]
    assert [f["component"] for f in host["failures"]] == ["headers", "-"]
    assert host["failures"][0]["message"].startswith("headers role: no kernel headers exist for %s" % release)
    assert host["failures"][0]["message"].endswith("; nothing was installed")
    assert host["failures"][1]["message"] == "failed: headers"
    assert host["components"]["bpftrace"]["failed"] == 0
    assert (tmp_path / "tracekit_bpftrace.fact").exists()


def test_unsupported_distribution_changes_nothing(tmp_path, tracefs):
    fstab = open("/etc/fstab").read()
    cmd = " ".join(TRACEKIT + ["setup", "--json", "--no-verify", "debugfs", "perf", "--var", "ansible_distribution=Fedora",
                               "--var", "ansible_distribution_version=41"]) + " 2>/dev/null"
    (rc, out), (rc_mounted, _) = in_private_mounts(tmp_path, [
        "umount /sys/kernel/debug 2>/dev/null; " + cmd,
        "findmnt --mountpoint /sys/kernel/debug",
    ])
    assert rc == 1
    (failure,) = json.loads(out)["hosts"]["localhost"]["failures"]
    # The distribution is faked, the release is this machine's own.
    release = platform.freedesktop_os_release()["VERSION_CODENAME"]
    assert failure["message"] == ("Fedora 41 (%s) is not supported (supported: Ubuntu 22.04, 24.04, 26.04; "
                                  "Debian 12, 13); nothing was changed" % release)
    assert rc_mounted == 1
    assert seen(tmp_path, "/etc/fstab").read_text() == fstab


def test_setup_ends_with_what_doctor_now_reports(converged):
    (_, result, _), _, _ = converged
    after = result["hosts"]["localhost"]["doctor"]
    proc = subprocess.run(TRACEKIT + ["doctor", "--json"], stdout=subprocess.PIPE, universal_newlines=True)
    doctor = json.loads(proc.stdout)
    # The same agent and verdicts, run by Ansible on the host and by hand.
    assert after["methods"] == {m["id"]: m["status"] for m in doctor["methods"]}
    assert after["summary"] == doctor["summary"]


def _ask_apt_outcomes(stderr):
    """The outcome of the packages role's apt-cache task, from setup's progress lines."""
    lines = stderr.splitlines()
    return [lines[i + 1].split()[0] for i, line in enumerate(lines[:-1])
            if line.endswith("Ask apt about every candidate at once")]


def test_apt_is_asked_again_only_when_its_lists_change(tmp_path, converged):
    """A converged run reuses apt's recorded answer (apt-cache costs a second
    or more where apt keeps no binary cache) while the lists are the ones it
    came from, and asks again once a list changed.  In a private mount
    namespace: the record goes to an overlay over /etc, and the list that is
    "changed" (its mtime) is one in an overlay over apt's lists."""
    run = " ".join(TRACEKIT + ["setup", "--no-verify", "bpftrace",
                               "--var", "tracekit_bpftrace_facts_dir=%s" % tmp_path]) + " 2>&1 >/dev/null"
    lists = sorted(p for p in os.listdir("/var/lib/apt/lists") if p.endswith("InRelease"))
    assert lists, "no apt lists here"
    (rc1, first), (rc2, second), (rc_touch, _), (rc3, third), (rc_fact, fact) = in_private_mounts(
        tmp_path / "ns", [run, run, "touch /var/lib/apt/lists/%s" % lists[0], run,
                          "cat /etc/ansible/facts.d/tracekit-apt.fact"],
        overlays=("/etc", "/var/lib/apt/lists"))
    assert (rc1, rc2, rc_touch, rc3, rc_fact) == (0, 0, 0, 0, 0), (first, second, third, fact)
    # The first run may find no record (or one from other lists) and ask.
    assert _ask_apt_outcomes(first) in (["ok"], ["skipped"]), first
    assert _ask_apt_outcomes(second) == ["skipped"], second
    assert _ask_apt_outcomes(third) == ["ok"], third
    record = json.loads(fact)
    assert "bpftrace" in record["asked"] and record["known"]["bpftrace"]
