"""Human output: rich tables on stdout, diagnostics on stderr.

Imported only on the human path, so ``--json`` never pays for rich.

Nearly every string printed here comes from a host or a tool: frame names
such as ``[unknown]`` and ``[kernel.kallsyms]``, task names, tool output,
reasons, host names.  rich would read their brackets as markup (and drop
them, or fail on ``[/]``) and ``:name:`` as emoji codes, so the consoles
here print strings as they are (``plain_console``), and what carries a
style is a Text, whose content rich never parses.
"""

import threading
import time

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"ready": "bold green", "missing": "bold yellow", "unavailable": "bold red", "unknown": "bold magenta"}


def _fmt(value, yes="yes", no="no", unknown="unknown"):
    if value is None:
        return unknown
    return yes if value else no


def host_facts(facts):
    """(label, value) rows: the facts a person reads before the verdicts."""
    host = facts.get("host") or {}
    distro = host.get("distro") or {}
    kernel = facts.get("kernel") or {}
    kconfig = facts.get("kconfig") or {}
    tracefs = facts.get("tracefs") or {}
    mounts = facts.get("mounts") or {}
    sysctl = facts.get("sysctl") or {}
    proc = facts.get("process") or {}
    caps = proc.get("capabilities") or {}
    headers = facts.get("headers") or {}
    debuginfo = facts.get("debuginfo") or {}
    debuginfod = facts.get("debuginfod") or {}
    lockdown = (facts.get("lockdown") or {}).get("mode")
    secure_boot = facts.get("secure_boot") or {}

    config = kconfig.get("source") or "unknown"
    if kconfig.get("error"):
        config += " (%s)" % kconfig["error"]
    if tracefs.get("mounted"):
        tracefs_text = "mounted at %s" % tracefs.get("path")
    elif tracefs.get("readable"):
        tracefs_text = "not mounted (seen from a private mount namespace)"
    else:
        tracefs_text = "not mounted" if tracefs.get("error") in (None, "tracefs is not mounted") else \
            "unknown: %s" % tracefs.get("error")
    rows = [
        ("host", "%s — %s" % (host.get("hostname") or "?", distro.get("name") or "unknown distribution")),
        ("kernel", "%s %s" % (kernel.get("release") or "unknown", kernel.get("arch") or "")),
        ("kernel config", config),
        ("debugfs", mounts.get("debugfs") or "not mounted"),
        ("tracefs", tracefs_text),
        ("lockdown", lockdown or "unknown"),
        ("secure boot", "%s (%s)" % (secure_boot.get("state", "unknown"), secure_boot.get("detail") or "")),
        ("sysctl", "perf_event_paranoid=%s kptr_restrict=%s unprivileged_bpf_disabled=%s" % (
            sysctl.get("perf_event_paranoid"), sysctl.get("kptr_restrict"), sysctl.get("unprivileged_bpf_disabled"))),
        ("BTF", _fmt((facts.get("btf") or {}).get("vmlinux"), "/sys/kernel/btf/vmlinux", "none")),
        ("headers", headers.get("build_dir") or ("in-kernel (kheaders)" if headers.get("kheaders") else "none")),
        ("kernel debuginfo", debuginfo.get("vmlinux") or "none"),
        ("debuginfod", " ".join(debuginfod.get("urls") or []) or "not configured"),
        ("capabilities", _caps_text(proc.get("uid"), caps)),
    ]
    tools = facts.get("tools") or {}
    found = ["%s %s" % (name, tool.get("version") or "") for name, tool in tools.items() if tool.get("found")]
    rows.append(("tools", ", ".join(t.strip() for t in found) or "none found"))
    return rows


def _caps_text(uid, caps):
    has = [name for name, value in caps.items() if value]
    lacks = [name for name, value in caps.items() if value is False]
    parts = ["uid %s" % ("unknown" if uid is None else uid)]
    if has:
        parts.append("has " + " ".join(has))
    if lacks:
        parts.append("lacks " + " ".join(lacks))
    return "; ".join(parts)


def plain_console(**options):
    """A console that prints strings exactly as given: no markup, no emoji
    codes, no highlighting."""
    return Console(markup=False, emoji=False, highlight=False, **options)


