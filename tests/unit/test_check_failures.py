"""Every check's failure paths, without root or tracefs: the tool missing,
the tool crashing, and the probe target missing (or the probe never firing).
Each must give a failed Result whose detail is one line a person can act on.

The cases that need root and the real tracefs (a probe defined, then the
traced program crashing; the kernel refusing the function tracer...) are in
tests/host/test_check_failures.py, with the global tracing state compared.

Stand-ins, and why: a real tracing tool cannot be made to crash, or to miss
an event it would see, on demand; and a kernel without syscall tracepoints or
without the open path's function cannot be had here.  So:
- ``crashing`` is an executable that kills itself with SIGSEGV (the way a
  crashing tool dies: the check sees the same wait status);
- ``silent`` prints nothing and exits 0, or (as execsnoop/sysdig) prints only
  what the check waits for before the event and then waits to be stopped;
- a tracefs tree without the syscall events, and a kallsyms without the open
  path's functions, are directories/files the test writes from real content.
"""

import os
import re
import shutil
import stat
import subprocess
import textwrap

import pytest

from tracekit.agent import checks

ARCH = os.uname().machine
TOOL_CHECKS = {
    # check id: facts["tools"] key that names its tool
    "perf.counters.hardware": "perf", "perf.counters.software": "perf", "perf.sampling": "perf",
    "perf.flamegraph": "perf", "perf.sched": "perf", "perf.probe.kernel": "perf", "perf.probe.user": "perf",
    "perf.probe.kernel.debuginfo": "perf",
    "trace-cmd": "trace-cmd", "trace-cmd.function_graph": "trace-cmd", "bcc": "bcc", "libbpf-tools": "libbpf-tools",
    "bpftrace.kprobe": "bpftrace", "bpftrace.uprobe": "bpftrace", "bpftrace.tracepoint": "bpftrace",
    "systemtap.module": "stap", "systemtap.bpf": "stap", "systemtap.dropwatch": "stap",
    "systemtap.kernel.debuginfo": "stap",
    "sysdig.kmod": "sysdig", "sysdig.modern-ebpf": "sysdig",
}
TRACEFS_CHECKS = ("ftrace.function", "ftrace.function_graph", "tracepoint", "kprobe", "kretprobe", "uprobe",
                  "uretprobe")


# Checks that run no tracing tool: their failure paths are in test_debuginfo_checks.py.
NO_TOOL_CHECKS = ("kernel.debuginfo",)


def test_the_cases_cover_every_check():
    assert set(TOOL_CHECKS) | set(TRACEFS_CHECKS) | set(NO_TOOL_CHECKS) == {c.id for c in checks.CHECKS}


def script(path, body):
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def crashing(directory, name):
    # Stand-in: no real tool crashes on demand. This one dies of SIGSEGV, as a
    # crashing tool does (no core file: ulimit -c 0).
    return script(directory / name, """\
        ulimit -c 0
        kill -SEGV $$
        """)


def tool_facts(key, path):
    """facts["tools"] saying the tool ``key`` is at ``path``."""
    if key in ("bcc", "libbpf-tools"):
        return {key: {"found": True, "path": str(path), "tools_dir": str(os.path.dirname(path))}}
    if key == "perf":
        return {"perf": {"found": True, "path": str(path), "usable_path": str(path)}}
    return {key: {"found": True, "path": str(path)}}


def tool_file_name(check_id, key):
    if key == "bcc":
        return "execsnoop"  # tools_dir not ending in sbin: bcc's share/bcc/tools layout
    return {"libbpf-tools": "execsnoop", "stap": "stap"}.get(key, key)


def context(tmp_path, tools=None, tracefs=None, target=None):
    facts = {"kernel": {"arch": ARCH}, "tracefs": {"path": str(tracefs or tmp_path / "no-tracefs")},
             "tools": tools or {}}
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    # timeout_scale: the checks wait 2 s * scale for sysdig to start and up to
    # 15 s * scale for execsnoop to report; nothing real is traced here.
    return checks.Context(facts, workdir=str(work), timeout_scale=0.1, target=target)


def failed(check_id, ctx):
    result = checks.run_check(checks.CHECKS_BY_ID[check_id], ctx)
    assert result.status == checks.FAILED, result
    assert result.detail and "\n" not in result.detail, result.detail
    assert result.evidence == []
    return result.detail


