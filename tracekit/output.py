"""Human output: rich tables on stdout, diagnostics on stderr.

Imported only on the human path, so ``--json`` never pays for rich.
"""

from rich.console import Console
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


def print_doctor(report):
    console = Console(highlight=False)
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
        err_console().print("[yellow]could not read[/] %s" % item)


def err_console():
    return Console(stderr=True, highlight=False)


class SetupProgress:
    """One stderr line per task and per host result, as Ansible works."""

    def __init__(self):
        self.console = err_console()

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


def print_setup(result):
    console = Console(highlight=False)
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


def verify_progress(check, result):
    """One stderr line per check as the local suite runs."""
    style = {"passed": "green", "failed": "red", "skipped": "dim"}.get(result.status, "")
    err_console().print(Text("%-8s %-24s %s" % (result.status, check.id, result.detail), style=style))


def print_verify(result):
    console = Console(highlight=False)
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
