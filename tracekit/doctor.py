"""Verdicts: what each tracing method needs, judged against a host's facts.

Facts come from tracekit.agent.facts (this machine, or a remote host through
Ansible); this module only reasons about them and never touches the host.

Each method is an explicit entry in METHODS with a stable id and an ordered
list of requirements.  A requirement returns None when met, or a Block that
says why not.  The verdict is the worst block: ``unavailable`` (this kernel or
host cannot, whatever is installed) beats ``unknown`` (could not tell) beats
``missing`` (fixable: names the ``tracekit setup`` component that fixes it).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from tracekit import releases
from tracekit.agent import outputs
from tracekit.errors import UsageError

READY, MISSING, UNAVAILABLE, UNKNOWN = "ready", "missing", "unavailable", "unknown"
STATUSES = (READY, MISSING, UNAVAILABLE, UNKNOWN)
_SEVERITY = {UNAVAILABLE: 3, UNKNOWN: 2, MISSING: 1}

SCHEMA = "tracekit.doctor/1"

# Setup components, in the order `tracekit setup` applies them.
COMPONENTS = ("debugfs", "ddebs", "headers", "dbgsym", "perf", "bcc", "bpftrace", "systemtap", "sysdig")
# Components a plain `tracekit setup` leaves out (dbgsym: about 1 GB). What only
# they fix is reported as missing, with its command, but fails doctor's exit code
# only when --require asks for it: a default setup that did all it could ends green.
OPT_IN = ("dbgsym",)

# bpftrace and libbpf keep working when RLIMIT_MEMLOCK cannot be raised because
# kernels from 5.11 charge BPF memory to the memory cgroup instead; systemtap's
# BPF runtime and sysdig's legacy probe still insist on raising it.
MEMLOCK_NEEDED = 64 << 20


@dataclass(frozen=True)
class Block:
    status: str
    cause: str
    remedy: Optional[str] = None
    component: Optional[str] = None


@dataclass(frozen=True)
class Verdict:
    id: str
    title: str
    status: str
    reason: str
    remedy: Optional[str]
    component: Optional[str]
    causes: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Method:
    id: str
    title: str
    requires: tuple
    ready_reason: Callable[[dict], str]
    notes: Callable[[dict], list] = lambda facts: []


# -- small accessors ----------------------------------------------------------
def _opt(facts, name):
    """'y'/'m'/value, 'n', or None when the kernel config is unknown."""
    return (facts.get("kconfig") or {}).get("options", {}).get(name)


def _tracefs(facts):
    return facts.get("tracefs") or {}


def _uid(facts):
    return (facts.get("process") or {}).get("uid")


def _lockdown(facts):
    return (facts.get("lockdown") or {}).get("mode")


def _tool(facts, name):
    return (facts.get("tools") or {}).get(name) or {}


def _distro(facts):
    return (facts.get("host") or {}).get("distro") or {}


def _setup_unavailable(facts, component):
    """A reason recorded by a setup role that found the component impossible."""
    comps = ((facts.get("setup") or {}).get("components") or {})
    entry = comps.get(component) or {}
    return entry.get("unavailable")


def _unset_option(facts, names):
    for name in names:
        if _opt(facts, name) == "n":
            return "CONFIG_%s is not set" % name
    return None


# -- requirements ---------------------------------------------------------------
def need_tracefs(facts):
    t = _tracefs(facts)
    if t.get("readable"):
        if not t.get("mounted"):
            return Block(MISSING, "tracefs is not mounted (the kernel has it)",
                         "tracekit setup debugfs", "debugfs")
        return None
    if t.get("supported") is False:
        cause = _unset_option(facts, ["FTRACE"]) or "kernel has no tracefs"
        return Block(UNAVAILABLE, cause, "use a kernel built with CONFIG_FTRACE")
    if _lockdown(facts) == "confidentiality":
        return Block(UNAVAILABLE, "kernel lockdown=confidentiality closes tracefs",
                     "boot with lockdown=integrity or none (disable Secure Boot lockdown)")
    if _uid(facts) not in (0, None):
        return Block(UNKNOWN, "cannot read tracefs as uid %s" % _uid(facts), "run `sudo tracekit doctor`")
    return Block(UNKNOWN, "tracefs unreadable: %s" % (t.get("error") or "not probed"), "run `sudo tracekit doctor`")


def _tracefs_feature(evidence, options, what):
    """A tracefs file proves a kernel feature; the config explains its absence."""

    def requirement(facts):
        t = _tracefs(facts)
        if t.get("readable"):
            if t.get(evidence):
                return None
            cause = _unset_option(facts, options) or "tracefs has no %s" % evidence
            return Block(UNAVAILABLE, cause, "use a kernel built with %s" % " and ".join(
                "CONFIG_" + o for o in options))
        unset = _unset_option(facts, options)
        if unset:
            return Block(UNAVAILABLE, unset, "use a kernel built with %s" % " and ".join(
                "CONFIG_" + o for o in options))
        return None  # need_tracefs reports why tracefs could not be read

    requirement.__name__ = "need_" + what
    return requirement


need_kprobe_events = _tracefs_feature("kprobe_events", ["KPROBES", "KPROBE_EVENTS"], "kprobes")
need_kretprobes = _tracefs_feature("kprobe_events", ["KPROBES", "KPROBE_EVENTS", "KRETPROBES"], "kretprobes")
need_uprobe_events = _tracefs_feature("uprobe_events", ["UPROBES", "UPROBE_EVENTS"], "uprobes")


def need_tracepoints(facts):
    t = _tracefs(facts)
    if t.get("readable"):
        if t.get("syscall_events") or t.get("sched_events"):
            return None
        cause = _unset_option(facts, ["TRACEPOINTS", "FTRACE_SYSCALLS"]) or "tracefs lists no syscall or sched events"
        return Block(UNAVAILABLE, cause, "use a kernel built with CONFIG_FTRACE_SYSCALLS")
    unset = _unset_option(facts, ["TRACEPOINTS"])
    return Block(UNAVAILABLE, unset, "use a kernel built with CONFIG_TRACEPOINTS") if unset else None


def need_kprobes_allowed(facts):
    if _lockdown(facts) == "confidentiality":
        return Block(UNAVAILABLE, "kernel lockdown=confidentiality forbids kprobes",
                     "boot with lockdown=integrity or none")
    return None


def _need_tracer(name, option):
    def requirement(facts):
        t = _tracefs(facts)
        if not t.get("readable"):
            unset = _unset_option(facts, [option])
            return Block(UNAVAILABLE, unset, "use a kernel built with CONFIG_%s" % option) if unset else None
        if name not in (t.get("available_tracers") or []):
            cause = _unset_option(facts, [option]) or "%s is not in available_tracers" % name
            return Block(UNAVAILABLE, cause, "use a kernel built with CONFIG_%s" % option)
        if (facts.get("sysctl") or {}).get("ftrace_enabled") == 0:
            return Block(UNAVAILABLE, "kernel.ftrace_enabled is 0", "sysctl -w kernel.ftrace_enabled=1")
        state = t.get("function_filter")
        # "absent": no dynamic ftrace, the tracer still works (unfiltered).
        if state not in ("readable", "absent", None):
            return Block(UNAVAILABLE, "the kernel refuses the function tracer: reading "
                         "available_filter_functions gives %s" % state,
                         "use a kernel (or hypervisor policy) that permits ftrace")
        return None

    requirement.__name__ = "need_" + name
    return requirement


need_function_tracer = _need_tracer("function", "FUNCTION_TRACER")
need_function_graph = _need_tracer("function_graph", "FUNCTION_GRAPH_TRACER")


def _need_tool(name, component, title=None):
    def requirement(facts):
        tool = _tool(facts, name)
        if tool.get("found") and tool.get("usable_path", True):
            return None
        cause = "%s is not installed" % (title or name)
        if tool.get("note"):
            cause = tool["note"]
        return Block(MISSING, cause, "tracekit setup %s" % component, component)

    requirement.__name__ = "need_tool_" + name
    return requirement


def _need_perf_event(kind):
    def requirement(facts):
        result = (facts.get("kernel_probes") or {}).get("perf_" + kind)
        if result == "ok":
            return None
        if result is None:
            return Block(UNKNOWN, "perf_event_open not probed (%s)" % (
                (facts.get("kernel_probes") or {}).get("detail") or "no live probe"), "run tracekit doctor on the host")
        if kind == "hardware" and result.startswith(("ENOENT", "EOPNOTSUPP", "ENODEV")):
            return Block(UNAVAILABLE, "no hardware PMU: perf_event_open(cycles) gives %s" % result,
                         "use bare metal or a VM with PMU passthrough (e.g. -cpu host,pmu=on)")
        paranoid = (facts.get("sysctl") or {}).get("perf_event_paranoid")
        return Block(UNAVAILABLE, "perf_event_open(%s) gives %s (perf_event_paranoid=%s)" % (
            "cycles" if kind == "hardware" else "cpu-clock", result, paranoid),
            "run as root or with CAP_PERFMON, or lower kernel.perf_event_paranoid")

    requirement.__name__ = "need_perf_" + kind
    return requirement


need_perf_hardware = _need_perf_event("hardware")
need_perf_software = _need_perf_event("software")


def need_bpf(facts):
    result = (facts.get("kernel_probes") or {}).get("bpf_prog_load")
    if result == "ok":
        return None
    if result is None:
        unset = _unset_option(facts, ["BPF_SYSCALL", "BPF_EVENTS"])
        if unset:
            return Block(UNAVAILABLE, unset, "use a kernel built with CONFIG_BPF_SYSCALL and CONFIG_BPF_EVENTS")
        return Block(UNKNOWN, "BPF program load not probed", "run tracekit doctor on the host")
    caps = (facts.get("process") or {}).get("capabilities") or {}
    privileged = caps.get("CAP_SYS_ADMIN") or (caps.get("CAP_BPF") and caps.get("CAP_PERFMON"))
    if not privileged and result.startswith(("EPERM", "EACCES")):
        # Tracing BPF needs privilege anyway: this says nothing about the host.
        return Block(UNKNOWN, "loading BPF needs CAP_BPF and CAP_PERFMON (uid %s lacks them)" % _uid(facts),
                     "run `sudo tracekit doctor`")
    return Block(UNAVAILABLE, "loading a BPF tracing program gives %s" % result,
                 "run as root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)")


def need_bpf_kernel_reads(facts):
    if _lockdown(facts) == "confidentiality":
        return Block(UNAVAILABLE, "kernel lockdown=confidentiality forbids BPF reads of kernel memory",
                     "boot with lockdown=integrity or none")
    return None


def need_btf(facts):
    if (facts.get("btf") or {}).get("vmlinux"):
        return None
    cause = _unset_option(facts, ["DEBUG_INFO_BTF"]) or "no /sys/kernel/btf/vmlinux"
    return Block(UNAVAILABLE, cause, "use a kernel built with CONFIG_DEBUG_INFO_BTF")


# Ubuntu 6.8.0-51-generic, Debian 12 6.1.0-28-amd64, Debian 13 6.12.38+deb13-amd64
# (the headers role matches the same pattern).
DISTRIBUTION_KERNEL = r"^\d+\.\d+\.\d+(-\d+(\.\d+)?|\+deb\d+)-[a-z][a-z0-9-]*$"


def distribution_kernel(facts):
    """Whether the running kernel looks like one a distribution packages
    headers for (Ubuntu 6.8.0-51-generic, Debian 6.1.0-28-amd64 or
    6.12.38+deb13-amd64)."""
    release = (facts.get("kernel") or {}).get("release") or ""
    distro = ((facts.get("host") or {}).get("distro") or {}).get("id")
    return distro in ("ubuntu", "debian") and bool(re.match(DISTRIBUTION_KERNEL, release))


def need_headers(facts):
    headers = facts.get("headers") or {}
    if headers.get("build_dir") or headers.get("kheaders"):
        return None
    release = (facts.get("kernel") or {}).get("release")
    recorded = _setup_unavailable(facts, "headers")
    if recorded:
        return Block(UNAVAILABLE, recorded, "boot a distribution kernel that has a headers package")
    if distribution_kernel(facts):
        return Block(MISSING, "no kernel headers for %s" % release, "tracekit setup headers", "headers")
    return Block(UNAVAILABLE, "no kernel headers exist for %s (not a distribution kernel%s)" % (
        release, "; CONFIG_IKHEADERS is not set" if _opt(facts, "IKHEADERS") == "n" else ""),
        "boot a distribution kernel, or build this one with CONFIG_IKHEADERS")


def need_build_tree(facts):
    """Out-of-tree modules (systemtap, DKMS) need the full build tree."""
    headers = facts.get("headers") or {}
    if headers.get("build_dir") and headers.get("build_config", True):
        return None
    block = need_headers(dict(facts, headers={}))
    cause = block.cause.replace("no kernel headers exist", "no kernel build tree exists").replace(
        "no kernel headers", "no kernel build tree")
    return Block(block.status, cause, block.remedy, block.component)


def need_modules(facts):
    if _opt(facts, "MODULES") == "n" or (_opt(facts, "MODULES") is None
                                         and (facts.get("modules") or {}).get("proc_modules") is False):
        return Block(UNAVAILABLE, "CONFIG_MODULES is not set" if _opt(facts, "MODULES") == "n"
                     else "no /proc/modules: kernel without loadable modules",
                     "use a kernel built with CONFIG_MODULES")
    if (facts.get("sysctl") or {}).get("modules_disabled") == 1:
        return Block(UNAVAILABLE, "kernel.modules_disabled is 1 (no module loads until reboot)", "reboot")
    return None


def need_unsigned_modules(facts):
    mode = _lockdown(facts)
    if mode in ("integrity", "confidentiality"):
        return Block(UNAVAILABLE, "kernel lockdown=%s: only signed modules load" % mode,
                     "sign the modules with an enrolled MOK key, or boot with lockdown=none")
    if _opt(facts, "MODULE_SIG_FORCE") == "y":
        return Block(UNAVAILABLE, "CONFIG_MODULE_SIG_FORCE: only signed modules load",
                     "sign the modules with a key the kernel trusts")
    return None


def need_compiler(facts):
    if _tool(facts, "gcc").get("found"):
        return None
    return Block(MISSING, "no C compiler (gcc) to build kernel modules", "tracekit setup headers", "headers")


def need_memlock_raisable(facts):
    proc = facts.get("process") or {}
    memlock = proc.get("memlock") or {}
    hard = memlock.get("hard", 0)
    if hard is None or (hard or 0) >= MEMLOCK_NEEDED:
        return None
    if (proc.get("capabilities") or {}).get("CAP_SYS_RESOURCE"):
        return None
    if not memlock:
        return Block(UNKNOWN, "RLIMIT_MEMLOCK unknown", None)
    return Block(UNAVAILABLE, "RLIMIT_MEMLOCK is %d KiB and cannot be raised without CAP_SYS_RESOURCE" % (hard >> 10),
                 "run with CAP_SYS_RESOURCE or a larger hard memlock limit (ulimit -l)")


# systemtap x kernel combinations known not to build modules, each with the
# systemtap release that fixed it: (systemtap below, kernel from, why).
# Only combinations shown to fail are listed.  Evidence for the one entry:
# - Linux 6.8-rc1 (commit 0fcb70851fbf, "Makefile.extrawarn: turn on
#   missing-prototypes globally") builds out-of-tree modules with
#   -Wmissing-prototypes.
# - systemtap's runtime probes the kernel's API by compiling small files
#   (runtime/linux/autoconf-*.c) whose functions had no prototypes; on these
#   kernels the probes fail, the runtime falls back to the pre-5.8 API and does
#   not compile ("'struct mm_struct' has no member named 'mmap_sem'" from
#   stap_mmap_lock.h, an old get_user_pages_remote call).  systemtap commit
#   2604d135069f (January 2024: "GCC14 makes -Wmissing-prototypes defaultish
#   on ... this broke the stap runtime autoconf* business") added the
#   prototypes (older trees, e.g. the 4.x autoconf-mmap_lock.c, lack them);
#   its first release is 5.1 (NEWS: 2024-04-26).
# - Seen with Ubuntu 24.04's systemtap 5.0 on kernel 6.8.0-151-generic in the
#   kernel lab (README, verify in the lab), and reported the same way in
#   github.com/tsuereth/systemtap-containers-experiment's README.
# Keyed on upstream versions: a distribution that backports the fix to an
# older release would be flagged wrongly (none is known to).  Not listed:
# systemtap 5.3's NEWS "updated to support drastic linux 6.13 kbuild
# changes", which documents no failure of 5.1 or 5.2 on 6.13.
STAP_KERNEL_BREAKS = (
    ((5, 1), (6, 8), "its runtime's API probes fail under the -Wmissing-prototypes that kernel 6.8 builds "
                     "modules with, so it falls back to the old mmap_sem and get_user_pages_remote API"),
)


def _version_tuple(text):
    """(major, minor) from "5.0", "6.8.0-51-generic"; None if unparseable."""
    match = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def stap_kernel_break(stap_version, kernel_release):
    """(fixed in, why) when this systemtap is known not to build modules for
    this kernel (STAP_KERNEL_BREAKS), else None (also when either is unknown)."""
    stap, kernel = _version_tuple(stap_version), _version_tuple(kernel_release)
    if stap is None or kernel is None:
        return None
    for fixed_in, kernel_from, why in STAP_KERNEL_BREAKS:
        if stap < fixed_in and kernel >= kernel_from:
            return fixed_in, why
    return None


def need_stap_builds_for_kernel(facts):
    stap = _tool(facts, "stap")
    release = (facts.get("kernel") or {}).get("release")
    broken = stap_kernel_break(stap.get("version"), release) if stap.get("found") else None
    if broken is None:
        return None
    fixed = "%d.%d" % broken[0]
    # What setup installs is the distribution's systemtap: it cannot fix this.
    return Block(UNAVAILABLE, "systemtap %s cannot build modules for kernel %s (%s; fixed in systemtap %s)"
                 % (stap["version"], release, broken[1], fixed), "install systemtap >= %s" % fixed)


def need_stap_bpf_runtime(facts):
    stap = _tool(facts, "stap")
    if not stap.get("found") or "bpf" in (stap.get("runtimes") or []):
        return None  # need_stap reports a missing systemtap
    return Block(UNAVAILABLE, "this systemtap was built without its BPF runtime", "install a systemtap built with BPF")


# The first sysdig release with the modern eBPF probe.
SYSDIG_MODERN_FROM = (0, 31)


def _sysdig_capture(facts):
    """(the sysdig role's record of its modern eBPF capture, made with the
    sysdig installed now, or None; the repository the role installed from)."""
    entry = ((facts.get("setup") or {}).get("components") or {}).get("sysdig") or {}
    capture = entry.get("modern_ebpf_capture") or {}
    installed = _tool(facts, "sysdig").get("version")
    return (capture if installed and capture.get("sysdig") == installed else None), entry.get("repository")


def _sysdig_remedy(facts, command, by_hand):
    """``command`` where `tracekit setup` runs, else what to do by hand."""
    return by_hand if releases.unsupported(_distro(facts)) else command


def need_sysdig_modern(facts):
    """Ready only on the word of a capture: the role tries one and records
    what sysdig said; --help alone cannot tell (Ubuntu 26.04's 0.40.0+repack
    offers --modern-bpf without the probe)."""
    sysdig = _tool(facts, "sysdig")
    if not sysdig.get("found"):
        return None  # need_sysdig reports a missing sysdig
    shown = "sysdig %s" % sysdig["version"] if sysdig.get("version") else "this sysdig"
    capture, repository = _sysdig_capture(facts)
    # The vendor's packages are built with the probe (BUILD_SYSDIG_MODERN_BPF=ON).
    vendor = _sysdig_remedy(facts, None if repository == "vendor" else "tracekit setup sysdig --var " + SYSDIG_VENDOR,
                            "install a sysdig built with the modern eBPF probe (Sysdig's own packages are)")
    if capture and capture.get("result") == "captured":
        return None
    if capture and capture.get("result") == "not_built":
        return Block(UNAVAILABLE, "%s is built without the modern eBPF probe (its capture says: %s)"
                     % (shown, capture.get("says")), vendor or "install a sysdig built with the modern eBPF probe")
    kernel = (facts.get("kernel") or {}).get("release")
    if capture and capture.get("result") == "failed" and capture.get("kernel") == kernel:
        return Block(UNAVAILABLE, "the modern eBPF probe of %s does not capture on kernel %s (its capture says: %s)"
                     % (shown, kernel, capture.get("says")))
    version = _version_tuple(sysdig.get("version"))
    if version is not None and version < SYSDIG_MODERN_FROM:
        return Block(UNAVAILABLE, "%s has no modern eBPF probe (older than 0.31, the first release with it)" % shown,
                     vendor)
    if not (sysdig.get("drivers") or {}).get("modern_bpf_option"):
        return Block(UNAVAILABLE, "%s is built without the modern eBPF probe (it has no --modern-bpf option)" % shown,
                     vendor)
    # `tracekit setup sysdig` tries the capture and records its answer.
    return Block(UNKNOWN, "%s offers --modern-bpf, but only a capture shows whether its build has the probe "
                 "(none recorded for this sysdig and kernel)" % shown,
                 _sysdig_remedy(facts, "tracekit setup sysdig", "run `sysdig --modern-bpf -M 1 -n 1` as root"))


def need_sysdig_kmod(facts):
    drivers = _tool(facts, "sysdig").get("drivers") or {}
    if drivers.get("kmod_built") or drivers.get("kmod_loaded"):
        return None
    return Block(MISSING, "the sysdig kernel module (scap) is not built for this kernel",
                 "tracekit setup sysdig", "sysdig")


def need_kernel_at_least(major, minor, why):
    def requirement(facts):
        release = (facts.get("kernel") or {}).get("release") or ""
        match = re.match(r"(\d+)\.(\d+)", release)
        if not match:
            return Block(UNKNOWN, "kernel release unknown")
        if (int(match.group(1)), int(match.group(2))) >= (major, minor):
            return None
        return Block(UNAVAILABLE, "kernel %s is older than %d.%d (%s)" % (release, major, minor, why),
                     "use a newer kernel")

    requirement.__name__ = "need_kernel_%d_%d" % (major, minor)
    return requirement


need_perf = _need_tool("perf", "perf")
need_trace_cmd = _need_tool("trace-cmd", "perf")
need_bcc = _need_tool("bcc", "bcc", "bcc (bpfcc-tools, python3-bpfcc)")


def need_libbpf_tools(facts):
    if _tool(facts, "libbpf-tools").get("found"):
        return None
    release = releases.not_packaged_by(_distro(facts), "libbpf-tools")
    if release:
        return Block(UNAVAILABLE, "libbpf-tools is not packaged by %s" % release,
                     "use bcc's tools (the bcc method), or a release that packages libbpf-tools")
    recorded = ((facts.get("setup") or {}).get("components") or {}).get("bcc") or {}
    if recorded.get("libbpf_tools_packaged") is False:
        return Block(UNAVAILABLE, "libbpf-tools is not in this host's apt sources (as tracekit setup bcc found)",
                     "use bcc's tools (the bcc method), or add a source that has libbpf-tools")
    return _need_tool("libbpf-tools", "bcc")(facts)
need_bpftrace = _need_tool("bpftrace", "bpftrace")


# bpftrace 0.25 opens /proc/modules before it looks at any probe (main() ->
# KernelInfoImpl::open -> parse_modules, bpftrace commit 4a3b4dec7, first in
# 0.25.0) and stops when it cannot, so on a kernel without loadable modules
# every program fails, whatever its probe types; `--info` exits before that.
# Commit f3fd78e23 (bpftrace#5113, first in 0.26.0) reads a missing file as
# "no modules".  Earlier releases only read it to look up one module
# (is_module_loaded, 0.23 and 0.24) and go on without it.  Measured here with
# Ubuntu 26.04's 0.25.0 (tests/data/captured/bpftrace.*/resolute-*).
BPFTRACE_NEEDS_PROC_MODULES = ((0, 25), (0, 26))


def need_bpftrace_runs_without_modules(facts):
    bpftrace = _tool(facts, "bpftrace")
    version = _version_tuple(bpftrace.get("version"))
    first, fixed = BPFTRACE_NEEDS_PROC_MODULES
    if not bpftrace.get("found") or version is None or not first <= version < fixed:
        return None
    if (facts.get("modules") or {}).get("proc_modules") is not False:
        return None
    why = "CONFIG_MODULES is not set" if _opt(facts, "MODULES") == "n" else "a kernel without loadable modules"
    return Block(UNAVAILABLE, "bpftrace %s cannot run any program without /proc/modules (%s): \"%s\" "
                 "(fixed in bpftrace %d.%d)" % (bpftrace["version"], why, outputs.BPFTRACE_NO_PROC_MODULES,
                                                fixed[0], fixed[1]),
                 "install bpftrace >= %d.%d, or use a kernel built with CONFIG_MODULES" % fixed)


def need_bpftrace_kernel_types(facts):
    """Tracepoint arguments (args->filename) have kernel types (the s64 and
    umode_t of the tracepoint's format): bpftrace takes them from the
    kernel's BTF when it can read it (its --info says "btf: yes"), else from
    the kernel headers.  bpftrace 0.14 cannot read 6.x kernels' BTF (their
    newer BTF kinds): on such a kernel without headers its C parser stops on
    "unknown type name 's64'" (tests/data/captured/bpftrace.tracepoint/
    jammy-*).  Register arguments (kprobe arg1, uprobe arg0) need no types:
    the same bpftrace counted the uprobe check's arguments there."""
    bpftrace = _tool(facts, "bpftrace")
    features = (bpftrace.get("info") or {}).get("kernel_features") or {}
    if not bpftrace.get("found") or features.get("btf") is not False:
        return None
    headers = need_headers(facts)
    if headers is None:
        return None
    why = ("cannot read this kernel's BTF" if (facts.get("btf") or {}).get("vmlinux")
           else "finds no kernel BTF (no /sys/kernel/btf/vmlinux)")
    cause = "bpftrace %s %s (bpftrace --info: btf: no) and %s, so it cannot type tracepoint arguments" % (
        bpftrace.get("version"), why, headers.cause)
    if headers.status == MISSING:
        return Block(MISSING, cause, headers.remedy, headers.component)
    return Block(headers.status, cause, "%s; or install a bpftrace that reads this kernel's BTF" % headers.remedy)
