#!/usr/bin/python3
"""Kernel lab: a supported release's own stock kernel booted under qemu (TCG), reached
over SSH on 127.0.0.1, so tracekit can be set up and verified on real distribution
kernels (kprobes, the function tracer, headers, loadable modules) that this machine
lacks. One lab per release: Ubuntu 22.04 (jammy, 5.15), 24.04 (noble, 6.8), 26.04
(resolute, 7.0), Debian 12 (bookworm, 6.1) and 13 (trixie, 6.12).

    lab/kernel.py build [--release R]                # once; cached under /var/cache/tracekit-lab/kernel
    lab/kernel.py up --state DIR [--release R] [--allow 127.0.0.1:PORT]...
    lab/kernel.py status --state DIR [--json]
    lab/kernel.py down --state DIR
    lab/kernel.py resolve [--release R]              # the kernel the release installs today (to bump a pin)

--release defaults to $TRACEKIT_LAB_RELEASE, else noble (the one CI runs).

`build` makes the release's rootfs with lab/fleet.py (debootstrap, the archive key
pinned by fingerprint) plus an init system, installs the release's kernel into it
with apt from the same verified archive, and turns it into a raw ext4 image. Ubuntu's
generic kernel from 24.04 on boots with -kernel alone (virtio-blk and ext4 built in);
builds both as modules and boots with its own initramfs.

`up` starts, each recorded by PID: lab/aptproxy.py on a free 127.0.0.1 port (the
only thing the guest can reach: qemu user networking with restrict=on and one
guestfwd to it), then qemu on a copy-on-write qcow2 overlay of the cached image (the
image itself is never written) plus a small seed disk with this VM's SSH host key
and root's authorized key. It waits for SSH (the host key must be the one generated
for this VM) and writes inventory.yml like lab/fleet.py (the host is <release>-kernel).
`down` stops exactly those processes and removes the overlay. Root only, stdlib only.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LAB = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB))
import fleet  # noqa: E402  (lab/ is not a package: fleet.py runs as a script too)
from fleet import LabError, alive, atomic_write, keygen, proc_stat, remove_tree, run  # noqa: E402


@dataclass(frozen=True)
class Release:
    """One kernel lab: a release's userland (a lab/fleet.py suite) booting that
    release's own stock kernel."""

    title: str  # as users name it, for the support matrix and docs
    suite: str  # lab/fleet.py's SUITES key
    meta: str  # the metapackage a fresh install of the release runs
    # Pinned kernel (uname -r and package version) where the archive keeps old ABIs
    # in its indexes (Ubuntu: each ABI is a package of its own name). Debian's
    # stable archive keeps only the current ABI, so there the kernel is resolved
    # from ``meta`` at build time and the image is keyed by what was resolved.
    abi: str | None = None
    version: str | None = None
    # Debian (virtio-blk, virtio-pci, ext4) and Ubuntu 22.04's 5.15 (virtio-blk)
    # build the root disk's drivers as modules: those kernels need an initramfs,
    # made by initramfs-tools when the image package is installed. Ubuntu's newer
    # generic kernels have them built in and boot without one.
    initramfs: bool = False

    @property
    def hostname(self) -> str:
        return f"{self.suite}-kernel"


# Each release's GA kernel. The Ubuntu pins are those releases' linux-image-generic
# as of the lab's first build; the image and modules packages only: the metapackage
# also pulls linux-modules-extra, linux-firmware and microcode (about 600 MB) that a
# virtio guest does not use.
RELEASES = {
    "jammy": Release("Ubuntu 22.04 LTS", "jammy", "linux-image-generic", "5.15.0-204-generic", "5.15.0-204.214",
                     initramfs=True),
    "noble": Release("Ubuntu 24.04 LTS", "noble", "linux-image-generic", "6.8.0-151-generic", "6.8.0-151.151"),
    "resolute": Release("Ubuntu 26.04 LTS", "resolute", "linux-image-generic", "7.0.0-44-generic", "7.0.0-44.44"),
    "bookworm": Release("Debian 12", "bookworm", "linux-image-amd64", initramfs=True),
    "trixie": Release("Debian 13", "trixie", "linux-image-amd64", initramfs=True),
}
# The one CI runs (`molecule test -s kernel` without TRACEKIT_LAB_RELEASE).
DEFAULT_RELEASE = "noble"

