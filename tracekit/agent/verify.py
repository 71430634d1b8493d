"""The verify suite: every smoke check, skipped where doctor says the method
cannot work here, each under its own deadline, and the host's global tracing
state compared before and after.

Standard library only: the same code runs here and, shipped by Ansible as
tracekit's zip application, on every host of an inventory."""

import contextlib
import os
import re
import signal
import time

from . import checks

SKIPPED = checks.SKIPPED
# Doctor verdicts that mean "do not even try": the reason is doctor's.
SKIP_VERDICTS = ("unavailable", "missing")


class CheckTimeout(Exception):
    """A check ran past its deadline (raised by SIGALRM inside the check, so
    its own finally blocks still remove what it created)."""


@contextlib.contextmanager
def deadline(seconds):
    """SIGALRM raises CheckTimeout after ``seconds`` (a float: a scaled
    limit below one second is still one)."""
    def expire(signum, frame):
        raise CheckTimeout("timed out after %gs" % round(seconds, 1))

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def blocking_method(check, verdicts):
    """The first method the check needs that doctor says cannot work here
    (unavailable or missing), with its verdict; None when none is."""
    for method in check.methods:
        verdict = verdicts.get(method) or {}
        if verdict.get("status") in SKIP_VERDICTS:
            return method, verdict
    return None


def skip_reason(check, verdicts):
    """Doctor's reason when a method the check needs cannot work, else None."""
    blocked = blocking_method(check, verdicts)
    if blocked is None:
        return None
    method, verdict = blocked
    return "%s: %s" % (method, verdict.get("reason")) if method != check.id else verdict.get("reason")


def select(only=()):
    unknown = [c for c in only if c not in checks.CHECKS_BY_ID]
    if unknown:
        raise ValueError("unknown check %s; valid: %s" % (", ".join(unknown), ", ".join(checks.CHECKS_BY_ID)))
    return [c for c in checks.CHECKS if not only or c.id in only]


def run_within_limit(check, ctx):
    """Run one check under its own time limit (its declared budget, scaled);
    its tools end a little earlier (checks.Deadline), so the alarm only ends
    a check stuck outside any tool."""
    start = time.monotonic()
    try:
        with deadline(check.seconds(ctx.timeout_scale)):
            return checks.run_check(check, ctx)
    except CheckTimeout as exc:
        return checks.Result(check.id, checks.FAILED, str(exc), seconds=time.monotonic() - start)


def run_suite(facts, verdicts, only=(), timeout_scale=1.0, artifacts=None, on_result=None, on_start=None):
    """Run the selected checks; returns a dict (see to_document).
    ``on_start(check)`` and ``on_result(check, result)`` see each check
    begin and end (skipped ones too).  Ctrl-C
    stops the suite between or inside checks; what was created is removed
    either way, and ``interrupted`` says so."""
    tracefs = (facts.get("tracefs") or {}).get("path") or "/sys/kernel/tracing"
    restore_env = session_debuginfod(facts)
    before = checks.snapshot_tracing_state(tracefs)
    ctx = checks.Context(facts, timeout_scale=timeout_scale, artifacts=artifacts)
    results, interrupted = [], False
    try:
        for check in select(only):
            if on_start:
                on_start(check)
            reason = skip_reason(check, verdicts)
            result = checks.Result(check.id, SKIPPED, reason) if reason else run_within_limit(check, ctx)
            results.append(result)
            if on_result:
                on_result(check, result)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        ctx.close()
        restore_env()
    after = checks.snapshot_tracing_state(tracefs)
    before, after = (checks.without_other_runs(s, ctx.token) for s in (before, after))
    return {"results": [r.to_dict() for r in results], "interrupted": interrupted,
            "state_changed": state_changes(before, after)}


def session_debuginfod(facts):
    """Give the checks' tools the DEBUGINFOD_URLS a sudo or ssh session gets
    from /etc/environment (where setup's ddebs role puts it) when this process
    started without it, e.g. right after `tracekit setup` in the same shell, as
    doctor's verdict assumes. Returns the function that undoes it."""
    debuginfod = facts.get("debuginfod") or {}
    if os.environ.get("DEBUGINFOD_URLS", "").strip() or "/etc/environment" not in (debuginfod.get("sources") or []):
        return lambda: None
    os.environ["DEBUGINFOD_URLS"] = " ".join(debuginfod.get("urls") or [])
    return lambda: os.environ.pop("DEBUGINFOD_URLS", None)


# buffer_size_kb before any tracer ran on the global instance: the kernel has not
# allocated its ring buffer yet (e.g. "7 (expanded: 1408)").
_UNEXPANDED = re.compile(r"\s*\d+ \(expanded: (\d+)\)\s*")


def same_setting(name, before, after):
    """Whether a global tracing file reads as the same setting. The one
    exception to plain equality: the global ring buffer is allocated, once and
    for good, the first time a tracer uses it (the function_graph check borrows
    the global tracer on kernels whose instances lack it), and buffer_size_kb
    then reads the allocated size, whole buffer pages minus their headers, just
    above the configured one (measured on 6.8: "7 (expanded: 1408)" -> "1410").
    The configured size is the setting, and it did not change."""
    if before == after:
        return True
    if name != "buffer_size_kb" or not isinstance(before, str) or not isinstance(after, str):
        return False
    unexpanded = _UNEXPANDED.fullmatch(before)
    if not unexpanded or not after.strip().isdigit():
        return False
    configured, allocated = int(unexpanded.group(1)), int(after)
    return configured <= allocated <= configured + configured // 100 + 4


def state_changes(before, after):
    return {k: {"before": before[k], "after": after.get(k)} for k in before
            if not same_setting(k, before[k], after.get(k))}


def exit_code(outcome):
    """0 when nothing failed (skips are fine), 1 otherwise; 130 when interrupted."""
    if outcome["interrupted"]:
        return 130
    failed = any(r["status"] == checks.FAILED for r in outcome["results"])
    return 1 if failed or outcome["state_changed"] else 0
