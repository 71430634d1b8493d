"""tracekit.doctor: verdicts judged on facts dicts.

The baseline is a fake Ubuntu noble host on which everything is ready
(collected with facts.collect, plus the kernel_probes only a live host
measures); each case changes a few facts and checks the verdict path."""

import copy
import json

import pytest

from tests.unit.fakehost import DISTROS, FakeHost, full_host, lab_machine
from tracekit import doctor
from tracekit.agent import facts as agent_facts
from tracekit.errors import UsageError

PROBES_OK = {"perf_hardware": "ok", "perf_software": "ok", "bpf_prog_load": "ok", "detail": None}
NOBLE = DISTROS["ubuntu-noble"]["release"]
NOT_READABLE = {"mounted": False, "path": None, "probed": None, "error": "tracefs is not mounted"}
NO_STAP = {"found": False, "path": None, "version": None, "features": [], "runtimes": [], "staprun": False}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    result = agent_facts.collect(str(full_host(tmp_path_factory.mktemp("noble"))))
    result["kernel_probes"] = dict(PROBES_OK)
    return result


@pytest.fixture
def facts(baseline):
    return copy.deepcopy(baseline)


def change(facts, changes):
    """Set facts by dotted path: {"tracefs.mounted": False}."""
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = facts
        for name in parents:
            node = node[name]
        node[key] = value
    return facts


def verdict(facts, method_id):
    return doctor.judge(next(m for m in doctor.METHODS if m.id == method_id), facts)


# -- the registry and the baseline ------------------------------------------------------
def test_registry_has_23_stable_methods():
    assert len(doctor.METHODS) == 23 and len(set(doctor.METHOD_IDS)) == 23
    assert doctor.METHOD_IDS[:4] == ("ftrace.function", "ftrace.function_graph", "tracepoint", "kprobe")


@pytest.mark.parametrize("method", doctor.METHODS, ids=doctor.METHOD_IDS)
def test_every_method_ready_on_baseline(facts, method):
    result = doctor.judge(method, facts)
    assert result.status == doctor.READY, result
    assert result.reason and result.remedy is None and result.component is None and result.causes == []


def test_baseline_ready_reasons(facts):
    assert verdict(facts, "kprobe").reason == "kprobe_events in /sys/kernel/tracing"
    assert verdict(facts, "bpftrace.kprobe").reason == "/usr/bin/bpftrace 0.20.2"
    assert verdict(facts, "sysdig.modern-ebpf").reason == "/usr/bin/sysdig 0.36.0"
    assert verdict(facts, "libbpf-tools").reason == "/usr/sbin/execsnoop 1:1.3.0-2build2"


def test_baseline_report(facts):
    report = doctor.evaluate(facts)
    assert report.summary == {"ready": 23, "missing": 0, "unavailable": 0, "unknown": 0}
    assert report.exit_code == 0