# Bump when the image recipe below changes (the cache key includes it).
RECIPE_VERSION = 2
CACHE = fleet.CACHE_ROOT / "kernel"  # TRACEKIT_LAB_CACHE moves it (lab/fleet.py)
PROXY_CACHE = fleet.CACHE_ROOT / "apt-proxy"
# debootstrap installs these beyond fleet.py's INCLUDE: an init system with udev
# (device units for the seed disk) and networkd, modprobe for the kernel's modules,
# ip and ps for whoever debugs the guest.
VM_EXTRA = ("systemd-sysv", "udev", "kmod", "iproute2", "procps")
DISK_SIZE = "16G"  # sparse: the image holds about 1 GB; the rest is room for packages

# Inside the guest: qemu user networking's default 10.0.2.0/24, a static address
# (no DHCP wait) and the apt proxy at a guestfwd address.
GUEST_ADDR = "10.0.2.15/24"
GUEST_PROXY = ("10.0.2.100", 3142)
VCPUS = 2
MEMORY_MB = 3072
BOOT_TIMEOUT = 300  # s; SSH answered about 23 s after start in LAB.md's measurements
KERNEL_CMDLINE = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.firstboot=off "
                  "systemd.show_status=false")


# The seed disk's device node comes from devtmpfs as soon as the kernel has probed
# the disk, while the systemd device unit waits for udev, whose coldplug under TCG
# outlasted systemd's 90 s device timeout on Ubuntu 26.04: wait for the node.
SEED_SH = r"""#!/bin/sh
# tracekit kernel lab: install this VM's SSH host key and root's authorized key
# from the seed disk lab/kernel.py up attaches as the second virtio disk.
set -eu
tries=0
until [ -b /dev/vdb ]; do
    tries=$((tries + 1))
    [ "$tries" -le 600 ] || { echo "tracekit-lab-seed: no /dev/vdb after 300 s" >&2; exit 1; }
    sleep 0.5
done
mkdir -p /run/tracekit-seed
mount -o ro /dev/vdb /run/tracekit-seed
install -m 600 /run/tracekit-seed/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 644 /run/tracekit-seed/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
install -d -m 700 /root/.ssh
install -m 600 /run/tracekit-seed/authorized_keys /root/.ssh/authorized_keys
umount /run/tracekit-seed
"""
SEED_UNIT = """[Unit]
Description=tracekit kernel lab: SSH keys from the seed disk
DefaultDependencies=no
After=local-fs.target
Before=ssh.socket ssh.service sockets.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/tracekit-lab-seed

[Install]
WantedBy=sockets.target
"""


def guest_files(release: Release) -> dict[str, tuple[str, int]]:
    hostname = release.hostname
    return {
        "etc/fstab": ("/dev/vda / ext4 rw,errors=remount-ro 0 1\n", 0o644),
        "etc/hostname": (hostname + "\n", 0o644),
        "etc/hosts": (f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
                      0o644),
        "etc/systemd/network/10-tracekit-lab.network": (
            f"# tracekit kernel lab: qemu user networking, static (no DHCP wait)\n[Match]\nName=eth0\n\n"
            f"[Network]\nAddress={GUEST_ADDR}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n", 0o644),
        # Every apt request goes to the lab's proxy (the guest has no other route);
        # https sources could not be proxied and are not used.
        "etc/apt/apt.conf.d/01tracekit-lab-proxy": (
            f'Acquire::http::Proxy "http://{GUEST_PROXY[0]}:{GUEST_PROXY[1]}/";\nAcquire::Retries "3";\n', 0o644),
        "etc/ssh/sshd_config.d/tracekit-lab.conf": (
            "# tracekit kernel lab: key logins only; the host key comes from the seed disk\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n", 0o644),
        "usr/local/sbin/tracekit-lab-seed": (SEED_SH, 0o755),
        "etc/systemd/system/tracekit-lab-seed.service": (SEED_UNIT, 0o644),
        # Written after the kernel is installed (the build resolves names with this
        # machine's resolver; the guest has no DNS: apt's proxy resolves for it).
        "etc/resolv.conf": ("# tracekit kernel lab: no DNS in the guest; apt goes through the lab's proxy\n", 0o644),
    }

