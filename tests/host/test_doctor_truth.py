"""Doctor's verdicts checked against reality on this machine.

For each method doctor calls ready, a minimal real probe must fire; for each
it calls missing or unavailable, a real attempt must fail.  The probes are
tracekit's own smoke checks (tracekit.agent.checks), one per method."""

import pytest

from tracekit import doctor
from tracekit.agent import checks


@pytest.mark.parametrize("method_id", doctor.METHOD_IDS)
def test_verdict_matches_a_real_attempt(method_id, verdicts, check_context, unchanged_tracing_state):
    verdict = verdicts[method_id]
    assert verdict.status != doctor.UNKNOWN, "as root doctor should know: %s" % verdict.reason
    result = checks.run_check(checks.CHECKS_BY_ID[method_id], check_context)
    if verdict.status == doctor.READY:
        assert result.status == checks.PASSED, "doctor: ready; real probe: %s" % result.detail
        assert result.evidence, "a passing probe must show what it saw"
    else:
        # A tool that runs into the limit doctor named is skipped (HostLimit), not failed.
        hit_the_limit = result.status == checks.SKIPPED and checks.HostLimit.MARK in result.detail
        assert result.status == checks.FAILED or hit_the_limit, "doctor: %s (%s); yet the probe %s: %s" % (
            verdict.status, verdict.reason, result.status, result.detail)


def test_every_method_has_exactly_one_check():
    assert [c.method for c in checks.METHOD_CHECKS] == list(doctor.METHOD_IDS)
    assert all(m in doctor.METHOD_IDS for c in checks.CHECKS for m in c.methods)


def test_config_causes_are_named(report, verdicts):
    """Where the kernel config leaves a feature out, doctor names the option."""
    options = report.facts["kconfig"]["options"]
    if options.get("KPROBES") == "n":
        assert verdicts["kprobe"].status == doctor.UNAVAILABLE
        assert verdicts["kprobe"].reason == "CONFIG_KPROBES is not set"
    if options.get("UPROBE_EVENTS") == "y" and report.facts["tracefs"].get("readable"):
        assert verdicts["uprobe"].status == doctor.READY


def test_doctor_changes_no_tracing_state(tracefs, unchanged_tracing_state):
    doctor.diagnose()


def test_doctor_leaves_nothing_mounted(tracefs):
    """With tracefs and securityfs unmounted, doctor looks at them from a
    private mount namespace: the host's mount table is the same afterwards."""
    import subprocess

    def mounts():
        with open("/proc/self/mountinfo") as f:
            return sorted(" ".join(line.split()[3:5] + line.split(" - ")[1].split()[:1]) for line in f)

    subprocess.run(["umount", tracefs], check=True)
    try:
        others = [m for m in mounts() if m.endswith(" tracefs")]
        if others:
            pytest.skip("tracefs is also mounted at %s: the unmounted case cannot be set up" % others)
        before = mounts()
        report = doctor.diagnose()
        after = mounts()
    finally:
        subprocess.run(["mount", "-t", "tracefs", "tracefs", tracefs], check=True)
    assert before == after
    tracefs_facts = report.facts["tracefs"]
    assert tracefs_facts["mounted"] is False
    assert tracefs_facts["probed"] == "private mount namespace" and tracefs_facts["readable"] is True
    verdict = {v.id: v for v in report.verdicts}["tracepoint"]
    assert verdict.status == doctor.MISSING and verdict.component == "debugfs"
