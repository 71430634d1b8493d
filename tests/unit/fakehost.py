"""Fake host trees for ``facts.collect(root)``: procfs, sysfs, /etc and /usr
files below a temporary directory, shaped like those of real hosts.

``FakeHost(root)`` writes nothing by itself; each method adds one part of a
host.  ``ubuntu_noble``-style presets come from ``FakeHost.distro(name)`` and
``full_host()`` builds a host on which every tracing method is ready.
"""

import gzip
import json
import struct
from pathlib import Path

KCONFIG_DIR = Path(__file__).resolve().parents[1] / "data" / "kconfig"
# Real `bpftrace --info` output of each supported release's bpftrace (README there).
BPFTRACE_INFO_DIR = Path(__file__).resolve().parents[1] / "data" / "captured" / "bpftrace.info"

# The distributions of tests/data/kconfig, with what their hosts really show.
DISTROS = {
    "ubuntu-noble": {
        "os_release": (
            'PRETTY_NAME="Ubuntu 24.04.2 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\n'
            'VERSION="24.04.2 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\n'
            'HOME_URL="https://www.ubuntu.com/"\nUBUNTU_CODENAME=noble\nLOGO=ubuntu-logo\n'),
        "release": "6.8.0-151-generic",
        "version": "#151-Ubuntu SMP PREEMPT_DYNAMIC Fri Jun 13 10:31:17 UTC 2025",
        "proc_version": (
            "Linux version 6.8.0-151-generic (buildd@lcy02-amd64-090) (x86_64-linux-gnu-gcc-13 "
            "(Ubuntu 13.3.0-6ubuntu2~24.04.1) 13.3.0, GNU ld (GNU Binutils for Ubuntu) 2.42) "
            "#151-Ubuntu SMP PREEMPT_DYNAMIC Fri Jun 13 10:31:17 UTC 2025\n"),
        "config": "ubuntu-noble-6.8.0-151-generic.config.gz",
    },
    "ubuntu-jammy": {
        "os_release": (
            'PRETTY_NAME="Ubuntu 22.04.5 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
            'VERSION="22.04.5 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n'
            'UBUNTU_CODENAME=jammy\n'),
        "release": "5.15.0-204-generic",
        "version": "#214-Ubuntu SMP Tue Jun 10 12:00:00 UTC 2025",
        "proc_version": (
            "Linux version 5.15.0-204-generic (buildd@lcy02-amd64-001) (gcc (Ubuntu "
            "11.4.0-1ubuntu1~22.04.3) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38) "
            "#214-Ubuntu SMP Tue Jun 10 12:00:00 UTC 2025\n"),
        "config": "ubuntu-jammy-5.15.0-204-generic.config.gz",
    },
    "debian-bookworm": {
        "os_release": (
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
            'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
            'HOME_URL="https://www.debian.org/"\n'),
        "release": "6.1.0-56-amd64",
        "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2025-06-01)",
        "proc_version": (
            "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
            "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
            "PREEMPT_DYNAMIC Debian 6.1.192-2 (2025-06-01)\n"),
        "config": "debian-bookworm-6.1.0-56-amd64.config.gz",
    },
}

LOCKDOWN = {mode: " ".join("[%s]" % m if m == mode else m for m in ("none", "integrity", "confidentiality"))
            for mode in ("none", "integrity", "confidentiality")}

ROOT_CAPS = "000001ffffffffff"  # root on a 6.x kernel: capabilities 0..40
NO_SYS_RESOURCE_CAPS = "000001fffeffffff"  # the same without CAP_SYS_RESOURCE (bit 24)

STAP_V = (
    "Systemtap translator/driver (version {version}/0.190{package})\n"
    "Copyright (C) 2005-2024 Red Hat, Inc. and others\n"
    "This is free software; see the source for copying conditions.\n"
    "tested kernel versions: 2.6.32 ... 6.8-rc1\n"
    "enabled features: AVAHI BOOST_STRING_REF DYNINST {bpf}JAVA PYTHON3 LIBRPM LIBSQLITE3 LIBVIRT "
    "LIBXML2 NLS NSS READLINE MONITOR_LIBS\n")

