"""Capture the real tool output tracekit's checks parse, on this machine.

    unshare -m sh -c 'mount -t tracefs tracefs /sys/kernel/tracing &&
        python3 tests/data/captured/capture.py CHECK...'

Runs each named check for real (tracekit.agent.checks.run_check, facts from
tracekit doctor), and each workflow:NAME (tracekit.workflows, see WORKFLOWS),
with the parse functions of tracekit.agent.outputs and perfdata wrapped so
that every text a check hands them is written to
tests/data/captured/<check-id>/<function>[-N].txt (workflow.NAME/ for a
workflow), and the other arguments (needle, probe name, marker token) to
<check-id>/meta.json (a workflow's also has its result document).  The check itself
runs unchanged: its probes and instances are removed as always.  The private
mount namespace keeps the tracefs mount away from the rest of the machine.
Needs root.  See README.md for what was captured, when and with what.
"""

import functools
import json
import os
import sys
from pathlib import Path

from tracekit import doctor, workflows
from tracekit.agent import checks, outputs, perfdata

HERE = Path(__file__).resolve().parent
WRAPPED = {outputs: ("parse_trace_lines", "parse_marker_pid", "parse_function_graph", "trace_cmd_lists",
                     "perf_script_frames", "parse_target_pid", "parse_execsnoop", "parse_bpftrace_maps",
                     "parse_stap_begin_end", "parse_stap_dropwatch", "parse_sysdig_events",
                     "parse_function_graph_records", "parse_probe_hits", "parse_perf_probe_added"),
           perfdata: ("parse_perf_stat", "fold_perf_script", "parse_sched_timehist", "parse_sched_forks")}
# workflow:NAME runs tracekit's workflow command NAME (tracekit/workflows.py)
# on the probe target, into workflow.NAME/: the command here is what it ran.
WORKFLOWS = {
    # sh starting two targets, one in the background: a process tree.
    "sched": lambda target: workflows.sched(["/bin/sh", "-c", '"$0" 2 10 100000 & "$0" 2 10 100000; wait', target]),
    # An entry and a return probe on tk_work in one run.
    "probe": lambda target: workflows.probe(["tk_work n", "tk_work%return ret=$retval:s32"], [target, "3", "0"],
                                            binary=target),
}


def main(ids):
    facts = doctor.diagnose().facts
    seen = {}

    def wrap(module, name):
        original = getattr(module, name)

        @functools.wraps(original)
        def recorder(text, *args, **kwargs):
            n = seen.setdefault(current[0], {}).setdefault(name, 0) + 1
            seen[current[0]][name] = n
            out = HERE / current[0]
            out.mkdir(exist_ok=True)
            stem = name if n == 1 else "%s-%d" % (name, n)
            (out / (stem + ".txt")).write_text(text)
            calls.setdefault(current[0], []).append({"function": name, "file": stem + ".txt",
                                                     "args": [repr(a) for a in args]})
            return original(text, *args, **kwargs)
        setattr(module, name, recorder)

    current, calls = [None], {}
    for module, names in WRAPPED.items():
        for name in names:
            wrap(module, name)
    ctx = checks.Context(facts)
    try:
        for check_id in ids:
            if check_id.startswith("workflow:"):
                name = check_id.split(":", 1)[1]
                current[0] = "workflow." + name
                document = WORKFLOWS[name](ctx.target()).to_dict()
                print(current[0], document["status"], file=sys.stderr)
                meta = {"workflow": name, "kernel": os.uname().release, "result": document,
                        "calls": calls.get(current[0], [])}
                (HERE / current[0] / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
                continue
            current[0] = check_id
            result = checks.run_check(checks.CHECKS_BY_ID[check_id], ctx)
            print(result.id, result.status, result.detail, file=sys.stderr)
            if check_id in calls:
                meta = {"check": check_id, "status": result.status, "detail": result.detail,
                        "kernel": os.uname().release, "calls": calls[check_id]}
                (HERE / check_id / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    finally:
        ctx.close()


if __name__ == "__main__":
    main(sys.argv[1:])
