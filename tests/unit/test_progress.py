"""Progress on stderr: the live displays a terminal gets, fed the events
ansible-runner really sent (tests/data/ansible-events) and the real verify
suite's callbacks, and the plain lines everything else gets."""

import io
import json
import os
import re

import pytest
from rich.console import Console

from tracekit import output, setup
from tracekit.agent import checks
from tracekit.agent import verify as agent_verify

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def setup_events(data_dir):
    return json.loads((data_dir / "ansible-events/setup.json").read_text())


@pytest.fixture(scope="module")
def verify_events(data_dir):
    return json.loads((data_dir / "ansible-events/verify.json").read_text())


def terminal(width=200):
    """A console that believes it is a terminal, writing to a string."""
    return Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)


def shown(console, renderable):
    """The text a terminal shows for ``renderable``, one entry per line."""
    console.file.seek(0)
    console.file.truncate()
    console.print(renderable)
    return [ANSI.sub("", line).rstrip() for line in console.file.getvalue().splitlines()]


def line_of(lines, host):
    (line,) = [line for line in lines if re.match(r"^\S+ %s " % re.escape(host), line)]
    return line


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def hosts_of(events):
    return sorted({(e.get("event_data") or {}).get("host") for e in events} - {None})


def test_recorded_setup_has_what_the_display_must_handle(setup_events):
    kinds = {e["event"] for e in setup_events}
    assert {"runner_on_start", "runner_on_ok", "runner_on_skipped", "runner_on_failed", "runner_on_unreachable",
            "playbook_on_task_start", "playbook_on_stats"} <= kinds
    assert any((e.get("event_data") or {}).get("resolved_action") == "ansible.builtin.apt"
               for e in setup_events if e["event"] == "runner_on_start")


def test_each_host_shows_the_task_it_is_on_and_apt_as_long_work(setup_events):
    clock = Clock()
    progress = output.LiveSetupProgress(terminal(), clock=clock)
    console = terminal()
    apt_seen = 0
    for event in setup_events:
        clock.now += 0.5
        progress.event(event)
        data = event.get("event_data") or {}
        if event["event"] != "runner_on_start":
            continue
        # Every host is on its task for a while; apt's for minutes.
        is_apt = data["resolved_action"].rpartition(".")[2] == "apt"
        clock.now += 125 if is_apt else 1
        line = line_of(shown(console, progress), data["host"])
        task = "%s%s" % (data["role"] + ": " if data.get("role") else "", data["task"])
        assert line.endswith(task), line
        if is_apt:
            apt_seen += 1
            assert "apt at work 2:05, can take minutes: " + task in line, line
        else:
            assert "apt at work" not in line, line
    assert apt_seen >= 4, "the apt tasks of both local hosts were shown"


def test_the_last_frame_tells_each_host_outcome_as_setup_counted_it(setup_events):
    progress = output.LiveSetupProgress(terminal())
    hosts, current = {}, {"component": "-"}
    for event in setup_events:
        progress.event(event)
        setup._account(hosts, event, current)
    lines = shown(terminal(), progress)
    assert len(lines) == len(hosts_of(setup_events)) == 3
    for name, summary in hosts.items():
        line = line_of(lines, name)
        results = [e for e in setup_events if (e.get("event_data") or {}).get("host") == name
                   and e["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_skipped")]
        assert " %d tasks" % len(results) in line, line
        if summary.unreachable:
            message = summary.failures[0]["message"]
            assert line.startswith("✗ %s " % name) and ("unreachable: " + message)[:40] in line, line
        elif summary.failed:
            assert line.startswith("✗ %s " % name) and line.endswith(" failed"), line
            assert "%d failed" % summary.failed in line
        else:
            assert line.startswith("✓ %s " % name) and line.endswith(" done"), line
    assert {s.failed > 0 or s.unreachable for s in hosts.values()} == {True, False}


def test_live_display_on_a_terminal_stops_and_keeps_its_last_frame(setup_events):
    console = terminal()
    with output.LiveSetupProgress(console, refresh_per_second=50) as progress:
        for event in setup_events:
            progress.event(event)
    assert not progress.live.is_started
    text = console.file.getvalue()
    assert text.endswith("\x1b[?25h"), "the cursor is shown again"
    frames = [line for line in ANSI.sub("", text).replace("\r", "\n").splitlines() if line.strip()]
    names = hosts_of(setup_events)
    last = frames[-len(names):]
    assert [line.split()[1] for line in last] == names
    assert all(line[0] in "✓✗" for line in last), last


def test_ctrl_c_stops_the_live_display(setup_events):
    console = terminal()
    with pytest.raises(KeyboardInterrupt):
        with output.LiveSetupProgress(console, refresh_per_second=50) as progress:
            for event in setup_events[:40]:
                progress.event(event)
            raise KeyboardInterrupt
    assert not progress.live.is_started
    assert console.file.getvalue().endswith("\x1b[?25h"), "the cursor is shown again"


