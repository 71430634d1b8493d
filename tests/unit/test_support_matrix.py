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
        {"id": "uprobe", "status": "failed", "detail": "a | b"},
        {"id": "systemtap.module", "status": "skipped", "detail": "systemtap 5.0 cannot build modules for 6.8"}]}
    table = m.render(machine, [lab])
    lines = table.splitlines()
    assert "| check | this machine (6.18) | Ubuntu 24.04 LTS (6.8.0-151-generic) |" in lines
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == ["| `kprobe` | skip: CONFIG_KPROBES is not set | pass |",
                    "| `uprobe` | pass | FAIL: a \\| b |",
                    "| `systemtap.module` | — | skip: systemtap 5.0 cannot build modules for 6.8 |"]


def test_one_column_per_kernel_in_release_order(tmp_path):
    m = load()
    for release, kernel in (("trixie", "6.12.1-amd64"), ("jammy", "5.15.0-1-generic")):
        (tmp_path / release).mkdir()
        doc = {"hosts": {f"{release}-kernel": {"host": {"kernel": kernel, "distro": {"name": release}},
                                                "results": [{"id": "kprobe", "status": "passed", "detail": ""}]}}}
        (tmp_path / release / "verify.json").write_text(__import__("json").dumps(doc))
    (tmp_path / "machine.json").write_text(__import__("json").dumps(
        {"hosts": {"m": {"host": {"kernel": "6.18"}, "results": []}}}))
    head = m.table_from(tmp_path / "machine.json", tmp_path).splitlines()[2]
    assert head == "| check | this machine (6.18) | jammy (5.15.0-1-generic) | trixie (6.12.1-amd64) |"


def test_a_directory_that_is_no_release_is_refused(tmp_path):
    m = load()
    (tmp_path / "kernel-lab").mkdir()
    (tmp_path / "kernel-lab" / "verify.json").write_text("{}")
    try:
        m.lab_dirs(tmp_path)
    except SystemExit as e:
        assert "kernel-lab: not a kernel lab release" in str(e)
    else:
        raise AssertionError("an unknown directory was taken for a kernel")