# In private mount and PID namespaces (fleet.in_private_namespaces): install the
# pinned kernel from the verified archive, with no service started in the chroot,
# then enable what the guest runs and mask what would fight tracekit's apt runs.
KERNEL_SH = r"""
set -eu
tree=$1; shift
mount -t proc proc "$tree/proc"
printf '#!/bin/sh\nexit 101\n' > "$tree/usr/sbin/policy-rc.d"
chmod 755 "$tree/usr/sbin/policy-rc.d"
chroot "$tree" apt-get update -q
DEBIAN_FRONTEND=noninteractive chroot "$tree" apt-get install -y -q --no-install-recommends "$@"
chroot "$tree" apt-get clean
rm -rf "$tree"/var/lib/apt/lists/*_* "$tree"/var/lib/apt/lists/partial/*
rm -f "$tree/usr/sbin/policy-rc.d"
chroot "$tree" systemctl enable systemd-networkd.service tracekit-lab-seed.service
chroot "$tree" systemctl mask apt-daily.timer apt-daily-upgrade.timer systemd-networkd-wait-online.service \
    e2scrub_reap.service e2scrub_all.timer fstrim.timer motd-news.timer dpkg-db-backup.timer
rm -f "$tree"/etc/ssh/ssh_host_*
umount "$tree/proc"
"""


def log(msg: str) -> None:
    print(f"kernel-lab: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- build


# In private mount and PID namespaces, on a throwaway overlay of the cached rootfs:
# which kernel the release's metapackage installs today (its image package's name
# and version). Nothing is written to the rootfs.
RESOLVE_SH = r"""
set -eu
lower=$1 scratch=$2 meta=$3
mkdir -p "$scratch/upper" "$scratch/work" "$scratch/root"
mount -t overlay -o "lowerdir=$lower,upperdir=$scratch/upper,workdir=$scratch/work" overlay "$scratch/root"
mount -t proc proc "$scratch/root/proc"
chroot "$scratch/root" apt-get update -q >&2
image=$(chroot "$scratch/root" apt-cache depends --no-recommends --no-suggests "$meta" \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
[ -n "$image" ] || { echo "no linux-image-* dependency of $meta" >&2; exit 1; }
version=$(chroot "$scratch/root" apt-cache policy "$image" | sed -n 's/^ *Candidate: //p')
echo "RESOLVED ${image#linux-image-} $version"
umount "$scratch/root/proc" "$scratch/root"
"""


@dataclass(frozen=True)
class Kernel:
    abi: str  # uname -r
    version: str  # the package version
    packages: tuple[str, ...]


def resolve(release: Release, rootfs: Path) -> Kernel:
    """The kernel the image gets: the release's pin, or (no pin) what its
    metapackage installs today."""
    if release.abi:
        abi, version = release.abi, release.version
    else:
        scratch = Path(tempfile.mkdtemp(prefix=".resolve-", dir=CACHE))
        try:
            rc, out = fleet.in_private_namespaces(RESOLVE_SH, str(rootfs), str(scratch), release.meta)
        finally:
            remove_tree(scratch)
        found = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("RESOLVED ")]
        if rc != 0 or not found:
            raise LabError(f"resolving {release.meta} in {rootfs.name} failed ({rc}):\n{out[-3000:]}")
        abi, version = found[0]
    # Ubuntu splits the modules into their own package; Debian's image has them.
    ubuntu = fleet.SUITES[release.suite].distro == "ubuntu"
    packages = (f"linux-image-{abi}",) + ((f"linux-modules-{abi}",) if ubuntu else ())
    return Kernel(abi, version, packages)


def image_key(release: Release, kernel: Kernel, rootfs: Path) -> str:
    blob = json.dumps([RECIPE_VERSION, rootfs.name, kernel.abi, kernel.version, kernel.packages,
                       release.initramfs, DISK_SIZE, KERNEL_SH, sorted(guest_files(release).items())])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def image_dir(release: Release, kernel: Kernel, rootfs: Path) -> Path:
    return CACHE / f"{release.suite}-{kernel.abi}-{image_key(release, kernel, rootfs)}"


