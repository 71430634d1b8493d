"""Reading what install.sh printed: verify's lines, doctor's report, the closing line."""

from __future__ import annotations

import re

from tracekit.agent import checks

CLOSING = {
    0: "install.sh: done: tracekit is installed and this machine is set up; doctor (above) says what it can trace.",
    1: "install.sh: done: tracekit is installed and set up; doctor (above) lists what this host still lacks",
}
SUMMARY = re.compile(r"^(?:\w+ \d+ {2})*\w+ \d+$")
_VERIFY_COUNTS = re.compile(r"^\S+: \d+ (passed|failed|skipped)(, \d+ (passed|failed|skipped))*$")


def unpredicted_failures(results, verdicts):
    """The failed checks whose methods doctor called ready, every one of them."""
    found = []
    for status, check_id, detail in results:
        methods = checks.CHECKS_BY_ID[check_id].methods
        if status == "failed" and all(verdicts[m]["status"] == "ready" for m in methods):
            found.append(f"{check_id}: doctor called {', '.join(methods)} ready, and it failed: {detail}")
    return found


def doctor_report(stdout):
    """The part of install.sh's stdout after verify's per-host counts: doctor's report."""
    lines = stdout.splitlines()
    ends = [i for i, line in enumerate(lines) if _VERIFY_COUNTS.match(line)]
    return "\n".join(lines[ends[-1] + 1:] if ends else lines).strip("\n")


_VERIFY_LINE = re.compile(r"^(passed|failed|skipped) +(\S+) *(.*)$")


def verify_lines(stderr: str, check_ids) -> list[tuple[str, str, str]]:
    """(status, check id, first line of the detail) of each check the local
    verify reported on stderr, one line per check (its output off a terminal)."""
    found = []
    for line in stderr.splitlines():
        m = _VERIFY_LINE.match(line)
        if m and m.group(2) in check_ids:
            found.append(m.groups())
    return found
