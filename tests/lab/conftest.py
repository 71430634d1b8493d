"""Lab tier: Ubuntu noble's generic kernel under qemu (TCG), from lab/kernel.py.

Needs root and qemu-system-x86 + qemu-utils (scripts/test.sh installs them). The
first run builds the VM image (about a minute; cached under
/var/cache/tracekit-lab/kernel); each VM boots to SSH in about a minute under TCG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KERNEL = REPO / "lab" / "kernel.py"
SCENARIO = REPO / "molecule" / "kernel"


def kernel_cmd(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(KERNEL), *args], capture_output=True, text=True, timeout=timeout)


def alive(pid: int, start: int) -> bool:
    """The process we started is still there (not a zombie, not a reused PID)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return rest[0] != "Z" and int(rest[19]) == start


def require_lab():
    """Skip, with the reason, where the lab cannot run at all."""
    if os.geteuid() != 0:
        pytest.skip(f"the kernel lab needs root for debootstrap and image building (euid is {os.geteuid()})")
    missing = [tool for tool in ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4")
               if not shutil.which(tool)]
    if missing:
        pytest.skip(f"the kernel lab needs {', '.join(missing)} (scripts/test.sh installs them)")


class VM:
    """A VM from `lab/kernel.py up`, reached with ssh as root."""

    def __init__(self, state: Path):
        self.state = state
        self.info = json.loads((state / "vm.json").read_text())

    def ssh(self, command: str, timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
        argv = ["ssh", "-F", "/dev/null", "-i", str(self.state / "id_ed25519"), "-p", str(self.info["ssh_port"]),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.state / 'known_hosts'}", "root@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=stdin)


@pytest.fixture(scope="session")
def vm(tmp_path_factory):
    """One VM for the tier's own tests (the molecule scenario starts its own)."""
    require_lab()
    state = tmp_path_factory.mktemp("kernel-lab")
    proc = kernel_cmd("up", "--state", str(state), timeout=1800)
    try:
        if proc.returncode != 0:
            pytest.fail(f"lab/kernel.py up failed:\n{proc.stderr[-4000:]}")
        yield VM(state)
    finally:
        info = json.loads((state / "vm.json").read_text()) if (state / "vm.json").is_file() else {}
        down = kernel_cmd("down", "--state", str(state), timeout=120)
        left = [what for what in ("qemu", "proxy") if alive(info.get(f"{what}_pid", 0), info.get(f"{what}_start", 0))]
        assert down.returncode == 0 and not left, f"down: {down.stderr}; still running: {left}"