UBUNTU_PERF_WRAPPER = """#!/bin/bash
full_version=`uname -r`

# First check for a fully qualified version.
this="/usr/lib/linux-tools/$full_version/`basename $0`"
if [ -f "$this" ]; then
\texec "$this" "$@"
fi

echo "WARNING: `basename $0` not found for kernel $full_version" >&2
echo "  You may need to install the following packages for this specific kernel:" >&2
echo "    linux-tools-$full_version" >&2
echo "    linux-cloud-tools-$full_version" >&2
exit 2
"""


def elf(sections=(), bits=64, endian="<", contents=None):
    """A minimal valid ELF file whose section headers name ``sections``
    (each section gets 16 bytes of content, or the (type, bytes) that
    ``contents`` gives for its name: e.g. a SHT_NOTE section's notes)."""
    contents = contents or {}
    names = [""] + list(sections) + [n for n in contents if n not in sections] + [".shstrtab"]
    strtab, name_offsets = b"", []
    for name in names:
        name_offsets.append(len(strtab))
        strtab += name.encode() + b"\0"
    ehsize, shentsize = (64, 64) if bits == 64 else (52, 40)
    body, offsets = b"", []
    content = {name: contents.get(name, (1, b"\x90" * 16)) for name in names if name and name != ".shstrtab"}
    for name in names:
        offsets.append(ehsize + len(body))
        body += b"" if not name else (strtab if name == ".shstrtab" else content[name][1])
    shoff = ehsize + len(body)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if endian == "<" else 2, 1]) + bytes(9)
    addr = "Q" if bits == 64 else "I"
    machine = 62 if bits == 64 else 3  # x86-64, i386
    header = struct.pack(endian + "16sHHI%s%s%sIHHHHHH" % (addr, addr, addr), ident, 2, machine, 1, 0, 0, shoff, 0,
                         ehsize, 0, 0, shentsize, len(names), len(names) - 1)
    table = b""
    for i, name in enumerate(names):
        size = 0 if not name else (len(strtab) if name == ".shstrtab" else len(content[name][1]))
        sh_type = 0 if not name else (3 if name == ".shstrtab" else content[name][0])
        table += struct.pack(endian + "II%s%s%s%sII%s%s" % ((addr,) * 4 + (addr, addr)),
                             name_offsets[i], sh_type, 0, 0, offsets[i] if name else 0, size, 0, 0, int(bool(name)), 0)
    return header + body + table


