"""Fleet tier: SSH hosts with their own Debian/Ubuntu userlands, from lab/fleet.py.

One session fleet: bookworm1 (Debian 12), noble1 and noble2 (Ubuntu 24.04), each an
sshd on 127.0.0.1 in its own mount/PID namespaces over a cached debootstrap rootfs.
Building a rootfs the first time takes about a minute per suite (then it is cached
under /var/cache/tracekit-lab); bringing the three hosts up takes about a second.

Needs root. A failing debootstrap fails the tier (it is a broken lab, not a
machine that cannot run it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLEET = REPO / "lab" / "fleet.py"
HOSTS = {"bookworm1": "bookworm", "noble1": "noble", "noble2": "noble"}
# The ansible of the environment running the tests, not whatever is on PATH.
ANSIBLE = Path(sys.executable).parent / "ansible"


def fleet_cmd(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FLEET), *args], capture_output=True, text=True, timeout=timeout)


def mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


@dataclass
class Fleet:
    """A running fleet: what Ansible needs to reach it, and a way to take one host away."""

    state: Path
    suites: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, tuple[int, int]] = field(default_factory=dict)  # (unshare, namespace init)

    @property
    def names(self) -> list[str]:
        return list(self.suites)

    @property
    def inventory(self) -> Path:
        return self.state / "inventory.yml"

    def refresh(self) -> None:
        hosts = json.loads((self.state / "hosts.json").read_text())["hosts"]
        self.ports = {h["name"]: h["port"] for h in hosts}
        self.pids.update({h["name"]: (h["pid"], h["init_pid"]) for h in hosts if h["pid"]})

    def stop(self, name: str) -> None:
        """Make one host unreachable (its inventory entry stays)."""
        proc = fleet_cmd("down", "--state", str(self.state), "--host", name)
        assert proc.returncode == 0, proc.stderr

    def start(self, name: str) -> None:
        """Bring a stopped host back (on a new port; the inventory is rewritten)."""
        proc = fleet_cmd("up", "--state", str(self.state), f"{name}={self.suites[name]}")
        assert proc.returncode == 0, proc.stderr
        self.refresh()

    def env(self) -> dict[str, str]:
        # Ansible's own files (ssh control sockets, temp dirs) stay in the state dir.
        return dict(os.environ, ANSIBLE_HOME=str(self.state / "ansible-home"), ANSIBLE_NOCOLOR="1",
                    ANSIBLE_DEPRECATION_WARNINGS="false", ANSIBLE_RETRY_FILES_ENABLED="false")

    def ansible(self, pattern: str, module: str, args: str | None = None, timeout: float = 120) -> dict:
        """Run one ad-hoc module; returns {host: result}, as Ansible's tree callback
        saved them (one JSON file per host, unreachable ones included)."""
        tree = Path(tempfile.mkdtemp(prefix="tree-", dir=self.state))
        argv = [str(ANSIBLE), "-i", str(self.inventory), pattern, "-m", module, "--tree", str(tree)]
        if args is not None:
            argv += ["-a", args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env())
        results = {f.name: json.loads(f.read_text()) for f in tree.iterdir()}
        assert results, f"ansible reported no host (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        return results


def bring_up(fleet: Fleet) -> None:
    for suite in sorted(set(fleet.suites.values())):
        proc = fleet_cmd("rootfs", suite, timeout=1200)
        if proc.returncode != 0:
            pytest.fail(f"building the {suite} rootfs failed:\n{proc.stderr[-4000:]}")
    proc = fleet_cmd("up", "--state", str(fleet.state), *(f"{n}={s}" for n, s in fleet.suites.items()))
    if (fleet.state / "hosts.json").is_file():
        fleet.refresh()  # whatever started must be taken down, even if `up` failed
    if proc.returncode != 0:
        pytest.fail(f"lab/fleet.py up failed:\n{proc.stderr[-4000:]}")


def take_down(fleet: Fleet) -> list[str]:
    """`down`, then what it left behind (recorded PIDs alive, mounts under the state dir)."""
    proc = fleet_cmd("down", "--state", str(fleet.state))
    problems = [] if proc.returncode == 0 else [f"down failed: {proc.stderr}"]
    for name, pids in fleet.pids.items():
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                continue
            if state != "Z":  # a zombie is dead; this machine's init reaps it a little later
                problems.append(f"{name}: PID {pid} still alive ({state})")
    problems += [f"still mounted: {m}" for m in mount_points() if m.startswith(str(fleet.state))]
    problems += [f"{name}: {sub} left behind" for name in fleet.suites for sub in ("upper", "work", "merged")
                 if (fleet.state / name / sub).exists()]
    return problems


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip(f"the fleet tier needs root for debootstrap, namespaces and mounts (euid is {os.geteuid()})")
    before = mount_points()
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), dict(HOSTS))
    try:
        bring_up(fleet)
        yield fleet
    finally:
        problems = take_down(fleet)
        problems += [f"new mount on this machine: {m}" for m in mount_points() - before]
        assert not problems, "\n".join(problems)
