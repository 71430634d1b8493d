"""The fresh tier's own logic (tests/fresh): which releases run, the pip
settings a host gets from this machine, and how install.sh's output is read.
The tier itself needs root and minutes per release; these run anywhere."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.fresh import conftest as fresh
from tests.fresh import parse
from tracekit.agent import checks

pytestmark = pytest.mark.unit


def test_only_noble_runs_unless_releases_are_selected(monkeypatch):
    monkeypatch.delenv(fresh.SELECT_VAR, raising=False)
    assert fresh.selected_releases() == ("noble",)
    params = {p.id: p.marks for p in fresh.releases("noble", "bookworm")}
    assert params["noble"] == ()
    assert "not selected: set TRACEKIT_FRESH_RELEASES=bookworm" in params["bookworm"][0].kwargs["reason"]
    monkeypatch.setenv(fresh.SELECT_VAR, "all")
    assert fresh.selected_releases() == fresh.RELEASES
    monkeypatch.setenv(fresh.SELECT_VAR, "bookworm, jammy")
    assert fresh.selected_releases() == ("bookworm", "jammy")


def test_an_unknown_release_is_a_usage_error(monkeypatch):
    monkeypatch.setenv(fresh.SELECT_VAR, "noble,focal")
    with pytest.raises(pytest.UsageError, match="unknown release focal"):
        fresh.selected_releases()


def test_the_host_gets_this_machines_pip_settings_with_their_files(tmp_path):
    bundle = tmp_path / "ca.crt"
    bundle.write_text("CERT")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\ncert = {bundle}\nfind-links = {wheels}\n"
                    f"extra-index-url = file://{wheels} https://pypi.example.invalid/simple\n")
    settings = fresh.workplace_pip_settings(env={"PIP_DEFAULT_TIMEOUT": "180", "HOME": "/nowhere"}, files=(conf,))
    text, files = fresh.host_pip_config(settings)
    copied = f"{fresh.HOST_PIP_DIR}/cert-ca.crt"
    assert files == {copied: b"CERT"}
    lines = text.splitlines()
    assert f"cert = {copied}" in lines and "default-timeout = 180" in lines
    # Local directories stay behind; a URL goes as it is.
    assert "extra-index-url = https://pypi.example.invalid/simple" in lines
    assert not any(line.startswith("find-links") for line in lines), text


def test_the_environment_overrides_the_files(tmp_path):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ntimeout = 15\n")
    assert fresh.workplace_pip_settings(env={"PIP_TIMEOUT": "60"}, files=(conf,)) == {"timeout": "60"}


STDERR = """\
install.sh: installing tracekit from /home/tkuser/tracekit (pip)
passed   tracepoint               12 events of pid 4242
failed   uprobe                   no hits on tk_work
         (wrapped detail)
failed   kprobe                   kprobe_events missing
skipped  ftrace.function          the kernel refuses the function tracer
install.sh: done: tracekit is installed and set up; doctor (above) lists what this host still lacks
"""


def test_verify_lines_and_failures_doctor_did_not_predict():
    results = parse.verify_lines(STDERR, checks.CHECKS_BY_ID)
    assert [r[:2] for r in results] == [("passed", "tracepoint"), ("failed", "uprobe"), ("failed", "kprobe"),
                                        ("skipped", "ftrace.function")]
    verdicts = {m: {"status": "ready"} for c in checks.CHECKS for m in c.methods}
    verdicts["kprobe"] = {"status": "unknown"}  # doctor could not tell: not a prediction that it works
    found = parse.unpredicted_failures(results, verdicts)
    assert found == ["uprobe: doctor called uprobe ready, and it failed: no hits on tk_work"]


def test_doctor_report_is_what_follows_verify():
    stdout = "tracekit verify\nlocalhost: 1 failed, 9 passed, 16 skipped\nhost  fresh1\n│ kprobe │ unavailable │\n" \
             "ready 9  missing 1  unavailable 12  unknown 0\n"
    report = parse.doctor_report(stdout)
    assert report.splitlines()[0] == "host  fresh1"
    assert parse.SUMMARY.match(report.splitlines()[-1])


def test_the_closing_lines_are_install_sh_s():
    source = (fresh.REPO / "install.sh").read_text()
    for line in parse.CLOSING.values():
        assert f'say "{line.removeprefix("install.sh: ")}' in source, line


def load_fleet():
    spec = importlib.util.spec_from_file_location("tracekit_lab_fleet", fresh.FLEET)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_a_rootfs_with_more_packages_is_cached_apart_from_the_plain_one():
    fleet = load_fleet()
    plain, with_sudo = fleet.rootfs_path("noble"), fleet.rootfs_path("noble", extra=("sudo",))
    assert plain != with_sudo and with_sudo.name.startswith("noble-")
    assert fleet.package_list("sudo,sudo-rs") == ("sudo", "sudo-rs")


def test_fleet_refuses_an_include_that_is_no_package_list(capsys):
    with pytest.raises(SystemExit) as exited:
        load_fleet().main(["rootfs", "noble", "--include", "sudo;rm"])
    assert exited.value.code == 2
    assert "not a list of package names: 'sudo;rm'" in capsys.readouterr().err