def mirror_origins(tree: Path) -> list[str]:
    """host[:port] of every URI in the image's apt sources (what the proxy forwards to)."""
    origins = []
    for path in sorted((tree / "etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:"):
                for uri in line.split()[1:]:
                    u = urlsplit(uri)
                    if u.scheme != "http":
                        raise LabError(f"{path}: {uri}: the lab's apt proxy forwards http sources only")
                    origins.append(f"{u.hostname}:{u.port or 80}")
    if not origins:
        raise LabError(f"no apt sources in {tree}/etc/apt/sources.list.d")
    return sorted(set(origins))


def build(release: Release, mirror: str | None = None, security_mirror: str | None = None) -> Path:
    """The cached image directory: vmlinuz (and initrd.img), disk.raw, image.json.
    Built once per key."""
    t0 = time.monotonic()
    rootfs = fleet.build_rootfs(release.suite, mirror, security_mirror, VM_EXTRA)
    CACHE.mkdir(parents=True, exist_ok=True)
    kernel = resolve(release, rootfs)
    final = image_dir(release, kernel, rootfs)
    if (final / "image.json").is_file():
        return final
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "image.json").is_file():
            return final
        for stale in CACHE.glob(".tmp-*"):  # left by a killed build
            remove_tree(stale)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=CACHE))
        try:
            tree = work / "tree"
            log(f"building the {release.title} {kernel.abi} image from {rootfs.name}")
            run(["cp", "-a", "--reflink=auto", str(rootfs), str(tree)])
            files = guest_files(release)
            for rel, (text, mode) in files.items():
                if rel == "etc/resolv.conf":
                    continue
                target = tree / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.unlink(missing_ok=True)
                target.write_text(text)
                target.chmod(mode)
            pins = [f"{p}={kernel.version}" for p in kernel.packages]
            # Only a Recommends of Ubuntu's image package (installs skip those).
            pins += ["initramfs-tools"] if release.initramfs else []
            rc, out = fleet.in_private_namespaces(KERNEL_SH, str(tree), *pins)
            if rc != 0:
                raise LabError(f"installing {' '.join(pins)} failed ({rc}):\n{out[-4000:]}")
            (work / "install.log").write_text(out)
            text, mode = files["etc/resolv.conf"]
            (tree / "etc/resolv.conf").unlink(missing_ok=True)
            (tree / "etc/resolv.conf").write_text(text)
            vmlinuz = tree / "boot" / f"vmlinuz-{kernel.abi}"
            if not vmlinuz.is_file() or not (tree / "lib/modules" / kernel.abi / "modules.dep").is_file():
                raise LabError(f"{vmlinuz} or its modules missing after the install:\n{out[-2000:]}")
            shutil.copy2(vmlinuz, work / "vmlinuz")
            if release.initramfs:
                initrd = tree / "boot" / f"initrd.img-{kernel.abi}"
                if not initrd.is_file():
                    raise LabError(f"{initrd} missing after the install (initramfs-tools):\n{out[-2000:]}")
                shutil.copy2(initrd, work / "initrd.img")
            origins = mirror_origins(tree)
            disk = work / "disk.raw"
            run(["truncate", "-s", DISK_SIZE, str(disk)])
            run(["mkfs.ext4", "-q", "-F", "-L", "tracekit-root", "-d", str(tree), str(disk)])
            remove_tree(tree)
            meta = {"release": release.suite, "title": release.title, "hostname": release.hostname,
                    "kernel": kernel.abi, "version": kernel.version, "packages": list(kernel.packages),
                    "initrd": release.initramfs,
                    "rootfs": rootfs.name, "recipe": RECIPE_VERSION, "mirrors": origins,
                    "seconds": round(time.monotonic() - t0, 1), "built": time.strftime("%F %T")}
            (work / "image.json").write_text(json.dumps(meta, indent=1) + "\n")
            os.rename(work, final)
            log(f"built {final} in {meta['seconds']} s")
        finally:
            remove_tree(work)
    return final


# --------------------------------------------------------------------------- up/down


class State:
    """The state directory: fleet.py's layout for keys and inventory (its
    known_hosts, id_ed25519, inventory.yml), plus vm.json and the VM's files."""

    def __init__(self, path: str):
        self.fleet = fleet.State(path)
        self.dir = self.fleet.dir
        self.json = self.dir / "vm.json"
        self.overlay = self.dir / "disk.qcow2"
        self.seed = self.dir / "seed.img"
        self.console = self.dir / "console.log"
        self.proxy_log = self.dir / "aptproxy.log"
        self.proxy_port_file = self.dir / "aptproxy.port"

    def load(self) -> dict:
        return json.loads(self.json.read_text()) if self.json.is_file() else {}

    def save(self, vm: dict) -> None:
        atomic_write(self.json, json.dumps(vm, indent=1) + "\n")


