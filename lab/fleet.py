#!/usr/bin/python3
"""Fleet lab: SSH "hosts" on this machine, each with its own Debian or Ubuntu userland.

Each host is an sshd chrooted into an overlayfs over one cached debootstrap rootfs,
inside its own mount, PID and UTS namespaces, listening on 127.0.0.1:<port>. The hosts
share this machine's kernel and network namespace, so they reach the same package
mirrors as this machine and Ansible reaches them over loopback SSH.

    lab/fleet.py rootfs bookworm            # build once, cached
    lab/fleet.py up --state DIR bookworm1=bookworm noble1=noble
    lab/fleet.py up --state DIR --include sudo noble1=noble   # a rootfs with sudo too
    lab/fleet.py status --state DIR
    lab/fleet.py down --state DIR [--host noble1]

Root only. Stdlib only, so it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Bump when the build recipe changes: it is part of the cache key, so every
# rootfs built by an older recipe is rebuilt instead of silently reused.
RECIPE_VERSION = 3

LAB = Path(__file__).resolve().parent
# TRACEKIT_LAB_CACHE moves every lab cache (rootfs here, lab/kernel.py's images
# and apt proxy) elsewhere, e.g. to measure a cold build beside a warm cache.
CACHE_ROOT = Path(os.environ.get("TRACEKIT_LAB_CACHE") or "/var/cache/tracekit-lab")
CACHE = CACHE_ROOT / "rootfs"

# What Ansible and tracekit need on a minimal host: sshd to reach it, python3 and
# python3-apt for Ansible's modules (apt module), ca-certificates and gpg for
# third-party apt repositories, mount (not in minbase) for debugfs/tracefs.
INCLUDE = ("openssh-server", "python3", "python3-apt", "ca-certificates", "gpg", "mount")

# The Ubuntu archive's signing key. Debian ships no Ubuntu keyring, so the key
# comes from the repository and is used only if its fingerprint is this one.
UBUNTU_KEY = LAB / "keys" / "ubuntu-archive-2018.asc"
UBUNTU_KEY_FPR = "F6ECB3762474EDA9D21B7022871920D1991BC93C"


@dataclass(frozen=True)
class Suite:
    distro: str
    components: tuple[str, ...]  # what debootstrap installs from
    apt_components: tuple[str, ...]  # what the host's apt sources list, as on a real install
    script: str | None  # debootstrap script (None: the suite's own)
    extra: tuple[str, ...] = ()


SUITES = {
    "bookworm": Suite("debian", ("main",), ("main",), None),
    "trixie": Suite("debian", ("main",), ("main",), None),
    # A real Ubuntu install has universe (tracekit installs bpftrace, bcc, sysdig
    # from it). Debian 12's debootstrap knows jammy but not noble or resolute:
    # gutsy's script is the generic modern Ubuntu one and fits both.
    "jammy": Suite("ubuntu", ("main", "universe"), ("main", "restricted", "universe", "multiverse"),
                   None, ("ubuntu-keyring",)),
    "noble": Suite("ubuntu", ("main", "universe"), ("main", "restricted", "universe", "multiverse"),
                   "/usr/share/debootstrap/scripts/gutsy", ("ubuntu-keyring",)),
    "resolute": Suite("ubuntu", ("main", "universe"), ("main", "restricted", "universe", "multiverse"),
                      "/usr/share/debootstrap/scripts/gutsy", ("ubuntu-keyring",)),
}


class LabError(Exception):
    """A failure with a message a person can act on (printed without a traceback)."""


def log(msg: str) -> None:
    print(f"fleet: {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    """Run argv, raising LabError with its output when it fails."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    proc = subprocess.run(argv, check=False, **kw)
    if proc.returncode != 0:
        out = ((proc.stdout or "") + (proc.stderr or "")).strip()
        raise LabError(f"{argv[0]} failed ({proc.returncode}): {' '.join(argv)}\n{out[-3000:]}")
    return proc


# --------------------------------------------------------------------------- rootfs


