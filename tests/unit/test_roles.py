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


@pytest.mark.parametrize("distribution, version, release, library", [
    ("Ubuntu", "22.04", "jammy", "libdebuginfod1"),
    ("Ubuntu", "24.04", "noble", "libdebuginfod1t64"),
    ("Debian", "12", "bookworm", "libdebuginfod1"),
    ("Debian", "13", "trixie", "libdebuginfod1t64"),
])
def test_debuginfod_client_is_asked_for_by_its_real_package_name(distribution, version, release, library):
    """dpkg knows a package only by its real name: asking for a name the t64
    successor merely provides would run apt again on every converged run
    (found on noble hosts). Templated by Ansible itself, with the role's vars."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    root = provision_dir() / "roles" / "ddebs" / "vars"
    loader = DataLoader()
    variables = {**loader.load_from_file(str(root / "main.yml"), trusted_as_template=True),
                 **loader.load_from_file(str(root / f"{distribution}.yml"), trusted_as_template=True),
                 "ansible_distribution": distribution, "ansible_distribution_version": version,
                 "ansible_distribution_release": release}
    packages = Templar(loader=loader, variables=variables).template(
        trust_as_template("{{ __tracekit_ddebs_debuginfod_packages | join(' ') }}")).split()
    assert packages == ["libdebuginfod-common", library]


def _role_vars(role, distribution, version, release, files=("main.yml",), **extra):
    """A role's vars files as Ansible templates them for a host of that release."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    root = provision_dir() / "roles" / role / "vars"
    loader = DataLoader()
    variables = {"ansible_distribution": distribution, "ansible_distribution_version": version,
                 "ansible_distribution_release": release, **extra}
    for name in files:
        variables.update(loader.load_from_file(str(root / name), trusted_as_template=True))
    templar = Templar(loader=loader, variables=variables)
    return lambda expression: templar.template(trust_as_template(expression))


@pytest.mark.parametrize("distribution, version, release, packages", [
    ("Ubuntu", "22.04", "jammy", ["linux-tools-common", "linux-tools-5.15.0-204-generic", "linux-tools-generic"]),
    ("Ubuntu", "24.04", "noble", ["linux-tools-common", "linux-tools-5.15.0-204-generic", "linux-tools-generic"]),
    # perf is its own package there; linux-tools-<version> only recommends it.
    ("Ubuntu", "26.04", "resolute", ["linux-perf"]),
    ("Debian", "12", "bookworm", ["linux-perf"]),
    ("Debian", "13", "trixie", ["linux-perf"]),
])
def test_perf_comes_from_the_package_the_release_ships_it_in(distribution, version, release, packages):
    value = _role_vars("perf", distribution, version, release, files=(distribution + ".yml",),
                       tracekit_perf_kernel="5.15.0-204-generic")
    assert value("{{ __tracekit_perf_common + [__tracekit_perf_exact]"
                 " + ([__tracekit_perf_fallback] if __tracekit_perf_fallback else []) }}") == packages


@pytest.mark.parametrize("target, kept", [
    ("/usr/lib/linux-tools/6.8.0-151-generic/perf", False),  # an earlier fallback's link
    ("/opt/perf/bin/perf", True),  # not tracekit's
])
def test_perf_removes_its_old_fallback_link_where_perf_is_packaged(tmp_path, target, kept):
    """After an upgrade to 26.04 (linux-perf: /usr/bin/perf), the link an
    earlier fallback made would still come first in PATH. Run by Ansible on
    a link in a scratch directory."""
    from tests.lib.localplay import run_tasks

    link = tmp_path / "perf"
    link.symlink_to(target)
    rc, results = run_tasks(tmp_path, [{"ansible.builtin.include_role": {"name": "perf", "tasks_from": "link"}}],
                            {"_tracekit_perf_fallback": False, "tracekit_perf_link": str(link)})
    assert rc == 0, results
    assert link.is_symlink() == kept
    removed = [r for r in results if r["task"].startswith("Remove the old link") and not r["skipped"]]
    assert [r["changed"] for r in removed] == ([] if kept else [True])


