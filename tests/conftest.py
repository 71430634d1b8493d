"""Test tiers are pytest markers, given by directory: tests/unit -> unit,
tests/cli -> cli, tests/host -> host, tests/fleet -> fleet, tests/lab -> lab,
tests/fresh -> fresh.
Select with e.g. `-m unit` or `-m "not lab"`."""

import os
import signal
from pathlib import Path

import pytest

# A background job of a non-interactive shell (`.ci/run &` in a script)
# starts with SIGINT ignored, and every process it starts inherits that: the
# tests that press Ctrl-C on a tracekit they start need what a terminal gives.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TESTS = Path(__file__).parent
DATA = TESTS / "data"
TIERS = ("unit", "cli", "host", "fleet", "lab", "fresh")


def pytest_collection_modifyitems(config, items):
    for item in items:
        rel = Path(str(item.fspath)).relative_to(TESTS)
        tier = rel.parts[0] if len(rel.parts) > 1 else None
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def data_dir():
    return DATA


def is_root():
    return os.geteuid() == 0