# -- one block per requirement ---------------------------------------------------------
CASES = [
    # tracefs
    ("tracefs-not-mounted", {"tracefs.mounted": False, "tracefs.path": None},
     "ftrace.function", "missing", "tracefs is not mounted (the kernel has it)", "debugfs"),
    ("tracefs-unreadable-user", {"tracefs": NOT_READABLE, "process.uid": 1000},
     "kprobe", "unknown", "cannot read tracefs as uid 1000", None),
    ("tracefs-unreadable-root", {"tracefs": NOT_READABLE},
     "uprobe", "unknown", "tracefs unreadable: tracefs is not mounted", None),
    ("tracefs-unsupported", {"tracefs": dict(NOT_READABLE, supported=False), "kconfig.options.FTRACE": "n"},
     "tracepoint", "unavailable", "CONFIG_FTRACE is not set", None),
    ("lockdown-closes-tracefs", {"tracefs": NOT_READABLE, "lockdown.mode": "confidentiality"},
     "ftrace.function", "unavailable", "kernel lockdown=confidentiality closes tracefs", None),
    # kprobes, uprobes, tracepoints
    ("lockdown-kprobes", {"lockdown.mode": "confidentiality"},
     "kprobe", "unavailable", "kernel lockdown=confidentiality forbids kprobes", None),
    ("lockdown-perf-probe", {"lockdown.mode": "confidentiality"},
     "perf.probe.kernel", "unavailable", "kernel lockdown=confidentiality forbids kprobes", None),
    ("lockdown-bpf-reads", {"lockdown.mode": "confidentiality"},
     "bpftrace.kprobe", "unavailable", "kernel lockdown=confidentiality forbids BPF reads of kernel memory", None),
    ("lockdown-bcc", {"lockdown.mode": "confidentiality"},
     "bcc", "unavailable", "kernel lockdown=confidentiality forbids BPF reads of kernel memory", None),
    ("kprobes-not-set", {"tracefs.kprobe_events": False, "kconfig.options.KPROBES": "n"},
     "kprobe", "unavailable", "CONFIG_KPROBES is not set", None),
    ("kprobes-not-set-tracefs-unreadable", {"tracefs": NOT_READABLE, "kconfig.options.KPROBES": "n"},
     "kprobe", "unavailable", "CONFIG_KPROBES is not set", None),
    ("no-kprobe-events-config-unknown", {"tracefs.kprobe_events": False, "kconfig.options": {}},
     "kprobe", "unavailable", "tracefs has no kprobe_events", None),
    ("no-kprobe-events-bpftrace", {"tracefs.kprobe_events": False, "kconfig.options.KPROBE_EVENTS": "n"},
     "bpftrace.kprobe", "unavailable", "CONFIG_KPROBE_EVENTS is not set", None),
    ("kretprobes-not-set", {"tracefs.kprobe_events": False, "kconfig.options.KRETPROBES": "n"},
     "kretprobe", "unavailable", "CONFIG_KRETPROBES is not set", None),
    ("uprobe-events-not-set", {"tracefs.uprobe_events": False, "kconfig.options.UPROBE_EVENTS": "n"},
     "perf.probe.user", "unavailable", "CONFIG_UPROBE_EVENTS is not set", None),
    ("no-tracepoints", {"tracefs.syscall_events": False, "tracefs.sched_events": False},
     "tracepoint", "unavailable", "tracefs lists no syscall or sched events", None),
    ("no-tracepoints-libbpf", {"tracefs.syscall_events": False, "tracefs.sched_events": False},
     "libbpf-tools", "unavailable", "tracefs lists no syscall or sched events", None),
    ("tracepoints-not-set", {"tracefs": NOT_READABLE, "kconfig.options.TRACEPOINTS": "n"},
     "bpftrace.tracepoint", "unavailable", "CONFIG_TRACEPOINTS is not set", None),
    # ftrace tracers
    ("function-filter-eperm", {"tracefs.function_filter": "EPERM (Operation not permitted)"},
     "ftrace.function", "unavailable", "the kernel refuses the function tracer: reading "
     "available_filter_functions gives EPERM (Operation not permitted)", None),
    ("function-filter-eperm-trace-cmd", {"tracefs.function_filter": "EPERM (Operation not permitted)"},
     "trace-cmd", "unavailable", "the kernel refuses the function tracer: reading "
     "available_filter_functions gives EPERM (Operation not permitted)", None),
    ("function-graph-absent", {"tracefs.available_tracers": ["blk", "function", "nop"]},
     "ftrace.function_graph", "unavailable", "function_graph is not in available_tracers", None),
    ("function-graph-not-set", {"tracefs.available_tracers": ["function", "nop"],
                                "kconfig.options.FUNCTION_GRAPH_TRACER": "n"},
     "ftrace.function_graph", "unavailable", "CONFIG_FUNCTION_GRAPH_TRACER is not set", None),
    ("function-tracer-not-set-unreadable", {"tracefs": NOT_READABLE, "kconfig.options.FUNCTION_TRACER": "n"},
     "ftrace.function", "unavailable", "CONFIG_FUNCTION_TRACER is not set", None),
    ("ftrace-disabled", {"sysctl.ftrace_enabled": 0},
     "ftrace.function", "unavailable", "kernel.ftrace_enabled is 0", None),
    # perf
    ("no-hardware-pmu", {"kernel_probes.perf_hardware": "ENOENT (No such file or directory)"},
     "perf.counters.hardware", "unavailable",
     "no hardware PMU: perf_event_open(cycles) gives ENOENT (No such file or directory)", None),
    ("perf-paranoid", {"kernel_probes.perf_software": "EACCES (Permission denied)",
                       "sysctl.perf_event_paranoid": 4},
     "perf.sampling", "unavailable",
     "perf_event_open(cpu-clock) gives EACCES (Permission denied) (perf_event_paranoid=4)", None),
    ("perf-not-probed", {"kernel_probes": {"perf_hardware": None, "perf_software": None, "bpf_prog_load": None,
                                           "detail": "no syscall numbers known for sparc64"}},
     "perf.counters.software", "unknown", "perf_event_open not probed (no syscall numbers known for sparc64)", None),
    ("perf-missing", {"tools.perf": {"found": False, "path": None, "usable_path": None, "ubuntu_wrapper": False,
                                     "note": None, "version": None}},
     "perf.counters.software", "missing", "perf is not installed", "perf"),
    ("perf-wrapper-without-linux-tools", {
        "tools.perf.ubuntu_wrapper": True, "tools.perf.usable_path": None,
        "tools.perf.note": "the perf wrapper finds no linux-tools binary for %s" % NOBLE},
     "perf.probe.kernel", "missing", "the perf wrapper finds no linux-tools binary for %s" % NOBLE, "perf"),
    # BPF
    ("bpf-eperm", {"kernel_probes.bpf_prog_load": "EPERM (Operation not permitted)"},
     "bcc", "unavailable", "loading a BPF tracing program gives EPERM (Operation not permitted)", None),
    ("bpf-not-probed", {"kernel_probes.bpf_prog_load": None},
     "bpftrace.uprobe", "unknown", "BPF program load not probed", None),
    ("bpf-syscall-not-set", {"kernel_probes.bpf_prog_load": None, "kconfig.options.BPF_SYSCALL": "n"},
     "bpftrace.uprobe", "unavailable", "CONFIG_BPF_SYSCALL is not set", None),
    ("btf-absent", {"btf.vmlinux": False},
     "libbpf-tools", "unavailable", "no /sys/kernel/btf/vmlinux", None),
    ("btf-not-set", {"btf.vmlinux": False, "kconfig.options.DEBUG_INFO_BTF": "n"},
     "sysdig.modern-ebpf", "unavailable", "CONFIG_DEBUG_INFO_BTF is not set", None),
    # headers, build tree, modules
    ("headers-missing-distro-kernel", {"headers": {"build_dir": None, "kheaders": False}},
     "bcc", "missing", "no kernel headers for %s" % NOBLE, "headers"),
    ("build-tree-missing-distro-kernel", {"headers": {"build_dir": None, "kheaders": False}},
     "systemtap.module", "missing", "no kernel build tree for %s" % NOBLE, "headers"),
    ("build-tree-without-config", {"headers.build_config": False},
     "sysdig.kmod", "missing", "no kernel build tree for %s" % NOBLE, "headers"),
    ("headers-missing-custom-kernel", {"headers": {"build_dir": None, "kheaders": False},
                                       "kernel.release": "6.18.44-fc-v595"},
     "bcc", "unavailable", "no kernel headers exist for 6.18.44-fc-v595 (not a distribution kernel)", None),
    ("headers-missing-custom-kernel-no-ikheaders", {"headers": {"build_dir": None, "kheaders": False},
                                                    "kernel.release": "6.18.44-fc-v595",
                                                    "kconfig.options.IKHEADERS": "n"},
     "bcc", "unavailable",
     "no kernel headers exist for 6.18.44-fc-v595 (not a distribution kernel; CONFIG_IKHEADERS is not set)", None),
    ("headers-missing-other-distro", {"headers": {"build_dir": None, "kheaders": False},
                                      "host.distro.id": "fedora"},
     "bcc", "unavailable", "no kernel headers exist for %s (not a distribution kernel)" % NOBLE, None),
    ("headers-unavailable-by-setup", {
        "headers": {"build_dir": None, "kheaders": False},
        "setup": {"components": {"headers": {"unavailable": "no linux-headers-%s in any archive" % NOBLE}}}},
     "bcc", "unavailable", "no linux-headers-%s in any archive" % NOBLE, None),
    ("modules-not-set", {"kconfig.options.MODULES": "n"},
     "systemtap.module", "unavailable", "CONFIG_MODULES is not set", None),
    ("modules-not-set-sysdig", {"kconfig.options.MODULES": "n"},
     "sysdig.kmod", "unavailable", "CONFIG_MODULES is not set", None),
    ("no-proc-modules", {"kconfig.options": {}, "modules.proc_modules": False},
     "systemtap.module", "unavailable", "no /proc/modules: kernel without loadable modules", None),
    ("modules-disabled", {"sysctl.modules_disabled": 1},
     "sysdig.kmod", "unavailable", "kernel.modules_disabled is 1 (no module loads until reboot)", None),
    ("lockdown-integrity", {"lockdown.mode": "integrity"},
     "systemtap.module", "unavailable", "kernel lockdown=integrity: only signed modules load", None),
    ("module-sig-force", {"kconfig.options.MODULE_SIG_FORCE": "y"},
     "sysdig.kmod", "unavailable", "CONFIG_MODULE_SIG_FORCE: only signed modules load", None),
    ("no-compiler", {"tools.gcc.found": False},
     "systemtap.module", "missing", "no C compiler (gcc) to build kernel modules", "headers"),
    # systemtap BPF runtime, memlock
    ("stap-without-bpf", {"tools.stap.runtimes": ["kernel", "dyninst"]},
     "systemtap.bpf", "unavailable", "this systemtap was built without its BPF runtime", None),
    ("memlock-not-raisable", {"process.memlock": {"soft": 8388608, "hard": 8388608},
                              "process.capabilities.CAP_SYS_RESOURCE": False},
     "systemtap.bpf", "unavailable",
     "RLIMIT_MEMLOCK is 8192 KiB and cannot be raised without CAP_SYS_RESOURCE", None),
    ("memlock-unknown", {"process.memlock": None, "process.capabilities.CAP_SYS_RESOURCE": None},
     "systemtap.bpf", "unknown", "RLIMIT_MEMLOCK unknown", None),
    # sysdig
    # Debian 12's, installed by hand (no record): older than the probe; the vendor's has it.
    ("sysdig-0.29", {"tools.sysdig.version": "0.29.3", "tools.sysdig.drivers.modern_bpf_option": False, "setup": None},
     "sysdig.modern-ebpf", "unavailable",
     "sysdig 0.29.3 has no modern eBPF probe (older than 0.31, the first release with it)", None),
    ("old-kernel", {"kernel.release": "5.4.0-216-generic"},
     "sysdig.modern-ebpf", "unavailable", "kernel 5.4.0-216-generic is older than 5.8 (BPF ring buffer)", None),
    ("kernel-release-unknown", {"kernel.release": None},
     "sysdig.modern-ebpf", "unknown", "kernel release unknown", None),
    ("sysdig-kmod-not-built", {"tools.sysdig.drivers.kmod_built": False},
     "sysdig.kmod", "missing", "the sysdig kernel module (scap) is not built for this kernel", "sysdig"),
    # tools not installed
    ("no-trace-cmd", {"tools.trace-cmd.found": False}, "trace-cmd", "missing", "trace-cmd is not installed", "perf"),
    ("no-bcc", {"tools.bcc.found": False},
     "bcc", "missing", "bcc (bpfcc-tools, python3-bpfcc) is not installed", "bcc"),
    ("no-libbpf-tools", {"tools.libbpf-tools.found": False},
     "libbpf-tools", "missing", "libbpf-tools is not installed", "bcc"),
    ("no-bpftrace", {"tools.bpftrace.found": False},
     "bpftrace.tracepoint", "missing", "bpftrace is not installed", "bpftrace"),
    ("no-stap", {"tools.stap": NO_STAP}, "systemtap.module", "missing", "systemtap is not installed", "systemtap"),
    ("no-sysdig", {"tools.sysdig.found": False}, "sysdig.kmod", "missing", "sysdig is not installed", "sysdig"),
]