need_stap = _need_tool("stap", "systemtap", "systemtap")
SYSDIG_VENDOR = "tracekit_sysdig_repository=vendor"


def need_sysdig(facts):
    if _tool(facts, "sysdig").get("found"):
        return None
    release = releases.not_packaged_by(_distro(facts), "sysdig")
    recorded = _setup_unavailable(facts, "sysdig")
    if release or recorded:
        return Block(UNAVAILABLE, ("sysdig is not packaged by %s; Sysdig's own repository has it" % release)
                     if release else recorded, "tracekit setup sysdig --var %s" % SYSDIG_VENDOR)
    return _need_tool("sysdig", "sysdig")(facts)


def _recorded_dbgsym_unavailable(facts):
    """The dbgsym role's reason for finding no symbol package, when it was
    looking for the running kernel's (a record for another kernel says
    nothing about this one)."""
    comps = ((facts.get("setup") or {}).get("components") or {})
    entry = comps.get("dbgsym") or {}
    release = (facts.get("kernel") or {}).get("release")
    return entry.get("unavailable") if entry.get("kernel") in (None, release) else None


def _debuginfod_usable(facts):
    """Debuginfod servers that perf and stap will ask: they read only
    DEBUGINFOD_URLS, so on the running host it must be set, here or in
    /etc/environment (every sudo and ssh session gets that, and verify passes
    it on to its tools); in a tree read from its files, the *.urls files are
    all there is to see."""
    debuginfod = facts.get("debuginfod") or {}
    sources = debuginfod.get("sources") or []
    return bool(debuginfod.get("urls")) and (not facts.get("live") or "DEBUGINFOD_URLS" in sources
                                             or "/etc/environment" in sources)