def _sysdig_role(tmp_path, apt_show, platform_name, unpackaged, **variables):
    """The sysdig role run by Ansible on this machine with apt's answer given
    (as the packages role shares it) and the platform role's facts for the
    release: it installs nothing here (nothing to install, or already
    "installed" by the packages step) and records its fact in tmp_path."""
    from tests.lib.localplay import run_tasks

    candidates = ["sysdig", "falcosecurity-scap-dkms", "linux-headers-6.12.38+deb13-amd64"]
    return run_tasks(tmp_path, [
        {"ansible.builtin.include_role": {"name": "sysdig", "tasks_from": "resolve"}},
        {"ansible.builtin.debug": {"var": "_tracekit_sysdig_packages"}},
        {"ansible.builtin.include_role": {"name": "sysdig"}}],
        {"_tracekit_sysdig_candidates": candidates, "_tracekit_apt_asked": candidates, "_tracekit_apt_show": apt_show,
         "__tracekit_sysdig_kernel_has": {"files": [{"path": "/sys/kernel/btf/vmlinux"}]},
         "_tracekit_packages_installed": ["sysdig"], "_tracekit_platform_checked": True,
         "_tracekit_platform_name": platform_name, "_tracekit_platform_unpackaged": unpackaged,
         "tracekit_sysdig_kernel": "6.12.38+deb13-amd64", "tracekit_sysdig_facts_dir": str(tmp_path / "facts"),
         "ansible_kernel": "6.12.38+deb13-amd64", "ansible_architecture": "x86_64",
         "ansible_distribution": "Debian", **variables})


def test_sysdig_where_the_distribution_packages_none_is_a_notice_naming_the_working_command(tmp_path):
    """Debian 13: no sysdig package at all. Not a failed component (a default
    install could never succeed there), and the fact tells doctor why."""
    import json

    rc, results = _sysdig_role(tmp_path, "", "Debian 13", ["sysdig"])
    assert rc == 0, [r for r in results if r["failed"]]
    notices = [r["msg"] for r in results if r["task"].startswith("Notice |") and not r["skipped"]]
    expected = ("sysdig is not packaged by Debian 13; to install it from Sysdig's own repository: "
                "tracekit setup sysdig --var tracekit_sysdig_repository=vendor")
    assert notices == [expected]
    fact = json.loads((tmp_path / "facts/tracekit_sysdig.fact").read_text())
    assert fact["unavailable"] == expected and fact["packages"] == []


def test_sysdig_missing_from_a_release_that_packages_it_still_fails(tmp_path):
    # Ubuntu without universe: the sources are what needs fixing.
    rc, results = _sysdig_role(tmp_path, "", "Ubuntu 24.04", [], ansible_distribution="Ubuntu")
    failures = [r["msg"] for r in results if r["failed"]]
    assert rc != 0 and failures == ["sysdig role: sysdig is not in the configured apt sources (Ubuntu has it in "
                                    "universe); nothing was installed"]


@pytest.mark.parametrize("repository, packages", [
    ("distribution", ["sysdig"]),
    # The vendor's sysdig by version: an installed distribution sysdig would otherwise stay.
    ("vendor", ["sysdig=0.40.1"]),
])
def test_sysdig_from_the_vendor_is_asked_for_by_its_version(tmp_path, repository, packages):
    show = "Package: sysdig\nVersion: 0.40.1\n\nPackage: falcosecurity-scap-dkms\nVersion: 8.0.0\n\n"
    rc, results = _sysdig_role(tmp_path, show, "Ubuntu 24.04", [], tracekit_sysdig_repository=repository,
                               tracekit_sysdig_driver="none")
    assert [r["_tracekit_sysdig_packages"] for r in results if "_tracekit_sysdig_packages" in r] == [packages]


