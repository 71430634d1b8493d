"""The workflow commands at the command line's edge: help, usage errors and
refusals, through typer's CliRunner.  Nothing here traces (the real runs are
in tests/host/test_workflows.py); a refusal is doctor's verdict, judged by
the real doctor on this machine's facts, or on those facts with one changed."""

import copy
import os

import pytest
from typer.testing import CliRunner

from tracekit import doctor, workflows
from tracekit.agent import facts as agent_facts
from tracekit.cli import app

COMMANDS = {"flamegraph": ["flamegraph", "--", "true"], "funcgraph": ["funcgraph", "do_sys_openat2", "--", "true"],
            "sched": ["sched", "--", "true"], "probe": ["probe", "do_sys_openat2", "--", "true"],
            "probe -x": ["probe", "-x", "/bin/true", "main", "--", "true"]}


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def one_line_error(result, code):
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracekit: error: "), result.stderr
    return lines[0][len("tracekit: error: "):]


@pytest.fixture
def no_doctor(monkeypatch):
    """Usage errors come before doctor is asked."""
    def called():
        raise AssertionError("doctor was asked before the usage was checked")
    monkeypatch.setattr(doctor, "diagnose", called)


@pytest.fixture(scope="module")
def machine_facts():
    return agent_facts.collect("/")


@pytest.fixture
def as_root_with(monkeypatch):
    """Run as root (the gate comes after the root check) with doctor judging ``facts``."""
    def use(facts):
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        monkeypatch.setattr(doctor, "diagnose", lambda root="/", required=(): doctor.evaluate(facts))
    return use


@pytest.mark.parametrize("name", ["flamegraph", "funcgraph", "sched", "probe"])
def test_help_reads_like_a_man_page(name):
    result = invoke(name, "--help")
    assert result.exit_code == 0
    for part in ("Examples:", "sudo tracekit %s" % name, "Exit codes:", "130", "docs/workflows.md", "-- CMD..."):
        assert part in result.stdout, (part, result.stdout)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_missing_command(name, no_doctor):
    args = COMMANDS[name][:COMMANDS[name].index("--")]
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Missing argument '-- CMD...'" in result.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_not_found(name, no_doctor):
    args = COMMANDS[name][:-1] + ["tracekit-no-such-command"]
    assert one_line_error(invoke(*args), 2) == "tracekit-no-such-command: command not found (or not executable)"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_not_root(name, no_doctor, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    message = one_line_error(invoke(*COMMANDS[name]), 2)
    assert message == "tracing needs root (uid is 1000): run `sudo tracekit %s ...`" % name.split()[0]


@pytest.mark.parametrize("args, message", [
    (["probe", "grp:ev=do_sys_openat2", "--", "true"], "probe 'grp:ev=do_sys_openat2': no GROUP: please"),
    (["probe", "+4", "--", "true"], "probe '+4': expected FUNC[ ARG...]"),
    (["probe", "-x", "/nonexistent/prog", "main", "--", "true"], "-x /nonexistent/prog: no such file"),
    (["funcgraph", "do_sys_openat2 vfs_read", "--", "true"], "FUNC 'do_sys_openat2 vfs_read': one kernel function"),
    (["flamegraph", "-o", "/nonexistent/dir/f.svg", "--", "true"], "--output /nonexistent/dir/f.svg: not a file"),
])
def test_usage_errors(args, message, no_doctor):
    assert one_line_error(invoke(*args), 2).startswith(message)


def test_frequency_must_be_positive(no_doctor):
    result = invoke("flamegraph", "-F", "0", "--", "true")
    assert result.exit_code == 2 and "--frequency" in result.stderr


def test_options_end_at_the_first_argument(no_doctor, monkeypatch):
    # Like perf and time: what follows the command's name is the command's.
    seen = {}

    def fake(command, output, frequency, verbose=False):
        seen.update(command=command, output=output)
        raise workflows.Failed("flamegraph: stop here")
    monkeypatch.setattr(workflows, "flamegraph", fake)
    one_line_error(invoke("flamegraph", "ls", "-l", "--json"), 1)
    assert seen["command"] == ["ls", "-l", "--json"]


# -- refusals: doctor's verdict -----------------------------------------------------------------------
def _without_perf(facts):
    facts["tools"]["perf"] = {"found": False, "path": None, "usable_path": None, "version": None, "note": None}


def _skip_unless_tracefs_is_mounted(facts, method):
    # perf probe -x is judged on this machine's tracefs (uprobe_events) too: in
    # a chroot without /sys, or while tracefs is unmounted, perf is not the only
    # cause and the refusal is another one.
    tracefs = facts["tracefs"]
    if method == "perf.probe.user" and not (tracefs.get("readable") and tracefs.get("mounted")):
        pytest.skip("%s is judged on tracefs too, and tracefs here: %s" % (
            method, tracefs.get("error") or "not mounted (readable only in a private mount namespace)"))


@pytest.mark.parametrize("name, method", [("flamegraph", "perf.sampling"), ("sched", "perf.counters.software"),
                                          ("probe -x", "perf.probe.user"), ("probe", "perf.probe.kernel")])
def test_refused_without_perf(name, method, machine_facts, as_root_with):
    facts = copy.deepcopy(machine_facts)
    _skip_unless_tracefs_is_mounted(facts, method)
    _without_perf(facts)
    verdict = next(v for v in doctor.evaluate(facts).verdicts if v.id == method)
    assert verdict.status in (doctor.MISSING, doctor.UNAVAILABLE)
    as_root_with(facts)
    message = one_line_error(invoke(*COMMANDS[name]), 1)
    assert message == "%s refused: %s is %s here: %s; fix: %s" % (name, method, verdict.status, verdict.reason,
                                                                  verdict.remedy)
    if verdict.status == doctor.MISSING:
        # perf first; debugfs too where this machine's tracefs is not mounted (a
        # fresh boot), which uprobes need as well.
        assert verdict.reason == "perf is not installed", verdict
        assert verdict.remedy in ("tracekit setup perf", "tracekit setup perf debugfs"), verdict


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_refusal_with_json_leaves_stdout_empty(name, machine_facts, as_root_with):
    # As every command's --json (docs/json.md): an error is one line on stderr, no document.
    facts = copy.deepcopy(machine_facts)
    _skip_unless_tracefs_is_mounted(facts, "perf.probe.user" if name == "probe -x" else None)
    _without_perf(facts)
    facts["tracefs"]["available_tracers"] = ["nop"]  # and no function_graph
    as_root_with(facts)
    argv = COMMANDS[name]
    result = invoke(argv[0], "--json", *argv[1:])
    assert one_line_error(result, 1).startswith("%s refused: " % name)
    assert result.stdout == ""


def test_funcgraph_on_this_machine_as_doctor_says(machine_facts):
    if os.geteuid() != 0:
        pytest.skip("doctor judges tracefs only as root (euid %d)" % os.geteuid())
    verdict = next(v for v in doctor.evaluate(machine_facts).verdicts if v.id == "ftrace.function_graph")
    if verdict.status not in (doctor.UNAVAILABLE, doctor.MISSING):
        pytest.skip("doctor: ftrace.function_graph is %s here (%s): no refusal to test; the real trace is in "
                    "tests/host/test_workflows.py" % (verdict.status, verdict.reason))
    message = one_line_error(invoke(*COMMANDS["funcgraph"]), 1)
    assert message == "funcgraph refused: ftrace.function_graph is %s here: %s; fix: %s" % (
        verdict.status, verdict.reason, verdict.remedy)