def need_kernel_debuginfo(facts):
    """The running kernel's DWARF, where perf and stap look for it (a
    vmlinux with .debug_info), or debuginfod servers to fetch it from."""
    if (facts.get("debuginfo") or {}).get("vmlinux"):
        return None
    release = (facts.get("kernel") or {}).get("release")
    # The distributions' debuginfod servers index their own kernels' builds only.
    if _debuginfod_usable(facts) and (distribution_kernel(facts) or not facts.get("live")):
        return None
    if _opt(facts, "DEBUG_INFO") == "n" or _opt(facts, "DEBUG_INFO_NONE") == "y":
        return Block(UNAVAILABLE, "kernel %s was built without debug info (CONFIG_DEBUG_INFO is not set)" % release,
                     "use a kernel built with CONFIG_DEBUG_INFO")
    named = [s for s in (facts.get("debuginfod") or {}).get("sources") or [] if s != "/etc/environment"]
    if named and distribution_kernel(facts):
        return Block(MISSING, "debuginfod servers are named in %s, but DEBUGINFOD_URLS is not set here (perf and "
                     "stap read only the variable)" % ", ".join(named), "tracekit setup ddebs", "ddebs")
    stripped = [c["path"] for c in (facts.get("debuginfo") or {}).get("candidates") or [] if not c.get("dwarf")]
    without = "; %s has no DWARF" % ", ".join(stripped) if stripped else ""
    recorded = _recorded_dbgsym_unavailable(facts)
    if recorded:
        return Block(UNAVAILABLE, recorded + without,
                     "fetch symbols on demand: tracekit setup ddebs --var tracekit_ddebs_method=debuginfod")
    if distribution_kernel(facts):
        return Block(MISSING, "no debug symbols for kernel %s (no DWARF vmlinux, no debuginfod)%s" % (release, without),
                     "tracekit setup dbgsym", "dbgsym")
    servers = "; the distribution's debuginfod servers index only its own kernels" \
        if (facts.get("debuginfod") or {}).get("urls") else ""
    return Block(UNAVAILABLE, "no debug symbols exist for kernel %s (not a distribution kernel: no package has its "
                 "vmlinux)%s%s" % (release, without, servers),
                 "install the vmlinux it was built with as /usr/lib/debug/boot/vmlinux-%s, or boot a distribution "
                 "kernel" % release)