@pytest.mark.parametrize("changes, method_id, status, reason, component",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_block(facts, changes, method_id, status, reason, component):
    result = verdict(change(facts, changes), method_id)
    assert (result.status, result.reason, result.component) == (status, reason, component)
    assert reason in result.causes
    if status != doctor.UNKNOWN:  # some unknowns have nothing to suggest
        assert result.remedy
    if status == doctor.MISSING:
        assert result.remedy.split(" --var ")[0] == "tracekit setup " + component


def test_blocks_do_not_spill_over(facts):
    """A block hits only the methods that need what is blocked."""
    change(facts, {"lockdown.mode": "confidentiality"})
    report = doctor.evaluate(facts)
    not_ready = {v.id for v in report.verdicts if v.status != doctor.READY}
    assert not_ready == {"kprobe", "kretprobe", "perf.probe.kernel", "bcc", "bpftrace.kprobe",
                         "bpftrace.tracepoint", "systemtap.module", "sysdig.kmod"}


def test_remedies_of_unavailable_verdicts(facts):
    change(facts, {"tracefs.kprobe_events": False, "kconfig.options.KPROBES": "n", "sysctl.ftrace_enabled": 0})
    assert verdict(facts, "kprobe").remedy == "use a kernel built with CONFIG_KPROBES and CONFIG_KPROBE_EVENTS"
    assert verdict(facts, "ftrace.function").remedy == "sysctl -w kernel.ftrace_enabled=1"


def test_tracefs_unreadable_as_user_asks_for_sudo(facts):
    result = verdict(change(facts, {"tracefs": NOT_READABLE, "process.uid": 1000}), "ftrace.function_graph")
    assert result.status == doctor.UNKNOWN and result.remedy == "run `sudo tracekit doctor`"


def test_function_tracer_without_dynamic_ftrace_is_ready(facts):
    change(facts, {"tracefs.function_filter": "absent", "kconfig.options.DYNAMIC_FTRACE": "n"})
    assert verdict(facts, "ftrace.function").status == doctor.READY


# -- notes never block -------------------------------------------------------------------
def test_memlock_blocks_systemtap_bpf_but_is_only_a_note_for_bpftrace(facts):
    change(facts, {"process.memlock": {"soft": 8388608, "hard": 8388608},
                   "process.capabilities.CAP_SYS_RESOURCE": False})
    note = ("RLIMIT_MEMLOCK is 8192 KiB and cannot be raised without CAP_SYS_RESOURCE; "
            "works anyway on kernels from 5.11 (BPF memory is charged to the cgroup)")
    for method_id in ("bpftrace.kprobe", "bpftrace.uprobe", "bpftrace.tracepoint", "bcc", "libbpf-tools"):
        result = verdict(facts, method_id)
        assert (result.status, result.notes) == (doctor.READY, [note]), method_id
    assert verdict(facts, "systemtap.bpf").status == doctor.UNAVAILABLE


def test_memlock_raisable_with_cap_sys_resource(facts):
    change(facts, {"process.memlock": {"soft": 65536, "hard": 65536}})
    assert verdict(facts, "systemtap.bpf").status == doctor.READY
    assert verdict(facts, "bpftrace.kprobe").notes == []


def test_perf_wrapper_fallback_is_ready_with_a_note(facts):
    note = ("no linux-tools package for %s: the perf wrapper refuses to run; "
            "/usr/lib/linux-tools/6.8.0-100-generic/perf works" % NOBLE)
    change(facts, {"tools.perf.ubuntu_wrapper": True, "tools.perf.note": note, "tools.perf.version": "6.8.12",
                   "tools.perf.usable_path": "/usr/lib/linux-tools/6.8.0-100-generic/perf"})
    result = verdict(facts, "perf.sampling")
    assert result.status == doctor.READY and result.notes == [note]
    assert result.reason == "/usr/lib/linux-tools/6.8.0-100-generic/perf 6.8.12"


def test_missing_debuginfo_is_a_note(facts):
    change(facts, {"debuginfo": {"vmlinux": None, "candidates": []}})
    for method_id in ("perf.probe.kernel", "systemtap.module", "systemtap.bpf"):
        result = verdict(facts, method_id)
        assert result.status == doctor.READY
        assert len(result.notes) == 1 and result.notes[0].startswith("no kernel debuginfo (vmlinux with DWARF)")
    assert verdict(facts, "kprobe").notes == []


def test_no_debuginfo_note_where_debuginfod_serves_it(facts):
    change(facts, {"debuginfo": {"vmlinux": None, "candidates": []},
                   "debuginfod": {"urls": ["https://debuginfod.ubuntu.com"], "sources": ["DEBUGINFOD_URLS"]}})
    assert verdict(facts, "perf.probe.kernel").notes == []


# -- kernel debug info -----------------------------------------------------------------------
NO_VMLINUX = {"vmlinux": None, "candidates": []}
NO_DEBUGINFOD = {"urls": [], "sources": []}


def test_kernel_debuginfo_from_the_dbg_file(tmp_path):
    # Debian's linux-image-*-dbg puts it there too (Ubuntu's -dbgsym only in /usr/lib/debug/boot).
    host = FakeHost.distro(tmp_path, "debian-bookworm")
    host.vmlinux("usr/lib/debug/lib/modules/%s/vmlinux" % host.release)
    result = verdict(agent_facts.collect(str(host)), "kernel.debuginfo")
    assert (result.status, result.reason) == (doctor.READY, "DWARF vmlinux /usr/lib/debug/lib/modules/%s/vmlinux"
                                              % host.release)


def test_kernel_debuginfo_ready_on_baseline(facts):
    assert verdict(facts, "kernel.debuginfo").reason == "DWARF vmlinux /usr/lib/debug/boot/vmlinux-%s" % NOBLE


@pytest.mark.parametrize("distro", sorted(DISTROS))
def test_kernel_debuginfo_missing_on_a_distribution_kernel(tmp_path, distro):
    host = FakeHost.distro(tmp_path, distro)
    result = verdict(agent_facts.collect(str(host)), "kernel.debuginfo")
    assert (result.status, result.component, result.remedy) == (doctor.MISSING, "dbgsym", "tracekit setup dbgsym")
    assert result.reason == "no debug symbols for kernel %s (no DWARF vmlinux, no debuginfod)" % host.release


def test_kernel_debuginfo_stripped_vmlinux_is_not_debug_info(tmp_path):
    host = FakeHost.distro(tmp_path, "ubuntu-noble")
    host.vmlinux("boot/vmlinux-%s" % host.release, dwarf=False)
    result = verdict(agent_facts.collect(str(host)), "kernel.debuginfo")
    assert result.status == doctor.MISSING
    assert result.reason == ("no debug symbols for kernel %s (no DWARF vmlinux, no debuginfod); /boot/vmlinux-%s "
                             "has no DWARF" % (host.release, host.release))


def test_kernel_debuginfo_of_a_custom_kernel_is_unavailable(tmp_path):
    # This machine's kind of kernel: built with DEBUG_INFO, but no package has its vmlinux.
    host = FakeHost.distro(tmp_path, "debian-bookworm", config=False)
    host.kernel("6.18.44-fc-v595")
    host.kconfig("CONFIG_DEBUG_INFO=y\nCONFIG_KPROBES=y\n", where="proc")
    result = verdict(agent_facts.collect(str(host)), "kernel.debuginfo")
    assert (result.status, result.component) == (doctor.UNAVAILABLE, None)
    assert result.reason == ("no debug symbols exist for kernel 6.18.44-fc-v595 (not a distribution kernel: no "
                             "package has its vmlinux)")
    assert result.remedy == ("install the vmlinux it was built with as /usr/lib/debug/boot/vmlinux-6.18.44-fc-v595, "
                             "or boot a distribution kernel")


def test_kernel_debuginfo_of_a_kernel_built_without_it(facts):
    change(facts, {"debuginfo": NO_VMLINUX, "kconfig.options.DEBUG_INFO": "n"})
    result = verdict(facts, "kernel.debuginfo")
    assert (result.status, result.reason) == (
        doctor.UNAVAILABLE, "kernel %s was built without debug info (CONFIG_DEBUG_INFO is not set)" % NOBLE)


def test_kernel_debuginfo_from_debuginfod(tmp_path):
    host = FakeHost.distro(tmp_path, "ubuntu-noble")
    host.debuginfod("ubuntu", "https://debuginfod.ubuntu.com\n")
    found = agent_facts.collect(str(host))
    # A tree read from its files: the *.urls files are what can be seen.
    result = verdict(found, "kernel.debuginfo")
    assert (result.status, result.reason) == (doctor.READY,
                                              "debuginfod https://debuginfod.ubuntu.com (/etc/debuginfod/ubuntu.urls)")
    # On the running host perf and stap ask debuginfod only with DEBUGINFOD_URLS set.
    found["live"] = True
    result = verdict(found, "kernel.debuginfo")
    assert (result.status, result.component, result.remedy) == (doctor.MISSING, "ddebs", "tracekit setup ddebs")
    assert result.reason == ("debuginfod servers are named in /etc/debuginfod/ubuntu.urls, but DEBUGINFOD_URLS is "
                             "not set here (perf and stap read only the variable)")
    found["debuginfod"]["sources"].insert(0, "DEBUGINFOD_URLS")
    assert verdict(found, "kernel.debuginfo").status == doctor.READY


def test_kernel_debuginfo_the_dbgsym_role_found_no_package_for(facts):
    reason = ("no debug-symbol package for kernel %s in the configured apt sources (looked for linux-image-%s-dbgsym, "
              "linux-image-unsigned-%s-dbgsym; the ddebs component adds the archive)" % (NOBLE, NOBLE, NOBLE))
    change(facts, {"debuginfo": NO_VMLINUX,
                   "setup": {"components": {"dbgsym": {"component": "dbgsym", "kernel": NOBLE, "packages": [],
                                                       "unavailable": reason}}}})
    result = verdict(facts, "kernel.debuginfo")
    assert (result.status, result.reason) == (doctor.UNAVAILABLE, reason)
    assert result.remedy == "fetch symbols on demand: tracekit setup ddebs --var tracekit_ddebs_method=debuginfod"
    # A record made for another kernel says nothing about this one.
    facts["setup"]["components"]["dbgsym"]["kernel"] = "6.8.0-100-generic"
    assert verdict(facts, "kernel.debuginfo").status == doctor.MISSING


def test_kernel_debuginfo_on_a_release_setup_refuses(facts):
    change(facts, {"debuginfo": NO_VMLINUX, "host.distro": dict(facts["host"]["distro"], version_id="23.10",
                                                                  codename="mantic")})
    assert verdict(facts, "kernel.debuginfo").status == doctor.UNAVAILABLE


# -- combining blocks ----------------------------------------------------------------------
def test_unavailable_beats_unknown_beats_missing(facts):
    change(facts, {"tools.bcc.found": False})
    assert verdict(facts, "bcc").status == doctor.MISSING

    change(facts, {"kernel_probes.bpf_prog_load": None})
    result = verdict(facts, "bcc")
    assert (result.status, result.reason, result.component) == (
        doctor.UNKNOWN, "BPF program load not probed", None)
    assert result.remedy == "run tracekit doctor on the host"
    assert result.causes == ["bcc (bpfcc-tools, python3-bpfcc) is not installed", "BPF program load not probed"]

    change(facts, {"lockdown.mode": "confidentiality", "tracefs.kprobe_events": False,
                   "kconfig.options.KPROBES": "n"})
    result = verdict(facts, "bcc")
    assert result.status == doctor.UNAVAILABLE and result.component is None
    assert result.reason == "kernel lockdown=confidentiality forbids BPF reads of kernel memory"  # first of the worst
    assert result.remedy == "boot with lockdown=integrity or none"
    assert result.causes == ["bcc (bpfcc-tools, python3-bpfcc) is not installed", "BPF program load not probed",
                             "kernel lockdown=confidentiality forbids BPF reads of kernel memory",
                             "CONFIG_KPROBES is not set"]


def test_missing_remedy_names_every_component(facts):
    change(facts, {"tools.stap.found": False, "tools.gcc.found": False,
                   "headers": {"build_dir": None, "kheaders": False}})
    result = verdict(facts, "systemtap.module")
    assert (result.status, result.component) == (doctor.MISSING, "systemtap")
    assert result.remedy == "tracekit setup systemtap headers"
    assert result.causes == ["systemtap is not installed", "no kernel build tree for %s" % NOBLE,
                             "no C compiler (gcc) to build kernel modules"]

    change(facts, {"tools.sysdig.found": False, "tools.sysdig.drivers.kmod_built": False})
    result = verdict(facts, "sysdig.kmod")
    assert result.remedy == "tracekit setup sysdig headers" and len(result.causes) == 3


def test_causes_of_an_absent_sysdig_name_no_version(facts):
    change(facts, {"tools.sysdig": {"found": False, "path": None, "version": None}})
    result = verdict(facts, "sysdig.modern-ebpf")
    assert result.reason == "sysdig is not installed"
    assert not any("None" in cause for cause in result.causes), result.causes


def test_systemtap_bpf_missing_when_systemtap_is_not_installed(facts):
    result = verdict(change(facts, {"tools.stap": NO_STAP}), "systemtap.bpf")
    assert (result.status, result.component, result.remedy) == (
        doctor.MISSING, "systemtap", "tracekit setup systemtap")


@pytest.mark.parametrize("distro, release, expected", [
    ("ubuntu", "6.8.0-151-generic", True),
    ("ubuntu", "5.15.0-1049-aws", True),
    ("debian", "6.1.0-56-amd64", True),
    ("debian", "6.1.0-28-cloud-amd64", True),
    # Debian 13 names its kernels differently.
    ("debian", "6.12.38+deb13-amd64", True),
    ("debian", "6.12.38+deb13-cloud-amd64", True),
    ("debian", "6.18.44-fc-v595", False),
    ("ubuntu", "6.8.12", False),
    ("fedora", "6.8.0-151-generic", False),
    ("ubuntu", None, False),
])
def test_distribution_kernel(distro, release, expected):
    facts = {"host": {"distro": {"id": distro}}, "kernel": {"release": release}}
    assert doctor.distribution_kernel(facts) is expected


def test_kheaders_serve_bcc_but_not_module_builds(facts):
    change(facts, {"headers": {"build_dir": None, "kheaders": True}})
    assert verdict(facts, "bcc").status == doctor.READY
    assert verdict(facts, "systemtap.module").status == doctor.MISSING


# -- the report -------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, required, exit_code", [
    ({}, (), 0),
    ({"btf.vmlinux": False, "lockdown.mode": "integrity"}, (), 0),  # only unavailable
    ({"kernel_probes.bpf_prog_load": None}, (), 0),  # only unknown
    ({"tools.bpftrace.found": False}, (), 1),  # setup can fix it
    ({"btf.vmlinux": False}, ("libbpf-tools",), 1),  # required, unavailable
    ({"kernel_probes.bpf_prog_load": None}, ("bcc",), 1),  # required, unknown
    ({"btf.vmlinux": False}, ("kprobe", "bcc"), 0),  # required ones are ready
    ({"tools.bpftrace.found": False}, ("kprobe",), 1),  # required ready, but something missing
], ids=["ready", "unavailable-only", "unknown-only", "missing", "required-unavailable", "required-unknown",
        "required-ready", "required-ready-other-missing"])
