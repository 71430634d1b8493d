"""Failure paths that need root and the real tracefs: probes are really
defined, then the traced program crashes or the probe target lacks the
function; the kernel refuses what doctor says it cannot do.  Every check
must fail with one line a person can act on, and leave the global tracing
state exactly as it found it (tests/unit/test_check_failures.py has the
cases that run without root)."""

import os
import shutil
import subprocess

import pytest

from tracekit import doctor
from tracekit.agent import checks

# Stand-in probe target, and why: tracekit's own target (target.c) cannot be
# made to crash on demand.  This one has the same tk_work, prints its pid the
# same way, calls tk_work once and dies of SIGSEGV (no core file) while the
# check's probes are defined and enabled.
CRASHING_TARGET = r"""
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/resource.h>

__attribute__((noinline)) int tk_work(int n) { return 2 * n + 1; }

int main(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    tk_work(1);
    raise(SIGSEGV);
    return 0;
}
"""


@pytest.fixture(scope="module")
def crashing_target(tmp_path_factory):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if not gcc:
        pytest.skip("no C compiler to build the crashing probe target")
    work = tmp_path_factory.mktemp("crash")
    (work / "crash.c").write_text(CRASHING_TARGET)
    target = work / "tracekit-target"
    subprocess.run([gcc, "-g", "-O1", "-o", str(target), str(work / "crash.c")], check=True)
    return str(target)


def needs_ready(verdicts, method):
    verdict = verdicts[method]
    if verdict.status != doctor.READY:
        pytest.skip("doctor: %s is %s: %s" % (method, verdict.status, verdict.reason))


def run_failing(check_id, facts, target=None):
    ctx = checks.Context(facts, target=target)
    try:
        result = checks.run_check(checks.CHECKS_BY_ID[check_id], ctx)
    finally:
        ctx.close()
    assert result.status == checks.FAILED, result
    assert result.detail and "\n" not in result.detail, result.detail
    return result.detail


def no_leftovers(tracefs):
    instances = [n for n in os.listdir(os.path.join(tracefs, "instances")) if n.startswith("tk_")]
    probes = [line for name in ("uprobe_events", "kprobe_events") if os.path.exists(os.path.join(tracefs, name))
              for line in open(os.path.join(tracefs, name)) if "tracekit/" in line]
    return instances, probes


@pytest.mark.parametrize("check_id", ["uprobe", "uretprobe"])
def test_traced_program_crashes_while_the_probe_is_enabled(check_id, report, verdicts, tracefs, crashing_target,
                                                           unchanged_tracing_state):
    needs_ready(verdicts, check_id)
    detail = run_failing(check_id, report.facts, target=crashing_target)
    assert detail.startswith("tracekit-target crashed (SIGSEGV): pid "), detail
    assert no_leftovers(tracefs) == ([], [])


@pytest.mark.parametrize("check_id", ["perf.probe.user", "bpftrace.uprobe"])
def test_tool_traces_a_program_that_crashes(check_id, report, verdicts, tracefs, crashing_target,
                                            unchanged_tracing_state):
    needs_ready(verdicts, check_id)
    detail = run_failing(check_id, report.facts, target=crashing_target)
    # perf record ends with its workload's fatal signal; bpftrace reports
    # what it counted before the program died (fewer than 3 calls).
    expected = {"perf.probe.user": "perf or the program it ran (tracekit-target) crashed (SIGSEGV): pid ",
                "bpftrace.uprobe": "bpftrace uprobe: expected 3 calls with arguments summing to 6, saw "}[check_id]
    assert detail.startswith(expected), detail
    assert no_leftovers(tracefs) == ([], [])


@pytest.mark.parametrize("check_id", ["perf.probe.user", "bpftrace.uprobe"])
def test_probe_target_without_tk_work(check_id, report, verdicts, tracefs, unchanged_tracing_state):
    needs_ready(verdicts, check_id)
    true = shutil.which("true")
    detail = run_failing(check_id, report.facts, target=true)
    assert detail.startswith({"perf.probe.user": "perf exited ", "bpftrace.uprobe": "bpftrace exited "}[check_id])
    assert no_leftovers(tracefs) == ([], [])


@pytest.mark.parametrize("check_id", [c.id for c in checks.CHECKS])
def test_what_doctor_calls_impossible_fails_cleanly(check_id, report, verdicts, tracefs, unchanged_tracing_state):
    """Run anyway, each check whose method doctor calls unavailable or missing
    (here: the kernel lacks kprobes, refuses the function tracer, has no
    modules; the tool is not installed...) fails with one line and changes
    nothing."""
    check = checks.CHECKS_BY_ID[check_id]
    blocked = [verdicts[m] for m in check.methods if verdicts[m].status in (doctor.UNAVAILABLE, doctor.MISSING)]
    if not blocked:
        pytest.skip("doctor: %s" % ", ".join("%s is %s" % (m, verdicts[m].status) for m in check.methods))
    run_failing(check_id, report.facts)
    assert no_leftovers(tracefs) == ([], [])
