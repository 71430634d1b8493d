"""The workflow commands' pieces that need no host: parsing and folding of
real captured output (tests/data/captured/README.md says where each file
comes from), probe naming, and doctor's gate judged on a fake host's facts.
The commands themselves run for real in tests/host/test_workflows.py."""

import copy
import dataclasses
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from tests.unit.fakehost import full_host
from tracekit import doctor, workflows
from tracekit.agent import checks, outputs, perfdata
from tracekit.agent import facts as agent_facts
from tracekit.errors import UsageError
from tracekit.paths import schema_file

DATA = Path(__file__).resolve().parents[1] / "data" / "captured"


def text(directory, name):
    return (DATA / directory / name).read_text()


def meta(directory):
    return json.loads(text(directory, "meta.json"))


# -- sched: a process tree from one recording (captured here) ---------------------------------
def test_sched_forks_of_the_captured_process_tree():
    forks = perfdata.parse_sched_forks(text("workflow.sched", "parse_sched_forks.txt"))
    root = meta("workflow.sched")["result"]["pid"]
    ours = [f for f in forks if f.pid == root]
    # sh started two targets (one in the background); it was forks that started them.
    assert [(f.comm, f.child_comm) for f in ours] == [("sh", "sh"), ("sh", "sh")]
    # The machine's other processes forked too during the recording: not ours.
    assert any(f.pid != root for f in forks)
    tree = perfdata.descendants(forks, root)
    assert tree == {root} | {f.child_pid for f in ours}
    assert not tree & {f.child_pid for f in forks if f.pid not in tree}


def test_sched_tasks_of_the_tree_one_per_thread():
    tasks = perfdata.parse_sched_timehist(text("workflow.sched", "parse_sched_timehist.txt"))
    forks = perfdata.parse_sched_forks(text("workflow.sched", "parse_sched_forks.txt"))
    root = meta("workflow.sched")["result"]["pid"]
    mine = perfdata.tasks_by_tid(tasks, perfdata.descendants(forks, root))
    assert [t.tid for t in mine][0] == root and mine[0].comm == "sh"
    # A child runs as sh (forked) and, after its exec, as the target: one
    # row each, under the name it ended with, the times of both names added.
    children = mine[1:]
    assert sorted(t.comm for t in children) == ["tracekit-target", "tracekit-target"]
    renamed = 0
    for child in children:
        names = [t for t in tasks.values() if t.tid == child.tid]
        assert {t.comm for t in names} <= {"sh", "tracekit-target"}
        renamed += len(names) == 2
        assert child.switches == sum(t.switches for t in names)
        assert child.run_ms == pytest.approx(sum(t.run_ms for t in names), abs=0.001)
    assert renamed == 1  # in this capture, one child was switched out before its exec
    # What the workflow reported when it captured this is what these pieces give.
    reported = meta("workflow.sched")["result"]["tasks"]
    assert [(t["tid"], t["comm"], t["run_ms"]) for t in reported] == [(t.tid, t.comm, t.run_ms) for t in mine]


def _as_if_perf_missed_the_comms_of(timehist, tids):
    """The timehist text perf prints when it saw no comm or fork record of
    ``tids`` (on a busy Debian 12 box it named `sleep` ":27134"): perf's
    thread.c calls such a thread ":TID", so timehist shows ":TID[TID]".
    The columns stay where they were."""
    def missed(match):
        name = ":%s[%s]" % (match.group(2), match.group(2))
        return name + " " * max(len(match.group(0)) - len(name), 1)
    pattern = re.compile(r"(\S+)\[(%s)\]\s+" % "|".join(str(t) for t in tids))
    return "\n".join(pattern.sub(missed, line, count=1) if re.match(r"^\s*\d+\.\d+ ", line) else line
                     for line in timehist.splitlines())


def test_sched_names_perf_missed_come_from_the_kernels_records():
    script = text("workflow.sched", "parse_sched_forks.txt")
    root = meta("workflow.sched")["result"]["pid"]
    as_recorded = perfdata.command_tasks(perfdata.parse_sched_timehist(text("workflow.sched",
                                                                            "parse_sched_timehist.txt")), script, root)
    children = [t.tid for t in as_recorded[1:]]
    missed = perfdata.parse_sched_timehist(_as_if_perf_missed_the_comms_of(
        text("workflow.sched", "parse_sched_timehist.txt"), [root] + children))
    assert {t.comm for t in missed.values() if t.tid in [root] + children} == {":%d" % t for t in [root] + children}
    mine = perfdata.command_tasks(missed, script, root)
    # The same tasks, times and names as where perf had the names: sh and the two targets.
    assert [dataclasses.astuple(t) for t in mine] == [dataclasses.astuple(t) for t in as_recorded]
    assert [t.comm for t in mine] == ["sh", "tracekit-target", "tracekit-target"]


