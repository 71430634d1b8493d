"""The classic tracing workflows as commands: `tracekit flamegraph`,
`funcgraph`, `sched` and `probe` run their verify check's code
(tracekit.agent.checks: one implementation) on a command the person names.

Each asks doctor first, as verify does: a workflow whose methods doctor
calls unavailable or missing here is refused with doctor's reason
(``Refused``).  Each leaves the tracing state as it found it: probes get a
group of their own and are deleted, function_graph runs in a private tracefs
instance (or the idle global tracer, restored), also on failure and Ctrl-C.
Ctrl-C during the recording ends the recording, the way it ends `perf
record`, and the result is made from what was recorded.

Results are dataclasses; the CLI prints them, or their ``to_dict()`` as JSON
(schema tracekit.workflow/1: docs/workflows.md, tracekit/schemas/
workflow.schema.json)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from tracekit import doctor
from tracekit.agent import checks, outputs, perfdata
from tracekit.agent import verify as agent_verify
from tracekit.errors import TracekitError, UsageError

SCHEMA = "tracekit.workflow/1"
# The verify check each workflow runs the code of; its doctor methods decide
# whether the workflow may run.
CHECK_OF = {"flamegraph": "perf.flamegraph", "funcgraph": "ftrace.function_graph", "sched": "perf.sched",
            "probe -x": "perf.probe.user", "probe": "perf.probe.kernel"}
# How a workflow runs its recording: until the command ends, as long as it
# takes, its output on our stderr (perf's own status lines taken out, see
# ToolMessages), Ctrl-C ending the recording.
RECORDING = {"timeout": None, "check": False, "passthrough": True, "interruptible": True}


class ToolMessages:
    """A recording's stderr, relayed to ours as it comes, except the
    tracer's own status lines ("[ perf record: Woken up 1 times to write
    data ]", "[ perf record: Captured and wrote 0.6 MB /tmp/...data ]": the
    file is tracekit's, and gone): those are kept in ``lines`` (the
    result's tool_messages) and shown too only with ``show``.  Use it as a
    context manager around the recording, which gets ``how`` (RECORDING,
    its stderr into this relay)."""

    STATUS = re.compile(rb"^\[ perf [\w -]+: .*\]\s*$")
    PREFIX = b"[ perf "

    def __init__(self, show=False, sink=2):
        self.show, self.sink, self.lines = show, sink, []
        self._read, self._write = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="tracekit-tool-messages", daemon=True)
        self.how = dict(RECORDING, passthrough=self._write)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        # The recording (and whatever of it still holds the pipe) writes
        # until it ends; then the relay has everything, or stops waiting.
        os.close(self._write)
        self._thread.join(timeout=2)
        return False

    def _out(self, data):
        with contextlib.suppress(OSError):
            while data:
                data = data[os.write(self.sink, data):]

    def _line(self, line):
        if self.STATUS.match(line):
            self.lines.append(line.decode("utf-8", "replace").strip())
            if not self.show:
                return
        self._out(line)

    def _relay(self):
        pending = b""
        while True:
            try:
                data = os.read(self._read, 65536)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            *complete, pending = pending.split(b"\n")
            for line in complete:
                self._line(line + b"\n")
            # A partial line that cannot be a status line (a prompt) goes out now.
            if pending and not (self.PREFIX.startswith(pending[:len(self.PREFIX)])):
                self._out(pending)
                pending = b""
        if pending:
            self._line(pending)
        os.close(self._read)


class Refused(TracekitError):
    """Doctor says this host cannot do what the workflow needs; the message
    is doctor's verdict on the method, on one line."""

    def __init__(self, workflow, method, verdict):
        remedy = verdict.get("remedy")
        super().__init__("%s refused: %s is %s here: %s%s" % (
            workflow, method, verdict.get("status"), verdict.get("reason"), "; fix: " + remedy if remedy else ""))
        self.workflow, self.method, self.verdict = workflow, method, verdict


class Failed(TracekitError):
    """The trace did not happen; the message says what was seen instead."""


# -- results -----------------------------------------------------------------------------
@dataclass
class Outcome:
    """What every workflow reports: the command and how it ended (perf
    record's exit status is its command's; negative: killed by that signal),
    and whether Ctrl-C ended the recording."""
    workflow: str
    command: List[str]
    exit_status: int
    interrupted: bool
    # The tracer's own status lines, kept off the terminal (ToolMessages).
    tool_messages: List[str] = field(default_factory=list, kw_only=True)

    @property
    def ended(self):
        return "stopped by Ctrl-C" if self.interrupted else checks.exit_text(self.exit_status)

    def to_dict(self):
        document = {"schema": SCHEMA}
        document.update(dataclasses.asdict(self))
        document["ended"] = self.ended
        return document


@dataclass
class FlameGraphResult(Outcome):
    svg: str
    samples: int
    stacks: int
    # The functions with the most samples of their own (leaf frames), hottest first.
    hottest: list = field(default_factory=list)
    truncated: bool = False