def test_exit_code(facts, changes, required, exit_code):
    assert doctor.evaluate(change(facts, changes), required).exit_code == exit_code


def test_evaluate_rejects_an_unknown_method(facts):
    with pytest.raises(UsageError) as info:
        doctor.evaluate(facts, ["kprobe", "dtrace"])
    assert str(info.value).startswith("unknown method dtrace; valid: ftrace.function, ")
    assert info.value.exit_code == 2


def test_report_to_dict(facts):
    change(facts, {"btf.vmlinux": False, "tools.bpftrace.found": False})
    data = doctor.evaluate(facts, ["kprobe"]).to_dict("1.2.3")
    assert json.loads(json.dumps(data)) == data
    assert data["schema"] == "tracekit.doctor/1" and data["tracekit_version"] == "1.2.3"
    assert data["host"] == {"hostname": "fakehost", "kernel": NOBLE, "arch": "x86_64",
                            "distro": facts["host"]["distro"]}
    assert data["required"] == ["kprobe"] and data["exit_code"] == 1 and data["facts"] == facts
    assert [m["id"] for m in data["methods"]] == list(doctor.METHOD_IDS)
    for method in data["methods"]:
        assert set(method) == {"id", "title", "status", "reason", "remedy", "component", "causes", "notes"}
        assert method["status"] in doctor.STATUSES
    by_id = {m["id"]: m for m in data["methods"]}
    assert by_id["bpftrace.kprobe"] == {
        "id": "bpftrace.kprobe", "title": "bpftrace kprobe", "status": "missing",
        "reason": "bpftrace is not installed", "remedy": "tracekit setup bpftrace", "component": "bpftrace",
        "causes": ["bpftrace is not installed"], "notes": []}
    # libbpf-tools, sysdig.modern-ebpf: no BTF; three bpftrace methods: not installed
    assert data["summary"] == {"ready": 18, "missing": 3, "unavailable": 2, "unknown": 0}