def test_remote_verify_run_shows_its_host(verify_events):
    progress = output.LiveSetupProgress(terminal())
    for event in verify_events:
        progress.event(event)
        if event["event"] == "runner_on_start" and event["event_data"]["task"] == "Verify | run the smoke checks":
            assert line_of(shown(terminal(), progress), "localhost").endswith("Verify | run the smoke checks")
    (line,) = shown(terminal(), progress)
    ran = sum(e["event"] in ("runner_on_ok", "runner_on_skipped") for e in verify_events)
    assert line.startswith("✓ localhost %d tasks" % ran) and line.endswith("done"), line


def test_without_a_terminal_setup_progress_is_the_plain_lines(setup_events):
    console = Console(file=io.StringIO(), width=200)
    progress = output.setup_progress(console)
    assert isinstance(progress, output.SetupProgress)
    with progress:
        for event in setup_events:
            progress.event(event)
    text = console.file.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    starts = [e for e in setup_events if e["event"] == "playbook_on_task_start"]
    results = [e for e in setup_events if e["event"] in
               ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")]
    assert len(lines) == len(starts) + len(results)
    result_line = re.compile(r"  (ok|changed|failed|skipped|unreachable) +(alpha|beta|gamma)")
    assert sum(bool(result_line.fullmatch(line)) for line in lines) == len(results)
    # What the host tests read from these lines: a task's name, then one
    # "  STATE      HOST" line per host.
    i = lines.index("packages: Ask apt about every candidate at once")
    assert sorted(result_line.fullmatch(line).group(2) for line in lines[i + 1:i + 3]) == ["alpha", "beta"]
    assert "  unreachable gamma" in lines
    assert "  failed     beta" in lines


def test_the_factories_choose_the_live_display_only_on_a_real_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    for name in ("TTY_INTERACTIVE", "TTY_COMPATIBLE", "FORCE_COLOR", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    try:
        leader, follower = os.openpty()
    except OSError as exc:  # a chroot without devpts on /dev/pts
        pytest.skip("no pseudo-terminal to test with: os.openpty(): %s" % exc)
    try:
        with open(follower, "w", closefd=False) as tty:
            assert isinstance(output.setup_progress(Console(file=tty)), output.LiveSetupProgress)
            assert isinstance(output.verify_progress(3, Console(file=tty)), output.LiveVerifyProgress)
            monkeypatch.setenv("TERM", "dumb")
            assert isinstance(output.setup_progress(Console(file=tty)), output.SetupProgress)
        # FORCE_COLOR makes rich colour a pipe; it does not make it a terminal.
        monkeypatch.setenv("TERM", "xterm")
        monkeypatch.setenv("FORCE_COLOR", "1")
        assert isinstance(output.setup_progress(Console(file=io.StringIO())), output.SetupProgress)
        assert isinstance(output.verify_progress(3, Console(file=io.StringIO())), output.VerifyProgress)
    finally:
        os.close(leader)
        os.close(follower)


def skipped_suite(tmp_path, progress):
    """The real suite with every method unavailable: each check is skipped
    with doctor's reason, nothing is traced (tracefs is an empty directory)."""
    verdicts = {c.method: {"status": "unavailable", "reason": "not here: %s" % c.method} for c in checks.CHECKS}
    verdicts.update({m: {"status": "unavailable", "reason": "not here: %s" % m} for c in checks.CHECKS for m in c.also})
    return agent_verify.run_suite({"tracefs": {"path": str(tmp_path)}}, verdicts, on_start=progress.start,
                                  on_result=progress.result)


def test_local_verify_bar_counts_the_checks_and_names_the_current_one(tmp_path):
    total = len(checks.CHECKS)
    progress = output.LiveVerifyProgress(total, terminal())
    console = terminal()
    seen = []
    start = progress.start

    def watch(check):
        start(check)
        (line,) = shown(console, progress.progress)
        assert "%d/%d" % (len(seen), total) in line
        assert line.endswith("%s: %s" % (check.id, check.title)), line
        seen.append(check.id)

    progress.start = watch
    outcome = skipped_suite(tmp_path, progress)
    assert seen == [c.id for c in checks.CHECKS] == [r["id"] for r in outcome["results"]]
    (line,) = shown(console, progress.progress)
    assert "%d/%d" % (total, total) in line and line.endswith("%d skipped" % total), line


def test_local_verify_without_a_terminal_is_one_line_per_check(tmp_path):
    console = Console(file=io.StringIO(), width=300)
    progress = output.verify_progress(len(checks.CHECKS), console)
    with progress:
        outcome = skipped_suite(tmp_path, progress)
    lines = console.file.getvalue().splitlines()
    assert lines == ["%-8s %-24s %s" % (r["status"], r["id"], r["detail"]) for r in outcome["results"]]
    quiet = Console(file=io.StringIO())
    with output.verify_progress(len(checks.CHECKS), quiet, lines=False) as progress:
        skipped_suite(tmp_path, progress)
    assert quiet.file.getvalue() == ""
