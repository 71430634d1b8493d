"""Every `tracekit setup` command doctor prints as a remedy for sysdig's
methods works as printed: the CLI parses it, its components exist, and each
--var names an option of those roles' argument_specs with a value it allows.
Doctor is asked about many hosts (releases, sysdig builds, what the role
recorded, kernel module state); every remedy it produces is checked."""

import functools
import itertools
import shlex

import pytest
import yaml

from tests.unit.fakehost import full_host
from tracekit import doctor, setup
from tracekit.agent import facts as agent_facts
from tracekit.paths import provision_dir

DISTROS = {
    "noble": {"id": "ubuntu", "version_id": "24.04", "codename": "noble", "name": "Ubuntu 24.04.2 LTS"},
    "resolute": {"id": "ubuntu", "version_id": "26.04", "codename": "resolute", "name": "Ubuntu 26.04 LTS"},
    "jammy": {"id": "ubuntu", "version_id": "22.04", "codename": "jammy", "name": "Ubuntu 22.04.5 LTS"},
    "bookworm": {"id": "debian", "version_id": "12", "codename": "bookworm", "name": "Debian GNU/Linux 12 (bookworm)"},
    "trixie": {"id": "debian", "version_id": "13", "codename": "trixie", "name": "Debian GNU/Linux 13 (trixie)"},
    "bionic": {"id": "ubuntu", "version_id": "18.04", "codename": "bionic", "name": "Ubuntu 18.04.6 LTS"},
}
CAPTURES = {
    None: None,
    "captured": {"result": "captured", "says": "an event"},
    "not_built": {"result": "not_built", "says": "MODERN_BPF engine is not supported in this build"},
    "failed": {"result": "failed", "says": "libpman: failed to load BPF object"},
}
SYSDIG_METHODS = [m for m in doctor.METHODS if m.id.startswith("sysdig.")]


def role_options(role):
    specs = yaml.safe_load((provision_dir() / "roles" / role / "meta/argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


@functools.lru_cache(maxsize=None)
def setup_command_problems(remedy):
    """Why ``remedy`` would not work as `tracekit setup ...`; [] when it would."""
    from typer.main import get_command

    from tracekit import cli

    words = shlex.split(remedy)
    if words[:2] != ["tracekit", "setup"]:
        return ("not a `tracekit setup` command",)
    command = get_command(cli.app).get_command(None, "setup")
    try:
        params = command.make_context("setup", words[2:]).params
    except Exception as exc:  # click's usage errors: what the user would see
        return ("the CLI refuses it: %s" % exc,)
    components = params["components"] or []
    available = setup.available_components()
    problems = ["no component %s" % c for c in components if c not in available]
    options = {}
    for component in components:
        options.update(role_options(component) if component in available else {})
    for key, value in setup.parse_vars(params["var"] or []).items():
        if key not in options:
            problems.append("--var %s: no such option of %s" % (key, ", ".join(components)))
        elif options[key].get("choices") and value not in options[key]["choices"]:
            problems.append("--var %s=%s: not one of %s" % (key, value, options[key]["choices"]))
    return tuple(problems)


def test_the_checker_finds_commands_that_would_not_work():
    assert setup_command_problems("tracekit setup sysdig --var tracekit_sysdig_repository=vendor") == ()
    assert setup_command_problems("tracekit setup sysdig --var tracekit_sysdig_repo=vendor") == (
        "--var tracekit_sysdig_repo: no such option of sysdig",)
    assert setup_command_problems("tracekit setup sysdig --var tracekit_sysdig_repository=upstream") == (
        "--var tracekit_sysdig_repository=upstream: not one of ['distribution', 'vendor']",)
    assert setup_command_problems("tracekit setup sysdog") == ("no component sysdog",)
    assert setup_command_problems("install it by hand") == ("not a `tracekit setup` command",)
    assert setup_command_problems("tracekit setup sysdig --vars x=1")[0].startswith("the CLI refuses it")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    result = agent_facts.collect(str(full_host(tmp_path_factory.mktemp("noble"))))
    result["kernel_probes"] = {"perf_hardware": "ok", "perf_software": "ok", "bpf_prog_load": "ok", "detail": None}
    return result


def hosts(baseline):
    """(name, facts) for each combination doctor is asked about."""
    release = baseline["kernel"]["release"]
    for distro, found, (version, option), capture, repository, kmod, headers in itertools.product(
            DISTROS, (True, False), (("0.29.3", False), ("0.36.0", False), ("0.40.0", True)), CAPTURES,
            ("distribution", "vendor"), (True, False), (True, False)):
        # Shallow copies: only these parts change (doctor never writes facts).
        facts = dict(baseline, host=dict(baseline["host"], distro=DISTROS[distro]))
        facts["tools"] = dict(baseline["tools"], sysdig=dict(
            baseline["tools"]["sysdig"], found=found, version=version if found else None,
            drivers={"modern_bpf_option": option, "kmod_built": kmod, "kmod_loaded": False}))
        record = {"component": "sysdig", "repository": repository, "unavailable": None,
                  "modern_ebpf_capture": dict(CAPTURES[capture], sysdig=version, kernel=release)
                  if CAPTURES[capture] else None}
        if distro == "trixie" and not found:
            record["unavailable"] = ("sysdig is not packaged by Debian 13; to install it from Sysdig's own "
                                     "repository: tracekit setup sysdig --var tracekit_sysdig_repository=vendor")
        facts["setup"] = {"components": {"sysdig": record}}
        if not headers:
            facts["headers"] = {}
        yield "%s-%s-%s-%s-%s-kmod%s-headers%s" % (distro, found, version, capture, repository, kmod, headers), facts


def test_every_sysdig_remedy_is_a_working_setup_command_or_no_command(baseline):
    seen, problems = set(), []
    for name, facts in hosts(baseline):
        for method in SYSDIG_METHODS:
            verdict = doctor.judge(method, facts)
            remedy = verdict.remedy
            # A sentence ("install it by hand, or use a release tracekit
            # supports"); one naming `tracekit setup` must be that command.
            if remedy is None or "tracekit setup" not in remedy:
                continue
            seen.add(remedy)
            problems += ["%s %s: %r: %s" % (name, method.id, remedy, p) for p in setup_command_problems(remedy)]
    assert problems == []
    # Not vacuous: the commands doctor has for sysdig were all met.
    assert {"tracekit setup sysdig", "tracekit setup sysdig headers",
            "tracekit setup sysdig --var tracekit_sysdig_repository=vendor"} <= seen, seen


def test_sysdig_blocks_name_a_setup_command_or_nothing_to_run(baseline):
    """Where a sysdig requirement itself blocks, on a release setup handles,
    its remedy is a `tracekit setup` command or none at all (a refusal on
    this kernel); never a half command inside a sentence."""
    for name, facts in hosts(baseline):
        if name.startswith("bionic"):
            continue
        for requirement in (doctor.need_sysdig, doctor.need_sysdig_modern, doctor.need_sysdig_kmod):
            block = requirement(facts)
            if block is None or block.remedy is None:
                continue
            assert block.remedy.startswith("tracekit setup ") or "tracekit" not in block.remedy, (name, block)
            if block.remedy.startswith("tracekit setup "):
                assert setup_command_problems(block.remedy) == (), (name, block)