def print_doctor(report):
    console = plain_console()
    facts_table = Table.grid(padding=(0, 2))
    facts_table.add_column(style="bold")
    facts_table.add_column()
    for label, value in host_facts(report.facts):
        facts_table.add_row(label, value)
    console.print(facts_table)
    console.print()

    table = Table(header_style="bold")
    table.add_column("method", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("why / fix")
    notes = {}
    for v in report.verdicts:
        why = Text(v.reason)
        if v.remedy:
            why.append("\nfix: " + v.remedy, style="cyan")
        table.add_row(v.id, Text(v.status, style=STATUS_STYLE[v.status]), why)
        for note in v.notes:
            notes.setdefault(note, []).append(v.id)
    console.print(table)
    for note, ids in notes.items():
        console.print(Text("note (%s): %s" % (", ".join(ids), note), style="dim"))
    summary = report.summary
    console.print("  ".join("%s %d" % (k, n) for k, n in summary.items()))
    for item in report.facts.get("unreadable") or []:
        line = Text("could not read", style="yellow")
        line.append(" %s" % item)
        err_console().print(line)


def err_console():
    return plain_console(stderr=True)


def progress_is_live(console):
    """Whether ``console`` is a terminal a person watches: a live display
    there, one plain line per event anywhere else (CI logs, pipes, files).
    TERM=dumb or TTY_INTERACTIVE=0 ask for the plain lines too; FORCE_COLOR
    alone does not make a pipe a terminal."""
    isatty = getattr(console.file, "isatty", None)
    try:
        return bool(console.is_interactive and isatty and isatty())
    except ValueError:  # a closed file
        return False


def setup_progress(console=None):
    """Progress of an Ansible run (setup, remote verify) on stderr: a live
    per-host display on a terminal, the plain lines otherwise.  Use it as a
    context manager; its ``event`` is ansible-runner's event handler."""
    console = console or err_console()
    return LiveSetupProgress(console) if progress_is_live(console) else SetupProgress(console)


class SetupProgress:
    """One stderr line per task and per host result, as Ansible works."""

    def __init__(self, console=None):
        self.console = console or err_console()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def event(self, event):
        data = event.get("event_data") or {}
        kind = event.get("event", "")
        if kind == "playbook_on_task_start":
            role = data.get("role")
            self.console.print(Text("%s%s" % (role + ": " if role else "", data.get("task", "")), style="bold"))
        elif kind.startswith("runner_on_") and kind != "runner_on_start":
            state = kind[len("runner_on_"):]
            if state == "ok" and (data.get("res") or {}).get("changed"):
                state = "changed"
            style = {"ok": "green", "changed": "yellow", "failed": "red", "unreachable": "red",
                     "skipped": "dim"}.get(state, "")
            self.console.print(Text("  %-10s %s" % (state, data.get("host", "")), style=style))


# Modules whose one task can run for minutes: apt downloading and installing
# the components' packages in one transaction, or refreshing its lists.
LONG_ACTIONS = ("apt",)


def _clock(seconds):
    seconds = int(max(seconds, 0))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60) if seconds >= 3600 else \
        "%d:%02d" % (seconds // 60, seconds % 60)


class _HostState:
    def __init__(self, name, now):
        self.name, self.started, self.ended = name, now, None
        self.spinner = Spinner("dots", style="cyan")
        self.task, self.role, self.action, self.task_started = "", None, "", now
        self.counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        self.unreachable = None

    @property
    def done(self):
        return sum(self.counts.values())

    @property
    def long_task(self):
        return self.ended is None and self.action.rpartition(".")[2] in LONG_ACTIONS


class LiveSetupProgress:
    """A live display on stderr while Ansible works: per host a spinner,
    the component (role) and task it is on, tasks done (failed ones
    counted in red), and its time; a task that can take minutes (apt) is
    marked as such, with its own time.  It ends with each host's line as it
    finished: ok, failed or unreachable."""

    def __init__(self, console, clock=time.monotonic, refresh_per_second=8):
        self.console = console
        self.clock = clock
        self.hosts = {}
        self.started = clock()
        self._spinner = Spinner("dots", style="cyan")
        self._lock = threading.Lock()
        # Progress never goes to stdout, and stdout is not captured: data
        # printed there stays where it belongs.
        self.live = Live(self, console=console, refresh_per_second=refresh_per_second, transient=False,
                         redirect_stdout=False, redirect_stderr=False)

    def __enter__(self):
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc):
        # Also on Ctrl-C and errors: the cursor comes back and the last frame stays.
        self.live.stop()
        return False

    def event(self, event):
        with self._lock:
            self._account(event)

    def _account(self, event):
        data = event.get("event_data") or {}
        kind = event.get("event", "")
        now = self.clock()
        if kind == "playbook_on_stats":
            for state in self.hosts.values():
                if state.ended is None:
                    state.ended = now
            return
        name = data.get("host")
        if not name or not kind.startswith("runner_on_"):
            return
        state = self.hosts.get(name)
        if state is None:
            state = self.hosts[name] = _HostState(name, now)
        if kind == "runner_on_start":
            state.task, state.role = str(data.get("task") or ""), data.get("role")
            state.action, state.task_started = str(data.get("resolved_action") or data.get("task_action") or ""), now
            return
        result = data.get("res") or {}
        if kind == "runner_on_ok":
            state.counts["changed" if result.get("changed") else "ok"] += 1
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            state.counts["failed"] += 1
        elif kind == "runner_on_failed":
            state.counts["ok"] += 1
        elif kind == "runner_on_skipped":
            state.counts["skipped"] += 1
        elif kind == "runner_on_unreachable":
            state.unreachable = " ".join(str(result.get("msg") or "unreachable").split())
            state.ended = now

    def __rich__(self):
        with self._lock:
            return self._render(self.clock())

    def _render(self, now):
        # The task column takes what the others leave and is cut to one line.
        table = Table.grid(padding=(0, 1), expand=True)
        for _ in range(4):
            table.add_column(no_wrap=True)
        table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
        if not self.hosts:
            table.add_row(self._spinner, "", "", _clock(now - self.started), "starting Ansible")
        for state in self.hosts.values():
            table.add_row(*self._row(state, now))
        return table

    @staticmethod
    def _row(state, now):
        counts = Text("%d tasks" % state.done)
        failed = state.counts["failed"]
        if failed:
            counts.append(", %d failed" % failed, style="bold red")
        elapsed = _clock((state.ended or now) - state.started)
        name = Text(state.name, style="bold")
        if state.unreachable:
            return Text("✗", style="bold red"), name, counts, elapsed, Text("unreachable: " + state.unreachable,
                                                                             style="red")
        if state.ended is not None:
            return (Text("✗", style="bold red"), name, counts, elapsed, Text("failed", style="red")) if failed else \
                (Text("✓", style="bold green"), name, counts, elapsed, Text("done", style="green"))
        task = Text()
        if state.long_task:
            # First, so that a narrow terminal cuts the task's name, not this.
            task.append("apt at work %s, can take minutes: " % _clock(now - state.task_started), style="bold yellow")
        task.append("%s%s" % (state.role + ": " if state.role else "", state.task))
        return state.spinner, name, counts, elapsed, task


