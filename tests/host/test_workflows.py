"""The workflow commands for real on this machine: flamegraph, sched and
probe run tracekit's probe target (tracekit/agent/target.c) and their
results must show what it did; funcgraph and kernel probes run where doctor
says they can and must be refused with doctor's reason where it says they
cannot.  The global tracing state (tracefs settings, instances, probes) is
compared before and after every run, failures and Ctrl-C included."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from tracekit import doctor
from tracekit.agent import checks
from tracekit.agent import verify as agent_verify
from tracekit.paths import schema_file

REPO = Path(__file__).resolve().parents[2]
# The tracekit of this checkout, whatever the working directory.
ENV = dict(os.environ, PYTHONPATH=str(REPO))
SCHEMA = json.loads(schema_file("workflow.schema.json").read_text())
TARGET_PID = re.compile(r"^pid (\d+)$", re.M)


def tracekit(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "tracekit"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=ENV, cwd=str(cwd), timeout=timeout)


def interrupted(*args, cwd, after):
    """tracekit ARGS, sent SIGINT (as Ctrl-C does) ``after`` seconds in."""
    proc = subprocess.Popen([sys.executable, "-m", "tracekit"] + list(args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, env=ENV, cwd=str(cwd))
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def ok_json(result):
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # stdout holds the document and nothing else
    jsonschema.validate(document, SCHEMA)
    return document


def one_line_error(result):
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("tracekit: ")]
    assert len(lines) == 1 and lines[0].startswith("tracekit: error: "), result.stderr
    return lines[0][len("tracekit: error: "):]


def needs_ready(verdicts, method):
    verdict = verdicts[method]
    if verdict.status != doctor.READY:
        pytest.skip("doctor: %s is %s: %s" % (method, verdict.status, verdict.reason))


def probes_of(tracefs, group):
    return [line for name in ("uprobe_events", "kprobe_events") if os.path.exists(os.path.join(tracefs, name))
            for line in open(os.path.join(tracefs, name)) if ":%s/" % group in line]


@pytest.fixture
def state_as_found(tracefs):
    """Fails the test unless the global tracing state (settings, instances,
    probes) is as it was.  This kernel is shared: the instances and probes
    of other tracekit runs in flight when the test started, and of any that
    come and go meanwhile (other checkouts' tests), are not this test's; a
    leak of its own stays, and fails it."""
    before = checks.snapshot_tracing_state(tracefs)
    yield before
    in_flight = checks.run_tokens(before)
    expected = checks.without_runs(before, in_flight.__contains__)
    deadline = time.monotonic() + 15
    while True:
        after = checks.without_runs(checks.snapshot_tracing_state(tracefs), in_flight.__contains__)
        changed = agent_verify.state_changes(expected, after)
        if not changed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not changed, "tracing state changed: %r" % changed


@pytest.fixture(scope="module")
def target(check_context):
    return check_context.target()


# -- flamegraph ------------------------------------------------------------------------------------------
def test_flamegraph_of_the_target(verdicts, target, tmp_path, state_as_found):
    needs_ready(verdicts, "perf.sampling")
    svg = tmp_path / "target.svg"
    result = tracekit("flamegraph", "--json", "-o", str(svg), "--", target, "8", "0", "2000000", cwd=tmp_path)
    document = ok_json(result)
    assert document["exit_status"] == 0 and not document["interrupted"]
    # tk_work is where the target spends its time: the hottest function, and in the graph.
    assert document["hottest"][0]["function"] == "tk_work" and document["samples"] >= 5
    root = ET.parse(str(svg)).getroot()
    assert root.tag.endswith("svg")
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("tk_work (") for t in titles), titles[:10]
    assert any(t.startswith("main (") for t in titles)
    # The target's own output went to stderr, the document alone to stdout.
    assert TARGET_PID.search(result.stderr)


def test_flamegraph_ended_by_ctrl_c(verdicts, target, tmp_path, state_as_found):
    needs_ready(verdicts, "perf.sampling")
    svg = tmp_path / "long.svg"
    # 60 rounds of work 100 ms apart: about 8 s; Ctrl-C after 3 s.
    result = interrupted("flamegraph", "--json", "-o", str(svg), "--", target, "60", "100", "2000000",
                         cwd=tmp_path, after=3)
    document = ok_json(result)
    assert document["interrupted"] and document["ended"] == "stopped by Ctrl-C"
    assert "tracekit: note: %s stopped by Ctrl-C" % target in result.stderr
    assert document["hottest"][0]["function"] == "tk_work"
    assert "tk_work" in svg.read_text()


# -- sched -------------------------------------------------------------------------------------------------
def test_sched_lists_the_command_and_what_it_started(verdicts, target, tmp_path, state_as_found):
    for method in checks.CHECKS_BY_ID["perf.sched"].methods:
        needs_ready(verdicts, method)
    # sh starting two targets, one in the background.
    result = tracekit("sched", "--json", "--", "/bin/sh", "-c", '"$0" 3 10 100000 & "$0" 3 10 100000; wait',
                      target, cwd=tmp_path)
    document = ok_json(result)
    printed = sorted(int(pid) for pid in TARGET_PID.findall(result.stderr))
    assert len(printed) == 2
    tasks = document["tasks"]
    assert tasks[0]["tid"] == tasks[0]["pid"] == document["pid"] and tasks[0]["comm"] == "sh"
    targets = [t for t in tasks if t["comm"] == "tracekit-target"]
    assert sorted(t["pid"] for t in targets) == printed
    for task in targets:
        # Each target slept 3 times 10 ms between its switches, and it ran.
        # Where perf saw no wakeup of the task (this VM records sched_waking
        # but no sched_wakeup), timehist counts time off the CPU as run time:
        # the sleeps are in the sum, not always in wait_ms.
        assert task["run_ms"] > 0 and task["switches"] >= 3
        assert task["wait_ms"] + task["sch_delay_ms"] + task["run_ms"] >= 20
    assert document["total"]["run_ms"] == pytest.approx(sum(t["run_ms"] for t in tasks), abs=0.01)
    # Nothing else of the machine is listed.
    assert {t["comm"] for t in tasks} == {"sh", "tracekit-target"}
    # perf's own status lines are in the document, not on the terminal.
    assert any(m.startswith("[ perf record: Captured and wrote ") for m in document["tool_messages"])
    assert "[ perf record:" not in result.stderr


def test_sched_human_table(verdicts, target, tmp_path, state_as_found):
    for method in checks.CHECKS_BY_ID["perf.sched"].methods:
        needs_ready(verdicts, method)
    result = tracekit("sched", "--", target, "2", "10", "100000", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pid, = TARGET_PID.findall(result.stderr)
    assert "tracekit-target" in result.stdout and pid in result.stdout
    assert "sched delay ms" in result.stdout
    assert "[ perf record:" not in result.stderr
    verbose = tracekit("sched", "-v", "--", target, "2", "10", "100000", cwd=tmp_path)
    assert verbose.returncode == 0 and "[ perf record: Captured and wrote " in verbose.stderr, verbose.stderr


# -- probe ---------------------------------------------------------------------------------------------------
def test_user_probe_entry_and_return(verdicts, target, tracefs, tmp_path, state_as_found):
    needs_ready(verdicts, "perf.probe.user")
    result = tracekit("probe", "--json", "-x", target, "-a", "tk_work%return ret=$retval:s32", "tk_work n",
                      "--", target, "3", "0", cwd=tmp_path)
    document = ok_json(result)
    group = document["probes"][0]["event"].split(":")[0]
    assert re.fullmatch(r"tk_probe_[0-9a-f]{8}_\d+", group)
    assert [p["event"] for p in document["probes"]] == [group + ":tk_work", group + ":tk_work__return"]
    entries = [int(h["fields"]["n"]) for h in document["hits"] if h["event"] == group + ":tk_work"]
    returns = [int(h["fields"]["ret"]) for h in document["hits"] if h["event"] == group + ":tk_work__return"]
    # tk_work(n) is called with 1, 2, 3 and returns 2n+1.
    assert entries == [1, 2, 3] and returns == [3, 5, 7]
    pid, = TARGET_PID.findall(result.stderr)
    assert {h["pid"] for h in document["hits"]} == {int(pid)}
    assert document["counts"] == {group + ":tk_work": 3, group + ":tk_work__return": 3}
    assert probes_of(tracefs, group) == []


def test_user_probe_human_output(verdicts, target, tmp_path, state_as_found):
    needs_ready(verdicts, "perf.probe.user")
    result = tracekit("probe", "-x", target, "tk_work n", "--", target, "2", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"tk_work: \(\w+\) n=(\d)", result.stdout) == ["1", "2"]
    assert result.stdout.count("2 hits of tk_probe_") == 1 and "probes deleted again" in result.stdout


def test_user_probe_on_a_command_that_crashes(verdicts, target, tracefs, tmp_path, state_as_found):
    needs_ready(verdicts, "perf.probe.user")
    # The target runs, then its shell dies of SIGSEGV: the hits are kept, the probes go.
    result = tracekit("probe", "--json", "-x", target, "tk_work n", "--", "/bin/sh", "-c",
                      '"$0" 2 0; kill -SEGV $$', target, cwd=tmp_path)
    document = ok_json(result)
    assert document["ended"] == "crashed (SIGSEGV)"
    assert "tracekit: note: /bin/sh crashed (SIGSEGV)" in result.stderr
    assert [h["fields"]["n"] for h in document["hits"]] == ["1", "2"]
    assert probes_of(tracefs, document["probes"][0]["event"].split(":")[0]) == []


def test_user_probe_on_a_missing_function_fails_and_leaves_nothing(verdicts, target, tracefs, tmp_path,
                                                                   state_as_found):
    needs_ready(verdicts, "perf.probe.user")
    result = tracekit("probe", "-x", target, "tk_no_such_function", "--", target, "1", "0", cwd=tmp_path)
    message = one_line_error(result)
    assert message.startswith("probe: perf exited ") and "tk_no_such_function" in message, message
    assert not [n for n in os.listdir(os.path.join(tracefs, "instances")) if n.startswith("tk_")]


def test_user_probe_ended_by_ctrl_c(verdicts, target, tracefs, tmp_path, state_as_found):
    needs_ready(verdicts, "perf.probe.user")
    # 100 calls 100 ms apart (10 s); Ctrl-C after 3 s: the calls so far, in order, and no probe left.
    result = interrupted("probe", "--json", "-x", target, "tk_work n", "--", target, "100", "100",
                         cwd=tmp_path, after=3)
    document = ok_json(result)
    assert document["interrupted"]
    values = [int(h["fields"]["n"]) for h in document["hits"]]
    assert values and values == list(range(1, len(values) + 1)) and len(values) < 100
    assert probes_of(tracefs, document["probes"][0]["event"].split(":")[0]) == []


# -- what doctor says this kernel cannot do: refused with its reason, or run for real -------------------------
def refused_as_doctor_says(result, workflow, verdict):
    """Whether doctor calls the method impossible here; if so, the command
    must have been refused with doctor's verdict, in one line."""
    if verdict.status not in (doctor.UNAVAILABLE, doctor.MISSING):
        return False
    assert one_line_error(result) == "%s refused: %s is %s here: %s; fix: %s" % (
        workflow, verdict.id, verdict.status, verdict.reason, verdict.remedy)
    assert result.stdout == ""  # no document: the one line says it
    return True


def test_funcgraph_as_doctor_says(verdicts, tmp_path, state_as_found):
    result = tracekit("funcgraph", "--json", "do_sys_openat2", "--", "cat", "/etc/hostname", cwd=tmp_path)
    if refused_as_doctor_says(result, "funcgraph", verdicts["ftrace.function_graph"]):
        return
    # doctor says function_graph can work (a kernel other than this lab machine's).
    document = ok_json(result)
    assert document["calls"] > 0
    assert {r["pid"] for r in document["records"]} == {document["pid"]}
    assert any("do_sys_openat2() {" in line for line in document["lines"])


def test_kernel_probe_as_doctor_says(verdicts, tracefs, tmp_path, state_as_found):
    result = tracekit("probe", "--json", "do_sys_openat2", "--", "cat", "/etc/hostname", cwd=tmp_path)
    if refused_as_doctor_says(result, "probe", verdicts["perf.probe.kernel"]):
        return
    document = ok_json(result)
    assert document["hits"] and {h["comm"] for h in document["hits"]} == {"cat"}
    assert probes_of(tracefs, document["probes"][0]["event"].split(":")[0]) == []


# -- the recording runner: how Ctrl-C ends a recording -------------------------------------------------------
# A stand-in for perf: it ends with status 7 on SIGINT, as perf ends on Ctrl-C
# (perf's own status there depends on its workload).
ENDS_ON_SIGINT = [sys.executable, "-c", "import signal, sys, time\n"
                  "signal.signal(signal.SIGINT, lambda *a: sys.exit(7))\ntime.sleep(60)"]


def ctrl_c_in(seconds):
    """SIGINT to this process, as the terminal sends it on Ctrl-C."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_ends_an_interruptible_recording():
    ctrl_c_in(0.5)
    start = time.monotonic()
    recorded = checks.record(ENDS_ON_SIGINT, timeout=None, check=False, interruptible=True)
    assert recorded.interrupted and recorded.returncode == 7
    assert time.monotonic() - start < 15


def test_ctrl_c_goes_on_once_a_check_recording_ended():
    ctrl_c_in(0.5)
    proc = checks.start(ENDS_ON_SIGINT)
    with pytest.raises(KeyboardInterrupt):
        checks.finish(proc, ENDS_ON_SIGINT, timeout=30)
    assert proc.returncode == 7  # ended before the interrupt went on


def test_ctrl_c_waits_for_the_clean_up():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with checks.sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            done.append("cleaned up")
    assert done == ["cleaned up"]


def test_an_ignored_ctrl_c_stays_ignored_after_the_clean_up():
    # A background job of a non-interactive shell starts with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with checks.sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# -- funcgraph's own steps, where this kernel has no function_graph ----------------------------------------------
WRITES_ITS_PID = [sys.executable, "-c", "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid()))"]


def test_a_stopped_start_runs_only_when_resumed(tmp_path):
    pidfile = tmp_path / "pid"
    proc = checks.start_stopped(WRITES_ITS_PID + [str(pidfile)])
    time.sleep(0.3)
    assert not pidfile.exists()  # held before its exec: a pid filter can be set first
    os.kill(proc.pid, signal.SIGCONT)
    recorded = checks.finish(proc, WRITES_ITS_PID, timeout=30)
    assert recorded.returncode == 0 and pidfile.read_text() == str(proc.pid)


def test_funcgraph_steps_around_the_tracer(tracefs, tmp_path, monkeypatch, data_dir):
    """The steps of `tracekit funcgraph` around the tracer, run for real: the
    command started held, resumed inside the trace, its pid the filter.
    Stand-ins, and why: this kernel has no usable function_graph tracer
    (LAB.md; test_funcgraph_as_doctor_says checks the refusal), so doctor's
    verdict is the one it gives a kernel that lists the tracer (this machine's facts with function_graph in
    available_tracers and its filter file readable), and the tracer itself
    is replaced by the published funcgraph-proc trace of ftrace.rst.  The
    real trace runs in test_funcgraph_as_doctor_says where doctor allows."""
    from tracekit import workflows
    from tracekit.agent import facts as agent_facts

    facts = agent_facts.collect("/")
    facts["tracefs"]["available_tracers"] = sorted(set(facts["tracefs"].get("available_tracers") or [])
                                                   | {"function_graph"})
    facts["tracefs"]["function_filter"] = "readable"
    facts.setdefault("sysctl", {})["ftrace_enabled"] = 1
    monkeypatch.setattr(doctor, "diagnose", lambda root="/", required=(): doctor.evaluate(facts))
    published = (data_dir / "captured/ftrace.function_graph/ftrace-rst-funcgraph-proc.txt").read_text()
    seen = {}

    def tracer(ctx, fn, pid, traced, follow_forks=False):
        seen.update(fn=fn, pid=pid, follow_forks=follow_forks, ran_before=pidfile.exists())
        traced()
        return published

    monkeypatch.setattr(checks, "function_graph", tracer)
    pidfile = tmp_path / "pid"
    result = workflows.funcgraph("d_free", WRITES_ITS_PID + [str(pidfile)])
    assert seen == {"fn": "d_free", "pid": result.pid, "follow_forks": True, "ran_before": False}
    assert pidfile.read_text() == str(result.pid) and result.exit_status == 0
    assert result.calls == 1 and len(result.records) == 9 and result.records[0].call == "d_free() {"
    jsonschema.validate(result.to_dict(), SCHEMA)