# -- fake hosts with the real distribution configs --------------------------------------------
@pytest.fixture(params=sorted(DISTROS))
def bare_distro_host(request, tmp_path):
    """A distribution host with its real kernel config, tracefs and BTF, and no tools."""
    host = FakeHost.distro(tmp_path, request.param)
    host.tracefs()
    host.securityfs("none")
    host.btf()
    return host


def test_real_config_host_without_tools(bare_distro_host):
    facts = agent_facts.collect(str(bare_distro_host))
    assert facts["kconfig"]["source"] == "/boot/config-%s" % bare_distro_host.release
    assert facts["kconfig"]["options"]["KPROBE_EVENTS"] == "y"

    report = doctor.evaluate(facts)
    status = {v.id: v.status for v in report.verdicts}
    for method_id in ("ftrace.function", "ftrace.function_graph", "tracepoint", "kprobe", "kretprobe",
                      "uprobe", "uretprobe"):
        assert status[method_id] == doctor.READY, method_id
    # not probed on a fake root: a missing tool alone cannot decide these
    assert status["bcc"] == status["perf.sampling"] == doctor.UNKNOWN
    # ... except where the release does not package the tool at all.
    jammy = facts["host"]["distro"]["codename"] == "jammy"
    assert status["libbpf-tools"] == (doctor.UNAVAILABLE if jammy else doctor.UNKNOWN)

    facts["kernel_probes"] = dict(PROBES_OK)
    verdicts = {v.id: v for v in doctor.evaluate(facts).verdicts}
    for method_id, component, remedy in [
        ("bcc", "bcc", "tracekit setup bcc headers"),
        ("libbpf-tools", "bcc", "tracekit setup bcc"),
        ("perf.sampling", "perf", "tracekit setup perf"),
        ("trace-cmd", "perf", "tracekit setup perf"),
        ("bpftrace.kprobe", "bpftrace", "tracekit setup bpftrace"),
        ("systemtap.module", "systemtap", "tracekit setup systemtap headers"),
        ("sysdig.kmod", "sysdig", "tracekit setup sysdig headers"),
    ]:
        result = verdicts[method_id]
        if jammy and method_id == "libbpf-tools":
            assert (result.status, result.reason) == (doctor.UNAVAILABLE, "libbpf-tools is not packaged by Ubuntu 22.04")
            continue
        assert (result.status, result.component, result.remedy) == (doctor.MISSING, component, remedy), method_id
    assert verdicts["bcc"].causes == ["bcc (bpfcc-tools, python3-bpfcc) is not installed",
                                      "no kernel headers for %s" % bare_distro_host.release]
    assert doctor.evaluate(facts).exit_code == 1


def test_real_config_host_with_tracefs_unmounted(tmp_path):
    """The config vouches for the features; tracefs decides only once readable."""
    host = FakeHost.distro(tmp_path, "ubuntu-noble")
    verdicts = {v.id: v for v in doctor.evaluate(agent_facts.collect(str(host))).verdicts}
    for method_id in ("ftrace.function", "kprobe", "uprobe", "tracepoint"):
        assert verdicts[method_id].status == doctor.UNKNOWN
        assert verdicts[method_id].causes == ["tracefs unreadable: tracefs is not mounted"]


@pytest.mark.parametrize("distro, ikheaders_note", [("debian-bookworm", True), ("ubuntu-noble", False)])
def test_real_config_custom_kernel_headers(tmp_path, distro, ikheaders_note):
    """A self-built kernel from a distribution's config: Debian's has no
    CONFIG_IKHEADERS, Ubuntu's builds it as a module."""
    host = FakeHost.distro(tmp_path, distro, config=False)
    host.kernel("6.1.192-tk1")
    host.kconfig(DISTROS[distro]["config"])
    host.tracefs()
    facts = agent_facts.collect(str(host))
    facts["kernel_probes"] = dict(PROBES_OK)
    result = verdict(facts, "bcc")
    assert result.status == doctor.UNAVAILABLE
    assert result.causes[-1] == "no kernel headers exist for 6.1.192-tk1 (not a distribution kernel%s)" % (
        "; CONFIG_IKHEADERS is not set" if ikheaders_note else "")


def test_ubuntu_wrapper_without_linux_tools_end_to_end(tmp_path):
    host = full_host(tmp_path)
    host.perf_ubuntu_wrapper([])
    facts = agent_facts.collect(str(host))
    facts["kernel_probes"] = dict(PROBES_OK)
    result = verdict(facts, "perf.counters.hardware")
    assert (result.status, result.component) == (doctor.MISSING, "perf")
    assert result.reason == "the perf wrapper finds no linux-tools binary for %s" % NOBLE


