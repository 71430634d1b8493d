"""`tracekit funcgraph` and `tracekit probe` on a kernel function, for real, on
a kernel that has the function_graph tracer and kprobes (this machine's kernel
has neither; doctor says so and the host tier only sees the refusals). The
CLI runs inside the lab VM from this checkout, with the pure-Python libraries
its commands import copied from this environment: the guest reaches the
package mirrors only."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tracekit import releases as releases_module

from .conftest import REPO

# Run in the guest, before and after: the global tracer's settings the
# workflow may borrow, and the tracefs instances (a private one is removed).
STATE = r"""
t=/sys/kernel/tracing
for f in current_tracer set_graph_function set_ftrace_pid tracing_on options/funcgraph-proc options/function-fork set_event; do
    printf '%s=' "$f"; tr '\n' ' ' < "$t/$f"; echo
done
echo "instances=$(ls "$t/instances" | tr '\n' ' ')"
echo "kprobes=$(tr '\n' ' ' < "$t/kprobe_events")"
"""

# What the CLI's commands import from outside the standard library: their
# top-level packages in this environment.
IMPORTED = r"""
import json, sys, sysconfig
import tracekit.cli, tracekit.output, tracekit.workflows  # noqa: F401
site = sysconfig.get_paths()["purelib"]
top = sorted({m.split(".")[0] for m, mod in list(sys.modules.items())
              if (getattr(mod, "__file__", None) or "").startswith(site)} - {"_distutils_hack"})
print(json.dumps({"site": site, "top": top}))
"""


def cli_bundle() -> bytes:
    """A tar of tracekit and the third-party packages its CLI imports (pure
    Python, so this environment's copies run on the guest's Python)."""
    found = json.loads(subprocess.run([sys.executable, "-c", IMPORTED], capture_output=True, text=True,
                                      check=True, cwd=REPO).stdout)
    site = Path(found["site"])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(REPO / "tracekit", arcname="tracekit",
                filter=lambda info: None if "__pycache__" in info.name else info)
        # Beside the package, as in a checkout: the supported releases doctor reads.
        releases = REPO / releases_module.DATA
        tar.add(releases, arcname=releases_module.DATA)
        for name in found["top"]:
            path = site / name if (site / name).is_dir() else site / f"{name}.py"
            compiled = list(path.rglob("*.so")) if path.is_dir() else []
            assert not compiled, f"{name} is not pure Python ({compiled[0]}): it would not run on the guest's Python"
            tar.add(path, arcname=path.name, filter=lambda info: None if "__pycache__" in info.name else info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def guest_cli(vm):
    """tracekit's CLI in the guest, under /opt/tracekit-cli; tracefs mounted."""
    bundle = base64.b64encode(cli_bundle()).decode()
    ran = vm.ssh("rm -rf /opt/tracekit-cli && mkdir -p /opt/tracekit-cli && base64 -d | tar -xz -C /opt/tracekit-cli"
                 " && { mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; }",
                 stdin=bundle, timeout=300)
    assert ran.returncode == 0, ran.stderr
    return "PYTHONPATH=/opt/tracekit-cli python3 -m tracekit"


def test_funcgraph_traces_a_command_on_the_lab_kernel(vm, guest_cli):
    before = vm.ssh("sh -s", stdin=STATE)
    assert before.returncode == 0, before.stderr
    # do_sys_openat2: every open of cat goes through it.
    ran = vm.ssh(f"{guest_cli} funcgraph --json do_sys_openat2 -- cat /etc/hostname", timeout=600)
    after = vm.ssh("sh -s", stdin=STATE)
    assert ran.returncode == 0, f"rc {ran.returncode}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    result = json.loads(ran.stdout)
    assert result["schema"] == "tracekit.workflow/1" and result["workflow"] == "funcgraph", result
    assert result["exit_status"] == 0 and result["command"] == ["cat", "/etc/hostname"], result
    # cat opens at least its locale/libc files and /etc/hostname.
    assert result["calls"] >= 1, result
    assert any("do_sys_openat2" in line for line in result["lines"]), result["lines"][:20]
    # Every recorded call is the command's own (the funcgraph-proc column names it).
    tasks = {(r["task"], r["pid"]) for r in result["records"]}
    assert tasks == {("cat", result["pid"])}, tasks
    print("\n".join(result["lines"][:15]))
    assert after.stdout == before.stdout, f"tracing state changed:\nbefore:\n{before.stdout}\nafter:\n{after.stdout}"


def test_probe_on_a_kernel_function_on_the_lab_kernel(vm, guest_cli):
    # perf for the running kernel, from the archive through the lab's apt
    # proxy (about 1.5 min under TCG); nothing else of tracekit setup.
    ran = vm.ssh("apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
                 " --no-install-recommends linux-tools-$(uname -r) >/dev/null && perf --version", timeout=900)
    assert ran.returncode == 0 and ran.stdout.startswith("perf version"), ran.stdout + ran.stderr[-3000:]
    before = vm.ssh("sh -s; perf probe -l", stdin=STATE)
    ran = vm.ssh(f"{guest_cli} probe --json do_sys_openat2 -- cat /etc/hostname", timeout=600)
    after = vm.ssh("sh -s; perf probe -l", stdin=STATE)
    assert ran.returncode == 0, f"rc {ran.returncode}\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    result = json.loads(ran.stdout)
    assert result["workflow"] == "probe" and result["exit_status"] == 0 and result["binary"] is None, result
    [probe] = result["probes"]
    assert probe["on"] == "do_sys_openat2" and probe["event"].endswith(":do_sys_openat2"), probe
    # cat's opens, and only cat's (perf record follows the command).
    assert result["counts"] == {probe["event"]: len(result["hits"])} and result["hits"], result["counts"]
    assert {(h["comm"], h["event"]) for h in result["hits"]} == {("cat", probe["event"])}, result["hits"][:5]
    assert after.stdout == before.stdout, f"probes left behind:\nbefore:\n{before.stdout}\nafter:\n{after.stdout}"