# -- tool missing ---------------------------------------------------------------------------
@pytest.mark.parametrize("check_id", sorted(TOOL_CHECKS))
def test_tool_not_installed(check_id, tmp_path):
    detail = failed(check_id, context(tmp_path, tools={}))
    component = checks.SETUP_COMPONENT[TOOL_CHECKS[check_id]]
    assert detail.endswith(" not installed: install it with `tracekit setup %s`" % component), detail


@pytest.mark.parametrize("check_id", sorted(TOOL_CHECKS))
def test_tool_gone_from_where_doctor_saw_it(check_id, tmp_path):
    key = TOOL_CHECKS[check_id]
    gone = tmp_path / "uninstalled" / tool_file_name(check_id, key)
    detail = failed(check_id, context(tmp_path, tools=tool_facts(key, gone)))
    component = checks.SETUP_COMPONENT[key]
    assert " is not at %s any more: install it again with `tracekit setup %s`" % (gone, component) in detail, detail


# -- tool crashing ----------------------------------------------------------------------------
# Checks that borrow the global tracer when it is idle.
GLOBAL_TRACER_CHECKS = ("trace-cmd.function_graph",)


def global_tracer_tree(tmp_path, current="nop", events=""):
    """The global tracer's files as tracefs shows them (an idle tracer unless
    told): stand-in for the real tracefs, whose global tracer is shared with
    everything on this kernel and may not be borrowed by a unit test."""
    tracefs = tmp_path / "tracing"
    (tracefs / "options").mkdir(parents=True)
    for name, text in (("current_tracer", current + "\n"), ("set_event", events),
                       ("set_graph_function", "#### all functions enabled ####\n"),
                       ("set_ftrace_pid", "no pid\n"), ("options/funcgraph-proc", "0\n"),
                       ("tracing_on", "1\n"), ("available_tracers", "function_graph function nop\n")):
        (tracefs / name).write_text(text)
    return tracefs


@pytest.mark.parametrize("check_id", sorted(TOOL_CHECKS))
def test_tool_crashes(check_id, tmp_path):
    key = TOOL_CHECKS[check_id]
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = crashing(bindir, tool_file_name(check_id, key))
    tracefs = global_tracer_tree(tmp_path) if check_id in GLOBAL_TRACER_CHECKS else None
    detail = failed(check_id, context(tmp_path, tools=tool_facts(key, tool), tracefs=tracefs))
    assert "crashed (SIGSEGV)" in detail, detail
    assert tool.name in detail
    if tracefs:
        # The borrowed tracer is handed back as it was found.
        assert (tracefs / "current_tracer").read_text() == "nop"
        assert (tracefs / "options/funcgraph-proc").read_text() == "0"
        assert (tracefs / "tracing_on").read_text() == "1"


@pytest.mark.parametrize("check_id", GLOBAL_TRACER_CHECKS)
@pytest.mark.parametrize("current, events, why", [
    ("function", "", "current_tracer=function"),
    ("nop", "sched:sched_switch\n", "current_tracer=nop, events enabled")])
