"""Every check runs under one time limit, its declared budget (Check.timeout
times --timeout-scale): verify's alarm ends the check there, and every tool
the check runs gets what is left of that budget (less the cleanup reserve) as
its own timeout.  No tool may have a limit of its own that outlives the check
(a systemtap module build killed by a 60 s alarm), nor a shorter one that
drifted from it.

Stand-ins, and why: real tracing tools cannot be made to hang, or to take a
given time, on demand, and a systemtap module build cannot run here (no
loadable modules, LAB.md).  So the tools are shell scripts that hang (exec
sleep, so the timeout's kill ends them) or take a set time, and the budgets
are scaled down with the same timeout_scale users pass for slow hosts.
"""

import os
import time

import pytest

from tests.unit.test_check_failures import TOOL_CHECKS, global_tracer_tree, script, tool_facts, tool_file_name
from tracekit.agent import checks, verify

ARCH = os.uname().machine
# Every check's time limit in these tests (scaled-down seconds).
LIMIT_SECONDS = 0.7
# Sysdig's first run is its capture, ended by the check itself: its read-back hangs.
HANGING_CALL = {"sysdig.kmod": 2, "sysdig.modern-ebpf": 2}
# Checks that borrow the global tracer (a stand-in tree: the real one is shared).
GLOBAL_TRACER_CHECKS = ("trace-cmd.function_graph",)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """The probe target, compiled once (so the checks' time goes to the tools)."""
    ctx = checks.Context({"kernel": {"arch": ARCH}}, workdir=str(tmp_path_factory.mktemp("target")))
    return ctx.target()


def hanging_tool(directory, name, calls, hang_on=1):
    """A tool that, on its first ``hang_on`` runs, prints an execsnoop-like
    header and hangs; later runs print nothing and exit 0 (perf probe -d, the
    cleanup, must not hang).  Each run adds a byte to ``calls``."""
    return script(directory / name, """\
        printf x >> '%s'
        [ "$(wc -c < '%s')" -le %d ] || exit 0
        echo "PCOMM            PID    PPID   RET ARGS"
        exec sleep 600
        """ % (calls, calls, hang_on))


def context(tmp_path, facts_tools, scale, target, tracefs=None):
    facts = {"kernel": {"arch": ARCH}, "tracefs": {"path": str(tracefs or tmp_path / "no-tracefs")},
             "tools": facts_tools}
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return checks.Context(facts, workdir=str(work), timeout_scale=scale, target=target)


def scale_for(check, limit_seconds=LIMIT_SECONDS):
    """The timeout_scale that makes ``check``'s time limit ``limit_seconds``."""
    return limit_seconds / check.timeout


@pytest.mark.parametrize("check_id", sorted(TOOL_CHECKS))
def test_a_hanging_tool_gets_the_checks_whole_budget_and_no_more(check_id, tmp_path, target):
    check = checks.CHECKS_BY_ID[check_id]
    key = TOOL_CHECKS[check_id]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    tool = hanging_tool(bindir, tool_file_name(check_id, key), calls, HANGING_CALL.get(check_id, 1))
    tracefs = global_tracer_tree(tmp_path) if check_id in GLOBAL_TRACER_CHECKS else None
    scale = scale_for(check)
    tools_seconds = check.deadline(scale).seconds
    ctx = context(tmp_path, tool_facts(key, tool), scale, target, tracefs)
    result = verify.run_within_limit(check, ctx)
    # The stand-in ran: a check that never reached its tool would prove nothing.
    # (Sysdig's read-back may be given no time at all: its capture and the
    # wait for it took the scaled budget.  Its timeout says it was the read.)
    assert calls.exists(), result
    assert result.status == checks.FAILED
    # Ended by its tool's own timeout (the check's budget), not by verify's alarm.
    if key in ("bcc", "libbpf-tools"):
        assert result.detail == "execsnoop did not report the exec of our marker", result.detail
    else:
        assert result.detail == ("%s timed out: the check's time limit (%gs) ran out; on a slow host raise it with "
                                 "--timeout-scale" % (tool.name, LIMIT_SECONDS)), result.detail
    # The tool had all of the budget (no shorter limit of its own) ...
    assert result.seconds >= 0.95 * tools_seconds, result
    # ... and no more: the check ended within its declared limit.
    assert result.seconds < check.seconds(scale), result


def test_tools_run_one_after_another_share_the_budget(tmp_path):
    # trace-cmd list answers, record takes 40% of the budget, report hangs:
    # report gets only what record left, so the check ends at its budget.
    check = checks.CHECKS_BY_ID["trace-cmd"]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fn = checks.kernel_open_function()
    tool = script(bindir / "trace-cmd", """\
        case "$1" in
          list) echo %s ;;
          record) sleep %s ;;
          report) exec sleep 600 ;;
        esac
        """ % (fn, 0.4 * LIMIT_SECONDS))
    scale = scale_for(check)
    result = verify.run_within_limit(check, context(tmp_path, tool_facts("trace-cmd", tool), scale, None))
    assert result.detail.startswith("trace-cmd timed out: the check's time limit"), result
    assert 0.95 * check.deadline(scale).seconds <= result.seconds < check.seconds(scale), result


@pytest.mark.parametrize("check_id, stap_output", [
    ("systemtap.module", "tracekit-begin\ntracekit-end"),
    ("systemtap.dropwatch", "Monitoring for dropped packets\n20 packets dropped at udp_queue_rcv_one_skb+0x3c3\n"
                            "Stopping dropped packet monitor")])
def test_a_module_build_longer_than_a_minute_is_not_killed(check_id, stap_output, tmp_path):
    # Scaled so 60 s are one second: a stap that takes "90 s" (a module
    # build) passes within the check's own limit (30 minutes: 30 s here).
    # With the suite-wide 60 s, the alarm killed it at "60 s".
    check = checks.CHECKS_BY_ID[check_id]
    scale = 1 / 60
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stap = script(bindir / "stap", """\
        sleep %s
        printf '%s\\n'
        """ % (90 * scale, stap_output.replace("\n", "\\n")))
    ctx = context(tmp_path, tool_facts("stap", stap), scale, None)
    result = verify.run_within_limit(check, ctx)
    assert (result.status, result.detail) != (checks.FAILED, "timed out after 1s")
    assert result.status == checks.PASSED, result
    assert result.seconds >= 90 * scale


def test_a_check_stuck_outside_its_tools_is_ended_by_its_limit(tmp_path):
    # A scaled limit under one second still fires (it was truncated to 0: no alarm at all).
    def stuck(ctx):
        time.sleep(5)  # e.g. a read of a tracefs file that blocks
        return "never", []

    check = checks.Check("stuck", "a check stuck in Python", stuck, timeout=60)
    result = verify.run_within_limit(check, context(tmp_path, {}, 0.01, None))
    assert (result.status, result.detail) == (checks.FAILED, "timed out after 0.6s")
    assert result.seconds < 1.5


@pytest.mark.parametrize("limit, tools", [(1800, 1785), (60, 45), (6, 4.5), (0.6, 0.45)])
def test_the_tools_stop_short_of_the_limit_to_clean_up(limit, tools):
    assert checks.Deadline(limit).seconds == pytest.approx(tools)