def print_setup(result):
    console = plain_console()
    table = Table(header_style="bold", title="tracekit setup: %s" % result.status)
    for column in ("host", "component", "ok", "changed", "failed", "skipped"):
        table.add_column(column)
    for host, summary in sorted(result.hosts.items()):
        if summary.unreachable:
            table.add_row(host, "-", "", "", "", "", style="red")
        for component, counts in summary.components.items():
            if component == "-":
                continue
            table.add_row(host, component, *(str(counts[k]) for k in ("ok", "changed", "failed", "skipped")),
                          style="red" if counts["failed"] else None)
    console.print(table)
    for host, summary in sorted(result.hosts.items()):
        for notice in summary.notices:
            console.print(Text("%s: %s: %s" % (host, notice["component"], notice["message"]), style="yellow"))
        for failure in summary.failures:
            console.print(Text("%s: %s: %s: %s" % (host, failure["component"], failure["task"],
                                                   failure["message"]), style="red"))
    if result.error:
        console.print(Text("ansible: %s" % result.error, style="red"))
    for host, summary in sorted(result.hosts.items()):
        if summary.doctor and "summary" in summary.doctor:
            counts = ", ".join("%d %s" % (n, status) for status, n in summary.doctor["summary"].items() if n)
            missing = sorted(m for m, status in summary.doctor["methods"].items() if status == "missing")
            console.print("doctor now reports for %s: %s%s" % (
                host, counts, "; missing: " + ", ".join(missing) if missing else ""))
        elif summary.doctor:
            console.print(Text("doctor for %s: %s" % (host, summary.doctor["error"]), style="red"))
    if any(s.doctor for s in result.hosts.values()):
        console.print("(`tracekit doctor` on a host says why for each method)")


def verify_progress(total, console=None, lines=True):
    """Progress of the local verify suite on stderr: a bar over its ``total``
    checks on a terminal, otherwise one line per check (none when not
    ``lines``, e.g. with --json).  Use it as a context manager; ``start`` and
    ``result`` are the suite's callbacks."""
    console = console or err_console()
    if progress_is_live(console):
        return LiveVerifyProgress(total, console)
    return VerifyProgress(console if lines else None)


class VerifyProgress:
    """One stderr line per check as the local suite runs."""

    def __init__(self, console):
        self.console = console

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def start(self, check):
        pass

    def result(self, check, result):
        if self.console is not None:
            style = {"passed": "green", "failed": "red", "skipped": "dim"}.get(result.status, "")
            self.console.print(Text("%-8s %-24s %s" % (result.status, check.id, result.detail), style=style))