def stand_in_sysdig(directory, version_line, capture):
    """A stand-in for a sysdig build this machine cannot install (Ubuntu's
    need their own release's libraries; no build with the modern probe is
    installable here at all): it prints what that build printed (recorded in
    tests/unit/test_sysdig_notice.py) and logs each capture it is asked for."""
    from tests.unit.test_sysdig_notice import CAPTURED  # noqa: F401 (where the recordings live)

    rc, stdout, stderr = capture
    log = directory / "captures.log"
    (directory / "capture.out").write_text(stdout)
    (directory / "capture.err").write_text(stderr)
    script = directory / "sysdig"
    # rc 124: a capture that never ends (exec: timeout's signal reaches it).
    script.write_text("#!/bin/sh\n"
                      "if [ \"$1\" = --version ]; then echo '%s'; exit 0; fi\n"
                      "echo \"$*\" >> %s\n%s"
                      "cat %s; cat %s >&2; exit %d\n"
                      % (version_line, log, "exec sleep 30\n" if rc == 124 else "", directory / "capture.out",
                         directory / "capture.err", rc))
    script.chmod(0o755)
    return script, log


def _sysdig_with(tmp_path, apt_version, version_line, capture, check=False, **variables):
    """The role with sysdig ``apt_version`` in the apt sources, "installed"
    as a stand-in, on a kernel with BTF and no loadable modules: modern eBPF
    is its only driver, so a capture that fails leaves none (nothing to install)."""
    script, log = stand_in_sysdig(tmp_path, version_line, capture)
    show = "Package: sysdig\nVersion: %s\n" % apt_version
    from tests.lib.localplay import run_tasks

    candidates = ["sysdig", "falcosecurity-scap-dkms", "linux-headers-6.12.38+deb13-amd64"]
    rc, results = run_tasks(tmp_path, [
        {"ansible.builtin.include_role": {"name": "sysdig", "tasks_from": "resolve"}},
        {"ansible.builtin.include_role": {"name": "sysdig"}}],
        {"_tracekit_sysdig_candidates": candidates, "_tracekit_apt_asked": candidates, "_tracekit_apt_show": show,
         "__tracekit_sysdig_kernel_has": {"files": [{"path": "/sys/kernel/btf/vmlinux"}]},
         "_tracekit_packages_installed": ["sysdig"], "_tracekit_platform_checked": True,
         "_tracekit_platform_name": "Ubuntu 26.04", "_tracekit_platform_unpackaged": [],
         "tracekit_sysdig_kernel": "7.0.0-10-generic", "ansible_kernel": "7.0.0-10-generic",
         "tracekit_sysdig_facts_dir": str(tmp_path / "facts"), "ansible_architecture": "x86_64",
         "ansible_distribution": "Ubuntu", "_tracekit_sysdig_binary": str(script), **variables}, check=check)
    fact = tmp_path / "facts/tracekit_sysdig.fact"
    captures = log.read_text().splitlines() if log.exists() else []
    return rc, results, (__import__("json").loads(fact.read_text()) if fact.exists() else None), captures


def _notices(results):
    return [r["msg"] for r in results if r["task"].startswith("Notice |") and not r["skipped"]]


@pytest.fixture(scope="module")
def ubuntu_2604_run(tmp_path_factory):
    """Ubuntu 26.04's sysdig 0.40.0+repack: it offers --modern-bpf, and its
    capture says the build has no such engine."""
    from tests.unit.test_sysdig_notice import UBUNTU_2604

    return _sysdig_with(tmp_path_factory.mktemp("resolute"), "0.40.0+repack-3", "sysdig version 0.40.0+repack",
                        UBUNTU_2604)


def test_sysdig_built_without_the_modern_probe_falls_back_on_its_capture(ubuntu_2604_run):
    rc, results, fact, captures = ubuntu_2604_run
    assert rc == 0, [r for r in results if r["failed"]]
    assert captures == ["--modern-bpf -M 1 -n 1"]
    assert fact["modern_ebpf_capture"] == {"sysdig": "0.40.0", "kernel": "7.0.0-10-generic", "result": "not_built",
                                           "says": "MODERN_BPF engine is not supported in this build"}
    assert fact["driver"] == "none"
    assert _notices(results) == [fact["reason"]] == [
        "sysdig has no capture driver here (none): sysdig 0.40.0 is built without the modern eBPF probe (its capture "
        "says: MODERN_BPF engine is not supported in this build), and the kernel module needs loadable modules (the "
        "kernel has none), headers for 7.0.0-10-generic (none installed or in the apt sources), "
        "falcosecurity-scap-dkms (not in the apt sources)."]
    attempt = next(r for r in results if r["task"] == "Try a one-event capture with the modern eBPF probe")
    assert attempt["changed"] is False and not attempt["failed"]