def _debuginfo_ready(facts):
    vmlinux = (facts.get("debuginfo") or {}).get("vmlinux")
    if vmlinux:
        return "DWARF vmlinux %s" % vmlinux
    debuginfod = facts.get("debuginfod") or {}
    return "debuginfod %s (%s)" % (" ".join(debuginfod.get("urls") or []), ", ".join(debuginfod.get("sources") or []))


# -- notes (never block) -----------------------------------------------------------
def _debuginfo_note(facts):
    if need_kernel_debuginfo(facts) is None:
        return []
    return ["no kernel debuginfo (vmlinux with DWARF): function entry/return only, no source lines "
            "or local variables (see kernel.debuginfo)"]


def _memlock_note(facts):
    block = need_memlock_raisable(facts)
    return ["%s; works anyway on kernels from 5.11 (BPF memory is charged to the cgroup)" % block.cause] \
        if block and block.status == UNAVAILABLE else []


def _perf_note(facts):
    note = _tool(facts, "perf").get("note")
    return [note] if note and _tool(facts, "perf").get("usable_path") else []


def _with(name):
    def ready(facts):
        tool = _tool(facts, name)
        return "%s %s" % (tool.get("usable_path") or tool.get("path") or name, tool.get("version") or "")

    return ready


def _tracefs_ready(what):
    return lambda facts: "%s in %s" % (what, _tracefs(facts).get("path"))