def test_global_tracer_in_use_is_skipped_untouched(check_id, current, events, why, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = crashing(bindir, tool_file_name(check_id, TOOL_CHECKS[check_id]))
    tracefs = global_tracer_tree(tmp_path, current, events)
    before = {p.name: p.read_text() for p in tracefs.rglob("*") if p.is_file()}
    result = checks.run_check(checks.CHECKS_BY_ID[check_id],
                              context(tmp_path, tools=tool_facts(TOOL_CHECKS[check_id], tool), tracefs=tracefs))
    assert (result.status, result.detail) == (checks.SKIPPED, "global tracer in use (%s)" % why)
    assert {p.name: p.read_text() for p in tracefs.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("check_id", GLOBAL_TRACER_CHECKS)
def test_global_tracer_without_tracefs(check_id, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = crashing(bindir, tool_file_name(check_id, TOOL_CHECKS[check_id]))
    detail = failed(check_id, context(tmp_path, tools=tool_facts(TOOL_CHECKS[check_id], tool)))
    assert detail == "no tracefs at %s (no current_tracer): mount it" % (tmp_path / "no-tracefs")


# -- tracefs missing (the "tool" of the tracefs checks) -----------------------------------------
@pytest.mark.parametrize("check_id", TRACEFS_CHECKS)
def test_no_tracefs(check_id, tmp_path):
    detail = failed(check_id, context(tmp_path, tracefs=tmp_path / "empty"))
    expected = {"kprobe": "no kprobe_events in", "kretprobe": "no kprobe_events in",
                "uprobe": "no uprobe_events in", "uretprobe": "no uprobe_events in"}.get(
        check_id, "no tracefs at %s (no instances directory): mount it" % (tmp_path / "empty"))
    assert expected in detail, detail


def test_tracefs_without_the_syscall_events(tmp_path):
    # A kernel built without CONFIG_FTRACE_SYSCALLS has tracefs but no
    # syscalls/ events; that kernel cannot be had here, so the tree is a
    # directory holding what such a tracefs has for the check: an instances/
    # directory (an instance is a mkdir in it).
    tracefs = tmp_path / "tracing"
    (tracefs / "instances").mkdir(parents=True)
    detail = failed("tracepoint", context(tmp_path, tracefs=tracefs))
    assert detail == "no syscalls/sys_enter_openat event in tracefs"
    assert os.listdir(tracefs / "instances") == []  # its instance was removed again


# -- probe target missing -----------------------------------------------------------------------
OPEN_PATH_CHECKS = ("ftrace.function", "ftrace.function_graph", "kprobe", "kretprobe", "trace-cmd",
                    "trace-cmd.function_graph", "perf.probe.kernel", "bpftrace.kprobe", "perf.probe.kernel.debuginfo",
                    "systemtap.kernel.debuginfo")


@pytest.fixture
def kallsyms_without_the_open_path(tmp_path, monkeypatch):
    """This kernel's symbol table without do_sys_openat2/do_sys_open (a kernel
    whose open path tracekit does not know; not to be had here)."""
    with open("/proc/kallsyms") as f:
        kept = [line for line in f if line.split()[2:3] not in (["do_sys_openat2"], ["do_sys_open"])]
    assert len(kept) > 1000
    path = tmp_path / "kallsyms"
    path.write_text("".join(kept))
    monkeypatch.setattr(checks, "KALLSYMS", str(path))
    return path


@pytest.mark.parametrize("check_id", OPEN_PATH_CHECKS)
def test_kernel_function_missing(check_id, tmp_path, kallsyms_without_the_open_path):
    key = TOOL_CHECKS.get(check_id)
    tools = {}
    if key:
        # Never run: the check stops at the kernel function lookup.
        bindir = tmp_path / "bin"
        bindir.mkdir()
        tools = tool_facts(key, crashing(bindir, tool_file_name(check_id, key)))
    detail = failed(check_id, context(tmp_path, tools=tools, tracefs="/sys/kernel/tracing"))
    assert detail == ("neither do_sys_openat2 nor do_sys_open in %s: this kernel's open path is not known to "
                      "tracekit" % kallsyms_without_the_open_path)


@pytest.mark.parametrize("check_id", ["uprobe", "uretprobe"])
def test_probe_target_without_tk_work(check_id, tmp_path):
    true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
    detail = failed(check_id, context(tmp_path, target=true))
    assert detail == "probe target %s has no function tk_work to probe" % true


@pytest.mark.parametrize("check_id", ["uprobe", "uretprobe"])
def test_probe_target_gone(check_id, tmp_path):
    gone = tmp_path / "tracekit-target"
    detail = failed(check_id, context(tmp_path, target=str(gone)))
    assert detail == "probe target %s: No such file or directory" % gone


PERF = "/usr/bin/perf"


@pytest.mark.skipif(not os.access(PERF, os.X_OK), reason="perf is not installed at %s" % PERF)
@pytest.mark.parametrize("check_id", ["perf.counters.software", "perf.counters.hardware", "perf.sampling",
                                      "perf.flamegraph"])
def test_perf_workload_missing(check_id, tmp_path):
    # The real perf would be asked to run a target that is not there (perf 6.1
    # then exits 255 and says nothing): the check says so before it runs perf.
    gone = tmp_path / "tracekit-target"
    detail = failed(check_id, context(tmp_path, tools=tool_facts("perf", PERF), target=str(gone)))
    assert detail == "probe target %s: No such file or directory" % gone


# -- the probe never fires -----------------------------------------------------------------------
@pytest.mark.parametrize("check_id", ["bcc", "libbpf-tools"])
def test_execsnoop_that_never_reports_our_exec(check_id, tmp_path):
    # Stand-in: the real execsnoop needs root and BPF, and would see every exec.
    # This one prints the header libbpf-tools' execsnoop printed on the lab
    # machine (tests/data/captured/libbpf-tools) and then reports nothing.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = script(bindir / "execsnoop", """\
        echo 'PCOMM            PID    PPID   RET ARGS'
        exec sleep 60
        """)
    detail = failed(check_id, context(tmp_path, tools=tool_facts(check_id, tool)))
    assert detail == "execsnoop did not report the exec of our marker"


@pytest.mark.parametrize("check_id", ["sysdig.kmod", "sysdig.modern-ebpf"])
def test_sysdig_capture_without_our_events(check_id, tmp_path):
    # Stand-in: a real sysdig capture needs its driver (not loadable here).
    # Capturing, it waits to be stopped; reading (-r), it prints nothing.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = script(bindir / "sysdig", """\
        case " $* " in *" -r "*) exit 0 ;; esac
        exec sleep 60
        """)
    detail = failed(check_id, context(tmp_path, tools=tool_facts("sysdig", tool)))
    assert detail == "sysdig capture has no event on our marker file"


@pytest.mark.parametrize("check_id", ["systemtap.module", "systemtap.bpf", "systemtap.dropwatch"])
def test_stap_whose_probes_never_fire(check_id, tmp_path):
    # Stand-in: stap cannot run its probes here (no modules, no memlock); this
    # one exits 0 having printed nothing, as a script whose probes never fired.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = script(bindir / "stap", "exit 0\n")
    detail = failed(check_id, context(tmp_path, tools=tool_facts("stap", tool)))
    expected = {"systemtap.dropwatch": "stap dropwatch: no 'Monitoring for dropped packets' line: the drop "
                                       "monitor did not start: "}.get(check_id, "stap printed no 'tracekit-begin' "
                                                                               "line: (no output)")
    assert detail == expected, detail


def test_stap_kernel_function_that_never_printed_the_filename(tmp_path):
    # Stand-in as above (no module runtime, no kernel debug info here): stap
    # exits 0 and the probe printed nothing, so $filename was never seen.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = script(bindir / "stap", "exit 0\n")
    ctx = context(tmp_path, tools=tool_facts("stap", tool))
    detail = failed("systemtap.kernel.debuginfo", ctx)
    assert re.fullmatch(r'stap kernel\.function\("%s"\) printed no \$filename %s/marker-[0-9a-f]{12}: \(no output\)'
                        % (checks.kernel_open_function(), re.escape(ctx.workdir)), detail), detail


# -- kernel debug info (perf probe -L/-V) -------------------------------------------------------
CAPTURED = os.path.join(os.path.dirname(__file__), "..", "data", "captured", "perf.probe.kernel.debuginfo")


def perf_probe_queries(directory, lines, variables):
    """A perf that answers `perf probe -L` and `-V` with the given files' text
    (real perf output: tests/data/captured/README.md) and does nothing else.
    Stand-in: the real perf needs the kernel's debug info for both, which no
    package has for this machine's kernel."""
    return script(directory / "perf", """\
        case "$2" in
          -L) cat '%s' ;;
          -V) cat '%s' ;;
        esac
        """ % (lines, variables))


def test_perf_probe_kernel_debuginfo_without_debug_info(tmp_path):
    # perf 6.1 on this machine, which has no vmlinux with DWARF: -L fails first.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    perf = perf_probe_queries(bindir, os.path.join(CAPTURED, "perf-probe-L-here-no-debuginfo.txt"),
                              os.path.join(CAPTURED, "perf-probe-V-here-no-debuginfo.txt"))
    detail = failed("perf.probe.kernel.debuginfo", context(tmp_path, tools=tool_facts("perf", perf)))
    assert detail == ("perf probe -L %s showed no source lines: Failed to find the path for the kernel: Invalid ELF "
                      "file | Error: Failed to show lines." % checks.kernel_open_function())


def test_perf_probe_kernel_debuginfo_no_variables_listed(tmp_path):
    # -L fine (source lines, as perf prints them), -V as perf fails here.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fn = checks.kernel_open_function()
    lines = tmp_path / "lines.txt"
    lines.write_text(open(os.path.join(CAPTURED, "lkml-acme-perf-probe-source-L-icmp_rcv.txt")).read().replace(
        "<icmp_rcv@", "<%s@" % fn))
    perf = perf_probe_queries(bindir, lines, os.path.join(CAPTURED, "perf-probe-V-here-no-debuginfo.txt"))
    detail = failed("perf.probe.kernel.debuginfo", context(tmp_path, tools=tool_facts("perf", perf)))
    assert detail == ("perf probe -V %s listed no variables: Failed to find the path for the kernel: Invalid ELF "
                      "file | Error: Failed to show vars." % fn)


def test_perf_probe_kernel_debuginfo_without_the_filename_variable(tmp_path):
    # -L cannot show the source (perf's own words when the source is not
    # here); -V lists variables, but not `filename`: vfs_read's, as the
    # kernel's commit message shows them, under this kernel's function name.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fn = checks.kernel_open_function()
    variables = tmp_path / "vars.txt"
    variables.write_text(open(os.path.join(CAPTURED, "commit-dee36a2abb67-perf-probe-V-vfs_read-18.txt")).read()
                         .replace("vfs_read", fn))
    perf = perf_probe_queries(bindir, os.path.join(CAPTURED, "lkml-acme-perf-probe-L-no-source.txt"), variables)
    detail = failed("perf.probe.kernel.debuginfo", context(tmp_path, tools=tool_facts("perf", perf)))
    assert detail == "perf probe -V %s lists no variable 'filename' (saw buf, file, pos, ret)" % fn


@pytest.mark.skipif(not shutil.which("gcc"), reason="no gcc here to build the ELF stand-in")
def test_libbpf_tools_execsnoop_under_its_suffixed_name(tmp_path):
    # Debian 13 and Ubuntu 26.04 install it as execsnoop-libbpf. Stand-in: a
    # compiled C program (the tool must be an ELF binary, as libbpf-tools'
    # are) that prints libbpf-tools' header and then reports nothing.
    source = tmp_path / "stand-in.c"
    source.write_text('#include <stdio.h>\n#include <unistd.h>\nint main(void) {\n'
                      '    puts("PCOMM            PID    PPID   RET ARGS"); fflush(stdout); sleep(60); return 0;\n}\n')
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    subprocess.run(["gcc", "-o", str(sbin / "execsnoop-libbpf"), str(source)], check=True, timeout=60)
    facts = {"libbpf-tools": {"found": True, "path": str(sbin / "execsnoop-libbpf"), "tools_dir": str(sbin)}}
    detail = failed("libbpf-tools", context(tmp_path, tools=facts))
    assert detail == "execsnoop-libbpf did not report the exec of our marker"


# -- bpftrace running into a limit of the host ----------------------------------------------------------
CAPTURED_ROOT = os.path.join(os.path.dirname(__file__), "..", "data", "captured")


def replaying_bpftrace(directory, capture_dir, capture):
    # Stand-in: the hosts these outputs come from (Ubuntu 22.04's and 26.04's
    # bpftrace on this kernel) are not this one; this prints what the real
    # one printed there (tests/data/captured) and exits 1 as it did.
    return script(directory / "bpftrace", """\
        cat '%s'
        exit 1
        """ % os.path.join(CAPTURED_ROOT, capture_dir, capture))


@pytest.mark.parametrize("check_id, capture, seen", [
    ("bpftrace.tracepoint", "resolute-0.25.0-no-proc-modules.txt",
     "Failed to open kernel function info: Error reading modules from /proc/modules"),
    ("bpftrace.uprobe", "resolute-0.25.0-no-proc-modules.txt",
     "Failed to open kernel function info: Error reading modules from /proc/modules"),
    ("bpftrace.tracepoint", "jammy-0.14.0-no-btf-no-headers.txt",
     "Include headers with missing type definitions or install BTF information"),
])
def test_bpftrace_host_limit_is_a_skip_quoting_bpftrace(check_id, capture, seen, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = replaying_bpftrace(bindir, check_id, capture)
    true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
    result = checks.run_check(checks.CHECKS_BY_ID[check_id],
                              context(tmp_path, tools=tool_facts("bpftrace", tool), target=true))
    assert result.status == checks.SKIPPED, result
    assert result.detail.startswith("bpftrace %s: " % checks.HostLimit.MARK), result.detail
    assert seen in result.detail and "\n" not in result.detail
    assert result.detail.endswith("`tracekit doctor` should have predicted it")


def test_bpftrace_unknown_error_stays_a_failure(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = script(bindir / "bpftrace", """\
        echo "ERROR: Failed to open kernel function info: Error reading events from /sys/kernel/tracing/available_events"
        exit 1
        """)
    detail = failed("bpftrace.tracepoint", context(tmp_path, tools=tool_facts("bpftrace", tool)))
    assert detail == ("bpftrace exited 1: ERROR: Failed to open kernel function info: Error reading events from "
                      "/sys/kernel/tracing/available_events")
