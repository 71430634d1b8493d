"""Collect what a host can trace: read-only facts, no tracing state changed.

``collect(root)`` returns a JSON-serialisable dict.  With ``root="/"`` it also
makes a few harmless live probes of the running kernel (a disabled perf event
opened and closed, a two-instruction BPF program loaded and closed, and, when
tracefs or securityfs is not mounted, a look at them from a private mount
namespace that vanishes with the child process).  With any other root it only
reads files below it, which is how unit tests build fake hosts.  The one file
it writes: as root on the running host, what ``bpftrace --info`` printed, kept
in BPFTRACE_INFO_CACHE (tmpfs: gone at reboot) while bpftrace and the kernel
stay the same, because running it would take a quarter of doctor's time.

Standard library only (see tracekit/agent/__init__.py).
"""

import contextlib
import errno
import glob
import json
import os
import re
import subprocess
import sys

from . import elf, kconfig, outputs

SCHEMA = 1

# Kernel options the verdicts look at, reported as found in the config.
RELEVANT_OPTIONS = (
    "FTRACE", "FUNCTION_TRACER", "FUNCTION_GRAPH_TRACER", "DYNAMIC_FTRACE",
    "TRACEPOINTS", "EVENT_TRACING", "FTRACE_SYSCALLS",
    "KPROBES", "KPROBE_EVENTS", "KRETPROBES", "UPROBES", "UPROBE_EVENTS",
    "PERF_EVENTS", "HAVE_PERF_EVENTS",
    "BPF", "BPF_SYSCALL", "BPF_JIT", "BPF_EVENTS", "DEBUG_INFO_BTF", "IKHEADERS",
    "MODULES", "MODULE_SIG", "MODULE_SIG_FORCE",
    "DEBUG_FS", "SECURITY_LOCKDOWN_LSM", "LOCK_DOWN_KERNEL_FORCE_INTEGRITY",
    "LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY", "DEBUG_INFO", "DEBUG_INFO_NONE",
)

CAPABILITIES = {"CAP_SYS_ADMIN": 21, "CAP_SYS_RESOURCE": 24, "CAP_PERFMON": 38, "CAP_BPF": 39}

# Syscall numbers for the live probes; an architecture not listed here gets
# "unknown" for those facts rather than a guess.
SYSCALLS = {
    "x86_64": {"perf_event_open": 298, "bpf": 321},
    "aarch64": {"perf_event_open": 241, "bpf": 280},
    "riscv64": {"perf_event_open": 241, "bpf": 280},
    "ppc64le": {"perf_event_open": 319, "bpf": 361},
    "s390x": {"perf_event_open": 331, "bpf": 351},
}

TOOL_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

SECURE_BOOT_VAR = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-e39e5e9b8c4c"

# Where Debian and Ubuntu install libbpf-tools, and upstream's own layout.
LIBBPF_TOOLS_DIRS = ("usr/sbin", "usr/share/libbpf-tools")
# Their names: bare (Debian 12, Ubuntu 24.04) or, from Debian 13 and Ubuntu
# 26.04, with "-libbpf" (beside bcc's "-bpfcc" tools of the same name).
LIBBPF_TOOLS_SUFFIXES = ("", "-libbpf")

# `bpftrace --info` takes 30-150 ms (it loads BPF programs to probe the
# kernel), more than all of doctor's other queries together: its output is
# kept here, keyed by the bpftrace binary and the booted kernel.
BPFTRACE_INFO_CACHE = "/run/tracekit/bpftrace-info.json"

# Each setup role records what it did in its own tracekit_<component>.fact.
LOCAL_FACTS_DIR = "etc/ansible/facts.d"


def collect(root="/", live=None):
    live = (os.path.realpath(root) == "/") if live is None else live
    host = _Host(root, live)
    return host.collect()


def errno_text(exc):
    """'EPERM (Operation not permitted)' for an OSError."""
    code = errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno else type(exc).__name__
    return "%s (%s)" % (code, exc.strerror or exc)


