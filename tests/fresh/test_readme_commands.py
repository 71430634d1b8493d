"""The README's two commands, as written, on fresh userlands.

`sudo ./install.sh` from a normal user's clone: it must exit 0, end with
doctor's report and its closing line, and the verify that `tracekit setup` ends
with must have no failure doctor did not predict (a check failing although
doctor called every method it needs ready). The hosts share this machine's 6.18
kernel (no kprobes, no modules; see ../shared/LAB.md), so doctor rules many
methods out there: that is expected, and verify skips them with its reasons.

`sudo scripts/test.sh --co -q` runs the second command up to its install step
(packages and the test venv), then only collects the tests."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from tracekit.agent import checks

from .conftest import CHECKOUT, releases, tail
from .parse import CLOSING, SUMMARY, doctor_report, unpredicted_failures, verify_lines

pytestmark = pytest.mark.fresh

INSTALL_TIMEOUT = 2400  # each release's apt installs take minutes; generous for a slow mirror
def keep(path, proc):
    """The whole output of a run, beside the test's other files (pytest keeps the last runs' tmp dirs)."""
    path.write_text(f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    print(f"full output: {path}")  # in the failure report


def show(capsys, text):
    """Into the test output as it runs, so CI's log keeps the evidence."""
    with capsys.disabled():
        print("\n" + text, flush=True)


def run_readme_command(host, command, log):
    """The checkout on a fresh host, then COMMAND from it as the README gives it;
    (host, the finished process, its seconds), its output kept in LOG."""
    host.configure_pip()
    host.copy_checkout()
    t0 = time.monotonic()
    proc = host.run(f"cd {CHECKOUT} && {command}", timeout=INSTALL_TIMEOUT, check=False)
    seconds = time.monotonic() - t0
    keep(log, proc)
    return host, proc, seconds


@pytest.mark.parametrize("release", releases("noble", "jammy", "resolute", "bookworm", "trixie"))
def test_install_sh_sets_up_a_fresh_host(release, fresh_host, capsys, tmp_path):
    host, proc, seconds = run_readme_command(fresh_host(release), "sudo ./install.sh", tmp_path / "install.log")
    host.timings["sudo ./install.sh"] = seconds
    closing = (proc.stderr.splitlines() or [""])[-1]
    report = doctor_report(proc.stdout)
    results = verify_lines(proc.stderr, checks.CHECKS_BY_ID)
    asked = host.run("/usr/local/bin/tracekit doctor --json", check=False)
    doctor = json.loads(asked.stdout) if asked.returncode in (0, 1) and asked.stdout else None
    verdicts = {v["id"]: v for v in doctor["methods"]} if doctor else {}
    unpredicted = unpredicted_failures(results, verdicts) if doctor else []
    counts = ", ".join(f"{n} {s}" for s, n in sorted(Counter(r[0] for r in results).items()))
    show(capsys, f"=== {release}: sudo ./install.sh: exit {proc.returncode} in {seconds:.0f} s "
                 f"(host up in {host.timings['host up']:.0f} s); its verify: {counts or 'none'}\n{report}\n{closing}"
                 + "".join(f"\nverify failed where doctor said ready: {u}" for u in unpredicted))
    # What matters most first: a check failing although doctor called it ready (it fails the install too).
    assert unpredicted == [], f"{release}: " + "\n".join(unpredicted) + f"\n{tail(proc)}"
    exit_status = proc.returncode  # a name, so that a failure does not print the whole CompletedProcess
    assert exit_status == 0, f"{release}: exit {exit_status}\n{tail(proc)}"
    assert doctor, f"{release}: tracekit doctor --json after the install: {tail(asked)}"

    # The closing line, and the one that matches what doctor reports.
    assert closing.startswith(CLOSING[doctor["exit_code"]]), f"{release}: closing line {closing!r}\n{tail(proc)}"
    # Doctor's report is the end of stdout: every method's row, then the summary line.
    for method in verdicts:
        assert re.search(rf"^\W*{re.escape(method)}\s", report, re.M), f"{release}: no {method} row in\n{report}"
    summary = report.splitlines()[-1]
    assert SUMMARY.match(summary), f"{release}: doctor's report does not end with its summary:\n{report}"
    assert dict((k, int(n)) for k, n in re.findall(r"(\w+) (\d+)", summary)) == doctor["summary"], summary
    # The closing verify ran every check once, and left the tracing state as it found it.
    assert sorted(r[1] for r in results) == sorted(checks.CHECKS_BY_ID), f"{release}: verify reported {results}"
    assert "the global tracing state changed" not in proc.stdout, f"{release}\n{tail(proc)}"


@pytest.mark.parametrize("release", releases("noble", "bookworm"))
def test_test_sh_installs_what_the_tests_need(release, fresh_host, capsys, tmp_path):
    host, proc, seconds = run_readme_command(fresh_host(release), "sudo scripts/test.sh --co -q",
                                             tmp_path / "test-sh.log")
    said = [line for line in proc.stderr.splitlines() if line.startswith("test.sh: ")]
    collected = re.search(r"^(\d+) tests? collected", proc.stdout, re.M)
    show(capsys, f"=== {release}: sudo scripts/test.sh --co -q: exit {proc.returncode} in {seconds:.0f} s\n"
                 + "\n".join(said) + f"\n{collected.group(0) if collected else 'no tests collected'}")
    exit_status = proc.returncode  # a name, so that a failure does not print the whole CompletedProcess
    assert exit_status == 0, f"{release}: exit {exit_status}\n{tail(proc)}"
    assert collected and int(collected.group(1)) > 0, f"{release}\n{tail(proc)}"

    # What it said it installs is installed; what it said it cannot have, apt cannot install here.
    to_install = [line.split(":", 2)[2].split() for line in said if line.startswith("test.sh: to install:")]
    assert to_install, f"{release}: a fresh host lacks the test packages, but test.sh installed none\n{tail(proc)}"
    listed = host.run("dpkg-query -W -f '${Package} ${Status}\\n' " + " ".join(to_install[0])).stdout
    installed = {line.split()[0] for line in listed.splitlines() if line.endswith(" ok installed")}
    assert set(to_install[0]) - installed == set(), f"{release}: {listed}"
    for line in said:
        m = re.match(r"test\.sh: (\S+) cannot be installed on ", line)
        if m:
            policy = host.run(f"LC_ALL=C apt-cache policy {m.group(1)}").stdout
            assert not re.search(r"Candidate: [^(]", policy), f"{release}: {line}, but:\n{policy}"
    # The test venv's dependencies are consistent (the lock installed whole).
    host.run(f"{CHECKOUT}/.venv-test/bin/python -m pip check")