# -- systemtap x kernel combinations known not to build modules ---------------------------
@pytest.mark.parametrize("stap, kernel, fixed_in", [
    ("5.0", "6.8.0-51-generic", (5, 1)),  # Ubuntu 24.04: its own systemtap on its own kernel
    ("5.0", "7.0.0-10-generic", (5, 1)),  # ... and on its 7.0 HWE kernel
    ("4.6", "6.8.0-51-generic", (5, 1)),  # jammy's systemtap on its 6.8 HWE kernel
    ("5.0", "6.8", (5, 1)),
    ("5.1", "6.8.0-51-generic", None),
    ("5.1", "6.12.48+deb13-amd64", None),  # Debian 13
    ("5.3", "7.0.0-10-generic", None),  # Ubuntu 26.04
    ("5.0", "6.7.12", None),
    ("5.0", "5.15.0-204-generic", None),  # Ubuntu 22.04's kernel
    ("4.8", "6.1.0-56-amd64", None),  # Debian 12
    (None, "6.8.0-51-generic", None),  # version unknown: nothing claimed
    ("5.0", None, None),
])
def test_stap_kernel_break_boundaries(stap, kernel, fixed_in):
    broken = doctor.stap_kernel_break(stap, kernel)
    assert (broken[0] if broken else None) == fixed_in


@pytest.fixture
def noble_with_its_systemtap(tmp_path):
    """The fake noble host with noble's own systemtap package, 5.0."""
    host = full_host(tmp_path)
    host.stap(version="5.0", package=", Debian version 5.0-2ubuntu1")
    result = agent_facts.collect(str(host))
    result["kernel_probes"] = dict(PROBES_OK)
    return result


def test_noble_systemtap_cannot_build_modules_for_its_kernel(noble_with_its_systemtap):
    facts = noble_with_its_systemtap
    assert facts["tools"]["stap"]["version"] == "5.0"
    result = verdict(facts, "systemtap.module")
    assert (result.status, result.component, result.remedy) == (doctor.UNAVAILABLE, None, "install systemtap >= 5.1")
    assert result.reason == (
        "systemtap 5.0 cannot build modules for kernel %s (its runtime's API probes fail under the "
        "-Wmissing-prototypes that kernel 6.8 builds modules with, so it falls back to the old mmap_sem and "
        "get_user_pages_remote API; fixed in systemtap 5.1)" % NOBLE)
    # The BPF runtime builds no module: not affected.
    assert verdict(facts, "systemtap.bpf").status == doctor.READY


def test_dropwatch_is_skipped_with_the_module_runtimes_reason(noble_with_its_systemtap):
    from tracekit.agent import checks, verify
    verdicts = {v.id: v.to_dict() for v in doctor.evaluate(noble_with_its_systemtap).verdicts}
    reason = verify.skip_reason(checks.CHECKS_BY_ID["systemtap.dropwatch"], verdicts)
    assert reason == "systemtap.module: " + verdicts["systemtap.module"]["reason"]
    assert "systemtap 5.0 cannot build modules" in reason


def test_systemtap_5_0_on_an_older_kernel_is_ready(noble_with_its_systemtap):
    facts = change(noble_with_its_systemtap, {"kernel.release": DISTROS["ubuntu-jammy"]["release"]})
    assert verdict(facts, "systemtap.module").status == doctor.READY


def test_a_newer_systemtap_on_noble_is_ready(facts):
    assert facts["tools"]["stap"]["version"] == "5.1"  # the baseline's: an upstream build
    assert verdict(facts, "systemtap.module").status == doctor.READY

# -- what a release does not package, and releases setup refuses ----------------------------
JAMMY = {"id": "ubuntu", "version_id": "22.04", "codename": "jammy", "name": "Ubuntu 22.04.5 LTS", "like": ["debian"]}
TRIXIE = {"id": "debian", "version_id": "13", "codename": "trixie", "name": "Debian GNU/Linux 13 (trixie)", "like": []}
BIONIC = {"id": "ubuntu", "version_id": "18.04", "codename": "bionic", "name": "Ubuntu 18.04.6 LTS", "like": ["debian"]}
SUPPORTED = "Ubuntu 22.04, 24.04, 26.04; Debian 12, 13"


def test_libbpf_tools_where_the_release_does_not_package_them_is_unavailable(facts):
    change(facts, {"host.distro": JAMMY, "tools.libbpf-tools.found": False})
    result = verdict(facts, "libbpf-tools")
    assert (result.status, result.reason) == (doctor.UNAVAILABLE, "libbpf-tools is not packaged by Ubuntu 22.04")
    assert "tracekit setup" not in result.remedy


def test_libbpf_tools_setup_found_in_no_apt_source_is_unavailable(facts):
    change(facts, {"tools.libbpf-tools.found": False,
                   "setup": {"components": {"bcc": {"component": "bcc", "libbpf_tools_packaged": False}}}})
    result = verdict(facts, "libbpf-tools")
    assert result.status == doctor.UNAVAILABLE and "apt sources" in result.reason


@pytest.mark.parametrize("method_id", ["sysdig.kmod", "sysdig.modern-ebpf"])
def test_sysdig_on_a_release_without_it_is_unavailable_with_the_vendor_repository_as_remedy(facts, method_id):
    change(facts, {"host.distro": TRIXIE, "kernel.release": "6.12.38+deb13-amd64", "tools.sysdig.found": False})
    result = verdict(facts, method_id)
    assert result.status == doctor.UNAVAILABLE
    assert result.reason == "sysdig is not packaged by Debian 13; Sysdig's own repository has it"
    assert result.remedy == "tracekit setup sysdig --var tracekit_sysdig_repository=vendor"


def test_sysdig_the_role_recorded_as_unavailable(facts):
    recorded = "sysdig is not packaged by Debian 13 (tracekit_sysdig_repository=vendor installs Sysdig's)"
    change(facts, {"tools.sysdig.found": False, "setup": {"components": {"sysdig": {"unavailable": recorded}}}})
    result = verdict(facts, "sysdig.kmod")
    assert (result.status, result.reason) == (doctor.UNAVAILABLE, recorded)


def test_on_a_release_setup_refuses_nothing_is_missing(facts):
    """`missing` promises that `tracekit setup X` fixes it: on Ubuntu 18.04
    setup refuses the host, so what it would install is unavailable."""
    change(facts, {"host.distro": BIONIC, "tools.bpftrace.found": False, "tracefs.mounted": False})
    result = verdict(facts, "bpftrace.kprobe")
    assert result.status == doctor.UNAVAILABLE
    assert result.reason == ("bpftrace is not installed; Ubuntu 18.04.6 LTS is not supported by tracekit setup "
                             "(supported: %s)" % SUPPORTED)
    assert "tracekit setup" not in result.remedy
    # Mounting tracefs needs no release check: that remedy still works.
    mount = verdict(facts, "tracepoint")
    assert (mount.status, mount.remedy) == (doctor.MISSING, "tracekit setup debugfs")
    assert doctor.evaluate(facts).summary["missing"] > 0


@pytest.mark.parametrize("distro", [JAMMY, TRIXIE])
def test_supported_releases_keep_their_missing_verdicts(facts, distro):
    change(facts, {"host.distro": distro, "tools.bpftrace.found": False})
    result = verdict(facts, "bpftrace.kprobe")
    assert (result.status, result.remedy) == (doctor.MISSING, "tracekit setup bpftrace")


# -- bpftrace on this machine's kernel, under each release's bpftrace ----------------------------------
LAB_PROBES = {"perf_hardware": "ENOENT (No such file or directory)", "perf_software": "ok", "bpf_prog_load": "ok",
              "detail": None}  # as measured on this machine (shared/LAB.md)


def lab_facts(tmp_path, userland):
    result = agent_facts.collect(str(lab_machine(tmp_path, userland)))
    result["kernel_probes"] = dict(LAB_PROBES)
    return result


def bpftrace_verdicts(facts):
    return {m: (verdict(facts, m).status, verdict(facts, m).reason)
            for m in ("bpftrace.kprobe", "bpftrace.uprobe", "bpftrace.tracepoint")}