METHODS = (
    Method("ftrace.function", "ftrace function tracer",
           (need_tracefs, need_function_tracer), _tracefs_ready("function tracer")),
    Method("ftrace.function_graph", "ftrace function_graph tracer",
           (need_tracefs, need_function_graph), _tracefs_ready("function_graph tracer")),
    Method("tracepoint", "tracepoints", (need_tracefs, need_tracepoints), _tracefs_ready("syscall and sched events")),
    Method("kprobe", "kprobes (kprobe_events)",
           (need_tracefs, need_kprobe_events, need_kprobes_allowed), _tracefs_ready("kprobe_events")),
    Method("kretprobe", "kretprobes (kprobe_events)",
           (need_tracefs, need_kretprobes, need_kprobes_allowed), _tracefs_ready("kprobe_events")),
    Method("uprobe", "uprobes (uprobe_events)", (need_tracefs, need_uprobe_events), _tracefs_ready("uprobe_events")),
    Method("uretprobe", "uretprobes (uprobe_events)",
           (need_tracefs, need_uprobe_events), _tracefs_ready("uprobe_events")),
    Method("perf.counters.hardware", "perf hardware counters (cycles, instructions)",
           (need_perf, need_perf_hardware), _with("perf"), _perf_note),
    Method("perf.counters.software", "perf software counters (task-clock, page-faults)",
           (need_perf, need_perf_software), _with("perf"), _perf_note),
    Method("perf.sampling", "perf record sampling (cpu-clock, call graphs)",
           (need_perf, need_perf_software), _with("perf"), _perf_note),
    Method("perf.probe.kernel", "perf probe on kernel functions",
           (need_perf, need_tracefs, need_kprobe_events, need_kprobes_allowed), _with("perf"),
           lambda f: _perf_note(f) + _debuginfo_note(f)),
    Method("perf.probe.user", "perf probe -x on user functions",
           (need_perf, need_tracefs, need_uprobe_events), _with("perf"), _perf_note),
    Method("kernel.debuginfo", "kernel debug symbols (DWARF vmlinux, or debuginfod)",
           (need_kernel_debuginfo,), _debuginfo_ready),
    Method("trace-cmd", "trace-cmd record/report (function tracer)",
           (need_trace_cmd, need_tracefs, need_function_tracer), _with("trace-cmd")),
    Method("bcc", "bcc tools (execsnoop-bpfcc, opensnoop-bpfcc)",
           (need_bcc, need_bpf, need_bpf_kernel_reads, need_kprobe_events, need_headers), _with("bcc"),
           _memlock_note),
    Method("libbpf-tools", "libbpf-tools (CO-RE: execsnoop, opensnoop)",
           (need_libbpf_tools, need_bpf, need_btf, need_tracefs, need_tracepoints), _with("libbpf-tools"),
           _memlock_note),
    # The kernel's limits first: of two, its own is the reason doctor gives.
    Method("bpftrace.kprobe", "bpftrace kprobe",
           (need_bpftrace, need_bpf, need_bpf_kernel_reads, need_tracefs, need_kprobe_events,
            need_bpftrace_runs_without_modules), _with("bpftrace"), _memlock_note),
    Method("bpftrace.uprobe", "bpftrace uprobe",
           (need_bpftrace, need_bpf, need_tracefs, need_uprobe_events, need_bpftrace_runs_without_modules),
           _with("bpftrace"), _memlock_note),
    Method("bpftrace.tracepoint", "bpftrace tracepoint",
           (need_bpftrace, need_bpf, need_bpf_kernel_reads, need_tracefs, need_tracepoints,
            need_bpftrace_runs_without_modules, need_bpftrace_kernel_types), _with("bpftrace"), _memlock_note),
    Method("systemtap.module", "systemtap, kernel module runtime",
           (need_stap, need_stap_builds_for_kernel, need_modules, need_unsigned_modules, need_build_tree,
            need_compiler), _with("stap"),
           _debuginfo_note),
    Method("systemtap.bpf", "systemtap, BPF runtime (--runtime=bpf)",
           (need_stap, need_stap_bpf_runtime, need_bpf, need_build_tree, need_memlock_raisable), _with("stap"),
           _debuginfo_note),
    Method("sysdig.kmod", "sysdig, kernel module driver (scap)",
           (need_sysdig, need_modules, need_unsigned_modules, need_build_tree, need_sysdig_kmod), _with("sysdig")),
    Method("sysdig.modern-ebpf", "sysdig, modern eBPF driver (--modern-bpf)",
           (need_sysdig, need_kernel_at_least(5, 8, "BPF ring buffer"), need_btf, need_bpf, need_sysdig_modern),
           _with("sysdig")),
)