def test_sched_comms_as_the_kernel_recorded_them():
    comms = perfdata.parse_sched_comms(text("workflow.sched", "parse_sched_forks.txt"))
    root = meta("workflow.sched")["result"]["pid"]
    assert comms[root] == "sh"
    # The children ran as sh (forked), then as the target after their exec: the latest name counts.
    assert [comms[t["tid"]] for t in meta("workflow.sched")["result"]["tasks"][1:]] == ["tracekit-target"] * 2
    assert 0 not in comms  # the idle task is no task of anyone's
    assert comms[32758] == "qemu-system-x86"
    # A name with a space (a browser's thread), in a sched_switch record as perf 6.1 prints it.
    line = ("  Web Content  4711 [000]  1.000001:       sched:sched_switch: prev_comm=Web Content prev_pid=4711 "
            "prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120\n")
    assert perfdata.parse_sched_comms(line) == {4711: "Web Content"}
    with pytest.raises(ValueError, match="no perf script samples"):
        perfdata.parse_sched_comms(text("perf.sched", "parse_target_pid.txt"))


@pytest.mark.parametrize("directory", ["workflow.sched", "workflow.probe"])
def test_captured_documents_fit_the_schema(directory):
    jsonschema.validate(meta(directory)["result"], json.loads(schema_file("workflow.schema.json").read_text()))


def test_sched_forks_of_a_recording_without_forks_and_of_no_recording():
    # The perf.sched check's target starts nothing: perf sched timehist text has no fork.
    assert perfdata.parse_sched_forks(text("perf.flamegraph", "fold_perf_script.txt")) == []
    with pytest.raises(ValueError, match="no perf script samples in: pid 1666"):
        perfdata.parse_sched_forks(text("perf.sched", "parse_target_pid.txt"))
    with pytest.raises(ValueError, match="empty"):
        perfdata.parse_sched_forks("")


def test_descendants_in_any_order():
    forks = [perfdata.Fork("b", 2, "b", 3), perfdata.Fork("a", 1, "a", 2), perfdata.Fork("x", 9, "x", 10)]
    assert perfdata.descendants(forks, 1) == {1, 2, 3}
    assert perfdata.descendants(forks, 4) == {4}


# -- flamegraph: folding and the hottest functions (captured here) --------------------------------
def test_flamegraph_hottest_functions_of_the_captured_recording():
    folded = perfdata.fold_perf_script(text("perf.flamegraph", "fold_perf_script.txt"))
    leaves = perfdata.leaf_samples(folded)
    assert sum(leaves.values()) == folded.samples == 35
    assert leaves["tk_work"] == 33  # the stacks ending in tk_work
    # The two samples that caught an interrupt in tk_work end in the kernel.
    assert all(name != "tk_work" for name, n in leaves.items() if n < 33)
    svg = perfdata.flamegraph_svg(folded, "tracekit flamegraph: target")
    assert "tk_work (35 samples, 100.00%)" in svg


# -- probe: naming, perf probe's report, the hits (captured here) ------------------------------------
def test_probe_event_names():
    assert workflows.probe_events(["tk_work n", "tk_work%return ret=$retval:s32"]) == [
        ("tk_work", "tk_work n"), ("tk_work", "tk_work%return ret=$retval:s32")]
    # Two entry probes of one function need two names; perf adds __return to return probes itself.
    assert [n for n, _ in workflows.probe_events(["tk_work n", "tk_work+4", "tk_work%return"])] == \
        ["tk_work", "tk_work_2", "tk_work"]
    assert workflows.probe_events(["mine=tk_work n"]) == [("mine", "tk_work n")]
    assert workflows.probe_events(["foo.isra.0"]) == [("foo_isra_0", "foo.isra.0")]


@pytest.mark.parametrize("definition, message", [
    ("grp:mine=tk_work", "no GROUP: please"),
    ("+4 n", "expected FUNC"),
])
def test_probe_definitions_refused_as_usage_errors(definition, message):
    with pytest.raises(UsageError, match=message):
        workflows.probe_events([definition])


def test_probe_added_events_as_perf_reported_them():
    added = outputs.parse_perf_probe_added(text("workflow.probe", "parse_perf_probe_added.txt"))
    group = meta("workflow.probe")["result"]["probes"][0]["event"].split(":")[0]
    assert [event for event, _ in added] == ["%s:tk_work" % group, "%s:tk_work__return" % group]
    assert added[0][1].startswith("tk_work in /") and added[0][1].endswith("/tracekit-target with n")
    assert added[1][1].endswith("with ret=$retval:s32")
    assert outputs.parse_perf_probe_added("Probe point 'nosuchfn' not found.\n") == []


