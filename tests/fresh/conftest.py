"""Fresh tier: the README's commands on freshly debootstrapped userlands.

Each test gets a host of its own from lab/fleet.py: an sshd on 127.0.0.1 in
private mount, PID and UTS namespaces, chrooted into an overlay over a cached
debootstrap rootfs (minbase, plus sudo as a real install has it) that the test
never writes into. The checkout is copied in as a normal user's clone, and the
README's command runs there as it is written, over ssh. The hosts share this
machine's kernel and network (so apt and pip reach the registries as this
machine does) and its global tracing state (so they run one at a time, and the
state is compared before and after).

Which releases run: TRACEKIT_FRESH_RELEASES, a comma- or space-separated list
of jammy noble resolute bookworm trixie, or "all"; unset, only noble (what CI
runs: each release's install takes minutes). Needs root."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fleet.conftest import FLEET, Fleet, fleet_cmd, mount_points, take_down

REPO = Path(__file__).resolve().parents[2]
RELEASES = ("jammy", "noble", "resolute", "bookworm", "trixie")
DEFAULT_RELEASES = ("noble",)
SELECT_VAR = "TRACEKIT_FRESH_RELEASES"
# sudo as a fresh install of the release has it: Ubuntu 26.04's ubuntu-minimal
# depends on both sudo and sudo-rs, and /usr/bin/sudo is then sudo-rs.
SUDO = {"resolute": ("sudo", "sudo-rs")}
# The user whose clone the checkout is (uid 1000, as the first user of a fresh install).
USER = "tkuser"
CHECKOUT = f"/home/{USER}/tracekit"
TRACEFS = "/sys/kernel/tracing"


def selected_releases() -> tuple[str, ...]:
    raw = os.environ.get(SELECT_VAR, "").replace(",", " ").split()
    if not raw:
        return DEFAULT_RELEASES
    if raw == ["all"]:
        return RELEASES
    unknown = [r for r in raw if r not in RELEASES]
    if unknown:
        raise pytest.UsageError(f"{SELECT_VAR}: unknown release {' '.join(unknown)} "
                                f"(known: {' '.join(RELEASES)}, or all)")
    return tuple(raw)


def releases(*candidates: str) -> list:
    """Parameters for a test over ``candidates``: the unselected ones skip, saying how to select them."""
    chosen = selected_releases()
    return [pytest.param(r, id=r, marks=() if r in chosen else pytest.mark.skip(
        reason=f"not selected: set {SELECT_VAR}={r} (or all) to run it; unset, only "
               f"{' '.join(DEFAULT_RELEASES)} runs")) for r in candidates]


# --------------------------------------------------------------------------- pip config

# This workplace's pip reaches the registry with settings of its own (a CA
# bundle with its egress proxy's CA, a longer timeout); a real user's box has
# its own network and none of them. That is a property of where the tests run,
# not of tracekit, so the host gets them as /etc/pip.conf, which pip reads
# also under sudo (sudo drops PIP_* from the environment). Local files they
# name (the CA bundle, constraints) are copied into the host; local
# directories (this machine's offline wheel stores) are left out: the host has
# no such directory, and the locks' wheels come from the registry by hash.
PIP_FILES = (Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"), Path.home() / ".pip/pip.conf",
             Path.home() / ".config/pip/pip.conf")
HOST_PIP_DIR = "/etc/tracekit-fresh-pip"


def workplace_pip_settings(env=os.environ, files=PIP_FILES) -> dict[str, str]:
    """This machine's [global] pip settings: its config files in pip's order, then PIP_* variables."""
    settings: dict[str, str] = {}
    if env.get("PIP_CONFIG_FILE"):
        files = (*files, Path(env["PIP_CONFIG_FILE"]))
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read_string(path.read_text())
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install", "download"):
            if parser.has_section(section):
                settings.update(parser.items(section))
    for name, value in env.items():
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            settings[name[4:].lower().replace("_", "-")] = value
    return settings


def host_pip_config(settings: dict[str, str]) -> tuple[str, dict[str, bytes]]:
    """(pip.conf text for the host, {host path: content} of the local files it names)."""
    files: dict[str, bytes] = {}
    lines = ["# The test machine's pip settings (tests/fresh/conftest.py), not tracekit's.", "[global]"]
    for key, value in sorted(settings.items()):
        kept = []
        for word in value.split():
            local = word[len("file://"):] if word.startswith("file://") else word
            if not local.startswith("/"):
                kept.append(word)  # a URL, number or flag
            elif os.path.isfile(local):
                target = f"{HOST_PIP_DIR}/{key}-{Path(local).name}"
                files[target] = Path(local).read_bytes()
                kept.append(target)
        if kept:
            lines.append(f"{key} = {' '.join(kept)}")
    return "\n".join(lines) + "\n", files


# --------------------------------------------------------------------------- tracing state


def tracing_state() -> dict:
    """This kernel's global tracing state, read through a tracefs mounted in a
    private mount namespace (this machine may have none mounted; the
    namespace's mount vanishes with it)."""
    code = ("import json; from tracekit.agent import checks; "
            f"print(json.dumps(checks.snapshot_tracing_state({TRACEFS!r})))")
    # Mounted already (e.g. by another test session's fixture): read it as it is.
    script = (f"mountpoint -q {TRACEFS} || mount -t tracefs tracefs {TRACEFS}; "
              f"exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}")
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, f"reading the tracing state failed: {proc.stderr}"
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- hosts


@dataclass
class Host:
    """One fresh host: ssh to it as root, and what ran there."""

    release: str
    fleet: Fleet
    name: str = "fresh1"
    timings: dict[str, float] = field(default_factory=dict)

    def ssh_argv(self) -> list[str]:
        st = self.fleet.state
        return ["ssh", "-F", "/dev/null", "-i", str(st / "id_ed25519"), "-p", str(self.fleet.ports[self.name]),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={st / 'known_hosts'}", "-o", "ConnectTimeout=5",
                "-o", "ServerAliveInterval=30", "root@127.0.0.1"]

    def run(self, command: str, timeout: float = 120, stdin=None, check: bool = True) -> subprocess.CompletedProcess:
        """``command`` through root's login shell on the host, its stdout and stderr apart."""
        proc = subprocess.run(self.ssh_argv() + [command], stdin=stdin, capture_output=True, timeout=timeout)
        proc.stdout, proc.stderr = (proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
        if check:
            assert proc.returncode == 0, (f"{self.release}: {command}: rc {proc.returncode}\n"
                                          f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def put(self, path: str, content: bytes, mode: int = 0o644) -> None:
        quoted = shlex.quote(path)
        proc = subprocess.run(self.ssh_argv() + [f"mkdir -p $(dirname {quoted}) && cat > {quoted} && "
                                                 f"chmod {mode:o} {quoted}"], input=content, capture_output=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

    def copy_checkout(self) -> None:
        """The checkout's files (tracked and new, as a clone of this work would
        have them) into CHECKOUT, owned by USER."""
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                capture_output=True, check=True).stdout.split(b"\0")
        names = b"\0".join(n for n in listed if n and (REPO / os.fsdecode(n)).exists())
        self.run(f"id {USER} >/dev/null 2>&1 || useradd -m -u 1000 -s /bin/sh {USER}")
        tar = subprocess.Popen(["tar", "-c", "-C", str(REPO), "--null", "-T", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
        try:
            tar.stdin.write(names)
            tar.stdin.close()
            self.run(f"mkdir {CHECKOUT} && tar -x --no-same-owner -C {CHECKOUT} && chown -R {USER}: {CHECKOUT}",
                     stdin=tar.stdout, timeout=120)
        finally:
            tar.stdout.close()
            assert tar.wait(timeout=60) == 0, "tar of the checkout failed"

    def configure_pip(self) -> None:
        text, files = host_pip_config(workplace_pip_settings())
        for path, content in files.items():
            self.put(path, content)
        self.put("/etc/pip.conf", text.encode())


def start_host(release: str, state: Path) -> Host:
    include = ",".join(SUDO.get(release, ("sudo",)))
    t0 = time.monotonic()
    proc = fleet_cmd("rootfs", release, "--include", include, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(f"building the {release} rootfs failed:\n{proc.stderr[-4000:]}")
    fleet = Fleet(state, {"fresh1": release})
    proc = fleet_cmd("up", "--state", str(state), "--include", include, f"fresh1={release}")
    if (state / "hosts.json").is_file():
        fleet.refresh()  # whatever started is taken down, even if `up` failed
    if proc.returncode != 0:
        raise AssertionError(f"{FLEET} up failed:\n{proc.stderr[-4000:]}")
    host = Host(release, fleet)
    host.timings["host up"] = time.monotonic() - t0
    return host


@pytest.fixture
def fresh_host(tmp_path):
    """A factory: fresh_host(release) starts that release's host (one per
    test); the teardown takes it down and checks that nothing is left on this
    machine: processes, mounts, the global tracing state."""
    if os.geteuid() != 0:
        pytest.skip(f"the fresh tier needs root for namespaces, mounts and the hosts' installs "
                    f"(euid is {os.geteuid()})")
    started: list[Host] = []
    mounts_before = mount_points()
    state_before = tracing_state()

    def start(release: str) -> Host:
        assert not started, "one fresh host per test: they share this kernel's tracing state"
        try:
            started.append(start_host(release, tmp_path / "state"))
        except BaseException:
            take_down(Fleet(tmp_path / "state", {"fresh1": release}))
            raise
        return started[0]

    yield start
    problems = []
    for host in started:
        problems += take_down(host.fleet)
    problems += [f"new mount on this machine: {m}" for m in mount_points() - mounts_before]
    state_after = tracing_state()
    problems += [f"tracing state changed: {key}: {state_before[key]!r} -> {state_after[key]!r}"
                 for key in state_before if state_before[key] != state_after[key]]
    assert not problems, "\n".join(problems)


def tail(proc: subprocess.CompletedProcess, lines: int = 60) -> str:
    """What a failing command said last, for the assertion message."""
    def last(text):
        return "\n".join(text.splitlines()[-lines:])
    return f"--- stdout (last {lines} lines)\n{last(proc.stdout)}\n--- stderr (last {lines} lines)\n{last(proc.stderr)}"