METHOD_IDS = tuple(m.id for m in METHODS)


def _beyond_setup(block, refused):
    """A block setup would fix, on a release setup refuses: nothing tracekit
    can fix, so not `missing` (whose remedy must really work). Mounting
    debugfs works on any release (its step has no release check)."""
    if not refused or block.status != MISSING or block.component in (None, "debugfs"):
        return block
    return Block(UNAVAILABLE, "%s; %s" % (block.cause, refused),
                 "install it by hand, or use a release tracekit supports")


def judge(method, facts):
    refused = releases.unsupported(_distro(facts))
    blocks = [_beyond_setup(b, refused) for b in (req(facts) for req in method.requires) if b is not None]
    notes = list(method.notes(facts))
    if not blocks:
        return Verdict(method.id, method.title, READY, method.ready_reason(facts).strip(), None, None, [], notes)
    worst = max(blocks, key=lambda b: _SEVERITY[b.status])
    first = next(b for b in blocks if b.status == worst.status)
    component = first.component if first.status == MISSING else None
    remedy = first.remedy
    if first.status == MISSING:
        components = []
        for b in blocks:
            if b.component and b.component not in components:
                components.append(b.component)
        remedy = "tracekit setup " + " ".join(components)
    return Verdict(method.id, method.title, first.status, first.cause, remedy, component,
                   [b.cause for b in blocks], notes)