def includes(suite: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """What debootstrap installs beyond minbase: INCLUDE, the suite's own
    extras, and a caller's (lab/kernel.py adds an init system and a kernel's
    needs), without duplicates."""
    return tuple(dict.fromkeys(INCLUDE + SUITES[suite].extra + tuple(extra)))


def cache_key(suite: str, mirror: str | None, security_mirror: str | None, extra: tuple[str, ...] = ()) -> str:
    s = SUITES[suite]
    blob = json.dumps([RECIPE_VERSION, suite, s.components, s.apt_components, s.script,
                       sorted(includes(suite, extra)), mirror or "", security_mirror or ""])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def rootfs_path(suite: str, mirror: str | None = None, security_mirror: str | None = None,
                extra: tuple[str, ...] = ()) -> Path:
    return CACHE / f"{suite}-{cache_key(suite, mirror, security_mirror, extra)}"


def ubuntu_keyring(tmp: Path) -> Path:
    """Dearmor the pinned Ubuntu archive key into a keyring for debootstrap,
    after checking that the file holds that one key and nothing else."""
    env = dict(os.environ, GNUPGHOME=str(tmp / "gnupg"))
    (tmp / "gnupg").mkdir(mode=0o700)
    out = run(["gpg", "--batch", "--show-keys", "--with-colons", str(UBUNTU_KEY)], env=env).stdout
    lines = [ln.split(":") for ln in out.splitlines()]
    primaries = [f for f in lines if f[0] == "pub"]
    fprs = [f[9] for prev, f in zip(lines, lines[1:]) if f[0] == "fpr" and prev[0] == "pub"]
    if len(primaries) != 1 or fprs != [UBUNTU_KEY_FPR]:
        raise LabError(f"{UBUNTU_KEY}: expected exactly the key {UBUNTU_KEY_FPR}, found {fprs or 'none'}")
    keyring = tmp / "ubuntu-archive.gpg"
    run(["gpg", "--batch", "--yes", "--output", str(keyring), "--dearmor", str(UBUNTU_KEY)], env=env)
    return keyring


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path in this mount namespace."""
    prefix = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(mp)
    return found


def remove_tree(path: Path) -> None:
    """rm -rf that refuses to descend into anything still mounted."""
    if not path.exists() and not path.is_symlink():
        return
    if mounts_under(path):
        raise LabError(f"refusing to remove {path}: still mounted: {mounts_under(path)}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def write_sources(tree: Path, suite: str, security_mirror: str | None) -> None:
    """Replace debootstrap's one-line sources.list with the deb822 sources a fresh
    install of that release has: the release, -updates and -security pockets.

    The mirror is the one debootstrap used (its script's default unless
    overridden), read back from the file it wrote, so no mirror is named here."""
    s = SUITES[suite]
    sl = tree / "etc/apt/sources.list"
    words = next((ln.split() for ln in sl.read_text().splitlines() if ln.startswith("deb ")), None)
    if not words or words[2] != suite:
        raise LabError(f"unexpected {sl}: {sl.read_text()!r}")
    mirror = words[1].rstrip("/")
    comps = " ".join(s.apt_components)
    if s.distro == "debian":
        # Debian serves security updates from a sibling archive: <mirror>-security.
        security = security_mirror or mirror + "-security"
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        stanzas = [(mirror, f"{suite} {suite}-updates"), (security, f"{suite}-security")]
        name, sl_text = "debian.sources", None
    else:
        # Ubuntu's archive carries the -security pocket itself.
        security = security_mirror or mirror
        keyring = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
        stanzas = [(mirror + "/", f"{suite} {suite}-updates {suite}-backports"),
                   (security.rstrip("/") + "/", f"{suite}-security")]
        name = "ubuntu.sources"
        sl_text = "# Ubuntu sources have moved to /etc/apt/sources.list.d/ubuntu.sources\n"
    if not (tree / keyring.lstrip("/")).is_file():
        raise LabError(f"{suite} rootfs lacks {keyring}")
    text = "\n".join(f"Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: {comps}\nSigned-By: {keyring}\n"
                     for uri, suites in stanzas)
    (tree / "etc/apt/sources.list.d" / name).write_text(text)
    if sl_text is None:
        sl.unlink()
    else:
        sl.write_text(sl_text)


# Both run in private mount and PID namespaces: debootstrap mounts proc and sys
# inside the target, and an interrupted build must leave neither mounts nor
# processes behind. The second proves apt works with the sources written in
# between (signatures, pockets, dates), then empties apt's lists as container
# images do: a cached rootfs ages, and stale lists make installs fail confusingly.
DEBOOTSTRAP_SH = 'debootstrap "$@"'
APT_CHECK_SH = r"""
set -eu
mount -t proc proc "$1/proc"
chroot "$1" apt-get update -q
chroot "$1" apt-get clean
rm -rf "$1"/var/lib/apt/lists/*_* "$1"/var/lib/apt/lists/partial/*
umount "$1/proc"
"""


def in_private_namespaces(script: str, *args: str) -> tuple[int, str]:
    """Run a shell script in its own mount and PID namespaces; if we are
    interrupted, killing unshare (--kill-child) takes the whole namespace down."""
    proc = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
                             "--", "sh", "-c", script, "sh", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, out


def build_rootfs(suite: str, mirror: str | None = None, security_mirror: str | None = None,
                 extra: tuple[str, ...] = ()) -> Path:
    """Build the suite's rootfs once into a temporary directory and rename it into
    place, so the cache only ever holds complete trees. ``extra`` packages are
    installed by debootstrap too (and are part of the cache key)."""
    if suite not in SUITES:
        raise LabError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    final = rootfs_path(suite, mirror, security_mirror, extra)
    if final.is_dir():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; also guards the stale-tmp sweep
        if final.is_dir():
            return final
        for stale in CACHE.glob(".tmp-*"):  # left by a killed build
            remove_tree(stale)
        s = SUITES[suite]
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=CACHE))
        try:
            tree = work / "rootfs"
            keyring = ubuntu_keyring(work) if s.distro == "ubuntu" else \
                Path("/usr/share/keyrings/debian-archive-keyring.gpg")
            if not keyring.is_file():
                raise LabError(f"{keyring} missing: apt-get install debian-archive-keyring")
            argv = ["--variant=minbase", f"--components={','.join(s.components)}",
                    f"--include={','.join(includes(suite, extra))}", f"--keyring={keyring}",
                    suite, str(tree), mirror or ""]
            if s.script:
                argv.append(s.script)
            t0 = time.monotonic()
            log(f"building {suite} rootfs (debootstrap, a minute or so)")
            rc, out = in_private_namespaces(DEBOOTSTRAP_SH, *argv)
            if rc != 0:
                raise LabError(f"debootstrap {suite} failed ({rc}):\n{out[-4000:]}")
            # debootstrap only warns when it cannot check the signature: insist.
            if "Valid Release signature" not in out:
                raise LabError(f"debootstrap did not verify the {suite} Release signature:\n{out[-2000:]}")
            write_sources(tree, suite, security_mirror)
            rc, out = in_private_namespaces(APT_CHECK_SH, str(tree))
            if rc != 0:
                raise LabError(f"apt-get update in the new {suite} rootfs failed ({rc}):\n{out[-4000:]}")
            for key in (tree / "etc/ssh").glob("ssh_host_*"):
                key.unlink()  # every host gets its own keys at `up`
            meta = {"suite": suite, "key": final.name, "recipe": RECIPE_VERSION,
                    "include": list(includes(suite, extra)), "mirror": mirror or "(debootstrap default)",
                    "seconds": round(time.monotonic() - t0, 1), "built": time.strftime("%F %T")}
            os.rename(tree, final)
            (CACHE / f"{final.name}.json").write_text(json.dumps(meta, indent=1) + "\n")
            log(f"built {final} in {meta['seconds']} s")
        finally:
            remove_tree(work)
    return final


# --------------------------------------------------------------------------- hosts


@dataclass
class Host:
    name: str
    suite: str
    port: int
    rootfs: str
    pid: int = 0  # the unshare process, in this machine's PID namespace
    start: int = 0  # its start time (clock ticks), so a reused PID is never killed
    init_pid: int = 0  # PID 1 of the host's PID namespace (sshd)
    init_start: int = 0
    state: str = "down"


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of pid, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return rest[0], int(rest[1]), int(rest[19])


def alive(pid: int, start: int) -> bool:
    st = proc_stat(pid) if pid else None
    return st is not None and st[0] != "Z" and st[2] == start


def child_of(pid: int) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pid:
                return int(entry)
    return 0


class State:
    """The state directory: keys, per-host overlay dirs, hosts.json, inventory.yml."""

    def __init__(self, path: str):
        self.dir = Path(path).resolve()
        if any(c in str(self.dir) for c in ",:\\ "):
            raise LabError(f"{self.dir}: the state directory path must not contain , : \\ or spaces"
                           " (it goes into overlayfs mount options)")
        self.json = self.dir / "hosts.json"
        self.client_key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.inventory = self.dir / "inventory.yml"

    def load(self) -> dict[str, Host]:
        if not self.json.is_file():
            return {}
        return {h["name"]: Host(**h) for h in json.loads(self.json.read_text())["hosts"]}

    def save(self, hosts: dict[str, Host]) -> None:
        atomic_write(self.json, json.dumps({"hosts": [asdict(h) for h in hosts.values()]}, indent=1) + "\n")


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)


def keygen(path: Path, comment: str) -> str:
    if not path.is_file():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


def put(upper: Path, lower: Path, rel: str, text: str, mode: int) -> None:
    """Write a file into an overlay's upper dir before it is mounted. Parent
    directories copy the lower dir's mode and owner (an upper directory's
    attributes are what the host sees); new ones are 0700."""
    parts = Path(rel).parts
    for i in range(1, len(parts)):
        d = upper.joinpath(*parts[:i])
        if not d.is_dir():
            d.mkdir()
            try:
                st = os.stat(lower.joinpath(*parts[:i]))
                os.chmod(d, st.st_mode & 0o7777)
                os.chown(d, st.st_uid, st.st_gid)
            except FileNotFoundError:  # new in the upper dir too: private, like ~/.ssh
                os.chmod(d, 0o700)
    target = upper / rel
    with contextlib.suppress(FileNotFoundError):
        target.unlink()  # never write through a symlink
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(target, mode)


SSHD_CONFIG = """\
# tracekit fleet lab host {name}: written by lab/fleet.py
Port {port}
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PidFile none
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
MaxStartups 50:30:100
"""

# PID 1 of the host's PID namespace, in its private mount namespace. Mounts made
# here vanish with the namespace: nothing to unmount on this machine afterwards.
# /dev is a tmpfs with the usual nodes (not this machine's /dev, which a host could
# then change), its own devpts instance and /dev/shm.
HOST_SH = r"""
set -eu
root=$1 lower=$2 upper=$3 work=$4 name=$5
mount -t overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" overlay "$root"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,mode=755,size=64k tmpfs "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
mkdir -m 755 "$root/dev/pts"
mkdir -m 1777 "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$root/run"
mkdir -m 755 "$root/run/sshd" "$root/run/lock"
: > "$root/run/utmp"  # sshd records logins there
hostname "$name"
exec chroot "$root" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config.lab
"""


# The upstream debug-symbol services tracekit's roles default to (Ubuntu's ddebs
# archive, the distributions' debuginfod servers) are out of this lab's reach, and
# the lab may send nothing beyond loopback: on its hosts they resolve to 127.0.0.9,
# where nothing listens, so a default setup meets a refused connection (and falls
# back, as on a host without the archive) instead of sending traffic out.
UPSTREAM_TO_LOOPBACK = ("# tracekit lab: upstream debug-symbol services stay on loopback\n"
                        "127.0.0.9\tddebs.ubuntu.com debuginfod.ubuntu.com debuginfod.debian.net\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(state: State, host: Host, client_pub: str) -> Path:
    """Fresh upper/work dirs holding this host's identity: host key, root's
    authorized key, sshd config, hostname, and this machine's resolv.conf."""
    hdir = state.dir / host.name
    for sub in ("upper", "work", "merged"):
        remove_tree(hdir / sub)
        (hdir / sub).mkdir(parents=True)
    lower = Path(host.rootfs)
    upper = hdir / "upper"
    pub = keygen(hdir / "ssh_host_ed25519_key", f"root@{host.name}")
    put(upper, lower, "etc/ssh/ssh_host_ed25519_key", (hdir / "ssh_host_ed25519_key").read_text(), 0o600)
    put(upper, lower, "etc/ssh/ssh_host_ed25519_key.pub", pub + "\n", 0o644)
    put(upper, lower, "etc/ssh/sshd_config.lab", SSHD_CONFIG.format(name=host.name, port=host.port), 0o644)
    put(upper, lower, "root/.ssh/authorized_keys", client_pub + "\n", 0o600)
    put(upper, lower, "etc/hostname", host.name + "\n", 0o644)
    put(upper, lower, "etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n" + UPSTREAM_TO_LOOPBACK, 0o644)
    put(upper, lower, "etc/resolv.conf", Path("/etc/resolv.conf").read_text(), 0o644)
    return hdir


def start(state: State, host: Host) -> None:
    """Start the host's namespace detached from this process (own session, output
    to its sshd.log) so it outlives `up`."""
    hdir = state.dir / host.name
    with open(hdir / "sshd.log", "ab") as out:
        proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "--propagation", "private",
             "--", "sh", "-c", HOST_SH, "sh", str(hdir / "merged"), host.rootfs, str(hdir / "upper"),
             str(hdir / "work"), host.name],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    host.pid, host.start = proc.pid, proc_stat(proc.pid)[2]
    proc.returncode = 0  # not ours to wait for: keeps Popen's destructor quiet
    host.state = "up"


def known_line(state: State, host: Host) -> str:
    """The host's known_hosts line, from the host key generated for it."""
    kind, key = (state.dir / host.name / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return f"[127.0.0.1]:{host.port} {kind} {key}"


def wait_ready(state: State, host: Host, timeout: float = 30.0) -> None:
    """Wait until the host answers SSH: ssh-keyscan must return the host key we
    generated for it, then a key login as root must work."""
    want = known_line(state, host)
    deadline = time.monotonic() + timeout
    while True:
        if not alive(host.pid, host.start):
            tail = (state.dir / host.name / "sshd.log").read_text()[-2000:]
            raise LabError(f"{host.name}: exited before answering SSH; sshd.log:\n{tail}")
        if not host.init_pid:
            host.init_pid = child_of(host.pid)
            host.init_start = proc_stat(host.init_pid)[2] if host.init_pid else 0
        with socket.socket() as s:
            s.settimeout(1)
            listening = s.connect_ex(("127.0.0.1", host.port)) == 0
        if listening:
            scan = subprocess.run(["ssh-keyscan", "-T", "2", "-t", "ed25519", "-p", str(host.port), "127.0.0.1"],
                                  capture_output=True, text=True, check=False).stdout.strip()
            if scan == want:
                break
            if scan:
                raise LabError(f"{host.name}: 127.0.0.1:{host.port} answers with another host key: {scan}")
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: no SSH on 127.0.0.1:{host.port} after {timeout:.0f} s")
        time.sleep(0.05)
    kh = state.dir / f".known_hosts.{host.name}"
    kh.write_text(want + "\n")
    try:
        run(ssh_argv(state, host, kh) + ["true"])
    finally:
        kh.unlink()


def ssh_argv(state: State, host: Host, known_hosts: Path | None = None) -> list[str]:
    return ["ssh", "-F", "/dev/null", "-i", str(state.client_key), "-p", str(host.port),
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts or state.known_hosts}", "-o", "ConnectTimeout=5",
            "root@127.0.0.1"]


def write_inventory(state: State, hosts: dict[str, Host]) -> None:
    """inventory.yml with one group per suite (children of debian/ubuntu).
    Values are JSON strings, which YAML reads as they are."""
    q = json.dumps
    common = (f"-o UserKnownHostsFile={state.known_hosts} -o StrictHostKeyChecking=yes "
              "-o IdentitiesOnly=yes")
    lines = ["# written by lab/fleet.py up", "all:", "  vars:",
             f"    ansible_host: {q('127.0.0.1')}",
             f"    ansible_user: {q('root')}",
             f"    ansible_ssh_private_key_file: {q(str(state.client_key))}",
             f"    ansible_python_interpreter: {q('/usr/bin/python3')}",
             f"    ansible_ssh_common_args: {q(common)}",
             "  children:"]
    for distro in sorted({s.distro for s in SUITES.values()}):
        suites = [name for name, s in SUITES.items() if s.distro == distro
                  and any(h.suite == name for h in hosts.values())]
        if not suites:
            continue
        lines += [f"    {distro}:", "      children:"]
        for suite in suites:
            lines += [f"        {suite}:", "          hosts:"]
            lines += [f"            {h.name}:\n              ansible_port: {h.port}"
                      for h in hosts.values() if h.suite == suite]
    atomic_write(state.inventory, "\n".join(lines) + "\n")


def up(state: State, specs: list[str], mirror: str | None, security_mirror: str | None,
       extra: tuple[str, ...] = ()) -> dict[str, Host]:
    """Start the hosts NAME=SUITE; ``extra`` packages are in their rootfs too
    (a rootfs of its own, cached like the plain one)."""
    wanted = {}
    for spec in specs:
        name, _, suite = spec.partition("=")
        if not name.isidentifier() or suite not in SUITES:
            raise LabError(f"{spec!r}: expected NAME=SUITE with SUITE one of {', '.join(SUITES)}")
        wanted[name] = suite
    state.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state.dir, 0o700)
    rootfs = {suite: str(build_rootfs(suite, mirror, security_mirror, extra)) for suite in set(wanted.values())}
    client_pub = keygen(state.client_key, "tracekit-lab")
    hosts = state.load()
    started = []
    t0 = time.monotonic()
    for name, suite in wanted.items():
        old = hosts.get(name)
        if old and alive(old.pid, old.start):
            if old.suite != suite or old.rootfs != rootfs[suite]:
                raise LabError(f"{name} is up as {old.suite} ({old.rootfs}): `down --host {name}` first")
            continue
        used = {h.port for h in hosts.values()}
        port = free_port()
        while port in used:
            port = free_port()
        host = hosts[name] = Host(name, suite, port, rootfs[suite])
        prepare(state, host, client_pub)
        start(state, host)
        started.append(host)
    state.save(hosts)  # PIDs on disk before waiting: `down` can always clean up
    try:
        for host in started:
            wait_ready(state, host)
    except BaseException:
        for host in started:  # all or nothing: take this call's hosts down again
            stop_host(state, host)
        raise
    finally:
        state.save(hosts)
    # Every host's line; the started ones were just checked against ssh-keyscan.
    atomic_write(state.known_hosts, "".join(known_line(state, h) + "\n" for h in hosts.values()))
    write_inventory(state, hosts)
    if started:
        log(f"{len(started)} host(s) up in {time.monotonic() - t0:.1f} s: "
            + ", ".join(f"{h.name}:{h.port}" for h in started))
    return hosts


def stop_host(state: State, host: Host, timeout: float = 10.0) -> None:
    """Kill the host's PID namespace init (the kernel then kills everything in
    the namespace, and the mount namespace with its overlay goes with it), then
    the unshare above it, only if they are still the processes we started."""
    if alive(host.init_pid, host.init_start):
        os.kill(host.init_pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while alive(host.pid, host.start) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(host.pid, host.start):  # init PID unknown (start failed early) or stuck
        os.kill(host.pid, signal.SIGKILL)  # --kill-child takes the namespace with it
        while alive(host.pid, host.start) and time.monotonic() < deadline + timeout:
            time.sleep(0.02)
    if alive(host.pid, host.start) or alive(host.init_pid, host.init_start):
        raise LabError(f"{host.name}: PID {host.pid}/{host.init_pid} still alive")
    hdir = state.dir / host.name
    for sub in ("upper", "work", "merged"):
        remove_tree(hdir / sub)
    host.state = "down"


def down(state: State, only: str | None) -> None:
    hosts = state.load()
    if only and hosts and only not in hosts:
        raise LabError(f"no host {only!r} in {state.json}")
    for host in hosts.values():
        if only in (None, host.name):
            stop_host(state, host)
            state.save(hosts)
    if only is None:
        # also sweep dirs of hosts that never made it into hosts.json
        for hdir in state.dir.glob("*/upper") if state.dir.is_dir() else []:
            for sub in ("upper", "work", "merged"):
                remove_tree(hdir.parent / sub)


def status(state: State) -> list[dict]:
    rows = []
    for h in state.load().values():
        running = alive(h.pid, h.start)
        with socket.socket() as s:
            s.settimeout(0.5)
            ssh = running and s.connect_ex(("127.0.0.1", h.port)) == 0
        rows.append({"name": h.name, "suite": h.suite, "port": h.port, "pid": h.pid, "init_pid": h.init_pid,
                     "state": "up" if running else "down", "ssh": ssh})
    return rows


def package_list(text: str) -> tuple[str, ...]:
    """--include's PKG,... as a tuple of Debian package names."""
    names = tuple(n for n in text.split(",") if n)
    bad = [n for n in names if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", n)]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"not a list of package names: {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mirror_help = "apt mirror URL instead of the one debootstrap's suite script carries"
    sec_help = "security archive URL (default: <mirror>-security for Debian, the mirror for Ubuntu)"
    include_help = "also install these packages into the rootfs (a rootfs of its own, cached)"
    r = sub.add_parser("rootfs", help="build (once) and print the cached rootfs of SUITE")
    r.add_argument("suite", choices=sorted(SUITES))
    r.add_argument("--mirror", help=mirror_help)
    r.add_argument("--security-mirror", help=sec_help)
    r.add_argument("--include", type=package_list, default=(), metavar="PKG,...", help=include_help)
    u = sub.add_parser("up", help="start hosts NAME=SUITE, write inventory.yml and hosts.json")
    u.add_argument("--state", required=True, help="state directory (keys, overlays, inventory)")
    u.add_argument("hosts", nargs="+", metavar="NAME=SUITE")
    u.add_argument("--mirror", help=mirror_help)
    u.add_argument("--security-mirror", help=sec_help)
    u.add_argument("--include", type=package_list, default=(), metavar="PKG,...", help=include_help)
    d = sub.add_parser("down", help="stop hosts and remove their overlays (idempotent)")
    d.add_argument("--state", required=True)
    d.add_argument("--host", help="stop only this host (its inventory entry stays: it becomes unreachable)")
    s = sub.add_parser("status", help="show the hosts of a state directory")
    s.add_argument("--state", required=True)
    s.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so a killed build still cleans up after itself.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if os.geteuid() != 0:
        log("must run as root (debootstrap, namespaces, mounts)")
        return 2
    try:
        if args.cmd == "rootfs":
            print(build_rootfs(args.suite, args.mirror, args.security_mirror, args.include))
        elif args.cmd == "up":
            state = State(args.state)
            up(state, args.hosts, args.mirror, args.security_mirror, args.include)
            print(state.inventory)
        elif args.cmd == "down":
            down(State(args.state), args.host)
        else:
            rows = status(State(args.state))
            if args.json:
                print(json.dumps(rows, indent=1))
            for row in [] if args.json else rows:
                print("{name:12} {suite:9} 127.0.0.1:{port:<6} pid {pid:<8} {state:5} ssh={ssh}".format(**row))
    except LabError as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
