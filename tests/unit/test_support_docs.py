"""The committed support documents (docs/support/) agree with themselves: wherever
doctor called every method a check needs ready, the check did not fail; where doctor
ruled a method out, the check did not pass; and every skip is doctor's, with its
reason. These are the documents the README's matrix is generated from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracekit.agent import checks, verify

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "docs/support/machine-verify.json", *(REPO / "docs/support").glob("*/verify.json")])

pytestmark = pytest.mark.unit


def disagreements(host: dict) -> list[str]:
    """Where doctor's verdicts (host["doctor"]) and verify's results disagree."""
    verdicts = host.get("doctor") or {}
    found = []
    for result in host["results"]:
        check = checks.CHECKS_BY_ID.get(result["id"])
        if check is None:
            found.append(f"{result['id']}: not one of tracekit's checks")
            continue
        statuses = {m: (verdicts.get(m) or {}).get("status") for m in check.methods}
        reason = verify.skip_reason(check, verdicts)
        if result["status"] == "failed" and all(s == "ready" for s in statuses.values()):
            found.append(f"{check.id}: doctor called {', '.join(statuses)} ready, and it failed: {result['detail']}")
        elif result["status"] == "passed" and reason:
            found.append(f"{check.id}: passed although doctor ruled it out ({reason})")
        elif result["status"] == "skipped" and result["detail"] != reason:
            found.append(f"{check.id}: skipped with {result['detail']!r}, doctor's reason is {reason!r}")
    return found


def test_there_are_documents_for_this_machine_and_the_kernel_labs():
    assert REPO / "docs/support/machine-verify.json" in DOCS
    assert len(DOCS) >= 2, DOCS


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_doctor_agrees_with_verify(path):
    for name, host in json.loads(path.read_text())["hosts"].items():
        assert disagreements(host) == [], f"{path} {name}"


def test_a_disagreement_is_found():
    ready = {"status": "ready", "reason": "kprobe_events in /sys/kernel/tracing"}
    gone = {"status": "unavailable", "reason": "CONFIG_KPROBES is not set"}
    host = {"doctor": {"kprobe": ready, "kretprobe": gone, "uprobe": ready},
            "results": [{"id": "kprobe", "status": "failed", "detail": "0 hits"},
                        {"id": "kretprobe", "status": "passed", "detail": "3 hits"},
                        {"id": "uprobe", "status": "skipped", "detail": "measured by the lab: slow"}]}
    found = disagreements(host)
    assert [f.split(":")[0] for f in found] == ["kprobe", "kretprobe", "uprobe"], found