def test_sysdig_whose_capture_works_keeps_modern_ebpf(tmp_path):
    from tests.unit.test_sysdig_notice import CAPTURED

    rc, results, fact, captures = _sysdig_with(tmp_path, "0.40.1", "sysdig version 0.40.1", CAPTURED)
    assert rc == 0, [r for r in results if r["failed"]]
    assert captures == ["--modern-bpf -M 1 -n 1"] and fact["driver"] == "modern_ebpf"
    assert fact["modern_ebpf_capture"] == {"sysdig": "0.40.1", "kernel": "7.0.0-10-generic", "result": "captured",
                                           "says": "an event"}


def test_sysdig_modern_ebpf_asked_for_fails_on_a_build_without_it(tmp_path):
    from tests.unit.test_sysdig_notice import UBUNTU_2604

    rc, results, fact, _ = _sysdig_with(tmp_path, "0.40.0+repack-3", "sysdig version 0.40.0+repack", UBUNTU_2604,
                                        tracekit_sysdig_driver="modern_ebpf")
    assert rc != 0 and fact is None
    assert [r["msg"] for r in results if r["failed"]] == [
        "sysdig role: driver modern_ebpf needs a sysdig built with the modern eBPF probe; sysdig 0.40.0's capture "
        "says: MODERN_BPF engine is not supported in this build"]


def test_sysdig_reuses_the_recorded_capture_for_the_same_sysdig_and_kernel(tmp_path, ubuntu_2604_run):
    """A converged run (check mode, the record read back as Ansible's local
    facts) captures nothing again and rewrites nothing; another kernel does
    capture again. The stand-in would now answer otherwise: the decision
    shows which answer was used."""
    from tests.unit.test_sysdig_notice import CAPTURED

    fact = ubuntu_2604_run[2]
    assert fact["modern_ebpf_capture"]["result"] == "not_built"

    def again(directory, recorded):
        directory.mkdir()
        rc, results, written, captures = _sysdig_with(
            directory, "0.40.0+repack-3", "sysdig version 0.40.0+repack", CAPTURED, check=True,
            tracekit_sysdig_facts_dir="/etc/ansible/facts.d", ansible_local={"tracekit_sysdig": recorded})
        assert rc == 0, [r for r in results if r["failed"]]
        record = next(r for r in results if r["task"] == "Record what was set up (local fact for tracekit doctor)")
        return captures, record, _notices(results)

    captures, record, notices = again(tmp_path / "same", fact)
    assert captures == [] and record["skipped"] and not record.get("changed")
    assert notices == [fact["reason"]]

    moved = dict(fact, modern_ebpf_capture=dict(fact["modern_ebpf_capture"], kernel="6.8.0-151-generic"))
    captures, record, notices = again(tmp_path / "other-kernel", moved)
    assert captures == ["--modern-bpf -M 1 -n 1"] and record["changed"]
    assert notices == ["sysdig captures with its modern eBPF driver (modern_ebpf), which sysdig 0.40.0+repack on kernel "
                       "7.0.0-10-generic with BTF supports."]


def test_sysdig_older_than_the_probe_is_not_asked_to_capture(tmp_path):
    """Debian 12's sysdig (this machine's candidate): 0.29.3 is older than
    0.31, so no capture is tried and the decision is what it always was."""
    from tests.unit.test_sysdig_notice import DEBIAN_12

    rc, results, fact, captures = _sysdig_with(tmp_path, "0.29.3-1+b1", "sysdig version 0.29.3", DEBIAN_12)
    assert rc == 0 and captures == []
    assert fact["modern_ebpf_capture"] is None and fact["driver"] == "none"
    assert "Modern eBPF cannot work: sysdig 0.29.3 is older than 0.31" in fact["reason"]