class _Host:
    def __init__(self, root, live):
        self.root = root
        self.live = live
        self.unreadable = []

    # -- helpers ---------------------------------------------------------
    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def read(self, rel, limit=None):
        """File text, or None when absent; unreadable files are recorded."""
        try:
            with open(self.path(rel), errors="replace") as f:
                return f.read(limit) if limit else f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self.unreadable.append("/%s: %s" % (rel.lstrip("/"), errno_text(exc)))
            return None

    def read_int(self, rel):
        text = self.read(rel)
        try:
            return int(text.strip()) if text is not None else None
        except ValueError:
            return None

    def exists(self, rel):
        return os.path.exists(self.path(rel))

    # -- sections --------------------------------------------------------
    def collect(self):
        kernel = self.kernel()
        config = kconfig.load(self.root, kernel["release"])
        facts = {
            "schema": SCHEMA,
            "live": self.live,
            "host": {"hostname": self.hostname(), "distro": self.distro()},
            "kernel": kernel,
            "kconfig": {
                "source": config.source,
                "complete": config.complete,
                "error": config.error,
                "options": {name: config.get(name) for name in RELEVANT_OPTIONS},
            },
        }
        mounts = self.mounts()
        facts["mounts"] = mounts
        filesystems = self.filesystems()
        facts["filesystems"] = filesystems
        facts["tracefs"], lockdown_text = self.tracefs_and_lockdown(mounts, filesystems)
        facts["lockdown"] = _parse_lockdown(lockdown_text)
        facts["secure_boot"] = self.secure_boot()
        facts["sysctl"] = {
            name: self.read_int("proc/sys/kernel/" + name)
            for name in ("perf_event_paranoid", "kptr_restrict", "unprivileged_bpf_disabled",
                         "ftrace_enabled", "modules_disabled")
        }
        facts["modules"] = {"proc_modules": self.exists("proc/modules")}
        facts["btf"] = {"vmlinux": self.exists("sys/kernel/btf/vmlinux")}
        facts["pmus"] = sorted(os.listdir(self.path("sys/bus/event_source/devices"))) \
            if self.exists("sys/bus/event_source/devices") else None
        facts["headers"] = self.headers(kernel["release"])
        facts["debuginfo"] = self.debuginfo(kernel["release"])
        facts["debuginfod"] = self.debuginfod()
        facts["process"] = self.process()
        facts["kernel_probes"] = self.kernel_probes(kernel["arch"])
        facts["tools"] = self.tools(kernel)
        facts["setup"] = self.local_facts()
        facts["unreadable"] = self.unreadable
        return facts

    def hostname(self):
        text = self.read("proc/sys/kernel/hostname")
        return text.strip() if text else None

    def distro(self):
        # Parsed here rather than with the `distro` package: this module must
        # run on targets that only have the standard library.
        text = self.read("etc/os-release") or self.read("usr/lib/os-release")
        info = {}
        for line in (text or "").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key.strip()] = value.strip().strip("\"'")
        return {
            "id": info.get("ID"),
            "like": info.get("ID_LIKE", "").split(),
            "version_id": info.get("VERSION_ID"),
            "codename": info.get("VERSION_CODENAME") or info.get("UBUNTU_CODENAME"),
            "name": info.get("PRETTY_NAME"),
        }

    def kernel(self):
        release = (self.read("proc/sys/kernel/osrelease") or "").strip()
        version = (self.read("proc/sys/kernel/version") or "").strip()
        arch = (self.read("proc/sys/kernel/arch") or "").strip()
        if self.live:
            uname = os.uname()
            release, version, arch = release or uname.release, version or uname.version, arch or uname.machine
        proc_version = self.read("proc/version") or ""
        # "(gcc (GCC) 15.3.0, GNU ld ...)" or, on Ubuntu and Debian,
        # "(x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0, GNU ld ...)".
        match = re.search(r"\((\S*gcc\S*(?: \([^)]*\))? \d+(?:\.\d+)+)", proc_version)
        compiler = None
        if match:
            gcc_version = re.search(r"(\d+)(?:\.\d+)+$", match.group(1))
            compiler = {"text": match.group(1), "gcc_major": int(gcc_version.group(1))}
        return {"release": release or None, "version": version or None,
                "arch": arch or None, "compiler": compiler}

    def mounts(self):
        found = {}
        text = self.read("proc/self/mountinfo") or ""
        for line in text.splitlines():
            fields = line.split()
            if " - " not in line or len(fields) < 5:
                continue
            fstype = line.split(" - ", 1)[1].split()[0]
            if fstype in ("debugfs", "tracefs", "securityfs", "bpf") and fstype not in found:
                found[fstype] = fields[4].replace("\\040", " ")
        return {name: found.get(name) for name in ("debugfs", "tracefs", "securityfs", "bpf")}

    def filesystems(self):
        text = self.read("proc/filesystems")
        if text is None:
            return None
        return sorted(line.split()[-1] for line in text.splitlines() if line.strip())

    # -- tracefs and lockdown ---------------------------------------------
    def tracefs_and_lockdown(self, mounts, filesystems):
        """Read tracefs and the lockdown mode, from a private mount namespace if
        either is not mounted (so nothing is left mounted on the host)."""
        tracefs_path = mounts.get("tracefs")
        if not tracefs_path and mounts.get("debugfs"):
            candidate = os.path.join(mounts["debugfs"], "tracing")
            if os.path.exists(self.path(os.path.join(candidate, "trace"))):
                tracefs_path = candidate
        lockdown_path = os.path.join(mounts["securityfs"], "lockdown") if mounts.get("securityfs") else None

        need_tracefs = tracefs_path is None and (filesystems is None or "tracefs" in filesystems)
        need_security = lockdown_path is None and (filesystems is None or "securityfs" in filesystems)
        private = None
        if self.live and (need_tracefs or need_security):
            private = _in_private_mounts(need_tracefs, need_security)

        if tracefs_path:
            tracefs = _read_tracefs(self, tracefs_path)
            tracefs.update(mounted=True, path=tracefs_path, probed="mounted")
        elif private and "tracefs" in private:
            tracefs = private["tracefs"]
            tracefs.update(mounted=False, path=None, probed="private mount namespace")
        else:
            tracefs = {"mounted": False, "path": None, "probed": None,
                       "error": (private or {}).get("error")
                       or ("kernel has no tracefs" if filesystems is not None and "tracefs" not in filesystems
                           else "tracefs is not mounted")}
            if filesystems is not None and "tracefs" not in filesystems:
                tracefs["supported"] = False

        if lockdown_path:
            lockdown_text = self.read(lockdown_path)
        elif private and "lockdown" in private:
            lockdown_text = private["lockdown"]
        else:
            lockdown_text = None
        if lockdown_text is None and private and private.get("error"):
            self.unreadable.append("lockdown: " + private["error"])
        return tracefs, lockdown_text

    def secure_boot(self):
        if not self.exists("sys/firmware/efi"):
            return {"state": "disabled", "detail": "not booted through EFI"}
        try:
            with open(self.path(SECURE_BOOT_VAR), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return {"state": "unknown", "detail": "efivars has no SecureBoot variable"}
        except OSError as exc:
            return {"state": "unknown", "detail": errno_text(exc)}
        # efivarfs: 4 bytes of attributes, then the one-byte value.
        if len(data) >= 5:
            return {"state": "enabled" if data[4] == 1 else "disabled", "detail": "EFI SecureBoot variable"}
        return {"state": "unknown", "detail": "short SecureBoot variable"}

    # -- build tree, debug info -----------------------------------------
    def headers(self, release):
        result = {"build_dir": None, "kheaders": self.exists("sys/kernel/kheaders.tar.xz")}
        for rel in ("lib/modules/%s/build" % release, "usr/src/linux-headers-%s" % release):
            if self.exists(rel + "/Makefile"):
                result["build_dir"] = "/" + rel
                result["build_config"] = self.exists(rel + "/.config")
                break
        return result

    def debuginfo(self, release):
        candidates = [
            "usr/lib/debug/boot/vmlinux-%s" % release,
            "usr/lib/debug/lib/modules/%s/vmlinux" % release,
            "lib/modules/%s/build/vmlinux" % release,
            "boot/vmlinux-%s" % release,
            "usr/lib/debug/vmlinux-%s" % release,
        ]
        seen = []
        for rel in candidates:
            if not self.exists(rel):
                continue
            dwarf = elf.has_section(self.path(rel), (".debug_info", ".zdebug_info"))
            seen.append({"path": "/" + rel, "dwarf": dwarf})
            if dwarf:
                return {"vmlinux": "/" + rel, "candidates": seen}
        return {"vmlinux": None, "candidates": seen}

    def debuginfod(self):
        urls, sources = [], []
        env = os.environ.get("DEBUGINFOD_URLS", "") if self.live else ""
        if env.strip():
            urls += env.split()
            sources.append("DEBUGINFOD_URLS")
        # What sudo and ssh sessions (pam_env) get: tracekit's ddebs role writes
        # DEBUGINFOD_URLS there; a process started before it lacks the variable.
        for line in (self.read("etc/environment") or "").splitlines():
            name, _, value = line.strip().partition("=")
            if name == "DEBUGINFOD_URLS" and value.strip().strip("\"'").strip():
                urls += [u for u in value.strip().strip("\"'").split() if u not in urls]
                sources.append("/etc/environment")
        for path in sorted(glob.glob(self.path("etc/debuginfod/*.urls"))):
            text = self.read(os.path.relpath(path, self.root)) or ""
            found = [u for line in text.splitlines() for u in line.split("#", 1)[0].split()]
            if found:
                urls += [u for u in found if u not in urls]
                sources.append("/" + os.path.relpath(path, self.root))
        return {"urls": urls, "sources": sources}

    # -- this process ----------------------------------------------------
    def process(self):
        status = self.read("proc/self/status") or ""
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        try:
            uid = int(fields["Uid"].split()[1])  # effective uid
        except (KeyError, IndexError, ValueError):
            uid = os.geteuid() if self.live else None
        try:
            cap_eff = int(fields["CapEff"].strip(), 16)
        except (KeyError, ValueError):
            cap_eff = None
        caps = {name: (None if cap_eff is None else bool(cap_eff >> bit & 1))
                for name, bit in CAPABILITIES.items()}
        memlock = None
        limits = self.read("proc/self/limits") or ""
        for line in limits.splitlines():
            if line.startswith("Max locked memory"):
                parts = line.split()
                memlock = {"soft": _limit(parts[3]), "hard": _limit(parts[4])}
        return {"uid": uid, "capabilities": caps,
                "cap_eff": None if cap_eff is None else "%016x" % cap_eff, "memlock": memlock}

    def kernel_probes(self, arch):
        numbers = SYSCALLS.get(arch)
        if not self.live or not numbers:
            return {"perf_hardware": None, "perf_software": None, "bpf_prog_load": None,
                    "detail": "not the running host" if not self.live else "no syscall numbers known for %s" % arch}
        import ctypes  # only on the live path: it costs start-up time
        libc = ctypes.CDLL(None, use_errno=True)
        return {
            "perf_hardware": _perf_event_open(ctypes, libc, numbers["perf_event_open"], 0, 0),
            "perf_software": _perf_event_open(ctypes, libc, numbers["perf_event_open"], 1, 0),
            "bpf_prog_load": _bpf_prog_load(ctypes, libc, numbers["bpf"]),
            "detail": None,
        }

    # -- tools -----------------------------------------------------------
    def which(self, name):
        dirs = list(TOOL_DIRS)
        if self.live:
            dirs = [d for d in os.environ.get("PATH", "").split(":") if d] + dirs
        for d in dirs:
            candidate = self.path(os.path.join(d, name))
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        return None

    def display(self, path):
        return "/" + os.path.relpath(path, self.root) if path else None

    def tools(self, kernel):
        release = kernel["release"] or ""
        tools = {}
        perf = self.perf(release)
        tools["perf"] = perf
        # Version queries run concurrently: together they stay within a few
        # tens of milliseconds instead of adding up.
        queries = {
            "perf": ([self.path(perf["usable_path"]), "--version"] if perf.get("usable_path") else None),
            "trace-cmd": self._cmd("trace-cmd", "--version"),
            "bpftrace": self._cmd("bpftrace", "--version"),
            # Its own view of this kernel: whether it can read the kernel's
            # BTF (bpftrace 0.14 cannot read 6.x kernels'), probe types.
            "bpftrace-info": None,
            "stap": self._cmd("stap", "-V"),
            # --help: its version, and whether this build offers --modern-bpf.
            "sysdig": self._cmd("sysdig", "--help"),
            "gcc": self._cmd("gcc", "--version"),
        }
        info_key = info_cached = None
        if queries["bpftrace"]:
            info_key = self.bpftrace_info_key(queries["bpftrace"][0], kernel)
            info_cached = cached_output(BPFTRACE_INFO_CACHE, info_key) if info_key else None
            if info_cached is None:
                queries["bpftrace-info"] = [queries["bpftrace"][0], "--info"]
        printed = _run_all(queries)
        if info_cached is not None:
            printed["bpftrace-info"] = info_cached
        elif info_key and printed.get("bpftrace-info") is not None:
            keep_output(BPFTRACE_INFO_CACHE, info_key, printed["bpftrace-info"])

        perf["version"] = _first_version(printed.get("perf"))
        if perf.get("usable_path") and printed.get("perf") is None:
            perf["note"] = "; ".join(filter(None, [perf.get("note"), "%s --version did not run" % perf["usable_path"]]))
        for name in ("trace-cmd", "bpftrace", "sysdig"):
            path = queries[name][0] if queries[name] else None
            tools[name] = {"found": bool(path), "path": self.display(path),
                           "version": _first_version(printed.get(name))}
        if tools["bpftrace"]["found"]:
            tools["bpftrace"]["info"] = outputs.parse_bpftrace_info(printed.get("bpftrace-info"))
        stap_path = queries["stap"][0] if queries["stap"] else None
        stap_out = printed.get("stap") or ""
        features = re.search(r"enabled features:(.*)", stap_out)
        features = features.group(1).split() if features else []
        runtimes = []
        if stap_path:
            runtimes.append("kernel")
            runtimes += [rt for rt, feat in (("bpf", "BPF"), ("dyninst", "DYNINST")) if feat in features]
        tools["stap"] = {"found": bool(stap_path), "path": self.display(stap_path),
                         "version": _first_version(stap_out), "features": features,
                         "runtimes": runtimes, "staprun": bool(self.which("staprun"))}
        sysdig = tools["sysdig"]
        if sysdig["found"]:
            sysdig["drivers"] = {
                # Upstream has the option from 0.31; distribution builds may
                # leave it out (Ubuntu 24.04's 0.36.0+repack). Offering it is
                # not having the probe (Ubuntu 26.04's 0.40.0+repack offers it,
                # and its capture says "MODERN_BPF engine is not supported in
                # this build"): what a capture said, the sysdig role records.
                "modern_bpf_option": "--modern-bpf" in (printed.get("sysdig") or ""),
                "kmod_built": bool(glob.glob(self.path("lib/modules/%s/**/scap.ko*" % release), recursive=True)),
                "kmod_loaded": self.exists("sys/module/scap"),
            }
        gcc_path = queries["gcc"][0] if queries["gcc"] else None
        gcc_version = _first_version(printed.get("gcc"))
        tools["gcc"] = {"found": bool(gcc_path), "path": self.display(gcc_path), "version": gcc_version}
        tools["bcc"] = self.bcc()
        tools["libbpf-tools"] = self.libbpf_tools()
        return tools

    def bpftrace_info_key(self, path, kernel):
        """What `bpftrace --info` depends on (the binary, the libraries it
        links, the booted kernel), or None where it is not cached: not the
        running host, or not root (another user's bpftrace sees less of the
        kernel).  Any package change counts as a library change (the dpkg
        database's time): libbpf decides whether it reads the kernel's BTF."""
        if not self.live or os.geteuid() != 0:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        try:
            packages = os.stat(self.path("var/lib/dpkg/status")).st_mtime_ns
        except OSError:
            packages = None
        boot_id = (self.read("proc/sys/kernel/random/boot_id") or "").strip()
        return {"path": path, "mtime_ns": st.st_mtime_ns, "size": st.st_size, "inode": st.st_ino,
                "packages": packages, "kernel": kernel["release"], "version": kernel["version"],
                "boot_id": boot_id}

    def _cmd(self, name, *args):
        path = self.which(name)
        return [path] + list(args) if path else None

    def perf(self, release):
        path = self.which("perf")
        info = {"found": bool(path), "path": self.display(path), "usable_path": path and self.display(path),
                "ubuntu_wrapper": False, "note": None, "version": None}
        if not path:
            return info
        with open(path, "rb") as f:
            head = f.read(4096)
        if head.startswith(b"#!") and b"linux-tools" in head:
            # Ubuntu's /usr/bin/perf is a shell wrapper that execs the binary of
            # the running kernel's linux-tools package and refuses otherwise.
            info["ubuntu_wrapper"] = True
            exact = "usr/lib/linux-tools/%s/perf" % release
            if self.exists(exact):
                info["usable_path"] = "/" + exact
            else:
                others = sorted(glob.glob(self.path("usr/lib/linux-tools/*/perf"))
                                + glob.glob(self.path("usr/lib/linux-tools-*/perf")), key=_version_key)
                if others:
                    info["usable_path"] = self.display(others[-1])
                    info["note"] = ("no linux-tools package for %s: the perf wrapper refuses to run; "
                                    "%s works" % (release, info["usable_path"]))
                else:
                    info["usable_path"] = None
                    info["note"] = "the perf wrapper finds no linux-tools binary for %s" % release
        return info

    def bcc(self):
        module = None
        for pattern in ("usr/lib/python3/dist-packages/bcc/__init__.py",
                        "usr/lib/python3*/site-packages/bcc/__init__.py",
                        "usr/lib64/python3*/site-packages/bcc/__init__.py"):
            hits = glob.glob(self.path(pattern))
            if hits:
                module = os.path.dirname(hits[0])
                break
        tools = [p for p in ("usr/sbin/execsnoop-bpfcc", "usr/share/bcc/tools/execsnoop") if self.exists(p)]
        version = None
        if module:
            text = self.read(os.path.relpath(os.path.join(module, "version.py"), self.root)) or ""
            version = _first_version(text)
        return {"found": bool(module and tools), "path": ("/" + tools[0]) if tools else None,
                "python_module": self.display(module),
                "tools_dir": ("/" + os.path.dirname(tools[0])) if tools else None, "version": version}

    def libbpf_tools(self):
        for directory in LIBBPF_TOOLS_DIRS:
            for tool in ("execsnoop", "opensnoop"):
                path = find_libbpf_tool(self.path(directory), tool)
                if path:
                    execsnoop = find_libbpf_tool(self.path(directory), "execsnoop")
                    return {"found": True, "path": self.display(path), "tools_dir": "/" + directory,
                            "execsnoop": self.display(execsnoop), "version": self.dpkg_version("libbpf-tools")}
        return {"found": False, "path": None, "tools_dir": None, "execsnoop": None, "version": None}

    def dpkg_version(self, package):
        text = self.read("var/lib/dpkg/status") or ""
        match = re.search(r"^Package: %s\n(?:.+\n)*?Version: (.+)$" % re.escape(package), text, re.M)
        return match.group(1) if match else None

    def local_facts(self):
        """{"components": {name: fact}} from the setup roles, or None."""
        components = {}
        for path in sorted(glob.glob(self.path(LOCAL_FACTS_DIR + "/tracekit_*.fact"))):
            rel = os.path.relpath(path, self.root)
            text = self.read(rel)
            if text is None:
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                self.unreadable.append("/%s: not JSON (%s)" % (rel, exc))
                continue
            name = os.path.basename(path)[len("tracekit_"):-len(".fact")]
            components[name] = data
        return {"components": components} if components else None


# -- tracefs reading (also used inside the private mount namespace) --------
def _read_tracefs(host, path):
    info = {"error": None}
    tracers = host.read(os.path.join(path, "available_tracers"))
    if tracers is None:
        info["error"] = (host.unreadable[-1] if host.unreadable and path in host.unreadable[-1]
                         else "%s/available_tracers missing" % path)
        info["readable"] = False
        return info
    info["readable"] = True
    info["available_tracers"] = tracers.split()
    info["current_tracer"] = (host.read(os.path.join(path, "current_tracer")) or "").strip() or None
    for name in ("kprobe_events", "uprobe_events", "dynamic_events", "instances", "set_graph_function"):
        info[name] = host.exists(os.path.join(path, name))
    info["syscall_events"] = host.exists(os.path.join(path, "events/syscalls/sys_enter_openat"))
    info["sched_events"] = host.exists(os.path.join(path, "events/sched/sched_switch"))
    # Whether the function tracer may really be used: reading this list goes
    # through the same permission gate as setting a filter, without changing
    # anything (on some kernels the tracer is listed but every use is refused).
    try:
        with open(host.path(os.path.join(path, "available_filter_functions"))) as f:
            f.read(256)
        info["function_filter"] = "readable"
    except FileNotFoundError:
        info["function_filter"] = "absent"
    except OSError as exc:
        info["function_filter"] = errno_text(exc)
    return info


def _in_private_mounts(need_tracefs, need_security):
    """Mount what is needed in a throwaway mount namespace (a forked child) and
    read it there.  Nothing is mounted on the host; needs CAP_SYS_ADMIN."""
    import ctypes
    CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x20000, 0x4000, 0x40000
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(rfd)
            libc = ctypes.CDLL(None, use_errno=True)
            result = {}
            if libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            # No mount options: tracefs and securityfs have one superblock for
            # the whole system and options here could change it for everyone.
            if need_tracefs:
                if libc.mount(b"tracefs", b"/sys/kernel/tracing", b"tracefs", 0, None) == 0:
                    result["tracefs"] = _read_tracefs(_Host("/", True), "/sys/kernel/tracing")
                else:
                    result["tracefs_error"] = "mount tracefs: " + os.strerror(ctypes.get_errno())
            if need_security:
                if libc.mount(b"securityfs", b"/sys/kernel/security", b"securityfs", 0, None) == 0:
                    try:
                        with open("/sys/kernel/security/lockdown") as f:
                            result["lockdown"] = f.read()
                    except OSError as exc:
                        result["lockdown_error"] = errno_text(exc)
            data = json.dumps(result)
        except BaseException as exc:  # report, never raise out of the child
            data = json.dumps({"error": "private mount namespace: %s" % (
                errno_text(exc) if isinstance(exc, OSError) else exc)})
        try:
            os.write(wfd, data.encode())
        finally:
            os._exit(0)
    os.close(wfd)
    chunks = []
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    os.waitpid(pid, 0)
    try:
        result = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {"error": "private mount namespace: garbled reply"}
    if "tracefs_error" in result and "error" not in result:
        result["error"] = result["tracefs_error"]
    return result


def _parse_lockdown(text):
    if text is None:
        return {"mode": None, "available": None}
    modes = text.split()
    current = next((m.strip("[]") for m in modes if m.startswith("[")), None)
    return {"mode": current, "available": [m.strip("[]") for m in modes]}


# -- live kernel probes ------------------------------------------------------
def _perf_event_open(ctypes, libc, nr, type_, config):
    """Open a disabled, user-only counter on this process and close it."""
    import struct
    attr = bytearray(128)
    struct.pack_into("IIQ", attr, 0, type_, len(attr), config)
    disabled, exclude_kernel, exclude_hv = 1, 1 << 5, 1 << 6
    struct.pack_into("Q", attr, 40, disabled | exclude_kernel | exclude_hv)
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    fd = libc.syscall(nr, buf, 0, -1, -1, 0)
    if fd < 0:
        err = ctypes.get_errno()
        return errno_text(OSError(err, os.strerror(err)))
    os.close(fd)
    return "ok"


def _bpf_prog_load(ctypes, libc, nr):
    """Load 'r0 = 0; exit' as a tracepoint program and close it at once."""
    import struct
    insns = struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    license_buf = ctypes.create_string_buffer(b"GPL")
    attr = bytearray(128)
    BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_LOAD = 5, 5
    struct.pack_into("IIQQ", attr, 0, BPF_PROG_TYPE_TRACEPOINT, 2,
                     ctypes.addressof(insn_buf), ctypes.addressof(license_buf))
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    fd = libc.syscall(nr, BPF_PROG_LOAD, buf, len(attr))
    if fd < 0:
        err = ctypes.get_errno()
        return errno_text(OSError(err, os.strerror(err)))
    os.close(fd)
    return "ok"


# -- small parsers -----------------------------------------------------------
def find_libbpf_tool(directory, tool):
    """The libbpf-tools binary ``tool`` (e.g. execsnoop) in ``directory``,
    under either of its names, or None.  Only an ELF binary counts: bcc's
    Python tools and perf-tools' shell scripts may carry the bare name."""
    for suffix in LIBBPF_TOOLS_SUFFIXES:
        path = os.path.join(directory, tool + suffix)
        try:
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF" and os.access(path, os.X_OK):
                    return path
        except OSError:
            continue
    return None


def cached_output(path, key):
    """The output kept in ``path`` for ``key``, or None (absent, another key,
    unreadable or garbled: the command then runs again)."""
    try:
        with open(path) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("output"), str):
        return None
    return entry["output"]


def keep_output(path, key, output):
    """Keep ``output`` for ``key`` in ``path`` (written whole, then renamed);
    a directory that cannot be made or written only costs the next run time."""
    tmp = "%s.%d" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(tmp, "w") as f:
            json.dump({"key": key, "output": output}, f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _run_all(queries, timeout=5):
    """Run {name: argv} concurrently; {name: combined output or None}."""
    procs = {}
    for name, argv in queries.items():
        if not argv:
            continue
        try:
            procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, env=dict(os.environ, LC_ALL="C"))
        except OSError:
            continue
    outputs = {}
    for name, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=timeout)
            outputs[name] = out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            outputs[name] = None
    return outputs


def _first_version(text):
    if not text:
        return None
    match = re.search(r"(?<![\w.])v?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def _version_key(path):
    return [int(n) for n in re.findall(r"\d+", path)]


def _version_at_least(version, minimum):
    if not version:
        return None
    return tuple(int(n) for n in version.split(".")[:len(minimum)]) >= minimum


def _limit(text):
    return None if text == "unlimited" else int(text)


def main(argv=None):
    """Entry point when shipped to a remote host: print facts as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    root = argv[0] if argv else "/"
    json.dump(collect(root), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
