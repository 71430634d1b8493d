"""Human output (tracekit/output.py) prints what hosts and tools said as
they said it: frame names such as ``[unknown]`` and ``[kernel.kallsyms]``,
task names, tool output, reasons and host names are never read as rich
markup (which drops ``[unknown]`` and fails on ``[/]``) or emoji codes."""

import dataclasses
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from tests.unit.fakehost import full_host
from tracekit import doctor, output, setup, verify, workflows
from tracekit.agent import facts as agent_facts
from tracekit.agent import outputs, perfdata

DATA = Path(__file__).resolve().parents[1] / "data"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Real names first (perf prints the first two for frames without a symbol),
# then strings that are markup or an emoji code to rich.
HOSTILE = ["[unknown]", "[kernel.kallsyms]", "[bold]x[/bold]", "[/]", "[ld-linux-x86-64.so.2]", ":thumbs_up:"]


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    # Wide enough that no table cell is folded: each string shows on one line.
    monkeypatch.setenv("COLUMNS", "200")


def shown(capsys):
    out, err = capsys.readouterr()
    return ANSI.sub("", out), ANSI.sub("", err)


def assert_verbatim(text, strings):
    missing = [s for s in strings if s not in text]
    assert not missing, (missing, text)


def test_flamegraph_hottest_functions_as_perf_named_them(capsys):
    # A real recording (perf 6.8) whose second hottest leaf is a frame with no symbol.
    folded = perfdata.fold_perf_script((DATA / "perf/script-g-perf6.8.txt").read_text())
    leaves = perfdata.leaf_samples(folded)
    assert "[ld-linux-x86-64.so.2]" in leaves
    hottest = [{"function": name, "samples": n} for name, n in sorted(leaves.items(), key=lambda i: -i[1])[:4]]
    hottest += [{"function": name, "samples": 1} for name in HOSTILE]
    result = workflows.FlameGraphResult("flamegraph", ["./[x]"], 0, False, svg="[unknown].svg",
                                        samples=folded.samples, stacks=len(folded), hottest=hottest)
    output.print_flamegraph(result)
    out, _ = shown(capsys)
    rows = [line.strip("│ ").split("│")[0].strip() for line in out.splitlines() if line.startswith("│")]
    assert rows == [entry["function"] for entry in hottest]
    assert "written to [unknown].svg" in out


def test_sched_task_names_as_perf_printed_them(capsys):
    tasks = [perfdata.TaskTimes(name, 100 + i, 100 + i, 1, 0.5, 0.1, 0.2) for i, name in enumerate(HOSTILE + [":27134"])]
    result = workflows.SchedResult("sched", ["[bold]cmd"], 0, False, pid=100, tasks=tasks,
                                   total=perfdata.combined("[/]", 100, 100, tasks))
    output.print_sched(result)
    out, _ = shown(capsys)
    names = [line.strip("│ ").split("│")[0].strip() for line in out.splitlines() if line.startswith("│")]
    assert names == HOSTILE + [":27134", "all %d tasks" % len(tasks)]


def test_funcgraph_and_probe_lines_as_the_tools_printed_them(capsys):
    output.print_funcgraph(workflows.FuncGraphResult("funcgraph", ["[bold]cat[/bold]"], 0, False, function="[/]",
                                                     pid=7, calls=1, lines=[" 0)  [unknown]() {"]))
    out, _ = shown(capsys)
    assert out.splitlines() == [" 0)  [unknown]() {", "1 call of [/] by [bold]cat[/bold] (pid 7 and what it started)"]
    script = (DATA / "captured/workflow.probe/parse_probe_hits.txt").read_text()
    group = "tk_probe_d5ed02e4_1"
    hits = outputs.parse_probe_hits(script, group)
    assert hits
    output.print_probe(workflows.ProbeResult("probe", ["t"], 0, False, binary=None, definitions=["tk_work n"],
                                             probes=[{"event": hits[0].event, "on": "[kernel.kallsyms] [/]"}],
                                             hits=hits))
    out, _ = shown(capsys)
    assert_verbatim(out, [h.line for h in hits] + ["(on [kernel.kallsyms] [/])"])