NO_MODULES = ('bpftrace 0.25.0 cannot run any program without /proc/modules (CONFIG_MODULES is not set): '
              '"Failed to open kernel function info: Error reading modules from /proc/modules" '
              '(fixed in bpftrace 0.26)')


@pytest.mark.parametrize("userland, expected", [
    # Measured with each release's bpftrace on this kernel (tests/data/captured/bpftrace.*).
    ("bookworm", {"bpftrace.kprobe": ("unavailable", "CONFIG_KPROBES is not set"),
                  "bpftrace.uprobe": ("ready", "/usr/bin/bpftrace 0.17.0"),
                  "bpftrace.tracepoint": ("ready", "/usr/bin/bpftrace 0.17.0")}),
    ("jammy", {"bpftrace.kprobe": ("unavailable", "CONFIG_KPROBES is not set"),
               "bpftrace.uprobe": ("ready", "/usr/bin/bpftrace 0.14.0"),
               "bpftrace.tracepoint": ("unavailable", (
                   "bpftrace 0.14.0 cannot read this kernel's BTF (bpftrace --info: btf: no) and no kernel headers "
                   "exist for 6.18.44-fc-v1252 (not a distribution kernel; CONFIG_IKHEADERS is not set), so it "
                   "cannot type tracepoint arguments"))}),
    ("resolute", {"bpftrace.kprobe": ("unavailable", "CONFIG_KPROBES is not set"),
                  "bpftrace.uprobe": ("unavailable", NO_MODULES),
                  "bpftrace.tracepoint": ("unavailable", NO_MODULES)}),
])
def test_bpftrace_on_this_kernel(tmp_path, userland, expected):
    facts = lab_facts(tmp_path, userland)
    assert bpftrace_verdicts(facts) == expected
    if userland == "resolute":
        assert NO_MODULES in verdict(facts, "bpftrace.kprobe").causes  # behind the kernel's own limit
        assert verdict(facts, "bpftrace.uprobe").remedy == ("install bpftrace >= 0.26, or use a kernel built "
                                                             "with CONFIG_MODULES")
    if userland == "jammy":
        assert verdict(facts, "bpftrace.tracepoint").remedy == (
            "boot a distribution kernel, or build this one with CONFIG_IKHEADERS; or install a bpftrace that "
            "reads this kernel's BTF")


@pytest.mark.parametrize("version, blocked", [("0.24.2", False), ("0.25.0", True), ("0.25.1", True),
                                              ("0.26.0", False), ("0.26.1", False)])
def test_bpftrace_versions_that_need_proc_modules(facts, version, blocked):
    # 0.25.x only: bpftrace commits 4a3b4dec7 (0.25.0) and f3fd78e23 (0.26.0).
    change(facts, {"tools.bpftrace.version": version, "modules.proc_modules": False,
                   "kconfig.options.MODULES": "n"})
    result = verdict(facts, "bpftrace.uprobe")
    assert result.status == (doctor.UNAVAILABLE if blocked else doctor.READY), result
    if blocked:
        assert result.reason.startswith("bpftrace %s cannot run any program without /proc/modules" % version)


def test_bpftrace_0_25_with_modules_is_ready(facts):
    change(facts, {"tools.bpftrace.version": "0.25.0", "modules.proc_modules": True})
    assert verdict(facts, "bpftrace.tracepoint").status == doctor.READY


def test_bpftrace_0_25_without_proc_modules_named_without_a_config(facts):
    change(facts, {"tools.bpftrace.version": "0.25.0", "modules.proc_modules": False,
                   "kconfig.options.MODULES": None})
    assert "without /proc/modules (a kernel without loadable modules)" in verdict(facts, "bpftrace.kprobe").reason


def test_bpftrace_without_btf_on_a_distribution_kernel_misses_its_headers(facts):
    # bpftrace 0.14 on a noble kernel whose headers are not installed: setup fixes it.
    change(facts, {"tools.bpftrace.version": "0.14.0", "tools.bpftrace.info.kernel_features.btf": False,
                   "headers": {"build_dir": None, "kheaders": False}})
    result = verdict(facts, "bpftrace.tracepoint")
    assert (result.status, result.remedy, result.component) == (doctor.MISSING, "tracekit setup headers", "headers")
    assert result.reason == ("bpftrace 0.14.0 cannot read this kernel's BTF (bpftrace --info: btf: no) and no "
                             "kernel headers for %s, so it cannot type tracepoint arguments" % NOBLE)
    # Register arguments need no kernel types.
    assert verdict(facts, "bpftrace.uprobe").status == doctor.READY
    assert verdict(facts, "bpftrace.kprobe").status == doctor.READY


def test_bpftrace_without_btf_reads_the_headers(facts):
    change(facts, {"tools.bpftrace.info.kernel_features.btf": False})  # headers are installed on the baseline
    assert verdict(facts, "bpftrace.tracepoint").status == doctor.READY


def test_bpftrace_on_a_kernel_without_btf(facts):
    change(facts, {"tools.bpftrace.info.kernel_features.btf": False, "btf.vmlinux": False,
                   "headers": {"build_dir": None, "kheaders": False}})
    assert "finds no kernel BTF (no /sys/kernel/btf/vmlinux)" in verdict(facts, "bpftrace.tracepoint").reason


def test_bpftrace_whose_info_is_unknown_is_judged_as_before(facts):
    # No --info output (it failed, or an old bpftrace): no guess either way.
    change(facts, {"tools.bpftrace.info": None, "headers": {"build_dir": None, "kheaders": False}})
    assert verdict(facts, "bpftrace.tracepoint").status == doctor.READY


# -- debuginfod configured for sessions, and opt-in fixes ----------------------------------
def test_debuginfod_in_etc_environment_counts_on_the_running_host(tmp_path):
    """Right after `tracekit setup` the shell that ran it lacks DEBUGINFOD_URLS, but
    sudo and ssh sessions get it from /etc/environment (and verify passes it on)."""
    host = FakeHost.distro(tmp_path, "debian-bookworm")
    host.write("etc/debuginfod/debian.urls", "https://debuginfod.example\n")
    result = agent_facts.collect(str(host))
    result["live"] = True  # as on the running host, whose own environment lacks the variable
    assert verdict(result, "kernel.debuginfo").remedy == "tracekit setup ddebs"
    host.write("etc/environment", 'LANG=C\n# BEGIN tracekit\nDEBUGINFOD_URLS="https://debuginfod.example"\n'
                                  '# END tracekit\n')
    result = agent_facts.collect(str(host))
    result["live"] = True
    assert result["debuginfod"]["sources"][0] == "/etc/environment"
    assert verdict(result, "kernel.debuginfo").status == doctor.READY


def test_what_only_an_opt_in_component_fixes_does_not_fail_the_exit_code(tmp_path):
    host = FakeHost.distro(tmp_path, "ubuntu-noble")
    report = doctor.evaluate(agent_facts.collect(str(host)))
    missing = [v for v in report.verdicts if v.status == doctor.MISSING]
    assert [(v.id, v.component) for v in missing if v.id == "kernel.debuginfo"] == [("kernel.debuginfo", "dbgsym")]
    others = [v.id for v in missing if v.component not in doctor.OPT_IN]
    assert report.exit_code == (1 if others else 0), others
    assert doctor.evaluate(agent_facts.collect(str(host)), ["kernel.debuginfo"]).exit_code == 1


# -- sysdig's modern eBPF probe: judged by the capture the role recorded ------------------
RESOLUTE = {"id": "ubuntu", "version_id": "26.04", "codename": "resolute", "name": "Ubuntu 26.04 LTS",
            "like": ["debian"]}
VENDOR_REMEDY = "tracekit setup sysdig --var tracekit_sysdig_repository=vendor"