def test_probe_hits_with_their_arguments():
    script = text("workflow.probe", "parse_probe_hits.txt")
    group = meta("workflow.probe")["result"]["probes"][0]["event"].split(":")[0]
    hits = outputs.parse_probe_hits(script, group)
    assert [(h.event.split(":")[1], h.fields) for h in hits] == [
        ("tk_work", {"n": "1"}), ("tk_work__return", {"ret": "3"}), ("tk_work", {"n": "2"}),
        ("tk_work__return", {"ret": "5"}), ("tk_work", {"n": "3"}), ("tk_work__return", {"ret": "7"})]
    assert {(h.comm, h.pid == h.tid) for h in hits} == {("tracekit-target", True)}
    assert [h.time for h in hits] == sorted(h.time for h in hits)
    assert outputs.parse_probe_hits(script, "tk_probe_00000000_1") == []
    # The perf.probe.user check's capture: the same parser, the check's own group.
    name, = json.loads(text("perf.probe.user", "meta.json"))["calls"][0]["args"]
    user = outputs.parse_probe_hits(text("perf.probe.user", "parse_trace_lines.txt"), checks.GROUP)
    assert [h.fields["n"] for h in user] == ["1", "2", "3"] and {h.event for h in user} == {"tracekit:" + eval(name)}


# -- funcgraph: records of a function_graph trace (published: Documentation/trace/ftrace.rst) --------
def test_function_graph_records_with_the_funcgraph_proc_column():
    records = outputs.parse_function_graph_records(text("ftrace.function_graph", "ftrace-rst-funcgraph-proc.txt"))
    assert len(records) == 9
    assert {(r.cpu, r.task, r.pid) for r in records} == {(0, "sh", 4802)}
    assert [r.call for r in records[:4]] == ["d_free() {", "call_rcu() {", "__call_rcu() {", "rcu_process_gp_end();"]
    assert [r.duration_us for r in records[:4]] == [None, None, None, 0.616]
    # Nesting as the trace indents it; "+ 49.370 us" carries an overhead mark.
    assert [r.depth for r in records] == [8, 9, 10, 11, 11, 10, 9, 8, 7]
    assert records[-1].duration_us == 49.37 and records[-1].call == "}"