@dataclass
class FuncGraphResult(Outcome):
    function: str
    pid: int
    calls: int
    records: List[outputs.GraphRecord] = field(default_factory=list)
    lines: List[str] = field(default_factory=list)


@dataclass
class SchedResult(Outcome):
    pid: int
    # The command's tasks (it, its threads, what it started), one per thread.
    tasks: List[perfdata.TaskTimes] = field(default_factory=list)
    total: Optional[perfdata.TaskTimes] = None


@dataclass
class ProbeResult(Outcome):
    binary: Optional[str]
    definitions: List[str] = field(default_factory=list)
    # What perf probe added, one per event: {"event": "GROUP:EVENT", "on": where
    # perf put it, "places": how many probe points it has}.
    probes: list = field(default_factory=list)
    hits: List[outputs.ProbeHit] = field(default_factory=list)

    @property
    def counts(self):
        return {p["event"]: sum(1 for h in self.hits if h.event == p["event"]) for p in self.probes}

    def to_dict(self):
        document = super().to_dict()
        document["counts"] = self.counts
        return document


# -- the gate: usage, root, doctor ----------------------------------------------------------
def resolve_command(command):
    """The command to trace, checked before anything runs."""
    command = list(command or [])
    if command[:1] == ["--"]:  # after a positional argument (FUNC, PROBE) the parser keeps the --
        command = command[1:]
    if not command:
        raise UsageError("no command to trace: give it after --, e.g. `-- ls -l`")
    if not shutil.which(command[0]):
        raise UsageError("%s: command not found (or not executable)" % command[0])
    return command


def require_root(workflow):
    if os.geteuid() != 0:
        raise UsageError("tracing needs root (uid is %d): run `sudo tracekit %s ...`" % (os.geteuid(), workflow))


def gate(workflow, check_id, report):
    """Refused when doctor calls a method the workflow's check needs
    unavailable or missing (the same rule as verify's skips)."""
    verdicts = {v.id: v.to_dict() for v in report.verdicts}
    blocked = agent_verify.blocking_method(checks.CHECKS_BY_ID[check_id], verdicts)
    if blocked:
        raise Refused(workflow, *blocked)


@contextlib.contextmanager
def _session(workflow, command):
    """Usage, root and doctor's gate, then a checks.Context for the run; a
    CheckFailed (or OSError...) of the shared code becomes Failed."""
    argv = resolve_command(command)
    require_root(workflow.split()[0])
    report = doctor.diagnose()
    gate(workflow, CHECK_OF[workflow], report)
    ctx = checks.Context(report.facts)
    try:
        yield ctx, argv
    except checks.CheckFailed as exc:
        raise Failed("%s: %s" % (workflow.split()[0], exc))
    except checks.CheckSkipped as exc:  # someone else's tracing: left alone
        raise Failed("%s refused: %s" % (workflow.split()[0], exc))
    except (OSError, LookupError, ValueError) as exc:  # as verify's run_check reports them
        raise Failed("%s: %s: %s" % (workflow.split()[0], type(exc).__name__, exc))
    finally:
        ctx.close()


# -- the workflows ----------------------------------------------------------------------------
def flamegraph(command, output="flamegraph.svg", frequency=checks.SAMPLE_FREQUENCY, hottest=10, verbose=False):
    """perf record -g of ``command``, its stacks folded into an SVG flame
    graph written to ``output``.  ``verbose``: perf's status lines on the
    terminal too (see ToolMessages)."""
    output = Path(output)
    if output.is_dir() or not output.parent.resolve().is_dir():
        raise UsageError("--output %s: not a file in an existing directory" % output)
    with _session("flamegraph", command) as (ctx, argv), ToolMessages(verbose) as messages:
        graph = checks.flame_graph(ctx.tool("perf"), argv, os.path.join(ctx.workdir, ctx.unique("flame") + ".data"),
                                   "tracekit flamegraph: " + " ".join(argv), frequency, **messages.how)
    try:
        output.write_text(graph.svg)
    except OSError as exc:
        raise Failed("flamegraph: writing %s: %s" % (output, exc.strerror or exc))
    leaves = perfdata.leaf_samples(graph.folded)
    top = sorted(leaves.items(), key=lambda item: (-item[1], item[0]))[:hottest]
    return FlameGraphResult("flamegraph", argv, graph.recorded.returncode, graph.recorded.interrupted,
                            svg=str(output), samples=graph.folded.samples, stacks=len(graph.folded),
                            hottest=[{"function": name, "samples": n} for name, n in top],
                            truncated=graph.folded.truncated, tool_messages=messages.lines)


def funcgraph(function, command):
    """The function_graph of kernel function ``function`` as ``command`` (and
    what it starts) calls it."""
    if not function or any(c.isspace() for c in function):
        raise UsageError("FUNC %r: one kernel function name (or glob), e.g. do_sys_openat2" % function)
    with _session("funcgraph", command) as (ctx, argv):
        proc = checks.start_stopped(argv)
        ended = []

        def traced():
            os.kill(proc.pid, signal.SIGCONT)
            ended.append(checks.finish(proc, argv, **{k: v for k, v in RECORDING.items() if k != "passthrough"}))

        try:
            trace = checks.function_graph(ctx, function, proc.pid, traced, follow_forks=True)
        finally:
            if proc.poll() is None and not ended:  # set-up failed: the command never ran
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
    calls, lines = outputs.parse_function_graph(trace, function)
    recorded = ended[0]
    return FuncGraphResult("funcgraph", argv, recorded.returncode, recorded.interrupted, function=function,
                           pid=proc.pid, calls=len(calls), records=outputs.parse_function_graph_records(trace),
                           lines=lines)


