"""The supported releases: listed once (the platform role's vars/main.json),
refused up front everywhere else, read the same way by doctor."""

import pytest
import yaml

from tests.lib.localplay import local_inventory, run_tasks
from tracekit import releases, setup
from tracekit.paths import provision_dir

ROLES = provision_dir() / "roles"
SUPPORTED = "Ubuntu 22.04, 24.04, 26.04; Debian 12, 13"


def run_platform_role(tmp_path, distribution, version, release):
    """The platform role run by ansible-playbook itself (as tracekit runs it),
    on a host whose distribution facts are the given ones (extra vars beat
    gathered facts; nothing is gathered: the role reads only these three
    and changes nothing). Returns (rc, the task results)."""
    return run_tasks(tmp_path, [
        {"ansible.builtin.include_role": {"name": "platform"}},
        {"ansible.builtin.debug": {"msg": "{{ {'name': _tracekit_platform_name, "
                                          "'unpackaged': _tracekit_platform_unpackaged} }}"}}],
        {"ansible_distribution": distribution, "ansible_distribution_version": version,
         "ansible_distribution_release": release})


@pytest.mark.parametrize("distribution, version, release", [
    ("Ubuntu", "18.04", "bionic"), ("Debian", "11.11", "bullseye"), ("Fedora", "41", "")])
def test_another_release_is_refused_in_one_line_naming_it_and_the_supported_ones(
        tmp_path, distribution, version, release):
    rc, results = run_platform_role(tmp_path, distribution, version, release)
    assert rc == 2
    failed = [r for r in results if r.get("failed")]
    named = "%s %s (%s)" % (distribution, version, release) if release else "%s %s" % (distribution, version)
    assert [r["msg"] for r in failed] == ["%s is not supported (supported: %s); nothing was changed"
                                          % (named, SUPPORTED)]


@pytest.mark.parametrize("distribution, version, release, name, unpackaged", [
    ("Ubuntu", "22.04", "jammy", "Ubuntu 22.04", ["libbpf-tools"]),
    ("Ubuntu", "24.04", "noble", "Ubuntu 24.04", []),
    ("Ubuntu", "26.04", "resolute", "Ubuntu 26.04", []),
    ("Debian", "12.11", "bookworm", "Debian 12", []),
    ("Debian", "13.1", "trixie", "Debian 13", ["sysdig"]),
])
def test_supported_releases_pass_and_say_what_they_do_not_package(
        tmp_path, distribution, version, release, name, unpackaged):
    rc, results = run_platform_role(tmp_path, distribution, version, release)
    assert rc == 0
    assert results[-1]["msg"] == {"name": name, "unpackaged": unpackaged}


def test_doctor_reads_the_same_list():
    assert releases.supported_text() == SUPPORTED
    assert releases.unsupported({"id": "ubuntu", "version_id": "18.04", "codename": "bionic",
                                 "name": "Ubuntu 18.04.6 LTS"}) == \
        "Ubuntu 18.04.6 LTS is not supported by tracekit setup (supported: %s)" % SUPPORTED
    assert releases.unsupported({"id": "ubuntu", "version_id": "26.04", "codename": "resolute"}) is None
    assert releases.unsupported({"id": "debian", "version_id": "13", "codename": "trixie"}) is None
    # Facts that cannot tell the distribution are no reason to refuse.
    assert releases.unsupported({"id": None}) is None
    assert releases.not_packaged_by({"id": "debian", "version_id": "13", "codename": "trixie"}, "sysdig") \
        == "Debian 13"
    assert releases.not_packaged_by({"id": "ubuntu", "version_id": "22.04", "codename": "jammy"},
                                    "libbpf-tools") == "Ubuntu 22.04"
    assert releases.not_packaged_by({"id": "debian", "version_id": "12", "codename": "bookworm"}, "sysdig") is None


# ddebs: owned by another change in progress; its meta/main.yml is updated there.
@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if p.is_dir() and p.name != "ddebs"))
def test_every_role_lists_the_supported_releases_as_its_platforms(role):
    platforms = yaml.safe_load((ROLES / role / "meta/main.yml").read_text())["galaxy_info"]["platforms"]
    assert {p["name"]: p["versions"] for p in platforms} == \
        {name: list(by_codename) for name, by_codename in releases.releases().items()}


def test_every_component_role_checks_the_release_through_the_platform_role():
    for path in sorted(ROLES.glob("*/tasks/candidates.yml")):
        tasks = yaml.safe_load(path.read_text())
        assert tasks[0]["ansible.builtin.include_role"] == {"name": "platform"}, path
        assert "is not supported" not in path.read_text(), path


def test_setup_play_checks_the_release_before_any_component_as_a_step_of_its_own():
    (play,) = setup.build_playbook(["perf"])
    first = play["tasks"][0]
    assert first["name"] == "Set up platform"
    assert first["ansible.builtin.include_role"]["name"] == "platform"
    (play,) = setup.build_playbook(["perf"], collection="tracekit.tracing")
    assert play["tasks"][0]["ansible.builtin.include_role"]["name"] == "tracekit.tracing.platform"


def test_a_refused_host_keeps_its_row_in_the_summary(tmp_path):
    """The whole setup play on this machine, its distribution facts
    overridden to Ubuntu 18.04: refused at the first step, with the one
    line, before any component ran (the play only gathers facts first)."""
    result = setup.run(["bpftrace"], inventory=local_inventory(tmp_path, "refused"), variables={
        "ansible_distribution": "Ubuntu", "ansible_distribution_version": "18.04",
        "ansible_distribution_release": "bionic"})
    host = result.hosts["refused"]
    assert result.rc != 0
    assert [(f["component"], f["message"]) for f in host.failures] == [
        ("platform", "Ubuntu 18.04 (bionic) is not supported (supported: %s); nothing was changed" % SUPPORTED)]
    assert host.components["platform"]["failed"] == 1
    assert set(host.components) <= {"-", "platform"}