class LiveVerifyProgress:
    """A bar over the suite's checks: N of M done, the check running now,
    the counts so far, the time."""

    def __init__(self, total, console):
        self.counts = {}
        # markup=False: the description is a check's id and title, shown as they are.
        self.progress = Progress(SpinnerColumn(style="cyan"), TextColumn("verify", markup=False),
                                 BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[counts]}", markup=False),
                                 TextColumn("{task.description}", markup=False),
                                 console=console, transient=False, redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task("", total=total, counts="")

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        # Also on Ctrl-C: the suite has removed what it created by the time
        # this runs; the cursor comes back and the last frame stays.
        self.progress.stop()
        return False

    def start(self, check):
        self.progress.update(self.task, description="%s: %s" % (check.id, check.title))

    def result(self, check, result):
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        counts = ", ".join("%d %s" % (n, status) for status, n in sorted(self.counts.items()))
        self.progress.update(self.task, advance=1, counts=counts, description="")


def print_verify(result):
    console = plain_console()
    table = Table(header_style="bold", title="tracekit verify")
    for column in ("host", "check", "status", "evidence or reason"):
        table.add_column(column, overflow="fold")
    styles = {"passed": "green", "failed": "red", "skipped": "dim"}
    for host, doc in sorted(result.hosts.items()):
        if "results" not in doc:
            table.add_row(host, "-", "unreachable" if "unreachable" in doc else "error",
                          doc.get("unreachable") or doc.get("error"), style="red")
            continue
        for r in doc["results"]:
            table.add_row(host, r["id"], r["status"], r["detail"], style=styles.get(r["status"]))
    console.print(table)
    for host, doc in sorted(result.hosts.items()):
        counts = {}
        for r in doc.get("results", []):
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        if doc.get("results") is not None:
            console.print("%s: %s" % (host, ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))))
        if doc.get("interrupted"):
            console.print(Text("%s: interrupted; everything the suite created was removed" % host, style="yellow"))
        if doc.get("state_changed"):
            console.print(Text("%s: the global tracing state changed: %s" % (host, sorted(doc["state_changed"])),
                               style="red"))
    if result.artifacts:
        console.print("artifacts: %s" % result.artifacts)


# -- the classic workflows (tracekit/workflows.py) ------------------------------------------------
def print_flamegraph(result):
    console = plain_console()
    console.print("flame graph of %d samples (%d distinct stacks) written to %s" % (
        result.samples, result.stacks, result.svg))
    if result.hottest:
        table = Table(header_style="bold", title="hottest functions (samples of their own)")
        table.add_column("function", overflow="fold")
        table.add_column("samples", justify="right")
        table.add_column("%", justify="right")
        for entry in result.hottest:
            table.add_row(entry["function"], str(entry["samples"]), "%.1f" % (100.0 * entry["samples"] / result.samples))
        console.print(table)
    if result.truncated:
        console.print(Text("perf's output ended inside a sample; that sample was left out", style="yellow"))


def print_funcgraph(result):
    # The trace as the kernel printed it: plain lines, no table (they can be many).
    for line in result.lines:
        print(line)
    plain_console().print("%d call%s of %s by %s (pid %d and what it started)" % (
        result.calls, "" if result.calls == 1 else "s", result.function, result.command[0], result.pid))


def print_sched(result):
    console = plain_console()
    print("tracekit sched: %s (pid %d)" % (" ".join(result.command), result.pid))
    table = Table(header_style="bold")
    table.add_column("task", overflow="fold")
    for column in ("tid", "pid", "switches", "wait ms", "sched delay ms", "run ms"):
        table.add_column(column, justify="right", no_wrap=True)

    def row(t, style=None, name=None):
        table.add_row(name or t.comm, str(t.tid), str(t.pid), str(t.switches), "%.3f" % t.wait_ms, "%.3f" % t.sch_delay_ms,
                      "%.3f" % t.run_ms, style=style)

    for task in result.tasks:
        row(task)
    if result.total and len(result.tasks) > 1:
        table.add_section()
        row(result.total, style="bold", name="all %d tasks" % len(result.tasks))
    console.print(table)
    if not result.tasks:
        console.print(Text("perf sched timehist shows no task of pid %d (it ran too briefly to be switched?)"
                           % result.pid, style="yellow"))


def print_probe(result):
    for hit in result.hits:
        print(hit.line)
    for entry in result.probes:
        n, places = result.counts[entry["event"]], entry.get("places", 1)
        print("%d hit%s of %s (on %s%s)" % (n, "" if n == 1 else "s", entry["event"], entry["on"],
                                            ", %d places" % places if places > 1 else ""))
    print("probes deleted again")