def test_function_graph_records_without_the_task_column():
    sample = text("ftrace.function_graph", "ftrace-rst-function_graph.txt")
    records = outputs.parse_function_graph_records(sample)
    lines = [line for line in sample.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(records) == len(lines)
    assert records[0].task is None and records[0].call == "sys_open() {" and records[0].depth == 0
    assert records[1].call == "do_sys_open() {" and records[1].depth == 1


# -- doctor's gate, on a fake host's facts ------------------------------------------------------------
@pytest.fixture(scope="module")
def ready_facts(tmp_path_factory):
    facts = agent_facts.collect(str(full_host(tmp_path_factory.mktemp("noble"))))
    facts["kernel_probes"] = {"perf_hardware": "ok", "perf_software": "ok", "bpf_prog_load": "ok", "detail": None}
    return facts


@pytest.mark.parametrize("workflow", sorted(workflows.CHECK_OF))
def test_gate_lets_every_workflow_run_where_doctor_says_ready(workflow, ready_facts):
    workflows.gate(workflow, workflows.CHECK_OF[workflow], doctor.evaluate(ready_facts))


@pytest.mark.parametrize("workflow, change, method", [
    ("funcgraph", lambda f: f["tracefs"].update(available_tracers=["function", "nop"]), "ftrace.function_graph"),
    ("funcgraph", lambda f: f["tracefs"].update(function_filter="EPERM (Operation not permitted)"),
     "ftrace.function_graph"),
    ("flamegraph", lambda f: f["tools"].update(perf={"found": False}), "perf.sampling"),
    ("sched", lambda f: f["tracefs"].update(syscall_events=False, sched_events=False), "tracepoint"),
    ("probe", lambda f: f["tracefs"].update(kprobe_events=False), "perf.probe.kernel"),
    ("probe -x", lambda f: f["tracefs"].update(uprobe_events=False), "perf.probe.user"),
])
def test_gate_refuses_with_doctors_verdict(workflow, change, method, ready_facts):
    facts = copy.deepcopy(ready_facts)
    change(facts)
    verdict = next(v for v in doctor.evaluate(facts).verdicts if v.id == method)
    assert verdict.status in (doctor.UNAVAILABLE, doctor.MISSING)
    with pytest.raises(workflows.Refused) as info:
        workflows.gate(workflow, workflows.CHECK_OF[workflow], doctor.evaluate(facts))
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 1
    assert message == "%s refused: %s is %s here: %s; fix: %s" % (
        workflow, method, verdict.status, verdict.reason, verdict.remedy)
    assert info.value.method == method and info.value.verdict == verdict.to_dict()


def test_someone_elses_tracing_refuses_the_workflow(monkeypatch, tmp_path):
    # Stand-ins for root, doctor and its gate: the point is what the session
    # makes of a check that found the global tracer in use (tested with a
    # stand-in tracefs in tests/unit/test_check_failures.py).
    monkeypatch.setattr(workflows, "require_root", lambda name: None)
    monkeypatch.setattr(workflows.doctor, "diagnose", lambda: type("Report", (), {"facts": {}, "verdicts": []})())
    monkeypatch.setattr(workflows, "gate", lambda *args: None)
    with pytest.raises(workflows.Failed, match=r"^funcgraph refused: global tracer in use \(current_tracer=function\)$"):
        with workflows._session("funcgraph", ["true"]):
            raise checks.CheckSkipped("global tracer in use (current_tracer=function)")


def test_probe_on_an_inlined_function_is_one_event_with_its_places(capsys):
    # perf lists a multi-probe event once per probe point (captured here: a function inlined twice).
    added = outputs.parse_perf_probe_added(text("workflow.probe", "parse_perf_probe_added-inlined.txt"))
    assert [event for event, _ in added] == ["tk_probe_5eed1e55_1:twice"] * 2
    points = workflows.probe_points(added)
    assert points == [{"event": "tk_probe_5eed1e55_1:twice", "on": "twice in /tmp/tkx/inl", "places": 2}]
    hits = outputs.parse_probe_hits(text("workflow.probe", "parse_probe_hits-inlined.txt"), "tk_probe_5eed1e55_1")
    result = workflows.ProbeResult("probe", ["./inl", "2"], 0, False, binary="/tmp/tkx/inl", definitions=["twice"],
                                   probes=points, hits=hits)
    assert result.counts == {"tk_probe_5eed1e55_1:twice": 2}
    jsonschema.validate(result.to_dict(), json.loads(schema_file("workflow.schema.json").read_text()))
    from tracekit import output

    output.print_probe(result)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [h.line for h in hits] + ["2 hits of tk_probe_5eed1e55_1:twice (on twice in /tmp/tkx/inl, 2 places)",
                                              "probes deleted again"]


def test_probe_points_keep_one_entry_per_event_in_order():
    added = outputs.parse_perf_probe_added(text("workflow.probe", "parse_perf_probe_added.txt"))
    assert [(p["event"].split(":")[1], p["places"]) for p in workflows.probe_points(added)] == [
        ("tk_work", 1), ("tk_work__return", 1)]


# -- perf's own status lines: kept, not shown ---------------------------------------------------------
def _relayed(show, argv):
    """What ``argv``'s stderr, run as a workflow runs its recording, puts on
    the terminal (a pipe here) and what it keeps."""
    read, write = os.pipe()
    with workflows.ToolMessages(show, sink=write) as messages:
        recorded = checks.record(argv, **messages.how)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        return recorded, f.read().decode(), messages.lines


def test_perfs_status_lines_are_kept_off_the_terminal():
    # perf sched record's real stderr (captured here), written by a shell as perf would.
    captured = DATA / "workflow.sched" / "perf-sched-record-stderr.txt"
    status = [line for line in captured.read_text().splitlines() if line.startswith("[ perf record:")]
    assert len(status) == 2
    recorded, shown, kept = _relayed(False, ["/bin/sh", "-c", 'cat "$0" >&2; printf "a prompt: " >&2', str(captured)])
    assert recorded.returncode == 0 and recorded.output is None
    assert shown == "from-the-command\na prompt: "
    assert kept == status
    # --verbose: shown as well, in their place.
    _, shown, kept = _relayed(True, ["/bin/sh", "-c", 'cat "$0" >&2', str(captured)])
    assert shown == captured.read_text() and kept == status


def test_tool_messages_are_in_the_document():
    result = workflows.SchedResult("sched", ["true"], 0, False, pid=1, tool_messages=["[ perf record: x ]"])
    document = result.to_dict()
    assert document["tool_messages"] == ["[ perf record: x ]"]
    jsonschema.validate(document, json.loads(schema_file("workflow.schema.json").read_text()))