def sysdig_host(tmp_path, version, option, capture=None, repository="distribution"):
    """full_host with the distribution's sysdig ``version`` (its --help
    offering --modern-bpf or not) and the kernel module DKMS built, and what
    the role recorded of its capture, (result, says) or None."""
    host = full_host(tmp_path)
    host.sysdig(version, kmod=True, modern_bpf=option)
    (host.root / "etc/ansible/facts.d/tracekit_sysdig.fact").unlink()
    if capture:
        host.sysdig_setup(version, *capture, repository=repository)
    facts = agent_facts.collect(str(host))
    facts["kernel_probes"] = dict(PROBES_OK)
    return facts


def test_noble_default_install_passes_doctor(tmp_path):
    """Ubuntu 24.04's sysdig 0.36.0+repack: no --modern-bpf, the kernel module
    through DKMS. Nothing setup's defaults could fix is left: exit 0."""
    facts = sysdig_host(tmp_path, "0.36.0", False, ("not_built", "sysdig: unrecognized option '--modern-bpf'"))
    report = doctor.evaluate(facts)
    verdicts = {v.id: v for v in report.verdicts}
    assert verdicts["sysdig.kmod"].status == doctor.READY
    modern = verdicts["sysdig.modern-ebpf"]
    assert (modern.status, modern.reason, modern.remedy) == (
        doctor.UNAVAILABLE, "sysdig 0.36.0 is built without the modern eBPF probe (its capture says: sysdig: "
        "unrecognized option '--modern-bpf')", VENDOR_REMEDY)
    assert [v.id for v in report.verdicts if v.status == doctor.MISSING] == [] and report.exit_code == 0


def test_noble_sysdig_without_a_record_is_judged_by_its_options(tmp_path):
    facts = sysdig_host(tmp_path, "0.36.0", False)
    modern = verdict(facts, "sysdig.modern-ebpf")
    assert (modern.status, modern.reason, modern.remedy) == (
        doctor.UNAVAILABLE, "sysdig 0.36.0 is built without the modern eBPF probe (it has no --modern-bpf option)",
        VENDOR_REMEDY)
    assert doctor.evaluate(facts).exit_code == 0


def test_resolute_sysdig_that_offers_the_option_without_the_probe(tmp_path):
    facts = sysdig_host(tmp_path, "0.40.0", True, ("not_built", "MODERN_BPF engine is not supported in this build"))
    change(facts, {"host.distro": RESOLUTE})
    assert facts["tools"]["sysdig"]["drivers"]["modern_bpf_option"] is True
    report = doctor.evaluate(facts)
    modern = next(v for v in report.verdicts if v.id == "sysdig.modern-ebpf")
    assert (modern.status, modern.reason, modern.remedy, modern.component) == (
        doctor.UNAVAILABLE, "sysdig 0.40.0 is built without the modern eBPF probe (its capture says: MODERN_BPF "
        "engine is not supported in this build)", VENDOR_REMEDY, None)
    assert report.exit_code == 0


def test_an_offered_option_with_no_capture_recorded_is_unknown(tmp_path):
    """--help alone cannot tell (26.04's build offers the option): setup's
    capture can, and setup with its defaults records it."""
    facts = sysdig_host(tmp_path, "0.40.0", True)
    modern = verdict(facts, "sysdig.modern-ebpf")
    assert (modern.status, modern.remedy) == (doctor.UNKNOWN, "tracekit setup sysdig")
    assert modern.reason == ("sysdig 0.40.0 offers --modern-bpf, but only a capture shows whether its build has the "
                             "probe (none recorded for this sysdig and kernel)")
    assert doctor.evaluate(facts).exit_code == 0
    # A record of another sysdig says nothing about this one.
    other = sysdig_host(tmp_path / "other", "0.40.0", True, ("captured", "an event"))
    change(other, {"setup.components.sysdig.modern_ebpf_capture.sysdig": "0.39.0"})
    assert verdict(other, "sysdig.modern-ebpf").status == doctor.UNKNOWN


def test_a_capture_refused_on_this_kernel_is_unavailable(tmp_path):
    says = "libpman: failed to load BPF object; Initialization issues during scap_init"
    facts = sysdig_host(tmp_path, "0.40.1", True, ("failed", says), repository="vendor")
    modern = verdict(facts, "sysdig.modern-ebpf")
    assert (modern.status, modern.remedy) == (doctor.UNAVAILABLE, None)
    assert modern.reason == ("the modern eBPF probe of sysdig 0.40.1 does not capture on kernel %s (its capture "
                             "says: %s)" % (NOBLE, says))
    # Refused on another kernel: this one is untried.
    change(facts, {"setup.components.sysdig.modern_ebpf_capture.kernel": "6.8.0-50-generic"})
    assert verdict(facts, "sysdig.modern-ebpf").status == doctor.UNKNOWN


def test_a_capture_is_ready_only_where_the_kernel_can_too(tmp_path):
    facts = sysdig_host(tmp_path, "0.40.1", True, ("captured", "an event"), repository="vendor")
    assert verdict(facts, "sysdig.modern-ebpf").status == doctor.READY
    change(facts, {"kernel_probes.bpf_prog_load": "EPERM (Operation not permitted)",
                   "process.capabilities": {"CAP_SYS_ADMIN": False, "CAP_BPF": False, "CAP_PERFMON": False}})
    refused = verdict(facts, "sysdig.modern-ebpf")
    assert (refused.status, refused.reason) == (doctor.UNKNOWN, "loading BPF needs CAP_BPF and CAP_PERFMON (uid 0 "
                                                                "lacks them)")
    change(facts, {"kernel_probes.bpf_prog_load": "ok", "btf.vmlinux": False})
    assert verdict(facts, "sysdig.modern-ebpf").reason == "no /sys/kernel/btf/vmlinux"


def test_the_vendors_sysdig_without_the_probe_is_not_sent_to_the_vendor_again(tmp_path):
    facts = sysdig_host(tmp_path, "0.40.1", True, ("not_built", "MODERN_BPF engine is not supported in this build"),
                        repository="vendor")
    modern = verdict(facts, "sysdig.modern-ebpf")
    assert modern.status == doctor.UNAVAILABLE and "tracekit" not in modern.remedy


def test_sysdig_remedies_on_a_release_setup_refuses_are_by_hand(tmp_path):
    facts = sysdig_host(tmp_path, "0.40.0", True)
    change(facts, {"host.distro": BIONIC})
    assert "tracekit" not in verdict(facts, "sysdig.modern-ebpf").remedy
    change(facts, {"tools.sysdig.drivers.modern_bpf_option": False})
    assert "tracekit" not in verdict(facts, "sysdig.modern-ebpf").remedy


def test_debuginfod_cannot_serve_a_custom_kernel(tmp_path):
    """This machine's kind of kernel with the distribution's debuginfod configured
    (what a default setup leaves): unavailable, so verify asks no server for it."""
    host = FakeHost.distro(tmp_path, "debian-bookworm", config=False)
    host.kernel("6.18.44-fc-v595")
    host.kconfig("CONFIG_DEBUG_INFO=y\nCONFIG_KPROBES=y\n", where="proc")
    host.write("etc/debuginfod/debian.urls", "https://debuginfod.example\n")
    host.write("etc/environment", 'DEBUGINFOD_URLS="https://debuginfod.example"\n')
    result = agent_facts.collect(str(host))
    result["live"] = True
    found = verdict(result, "kernel.debuginfo")
    assert (found.status, found.component) == (doctor.UNAVAILABLE, None)
    assert found.reason == ("no debug symbols exist for kernel 6.18.44-fc-v595 (not a distribution kernel: no "
                            "package has its vmlinux); the distribution's debuginfod servers index only its own "
                            "kernels")