def sched(command, verbose=False):
    """perf sched record of ``command``: wait time, scheduling delay and run
    time of each of its tasks (it, its threads, what it started)."""
    with _session("sched", command) as (ctx, argv), ToolMessages(verbose) as messages:
        times = checks.perf_sched(ctx.tool("perf"), argv, ctx.workdir, ctx.unique("sched"), **messages.how)
    name = os.path.basename(argv[0])
    total = perfdata.combined(name, times.pid, times.pid, times.tasks) if times.tasks else None
    return SchedResult("sched", argv, times.recorded.returncode, times.recorded.interrupted, pid=times.pid,
                       tasks=times.tasks, total=total, tool_messages=messages.lines)


# A perf probe definition's own event name: "[GROUP:]EVENT=" before the probe point.
_NAMED = re.compile(r"^\s*(?:([\w.-]+):)?([A-Za-z_]\w*)=(?!=)")
_FUNCTION = re.compile(r"^\s*([A-Za-z_][\w.]*)")


def probe_events(definitions):
    """(event name, definition) for each perf probe definition ("FUNC[ ARG...]",
    "FUNC%return $retval", "EVENT=FUNC ARG"...): the definition's own event
    name, or the function's (perf adds ``__return`` for a return probe),
    unique among them.  The group is tracekit's, one per run."""
    events, seen = [], set()
    for definition in definitions:
        named = _NAMED.match(definition)
        if named and named.group(1):
            raise UsageError("probe %r: no GROUP: please, tracekit gives its probes a group of their own"
                             % definition)
        if named:
            name, definition = named.group(2), definition[named.end():]
        else:
            function = _FUNCTION.match(definition)
            if not function:
                raise UsageError("probe %r: expected FUNC[ ARG...], e.g. 'tk_work n' or 'do_sys_openat2'"
                                 % definition)
            name = re.sub(r"\W", "_", function.group(1))
        suffix = "__return" if "%return" in definition.split()[0] else ""
        unique, n = name, 1
        while unique + suffix in seen:
            n += 1
            unique = "%s_%d" % (name, n)
        seen.add(unique + suffix)
        events.append((unique, definition.strip()))
    return events


def probe(definitions, command, binary=None, verbose=False):
    """perf probe add (user probes in ``binary`` with -x, else kernel
    probes), perf record of ``command``, perf script, perf probe del: every
    hit with its arguments.  The probes are deleted whatever happens."""
    if not definitions:
        raise UsageError("no probe: give at least one FUNC[ ARG...]")
    events = probe_events(definitions)
    if binary is not None:
        if not os.path.isfile(binary):
            raise UsageError("-x %s: no such file" % binary)
        binary = os.path.abspath(binary)
    workflow = "probe -x" if binary else "probe"
    with _session(workflow, command) as (ctx, argv), ToolMessages(verbose) as messages:
        group = ctx.unique("probe")
        args = ["-x", binary] if binary else []
        for name, definition in events:
            args += ["-a", "%s:%s=%s" % (group, name, definition)]
        data = os.path.join(ctx.workdir, group + ".data")
        recording = checks.perf_probe_record(ctx.tool("perf"), args, group + ":*", argv, data, **messages.how)
        left = leftover_probes(ctx.tracefs, group)
        if left:
            raise Failed("probe: perf probe -d left %s defined: delete them with `perf probe -d '%s:*'`"
                         % (", ".join(left), group))
    return ProbeResult("probe", argv, recording.recorded.returncode, recording.recorded.interrupted,
                       binary=binary, definitions=[d for _, d in events],
                       probes=probe_points(recording.added),
                       hits=outputs.parse_probe_hits(recording.script, group), tool_messages=messages.lines)


def probe_points(added):
    """One entry per event of what perf probe added ([(GROUP:EVENT, where)],
    outputs.parse_perf_probe_added): {"event", "on": where its first probe
    point is, "places": how many it has}.  perf lists an event once per
    probe point: a function inlined twice gets two points, which kernels
    with multi-probe events keep under one event name."""
    points = {}
    for event, where in added:
        point = points.setdefault(event, {"event": event, "on": where, "places": 0})
        point["places"] += 1
    return list(points.values())


def leftover_probes(tracefs, group):
    """The probe definitions of ``group`` still in the kernel's event files."""
    left = []
    for name in ("uprobe_events", "kprobe_events"):
        with contextlib.suppress(OSError):
            left += [line.split()[0] for line in checks.read(os.path.join(tracefs, name)).splitlines()
                     if ":%s/" % group in line.split()[0]]
    return left