def spawn(argv: list[str], logfile: Path) -> tuple[int, int]:
    """Start argv detached (own session, output to logfile); (pid, start time)."""
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    start = proc_stat(proc.pid)[2]
    proc.returncode = 0  # not ours to wait for: keeps Popen's destructor quiet
    return proc.pid, start


def stop_pid(pid: int, start: int, what: str, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL, the process we started (never a reused PID)."""
    if not alive(pid, start):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid, start):
        os.kill(pid, signal.SIGKILL)
        while alive(pid, start) and time.monotonic() < deadline + timeout:
            time.sleep(0.05)
    if alive(pid, start):
        raise LabError(f"{what} (PID {pid}) still alive")


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pid:
                found.append(int(entry))
    return found


def make_seed(state: State, hostname: str) -> str:
    """The seed disk: this VM's host key and root's authorized key; returns the
    known_hosts key text (type and key) of the host key."""
    client_pub = keygen(state.fleet.client_key, "tracekit-lab")
    hostkey = state.dir / "ssh_host_ed25519_key"
    hostkey.unlink(missing_ok=True)
    hostkey.with_suffix(".pub").unlink(missing_ok=True)
    pub = keygen(hostkey, f"root@{hostname}")
    seed = state.dir / "seed"
    remove_tree(seed)
    seed.mkdir(mode=0o700)
    shutil.copy2(hostkey, seed / hostkey.name)
    shutil.copy2(hostkey.with_suffix(".pub"), seed / (hostkey.name + ".pub"))
    (seed / "authorized_keys").write_text(client_pub + "\n")
    state.seed.unlink(missing_ok=True)
    run(["truncate", "-s", "8M", str(state.seed)])
    run(["mkfs.ext4", "-q", "-F", "-L", "tracekit-seed", "-d", str(seed), str(state.seed)])
    remove_tree(seed)
    return " ".join(pub.split()[:2])


def qemu_argv(image: Path, state: State, ssh_port: int, proxy_port: int) -> list[str]:
    gp = GUEST_PROXY
    netdev = (f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22,"
              f"guestfwd=tcp:{gp[0]}:{gp[1]}-cmd:{sys.executable} {LAB / 'aptproxy.py'} relay {proxy_port}")
    if "," in netdev.split("guestfwd=")[1]:
        raise LabError(f"{LAB}: the lab's path must not contain a comma (qemu's option separator)")
    # nice: TCG keeps a core busy; others benchmark on this machine. Single-threaded
    # TCG: multi-threaded once dropped SSH under load (LAB.md).
    return ["nice", "-n", "10", "qemu-system-x86_64", "-name", "tracekit-kernel-lab",
            "-accel", "tcg,thread=single", "-smp", str(VCPUS), "-m", str(MEMORY_MB),
            "-display", "none", "-monitor", "none", "-serial", f"file:{state.console}", "-no-reboot",
            "-kernel", str(image / "vmlinuz"), "-append", KERNEL_CMDLINE,
            *(["-initrd", str(image / "initrd.img")] if (image / "initrd.img").is_file() else []),
            "-drive", f"file={state.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-drive", f"file={state.seed},if=virtio,format=raw,readonly=on",
            "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci"]


def wait_for_port_file(path: Path, pid: int, start: int, logfile: Path, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if not alive(pid, start):
            raise LabError(f"the apt proxy exited:\n{logfile.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise LabError(f"the apt proxy did not start within {timeout:.0f} s")
        time.sleep(0.05)
    return int(path.read_text())


def wait_ssh(state: State, vm: dict, want: str, timeout: float) -> float:
    """Seconds until the VM answered SSH with its own host key and a key login worked."""
    t0 = time.monotonic()
    port = vm["ssh_port"]
    line = f"[127.0.0.1]:{port} {want}"
    while True:
        if not alive(vm["qemu_pid"], vm["qemu_start"]):
            raise LabError(f"qemu exited before the guest answered SSH; console:\n{console_tail(state)}")
        scan = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
                              capture_output=True, text=True, check=False).stdout.strip()
        if scan == line:
            break
        if scan:
            raise LabError(f"127.0.0.1:{port} answers with another host key: {scan}")
        if time.monotonic() - t0 > timeout:
            raise LabError(f"no SSH on 127.0.0.1:{port} after {timeout:.0f} s; console:\n{console_tail(state)}")
        time.sleep(1)
    atomic_write(state.fleet.known_hosts, line + "\n")
    host = fleet.Host(vm["hostname"], vm["release"], port, "")
    run(fleet.ssh_argv(state.fleet, host) + ["true"], timeout=60)
    return time.monotonic() - t0


def console_tail(state: State) -> str:
    try:
        return state.console.read_text(errors="replace")[-3000:]
    except FileNotFoundError:
        return "(no console log)"


def up(state: State, release: Release, allow: list[str], mirror: str | None, security_mirror: str | None) -> dict:
    state.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state.dir, 0o700)
    vm = state.load()
    if vm and (alive(vm.get("qemu_pid", 0), vm.get("qemu_start", 0))
               or alive(vm.get("proxy_pid", 0), vm.get("proxy_start", 0))):
        raise LabError(f"{state.dir}: the lab is already up (`down --state {state.dir}` first)")
    image = build(release, mirror, security_mirror)
    meta = json.loads((image / "image.json").read_text())
    for origin in allow:
        host, _, port = origin.rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            raise LabError(f"--allow {origin}: expected 127.0.0.1:PORT (a loopback test repository)")
    timings = {}
    t0 = time.monotonic()
    want = make_seed(state, release.hostname)
    state.overlay.unlink(missing_ok=True)
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image / "disk.raw"), str(state.overlay)])
    state.proxy_port_file.unlink(missing_ok=True)
    vm = {"image": str(image), "release": release.suite, "title": release.title, "hostname": release.hostname,
          "kernel": meta["kernel"], "allow": allow}
    proxy = [sys.executable, str(LAB / "aptproxy.py"), "--cache", str(PROXY_CACHE),
             "--port-file", str(state.proxy_port_file), "--log", str(state.proxy_log)]
    proxy += [f"--mirror={m}" for m in meta["mirrors"]] + [f"--allow={a}" for a in allow]
    vm["proxy_pid"], vm["proxy_start"] = spawn(proxy, state.dir / "aptproxy.out")
    state.save(vm)  # PIDs on disk before waiting: `down` can always clean up
    try:
        vm["proxy_port"] = wait_for_port_file(state.proxy_port_file, vm["proxy_pid"], vm["proxy_start"],
                                              state.dir / "aptproxy.out")
        vm["ssh_port"] = fleet.free_port()
        state.console.unlink(missing_ok=True)
        vm["qemu_pid"], vm["qemu_start"] = spawn(qemu_argv(image, state, vm["ssh_port"], vm["proxy_port"]),
                                                 state.dir / "qemu.log")
        state.save(vm)
        timings["boot_to_ssh"] = round(wait_ssh(state, vm, want, BOOT_TIMEOUT), 1)
    except BaseException:
        down(state)
        raise
    fleet.write_inventory(state.fleet, {release.hostname: fleet.Host(release.hostname, release.suite, vm["ssh_port"],
                                                                      str(image))})
    timings["up"] = round(time.monotonic() - t0, 1)
    vm["timings"] = timings
    vm["state"] = "up"
    state.save(vm)
    log(f"{release.hostname} ({meta['kernel']}) up on 127.0.0.1:{vm['ssh_port']} in {timings['up']} s "
        f"(SSH {timings['boot_to_ssh']} s after qemu started); apt proxy 127.0.0.1:{vm['proxy_port']}")
    return vm


def down(state: State) -> None:
    """Stop qemu, then the proxy, each only if it is still the process we started;
    remove the overlay and seed disk. Idempotent."""
    vm = state.load()
    problems = []
    # qemu's guestfwd relays (one per open guest connection) end when their
    # connection closes; collect them by parent PID first, to make sure.
    relays = []
    if alive(vm.get("qemu_pid", 0), vm.get("qemu_start", 0)):
        relays = [(pid, st[2]) for pid in children(vm["qemu_pid"]) if (st := proc_stat(pid))]
    for what in ("qemu", "proxy"):
        try:
            stop_pid(vm.get(f"{what}_pid", 0), vm.get(f"{what}_start", 0), what)
        except LabError as e:
            problems.append(str(e))
    for pid, start in relays:
        try:
            stop_pid(pid, start, "apt proxy relay", timeout=5)
        except LabError as e:
            problems.append(str(e))
    if problems:
        raise LabError("; ".join(problems))
    for path in (state.overlay, state.seed, state.proxy_port_file):
        path.unlink(missing_ok=True)
    if vm:
        vm["state"] = "down"
        state.save(vm)


def status(state: State) -> dict:
    vm = state.load()
    if not vm:
        return {"state": "absent"}
    qemu = alive(vm.get("qemu_pid", 0), vm.get("qemu_start", 0))
    proxy = alive(vm.get("proxy_pid", 0), vm.get("proxy_start", 0))
    ssh = False
    if qemu and vm.get("ssh_port"):
        with socket.socket() as s:
            s.settimeout(0.5)
            ssh = s.connect_ex(("127.0.0.1", vm["ssh_port"])) == 0
    return {"state": "up" if qemu else "down", "release": vm.get("release"), "kernel": vm.get("kernel"), "ssh_port": vm.get("ssh_port"),
            "qemu_pid": vm.get("qemu_pid"), "qemu": qemu, "proxy_pid": vm.get("proxy_pid"),
            "proxy_port": vm.get("proxy_port"), "proxy": proxy, "ssh": ssh, "timings": vm.get("timings", {})}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mirror_help = "apt mirror URL instead of the one debootstrap's suite script carries"
    release_help = (f"the release whose stock kernel to boot (default {DEFAULT_RELEASE}, or "
                    f"$TRACEKIT_LAB_RELEASE): " + ", ".join(f"{k} ({r.title})" for k, r in RELEASES.items()))
    default_release = os.environ.get("TRACEKIT_LAB_RELEASE") or DEFAULT_RELEASE
    b = sub.add_parser("build", help="build (once) and print the cached image directory")
    r = sub.add_parser("resolve", help="print the kernel the release's metapackage installs today "
                                       "(to refresh a pin)")
    u = sub.add_parser("up", help="start the apt proxy and the VM; write inventory.yml and vm.json")
    u.add_argument("--state", required=True, help="state directory (keys, overlay, logs, inventory)")
    u.add_argument("--allow", action="append", default=[], metavar="127.0.0.1:PORT",
                   help="a loopback origin the guest may reach through the proxy (the test apt repository)")
    for sp in (b, r, u):
        sp.add_argument("--release", choices=sorted(RELEASES), default=default_release, help=release_help)
        sp.add_argument("--mirror", help=mirror_help)
        sp.add_argument("--security-mirror", help="security archive URL (default: the mirror)")
    d = sub.add_parser("down", help="stop the VM and the proxy; remove the overlay (idempotent)")
    d.add_argument("--state", required=True)
    s = sub.add_parser("status", help="show the VM of a state directory")
    s.add_argument("--state", required=True)
    s.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if os.geteuid() != 0:
        log("must run as root (debootstrap, namespaces, image building)")
        return 2
    if getattr(args, "release", DEFAULT_RELEASE) not in RELEASES:
        log(f"unknown release {args.release!r}; known: {', '.join(RELEASES)}")
        return 2
    try:
        if args.cmd == "build":
            print(build(RELEASES[args.release], args.mirror, args.security_mirror))
        elif args.cmd == "resolve":
            release = dataclasses.replace(RELEASES[args.release], abi=None, version=None)
            CACHE.mkdir(parents=True, exist_ok=True)
            rootfs = fleet.build_rootfs(release.suite, args.mirror, args.security_mirror, VM_EXTRA)
            kernel = resolve(release, rootfs)
            print(f"{args.release}: {kernel.abi} {kernel.version} ({' '.join(kernel.packages)})")
        elif args.cmd == "up":
            state = State(args.state)
            up(state, RELEASES[args.release], args.allow, args.mirror, args.security_mirror)
            print(state.fleet.inventory)
        elif args.cmd == "down":
            down(State(args.state))
        else:
            row = status(State(args.state))
            print(json.dumps(row, indent=1) if args.json else
                  " ".join(f"{k}={v}" for k, v in row.items() if k != "timings"))
    except LabError as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