def test_packages_asked_for_by_version_are_installed_only_when_dpkg_has_another(tmp_path):
    """dpkg-query on this machine (read only; check mode): a package at the
    version asked for needs no apt run, at another version it does."""
    import subprocess

    from tests.lib.localplay import run_tasks

    version = subprocess.run(["dpkg-query", "--show", "--showformat=${Version}", "dpkg"], capture_output=True,
                             text=True, check=True).stdout

    def apt_ran(packages):
        _, results = run_tasks(tmp_path, [{"ansible.builtin.include_role": {"name": "packages", "tasks_from": "install"}}],
                               {"tracekit_packages_install": packages, "ansible_python_interpreter": "/usr/bin/python3"},
                               check=True)
        return [not r["skipped"] for r in results if r["task"] == "Install | install the missing packages"]

    assert apt_ran(["dpkg", "dpkg=" + version]) == [False]
    assert apt_ran(["dpkg=0.0-not-this"]) == [True]


@pytest.mark.parametrize("kernel, distribution_kernel", [
    ("6.8.0-151-generic", True), ("6.1.0-56-amd64", True),
    ("6.12.38+deb13-amd64", True),  # Debian 13 names its kernels so
    ("6.18.44-fc-v595", False),
])
def test_headers_role_knows_distribution_kernels_as_doctor_does(kernel, distribution_kernel):
    import re

    from tracekit import doctor

    pattern = yaml.safe_load((provision_dir() / "roles/headers/vars/main.yml").read_text())[
        "_tracekit_headers_distribution_kernel"]
    assert pattern == doctor.DISTRIBUTION_KERNEL
    value = _role_vars("headers", "Debian", "13", "trixie", tracekit_headers_kernel=kernel)
    # As tasks/resolve.yml asks.
    assert value("{{ tracekit_headers_kernel is match(_tracekit_headers_distribution_kernel) }}") \
        is distribution_kernel


# Ubuntu's own documentation of its debug-symbol archive (Ubuntu Server docs,
# "Debug symbol packages": https://documentation.ubuntu.com/server/how-to/debugging/debug-symbol-packages/,
# source canonical/ubuntu-server-documentation docs/how-to/debugging/debug-symbol-packages.md):
#   Types: deb / URIs: http://ddebs.ubuntu.com/ / Suites: $(lsb_release -cs) $(lsb_release -cs)-updates
#   $(lsb_release -cs)-proposed / Components: main restricted universe multiverse /
#   Signed-by: /usr/share/keyrings/ubuntu-dbgsym-keyring.gpg
def ubuntu_documented_source(codename):
    return {"Types": "deb", "URIs": "http://ddebs.ubuntu.com/",
            "Suites": f"{codename} {codename}-updates {codename}-proposed",
            "Components": "main restricted universe multiverse",
            "Signed-By": "/usr/share/keyrings/ubuntu-dbgsym-keyring.gpg"}