@dataclass
class Report:
    facts: dict
    verdicts: list
    required: tuple = ()

    @property
    def summary(self):
        return {status: sum(1 for v in self.verdicts if v.status == status) for status in STATUSES}

    @property
    def exit_code(self):
        """1 when a required method is not ready, or a default `tracekit setup`
        could fix something (a `missing` verdict whose component is not opt-in);
        otherwise 0.  Kernel limits alone do not fail."""
        by_id = {v.id: v for v in self.verdicts}
        if any(by_id[r].status != READY for r in self.required):
            return 1
        return 1 if any(v.status == MISSING and v.component not in OPT_IN for v in self.verdicts) else 0

    def to_dict(self, version):
        kernel = self.facts.get("kernel") or {}
        host = self.facts.get("host") or {}
        return {
            "schema": SCHEMA,
            "tracekit_version": version,
            "host": {
                "hostname": host.get("hostname"),
                "distro": host.get("distro"),
                "kernel": kernel.get("release"),
                "arch": kernel.get("arch"),
            },
            "required": list(self.required),
            "methods": [v.to_dict() for v in self.verdicts],
            "summary": self.summary,
            "exit_code": self.exit_code,
            "facts": self.facts,
        }


def validate_required(required):
    unknown = [r for r in required if r not in METHOD_IDS]
    if unknown:
        raise UsageError("unknown method %s; valid: %s" % (", ".join(unknown), ", ".join(METHOD_IDS)))
    return tuple(required)


def evaluate(facts, required=()):
    required = validate_required(required)
    return Report(facts, [judge(m, facts) for m in METHODS], required)


def diagnose(root="/", required=()):
    """Collect this host's facts and judge them."""
    from tracekit.agent import facts as agent_facts

    return evaluate(agent_facts.collect(root), required)
