"""The README's support matrix is generated from verify JSON, never edited by hand."""

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "support-matrix.py"


def load():
    spec = importlib.util.spec_from_file_location("support_matrix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_what_the_committed_results_give():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_cells_carry_status_and_reason():
    m = load()
    machine = {"host": {"kernel": "6.18"}, "results": [
        {"id": "kprobe", "status": "skipped", "detail": "CONFIG_KPROBES is not set"},
        {"id": "uprobe", "status": "passed", "detail": "ok"}]}
    lab = {"host": {"kernel": "6.8.0-151-generic", "distro": {"name": "Ubuntu 24.04 LTS"}}, "results": [
        {"id": "kprobe", "status": "passed", "detail": "3 hits"},
        {"id": "uprobe", "status": "failed", "detail": "a | b"}]}
    table = m.render(machine, lab, {"skipped_by_lab": {"systemtap.module": "measured: 30 min"}})
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows == ["| `kprobe` | skip: CONFIG_KPROBES is not set | pass |",
                    "| `uprobe` | pass | FAIL: a \\| b |",
                    "| `systemtap.module` | — | skip: measured: 30 min |"]