class FakeHost:
    def __init__(self, root, release="6.8.0-151-generic"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.release = release
        self._mounts = []

    def __str__(self):
        return str(self.root)

    # -- files -------------------------------------------------------------
    def write(self, rel, content="", mode=None):
        path = self.root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        if mode is not None:
            path.chmod(mode)
        return path

    def mkdir(self, rel):
        path = self.root / rel.lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- identity ------------------------------------------------------------
    @classmethod
    def distro(cls, root, name, config=True):
        """A host of one of DISTROS: os-release, kernel identity, its real
        config in /boot, proc files, root's process status."""
        spec = DISTROS[name]
        host = cls(root, spec["release"])
        host.os_release(spec["os_release"])
        host.kernel(spec["release"], spec["version"], proc_version=spec["proc_version"])
        if config:
            host.kconfig(spec["config"], where="boot")
        host.filesystems()
        host.process()
        host.write("proc/modules", "")
        return host

    def os_release(self, text, rel="etc/os-release"):
        self.write(rel, text)

    def kernel(self, release=None, version="#1 SMP PREEMPT_DYNAMIC", arch="x86_64",
               proc_version=None, hostname="fakehost"):
        self.release = release or self.release
        kern = "proc/sys/kernel/"
        self.write(kern + "osrelease", self.release + "\n")
        self.write(kern + "version", version + "\n")
        self.write(kern + "arch", arch + "\n")
        self.write(kern + "hostname", hostname + "\n")
        self.write("proc/version", proc_version or "Linux version %s (builder@host) (gcc (GCC) 12.2.0, "
                   "GNU ld (GNU Binutils) 2.40) %s\n" % (self.release, version))
        self.sysctl(perf_event_paranoid=2, kptr_restrict=1, unprivileged_bpf_disabled=2,
                    ftrace_enabled=1, modules_disabled=0)

    def sysctl(self, **values):
        for name, value in values.items():
            self.write("proc/sys/kernel/" + name, "%s\n" % value)

    def kconfig(self, source, where="boot"):
        """``source``: a tests/data/kconfig file name, or config text.
        ``where``: proc (proc/config.gz), boot, modules or build."""
        text = gzip.decompress((KCONFIG_DIR / source).read_bytes()).decode() \
            if source.endswith(".config.gz") else source
        rel = {"proc": "proc/config.gz", "boot": "boot/config-%s" % self.release,
               "modules": "lib/modules/%s/config" % self.release,
               "build": "lib/modules/%s/build/.config" % self.release}[where]
        return self.write(rel, gzip.compress(text.encode()) if rel.endswith(".gz") else text)

    # -- proc/self, mounts -----------------------------------------------------
    def process(self, uid=0, cap_eff=ROOT_CAPS, memlock=(8388608, 8388608)):
        self.write("proc/self/status", (
            "Name:\tpython3\nUmask:\t0022\nState:\tR (running)\nTgid:\t4242\nPid:\t4242\nPPid:\t4200\n"
            "Uid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
            "CapInh:\t0000000000000000\nCapPrm:\t{cap}\nCapEff:\t{cap}\nCapBnd:\t{cap}\n"
            "CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n").format(uid=uid, cap=cap_eff))
        soft, hard = ("unlimited" if v is None else v for v in memlock)
        self.write("proc/self/limits", (
            "Limit                     Soft Limit           Hard Limit           Units     \n"
            "Max cpu time              unlimited            unlimited            seconds   \n"
            "Max open files            1024                 524288               files     \n"
            "Max locked memory         %-20s %-20s bytes     \n"
            "Max address space         unlimited            unlimited            bytes     \n") % (soft, hard))

    def mount(self, fstype, mountpoint):
        escaped = mountpoint.replace(" ", "\\040")
        n = 22 + len(self._mounts)
        self._mounts.append("%d 1 0:%d / %s rw,nosuid,nodev,noexec,relatime shared:%d - %s %s rw"
                            % (n, n, escaped, n, fstype, fstype))
        lines = ["1 0 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
                 "20 1 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw",
                 "21 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:3 - sysfs sysfs rw"]
        self.write("proc/self/mountinfo", "\n".join(lines + self._mounts) + "\n")
        return self.mkdir(mountpoint)

    def filesystems(self, names=("sysfs", "tmpfs", "proc", "securityfs", "debugfs", "tracefs", "bpf", "ext4")):
        self.write("proc/filesystems", "".join(
            ("\t%s\n" if name in ("ext4", "xfs", "vfat") else "nodev\t%s\n") % name for name in names))

    # -- tracing filesystems ---------------------------------------------------
    def tracefs(self, path="/sys/kernel/tracing", tracers="function_graph function nop", mount=True,
                kprobe_events=True, uprobe_events=True, syscalls=True, sched=True, function_filter="readable"):
        """function_filter: readable, absent, or unreadable (a directory: EISDIR)."""
        if mount:
            self.mount("tracefs", path)
        base = path.lstrip("/") + "/"
        self.write(base + "trace", "# tracer: nop\n")
        if tracers is not None:
            self.write(base + "available_tracers", tracers + " \n")
        self.write(base + "current_tracer", "nop\n")
        self.mkdir(base + "instances")
        self.write(base + "set_graph_function", "")
        for name, present in (("kprobe_events", kprobe_events), ("uprobe_events", uprobe_events),
                              ("dynamic_events", kprobe_events or uprobe_events)):
            if present:
                self.write(base + name, "")
        if syscalls:
            self.write(base + "events/syscalls/sys_enter_openat/enable", "0\n")
        if sched:
            self.write(base + "events/sched/sched_switch/enable", "0\n")
        if function_filter == "readable":
            self.write(base + "available_filter_functions", "do_sys_openat2\nvfs_read\nvfs_write\n")
        elif function_filter == "unreadable":
            self.mkdir(base + "available_filter_functions")
        return path

    def securityfs(self, lockdown="none", path="/sys/kernel/security"):
        self.mount("securityfs", path)
        if lockdown is not None:
            self.write(path + "/lockdown", LOCKDOWN.get(lockdown, lockdown) + "\n")

    def secure_boot(self, data):
        """data: the efivarfs bytes (4 attribute bytes, then the value), or
        None for an EFI boot without the variable."""
        self.mkdir("sys/firmware/efi/efivars")
        if data is not None:
            self.write("sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e39e5e9b8c4c", data)

    def btf(self):
        self.write("sys/kernel/btf/vmlinux", b"\x9f\xeb\x01\x00")

    def pmus(self, names=("cpu", "software", "tracepoint", "kprobe", "uprobe")):
        for name in names:
            self.mkdir("sys/bus/event_source/devices/" + name)

    def headers(self, config=True):
        build = "lib/modules/%s/build/" % self.release
        self.write(build + "Makefile", "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\n")
        if config:
            self.write(build + ".config", "# Automatically generated file; DO NOT EDIT.\nCONFIG_MODULES=y\n")

    def vmlinux(self, rel=None, dwarf=True):
        rel = rel or "usr/lib/debug/boot/vmlinux-%s" % self.release
        sections = [".text", ".data"] + ([".debug_info", ".debug_line"] if dwarf else [])
        return self.write(rel, elf(sections))

    def debuginfod(self, name, text):
        self.write("etc/debuginfod/%s.urls" % name, text)

    def local_facts(self, component, data):
        """What a setup role records: /etc/ansible/facts.d/tracekit_<component>.fact."""
        self.write("etc/ansible/facts.d/tracekit_%s.fact" % component,
                   data if isinstance(data, str) else json.dumps(data))

    # -- tools -------------------------------------------------------------------
    def tool(self, name, stdout="", stderr="", directory="usr/bin"):
        """An executable shell script that prints what the real tool prints."""
        script = "#!/bin/sh\n"
        if stdout:
            script += "cat <<'EOF'\n%sEOF\n" % stdout
        if stderr:
            script += "cat >&2 <<'EOF'\n%sEOF\n" % stderr
        return self.write("%s/%s" % (directory, name), script, mode=0o755)

    def perf(self, version="6.8.12"):
        return self.tool("perf", "perf version %s\n" % version)

    def perf_ubuntu_wrapper(self, releases=(), version="6.8.12"):
        """/usr/bin/perf from linux-tools-common, plus linux-tools binaries
        for ``releases``."""
        self.write("usr/bin/perf", UBUNTU_PERF_WRAPPER, mode=0o755)
        for release in releases:
            self.tool("perf", "perf version %s\n" % version, directory="usr/lib/linux-tools/" + release)

    def bpftrace(self, version="0.20.2", info=None):
        """bpftrace answering --version and --info.  ``info``: the name of a
        capture in BPFTRACE_INFO_DIR ("jammy-0.14.0"); by default the one of
        ``version`` if there is one, else --info prints nothing usable."""
        if info is None:
            info = next((p.stem for p in sorted(BPFTRACE_INFO_DIR.glob("*-%s.txt" % version))), "")
        text = (BPFTRACE_INFO_DIR / (info + ".txt")).read_text() if info else "bpftrace v%s\n" % version
        return self.write("usr/bin/bpftrace", "#!/bin/sh\nif [ \"$1\" = --info ]; then\ncat <<'EOF'\n%sEOF\n"
                          "else\necho 'bpftrace v%s'\nfi\n" % (text, version), mode=0o755)

    def trace_cmd(self, version="3.1.6"):
        return self.tool("trace-cmd", "\ntrace-cmd version %s (not-a-git-repo)\n" % version)

    def stap(self, bpf=True, staprun=True, version="5.1", package=""):
        """stap -V of an upstream build (noble's own package is 5.0, which
        cannot build modules for its 6.8 kernel: version="5.0",
        package=", Debian version 5.0-2ubuntu1")."""
        self.tool("stap", stderr=STAP_V.format(bpf="BPF " if bpf else "", version=version, package=package))
        if staprun:
            self.tool("staprun", stderr="staprun: no module specified\n")

    def sysdig(self, version="0.36.0", kmod=False, modern_bpf=True):
        # What --help prints: the version, then the options (--modern-bpf
        # only in builds with the modern eBPF probe).
        self.tool("sysdig", "sysdig version %s\nUsage: sysdig [options] [-p <output_format>] [filter]\n\n"
                  "Options:\n -A, --print-ascii  Only print the text portion of data buffers\n%s"
                  % (version, " --modern-bpf       Enable live captures using the modern eBPF probe\n"
                     if modern_bpf else ""))
        if kmod:
            self.write("lib/modules/%s/updates/dkms/scap.ko.zst" % self.release, b"\x28\xb5\x2f\xfd")

    def sysdig_setup(self, version="0.36.0", result="captured", says="an event", repository="vendor", kernel=None,
                     driver=None):
        """What the sysdig role records after its modern eBPF capture attempt
        (tasks/main.yml): sysdig's own version, the kernel, and its answer."""
        capture = {"sysdig": version, "kernel": kernel or self.release, "result": result, "says": says}
        self.local_facts("sysdig", {
            "component": "sysdig", "repository": repository, "packages": ["sysdig"], "version": version,
            "driver": driver or ("modern_ebpf" if result == "captured" else "kmod"), "reason": "",
            "unavailable": None, "modern_ebpf_capture": capture})

    def gcc(self):
        self.tool("gcc", "gcc (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0\n"
                  "Copyright (C) 2023 Free Software Foundation, Inc.\n")

    def bcc(self, version="0.29.1", tools=True):
        pkg = "usr/lib/python3/dist-packages/bcc/"
        self.write(pkg + "__init__.py", "from .version import __version__\n")
        self.write(pkg + "version.py", "__version__ = '%s'\n" % version)
        if tools:
            self.tool("execsnoop-bpfcc", "PCOMM  PID  PPID  RET ARGS\n", directory="usr/sbin")

    def libbpf_tools(self, version="1:1.3.0-2build2", rel="usr/sbin/execsnoop"):
        self.write(rel, elf([".text"]), mode=0o755)
        self.write("var/lib/dpkg/status", (
            "Package: libbpf1\nStatus: install ok installed\nVersion: 1:1.3.0-2build2\n\n"
            "Package: libbpf-tools\nStatus: install ok installed\nPriority: optional\n"
            "Section: admin\nArchitecture: amd64\nVersion: %s\nDescription: libbpf-based BPF tools\n\n") % version)


def full_host(root, distro="ubuntu-noble"):
    """A host on which every tracing method is ready (once kernel_probes,
    which only a live host measures, are filled in)."""
    host = FakeHost.distro(root, distro)
    host.mount("debugfs", "/sys/kernel/debug")
    host.tracefs()
    host.securityfs("none")
    host.mount("bpf", "/sys/fs/bpf")
    host.process(memlock=(None, None))
    host.btf()
    host.pmus()
    host.headers()
    host.vmlinux()
    for install in (host.perf, host.bpftrace, host.trace_cmd, host.stap, host.gcc, host.bcc, host.libbpf_tools):
        install()
    host.sysdig(kmod=True)
    # The vendor's sysdig, whose capture worked when tracekit set it up.
    host.sysdig_setup()
    return host


# This machine's kernel (shared/LAB.md, /proc/version and /proc/config.gz
# here): BTF, tracepoints and uprobes; no kprobes, no loadable modules (no
# /proc/modules), no headers anywhere.  The options doctor reads, as its config
# has them.
LAB_KERNEL = "6.18.44-fc-v1252"
LAB_PROC_VERSION = ("Linux version 6.18.44-fc-v1252 (builder@sandboxing) (gcc (GCC) 15.3.0, GNU ld (GNU Binutils) "
                    "2.46) #1 SMP PREEMPT_DYNAMIC @0\n")
LAB_KCONFIG = "".join(line + "\n" for line in (
    "CONFIG_BPF=y", "CONFIG_BPF_SYSCALL=y", "CONFIG_BPF_JIT=y", "# CONFIG_IKHEADERS is not set",
    "CONFIG_HAVE_PERF_EVENTS=y", "CONFIG_PERF_EVENTS=y", "CONFIG_TRACEPOINTS=y", "# CONFIG_KPROBES is not set",
    "CONFIG_UPROBES=y", "# CONFIG_MODULES is not set", "CONFIG_SECURITY_LOCKDOWN_LSM=y", "CONFIG_DEBUG_INFO=y",
    "# CONFIG_DEBUG_INFO_NONE is not set", "CONFIG_DEBUG_INFO_BTF=y", "CONFIG_DEBUG_FS=y", "CONFIG_EVENT_TRACING=y",
    "CONFIG_FTRACE=y", "CONFIG_FUNCTION_TRACER=y", "# CONFIG_FUNCTION_GRAPH_TRACER is not set",
    "CONFIG_DYNAMIC_FTRACE=y", "CONFIG_FTRACE_SYSCALLS=y", "CONFIG_UPROBE_EVENTS=y", "CONFIG_BPF_EVENTS=y"))
# The userlands run on it (their os-release as debootstrap leaves it, and the
# bpftrace each release packages: tests/data/captured/bpftrace.info).
LAB_USERLANDS = {
    "jammy": ('PRETTY_NAME="Ubuntu 22.04 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04 (Jammy Jellyfish)"\n'
              'VERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n', "0.14.0"),
    "bookworm": (DISTROS["debian-bookworm"]["os_release"], "0.17.0"),
    "resolute": ('PRETTY_NAME="Ubuntu 26.04 LTS"\nNAME="Ubuntu"\nVERSION_ID="26.04"\n'
                 'VERSION="26.04 (Resolute Raccoon)"\nVERSION_CODENAME=resolute\nID=ubuntu\nID_LIKE=debian\n'
                 'UBUNTU_CODENAME=resolute\n', "0.25.0"),
}


def lab_machine(root, userland="bookworm"):
    """This machine's kernel under one of LAB_USERLANDS with its bpftrace,
    gcc and tracefs mounted, as root (memlock as here: 8 MiB, not raisable)."""
    os_release, bpftrace = LAB_USERLANDS[userland]
    host = FakeHost(root, LAB_KERNEL)
    host.os_release(os_release)
    host.kernel(LAB_KERNEL, "#1 SMP PREEMPT_DYNAMIC @0", proc_version=LAB_PROC_VERSION)
    host.kconfig(LAB_KCONFIG, where="proc")
    host.filesystems()
    host.process(cap_eff=NO_SYS_RESOURCE_CAPS)
    host.mount("debugfs", "/sys/kernel/debug")
    host.tracefs(tracers="blk function nop", kprobe_events=False, function_filter="unreadable")
    host.securityfs("integrity")
    host.btf()
    host.pmus(("cpu", "software", "tracepoint", "uprobe"))
    host.bpftrace(bpftrace)
    host.gcc()
    return host