def test_doctor_facts_reasons_and_notes_as_the_host_gave_them(tmp_path, capsys):
    facts = agent_facts.collect(str(full_host(tmp_path / "host")))
    facts["host"]["hostname"] = "[bold]x[/bold]"
    facts["kernel"]["release"] = "6.1.0-[unknown]"
    facts["unreadable"] = ["/proc/[/]"]
    report = doctor.evaluate(facts)
    report.verdicts[0] = dataclasses.replace(report.verdicts[0], reason="perf said: [kernel.kallsyms] [/]",
                                             remedy="run [bold]x", notes=[":thumbs_up: [red]"])
    output.print_doctor(report)
    out, err = shown(capsys)
    assert_verbatim(out, ["[bold]x[/bold] — ", "6.1.0-[unknown]", "perf said: [kernel.kallsyms] [/]",
                          "fix: run [bold]x", ": :thumbs_up: [red]"])
    assert err.strip() == "could not read /proc/[/]"


def test_setup_summary_as_the_hosts_and_roles_said_it(capsys):
    summary = setup.HostSummary(components={"perf": {"ok": 1, "changed": 0, "failed": 1, "skipped": 0}},
                                notices=[{"component": "sysdig", "message": "[/] sysdig [unknown]"}],
                                failures=[{"component": "perf", "task": "[bold]t", "message": "E: [kernel.kallsyms]"}],
                                doctor={"summary": {"ready": 1, "missing": 1}, "methods": {"[unknown]": "missing"}})
    broken = setup.HostSummary(doctor={"error": "[red]no facts[/red]"})
    output.print_setup(setup.SetupResult("failed", 2, {"[bold]web1[/bold]": summary, "[/]": broken},
                                         error="ERROR! [x]"))
    out, _ = shown(capsys)
    assert_verbatim(out, ["[bold]web1[/bold]", "[bold]web1[/bold]: sysdig: [/] sysdig [unknown]",
                          "[bold]web1[/bold]: perf: [bold]t: E: [kernel.kallsyms]", "ansible: ERROR! [x]",
                          "doctor now reports for [bold]web1[/bold]: 1 ready, 1 missing; missing: [unknown]",
                          "doctor for [/]: [red]no facts[/red]"])


def test_verify_table_as_the_checks_said_it(capsys):
    result = verify.VerifyResult({
        "[bold]h[/bold]": {"results": [{"id": "perf.flamegraph", "status": "failed", "seconds": 1.0, "evidence": [],
                                        "detail": "perf: [unknown] [/]"}],
                           "state_changed": ["[x]"], "interrupted": True},
        "[/]": {"unreachable": "ssh: [red]no route"},
    }, artifacts="/tmp/[unknown]")
    output.print_verify(result)
    out, _ = shown(capsys)
    assert_verbatim(out, ["[bold]h[/bold]", "perf: [unknown] [/]", "ssh: [red]no route",
                          "[bold]h[/bold]: 1 failed", "[bold]h[/bold]: interrupted", "['[x]']",
                          "artifacts: /tmp/[unknown]"])


# -- progress on stderr: the consoles are the caller's (markup on, as rich's default) ---------------
def test_progress_lines_show_host_task_and_detail_as_given():
    console = Console(file=io.StringIO(), width=200)
    lines = output.SetupProgress(console)
    lines.event({"event": "playbook_on_task_start", "event_data": {"role": "[bold]r", "task": "[/] task"}})
    lines.event({"event": "runner_on_ok", "event_data": {"host": "[unknown]", "res": {}}})
    check = type("Check", (), {"id": "[/]", "title": "[bold]t"})()
    result = type("Result", (), {"status": "failed", "detail": "perf: [kernel.kallsyms]"})()
    output.VerifyProgress(console).result(check, result)
    text = console.file.getvalue()
    assert_verbatim(text, ["[bold]r: [/] task", "[unknown]", "perf: [kernel.kallsyms]", "[/]"])


def test_live_displays_show_host_task_and_check_as_given():
    console = Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)
    live = output.LiveSetupProgress(console, clock=lambda: 10.0)
    live.event({"event": "runner_on_start", "event_data": {"host": "[bold]h[/bold]", "task": "[/] :thumbs_up:",
                                                           "role": "[unknown]", "resolved_action": "x"}})
    live.event({"event": "runner_on_unreachable", "event_data": {"host": "[/]", "res": {"msg": "[red]down"}}})
    console.print(live)
    check = type("Check", (), {"id": "[/]", "title": "[bold]t :thumbs_up:"})()
    bar = output.LiveVerifyProgress(1, console)
    bar.start(check)
    console.print(bar.progress)
    text = ANSI.sub("", console.file.getvalue())
    assert_verbatim(text, ["[bold]h[/bold]", "[unknown]: [/] :thumbs_up:", "unreachable: [red]down",
                           "[/]: [bold]t :thumbs_up:"])