def render_ddebs_source(distribution, version, release, **overrides):
    """The apt source the ddebs role writes when its archive URL is known, as
    Ansible renders it: the role's defaults and vars, the apt_source vars its
    archive.yml passes, and apt_source's own template."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar, trust_as_template

    init_plugin_loader()  # the template lookup, as ansible-playbook loads it
    roles = provision_dir() / "roles"
    loader = DataLoader()

    def load(path):
        return loader.load_from_file(str(path), trusted_as_template=True) or {}

    variables = {**load(roles / "ddebs/defaults/main.yml"), **load(roles / "ddebs/vars/main.yml"),
                 **load(roles / f"ddebs/vars/{distribution}.yml"), **load(roles / "apt_source/defaults/main.yml"),
                 "ansible_distribution": distribution, "ansible_distribution_version": version,
                 "ansible_distribution_release": release, **overrides}
    templar = Templar(loader=loader, variables=variables)
    variables["_tracekit_ddebs_archive_url"] = templar.template(trust_as_template("{{ _tracekit_ddebs_known_url }}"))
    (include,) = [t for t in load(roles / "ddebs/tasks/archive.yml")
                  if t.get("ansible.builtin.include_role", {}).get("name") == "apt_source"]
    passed = {k: Templar(loader=loader, variables=variables).template(v) for k, v in include["vars"].items()}
    variables.update(passed)
    variables.update(load(roles / "apt_source/vars/main.yml"))
    templar = Templar(loader=loader, variables=variables)
    keyring = templar.template(trust_as_template("{{ _tracekit_apt_source_keyring_path }}"))
    text = templar.template(trust_as_template(
        "{{ lookup('ansible.builtin.template', %r, template_vars={'keyring': %r, 'format': tracekit_apt_source_format}) }}"
        % (str(roles / "apt_source/templates/source.j2"), keyring)))
    return passed, text


@pytest.mark.parametrize("version, release", [("22.04", "jammy"), ("24.04", "noble"), ("26.04", "resolute")])
def test_ubuntu_gets_the_ddebs_archive_ubuntu_documents(version, release):
    """With nothing set, an Ubuntu host gets Ubuntu's ddebs archive as Ubuntu's
    documentation writes it: a deb822 source (also on 22.04, whose own source
    is a one-line list) signed by ubuntu-dbgsym-keyring's keyring, its key
    pinned. -proposed only on request: exactly the documented source then."""
    documented = ubuntu_documented_source(release)
    passed, text = render_ddebs_source("Ubuntu", version, release)
    assert passed["tracekit_apt_source_format"] == "deb822"
    assert passed["tracekit_apt_source_fingerprints"] == ["F2EDC64DC5AEE1F6B9C621F0C8CAB6595FDFF622"]
    fields = dict(line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert fields == {**documented, "Suites": f"{release} {release}-updates"}, text

    _, text = render_ddebs_source("Ubuntu", version, release, tracekit_ddebs_proposed=True)
    fields = dict(line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert fields == documented, text


def test_a_url_of_ones_own_replaces_only_the_uri():
    passed, text = render_ddebs_source("Ubuntu", "24.04", "noble", tracekit_ddebs_url="http://mirror.invalid/ddebs/")
    fields = dict(line.split(": ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert fields == {**ubuntu_documented_source("noble"), "URIs": "http://mirror.invalid/ddebs/",
                      "Suites": "noble noble-updates"}


@pytest.mark.parametrize("overrides, if_unusable", [
    ({}, "skip"),                                                   # tracekit's default URL: may fall back
    ({"tracekit_ddebs_url": "http://mirror.invalid/ddebs/"}, "fail"),  # the user's URL must work
    ({"tracekit_ddebs_method": "archive"}, "fail"),
    ({"tracekit_ddebs_method": "both"}, "fail"),
])
def test_only_tracekits_own_default_falls_back_when_unusable(overrides, if_unusable):
    passed, _ = render_ddebs_source("Ubuntu", "24.04", "noble", **overrides)
    assert passed["tracekit_apt_source_if_unusable"] == if_unusable


def test_debian_derives_its_debug_archive_from_the_hosts_mirror():
    indextargets = {"stdout_lines": ["http://mirror.invalid/debian/ bookworm deb",
                                     "http://mirror.invalid/debian/ bookworm-updates deb",
                                     "http://security.invalid/debian-security/ bookworm-security deb"]}
    passed, text = render_ddebs_source("Debian", "12", "bookworm", __tracekit_ddebs_indextargets=indextargets)
    assert passed["tracekit_apt_source_uris"] == ["http://mirror.invalid/debian-debug/"]
    assert passed["tracekit_apt_source_format"] == "auto"  # the host's own
    passed, _ = render_ddebs_source("Debian", "12", "bookworm", __tracekit_ddebs_indextargets={"stdout_lines": []})
    assert passed["tracekit_apt_source_uris"] == [""]
