"""Each check's parsing of its tool's output, on real output: captured on the
lab machine for the tools that run here, published by the projects themselves
for the rest (tests/data/captured/README.md says where each file comes from).

The test of a check feeds the function the check calls the text the tool
printed, with the arguments the check passed (meta.json of a capture), and
asserts what the check then decides."""

import json
from pathlib import Path

import pytest

from tracekit.agent import checks, elf, outputs, perfdata

DATA = Path(__file__).resolve().parents[1] / "data" / "captured"


def text(check_id, name):
    return (DATA / check_id / name).read_text()


def call_args(check_id, function):
    """The arguments (repr'd) the check passed ``function`` in the capture."""
    meta = json.loads(text(check_id, "meta.json"))
    return [eval(a) for c in meta["calls"] if c["function"] == function for a in c["args"]]  # noqa: S307 (our own repr)


# -- tracefs: tracepoint, uprobe, uretprobe (captured here) ---------------------------------
def test_tracepoint_trace_lines_and_our_pid():
    marker_trace = text("tracepoint", "parse_marker_pid.txt")
    token, = call_args("tracepoint", "parse_marker_pid")
    pid = outputs.parse_marker_pid(marker_trace, token)
    assert pid == 1551
    assert outputs.parse_marker_pid(marker_trace, "tracekit-pid-000000000000") is None
    needle, = call_args("tracepoint", "parse_trace_lines")
    hits = outputs.parse_trace_lines(text("tracepoint", "parse_trace_lines.txt"), needle)
    # The check needs 3: the marker opened three times (the 4th is the check's own write).
    assert len(hits) == 4
    assert all(h.startswith("python-%d " % pid) and "sys_openat(dfd: 0xffffff9c" in h for h in hits)
    assert not any(h.startswith("#") for h in hits)


@pytest.mark.parametrize("check_id, field, values", [("uprobe", "n", [1, 2, 3]),
                                                      ("uretprobe", "ret", [3, 5, 7])])
def test_uprobe_values(check_id, field, values):
    name, = call_args(check_id, "parse_trace_lines")
    hits = outputs.parse_trace_lines(text(check_id, "parse_trace_lines.txt"), name)
    assert len(hits) == 3 and all(name in h for h in hits)
    # What _check_uprobe compares with [1, 2, 3] / [3, 5, 7].
    assert [outputs.probe_value(h, field) for h in hits] == values


def test_uretprobe_fields_after_the_address():
    line = outputs.parse_trace_lines(text("uretprobe", "parse_trace_lines.txt"), "tk_uretprobe")[0]
    assert outputs.parse_probe_fields(line) == {"ret": "3"}


# -- kprobe, kretprobe (published: perf-tools, kernel docs) ----------------------------------
def test_kprobe_filename_strings():
    hits = outputs.parse_trace_lines(text("kprobe", "perf-tools-kprobe-filename.txt"), "myopen")
    assert len(hits) == 9
    names = [outputs.parse_probe_fields(h)["filename"] for h in hits]
    assert names[:4] == ["/etc/ld.so.cache", "/lib/x86_64-linux-gnu/libc.so.6",
                         "/usr/lib/locale/locale-archive", "trace_pipe"]
    # The check keeps the hits whose filename names its marker file.
    assert sum("status.new" in n for n in names) == 5


def test_kprobe_untyped_arguments_of_the_kernel_doc():
    hits = outputs.parse_trace_lines(text("kprobe", "kprobetrace-rst-trace.txt"), "myprobe:")
    assert len(hits) == 3
    assert outputs.parse_probe_fields(hits[0]) == {"dfd": "3", "filename": "7fffd1ec4440", "flags": "8000",
                                                   "mode": "0"}
    assert outputs.probe_value(hits[1], "dfd", base=16) == 0xffffff9c


def test_kretprobe_return_values():
    kernel_doc = outputs.parse_trace_lines(text("kretprobe", "kprobetrace-rst-trace.txt"), "myretprobe")
    # Untyped $retval prints hex without 0x (x64): -2 (ENOENT) as 2**64 - 2, then fd 3 twice.
    assert [outputs.probe_value(h, "$retval", base=16) for h in kernel_doc] == [2 ** 64 - 2, 3, 3]
    perf_tools = outputs.parse_trace_lines(text("kretprobe", "perf-tools-kprobe-rval.txt"), "myopen")
    assert [outputs.probe_value(h, "rval", base=16) for h in perf_tools] == [3] * 5 + [9] * 4
    # The check's own field (ret=$retval:s32) is decimal: these hex values are not read as its numbers.
    assert [outputs.probe_value(h, "ret") for h in perf_tools] == [None] * 9


# -- function, function_graph (published: Documentation/trace/ftrace.rst) ----------------------
def test_function_tracer_lines():
    trace = text("ftrace.function", "ftrace-rst-function.txt")
    assert outputs.parse_trace_lines(trace, "fsnotify") == [
        "bash-1994  [002] ....  3082.063031: __fsnotify_parent <-fsnotify_modify",
        "bash-1994  [002] ....  3082.063032: fsnotify <-fsnotify_modify",
        "bash-1994  [002] ....  3082.063032: __srcu_read_lock <-fsnotify",
        "bash-1994  [002] ....  3082.063033: __srcu_read_unlock <-fsnotify"]
    # "FUNCTION" of the header is a comment, not a record.
    assert outputs.parse_trace_lines(trace, "FUNCTION") == []
    pid_trace = text("ftrace.function", "ftrace-rst-set_ftrace_pid.txt")
    assert len(outputs.parse_trace_lines(pid_trace, "do_sys_poll")) == 2
    assert all(line.startswith("yum-updatesd-3111")
               for line in outputs.parse_trace_lines(pid_trace, "<-"))


def test_function_graph_call_trees():
    calls, lines = outputs.parse_function_graph(text("ftrace.function_graph", "ftrace-rst-function_graph.txt"),
                                                "do_sys_open")
    assert calls == ["   0)               |    do_sys_open() {"]
    assert len(lines) == 16 and lines[0].endswith("sys_open() {")
    calls, _ = outputs.parse_function_graph(text("ftrace.function_graph", "ftrace-rst-function_graph.txt"),
                                            "__might_sleep")
    assert len(calls) == 2  # leaf calls: "__might_sleep();"
    proc_calls, proc_lines = outputs.parse_function_graph(
        text("ftrace.function_graph", "ftrace-rst-funcgraph-proc.txt"), "d_free")
    assert len(proc_calls) == 1 and "sh-4802" in proc_calls[0]  # funcgraph-proc's TASK/PID column
    assert outputs.parse_function_graph(text("ftrace.function_graph", "ftrace-rst-funcgraph-proc.txt"),
                                        "do_sys_open")[0] == []
    # Names, not substrings; globs as set_graph_function takes them (`tracekit funcgraph 'vfs_*'`).
    sample = text("ftrace.function_graph", "ftrace-rst-function_graph.txt")
    assert [c.strip() for c in outputs.parse_function_graph(sample, "sys_open")[0]] == ["0)               |  sys_open() {"]
    assert len(outputs.parse_function_graph(sample, "*sys_open")[0]) == 2
    assert len(outputs.parse_function_graph(sample, "_spin_*")[0]) == 2


# -- trace-cmd (published: trace-cmd-report(1)) -----------------------------------------------
def test_trace_cmd_function_graph_report():
    # Real trace-cmd report of the check's recording, from the kernel lab.
    report = text("trace-cmd.function_graph", "kernel-lab-report.txt")
    calls, lines = outputs.parse_function_graph(report, "do_sys_openat2")
    assert [c.split("|")[-1].strip() for c in calls] == ["do_sys_openat2() {", "do_sys_openat2() {"]
    assert all(" cat-" in c and "funcgraph_entry:" in c for c in calls)
    assert len(lines) == 700  # every record, and the "cpus=2" header
    assert outputs.parse_function_graph(report, "do_sys_open") == ([], lines)  # names, not substrings


def test_trace_cmd_report_lines():
    report = text("trace-cmd", "trace-cmd-report-1-example.txt")
    hits = outputs.parse_trace_lines(report, "vfs_write")
    assert len(hits) == 3 and all(h.startswith("sleep-16133 [001]") for h in hits)
    assert outputs.parse_trace_lines(report, "do_sys_openat2") == []


def test_trace_cmd_list_refused_here():
    # trace-cmd 3.1.6 on the lab machine, where reading available_filter_functions
    # gives EPERM: the function is not listed, so the check stops there.
    listed = text("trace-cmd", "list-f-do_sys_openat2.txt")
    assert not outputs.trace_cmd_lists(listed, "do_sys_openat2")
    assert "Operation not permitted" in listed


# -- perf (captured here) ------------------------------------------------------------------------
def test_perf_software_counters_pass_and_name_the_unsupported():
    stat = perfdata.parse_perf_stat(text("perf.counters.software", "parse_perf_stat.txt"))
    detail, evidence = checks.judge_perf_software(stat)
    assert detail == ("perf stat: task-clock 1, context-switches 3, cpu-migrations 0, page-faults 58; "
                      "not supported on this host: cycles, instructions")
    assert evidence[-2:] == ["cycles,<not supported>", "instructions,<not supported>"]


def test_perf_hardware_counters_not_supported_fail():
    stat = perfdata.parse_perf_stat(text("perf.counters.hardware", "parse_perf_stat.txt"))
    with pytest.raises(checks.CheckFailed, match=r"^perf stat: cycles <not supported>, "
                                                 r"instructions <not supported>$"):
        checks.judge_perf_hardware(stat)


def test_perf_sampling_frames_in_tk_work():
    script = text("perf.sampling", "perf_script_frames.txt")
    assert outputs.perf_script_frames(script, "tk_work") == 39  # the check wanted >= 5
    assert outputs.perf_script_frames(script, "main") == 39
    assert outputs.perf_script_frames(script, "tk_wor") == 0  # names, not substrings


def test_flamegraph_stacks_through_tk_work():
    folded = perfdata.fold_perf_script(text("perf.flamegraph", "fold_perf_script.txt"))
    in_work = perfdata.stacks_through(folded, "tk_work")
    assert folded.samples == 35 and sum(in_work.values()) == 35
    assert in_work["tracekit-target;__libc_start_call_main;main;tk_work"] == 33
    # Samples that caught an interrupt in tk_work count too: it is below them on the stack.
    assert sum(n for stack, n in in_work.items() if not stack.endswith(";tk_work")) == 2
    assert perfdata.stacks_through(folded, "tk_wor") == {}


def test_perf_sched_target_pid_and_times():
    pid = outputs.parse_target_pid(text("perf.sched", "parse_target_pid.txt"))
    assert pid == 1666
    times = perfdata.task_times_for_pid(perfdata.parse_sched_timehist(text("perf.sched",
                                                                           "parse_sched_timehist.txt")), pid)
    assert times is not None and times.run_ms > 0 and times.switches >= 4


def test_perf_sched_without_the_target_line():
    # perf's own lines of the capture, without the target's "pid N".
    perf_only = "".join(line for line in text("perf.sched", "parse_target_pid.txt").splitlines(True)
                        if not line.startswith("pid "))
    with pytest.raises(ValueError, match=r"no 'pid N' line of the probe target in: \[ perf record: Woken up") as info:
        outputs.parse_target_pid(perf_only)
    assert "\n" not in str(info.value)


def test_perf_probe_user_arguments():
    name, = call_args("perf.probe.user", "parse_trace_lines")
    hits = outputs.parse_trace_lines(text("perf.probe.user", "parse_trace_lines.txt"), name)
    assert [outputs.probe_value(h, "n") for h in hits] == [1, 2, 3]


def test_perf_probe_kernel_hits():
    # No perf script output of a kernel perf probe is published by the kernel
    # or perf projects (README): perf prints kprobe- and uprobe-based probe
    # events the same way, so the check's parsing is tested on the perf
    # probe -x capture: the lines naming the probe event are its hits.
    name, = call_args("perf.probe.user", "parse_trace_lines")
    script = text("perf.probe.user", "parse_trace_lines.txt")
    assert len(outputs.parse_trace_lines(script, name)) == 3
    assert outputs.parse_trace_lines(script, "tk_pk_00000000_1") == []


# -- execsnoop: libbpf-tools (captured here), bcc (published) --------------------------------------
def test_libbpf_tools_execsnoop_row_with_our_marker():
    rows = outputs.parse_execsnoop(text("libbpf-tools", "parse_execsnoop.txt"))
    assert len(rows) == 1
    row = rows[0]
    assert (row.comm, row.pid, row.ppid, row.ret) == ("sh", 1752, 1551, 0)
    assert row.args.startswith("/bin/sh -c : tkmark")
    assert checks.execs_with([text("libbpf-tools", "parse_execsnoop.txt")], "tkmarke41494652e") == [row.line]


def test_bcc_execsnoop_examples():
    rows = outputs.parse_execsnoop(text("bcc", "execsnoop_example.txt"))
    assert len(rows) == 9 and rows[0].comm == "bash" and rows[0].args == "/usr/bin/man ls"
    assert rows[3].args == "/usr/bin/nroff -mandoc -rLL=169n -rLT=169n -Tutf8"
    failed = [r for r in outputs.parse_execsnoop(text("bcc", "execsnoop_example-x.txt")) if r.ret != 0]
    assert len(failed) == 3 and {r.ret for r in failed} == {-2}
    timed, = outputs.parse_execsnoop(text("bcc", "execsnoop_example-t.txt"))
    assert (timed.comm, timed.pid, timed.args) == ("mount", 18049, "/bin/mount -p")
    with_ppid = outputs.parse_execsnoop(text("bcc", "execsnoop_example-l.txt"))
    assert {r.ppid for r in with_ppid} == {4146419}
    assert checks.execs_with([text("bcc", "execsnoop_example.txt")], "preconv") == [rows[1].line]


def test_execsnoop_that_never_printed_its_header():
    # bcc's execsnoop on the lab machine: no kernel headers, no BPF program.
    here = text("bcc", "execsnoop-bpfcc-here.txt")
    with pytest.raises(ValueError, match=r"^no execsnoop header \(PCOMM ... ARGS\) in: sh: 1: modprobe: not found$"):
        outputs.parse_execsnoop(here)
    with pytest.raises(checks.CheckFailed, match="^execsnoop-bpfcc: no execsnoop header"):
        checks.execs_with([here], "tkmark", "execsnoop-bpfcc")


# -- bpftrace: tracepoint, uprobe (captured here), kprobe (published) --------------------------------
def test_bpftrace_tracepoint_count():
    out = text("bpftrace.tracepoint", "parse_bpftrace_maps.txt")
    assert outputs.parse_bpftrace_maps(out) == {"opens": 3}  # RLIMIT_MEMLOCK warning and cat's output ignored


def test_bpftrace_uprobe_count_and_sum():
    maps = outputs.parse_bpftrace_maps(text("bpftrace.uprobe", "parse_bpftrace_maps.txt"))
    assert maps == {"argsum": 6, "calls": 3}


def test_bpftrace_kprobe_maps():
    assert outputs.parse_bpftrace_maps(text("bpftrace.kprobe", "reference-guide-interval.txt")) == {"opens": 2}
    assert outputs.parse_bpftrace_maps(text("bpftrace.kprobe", "reference-guide-count.txt")) == {"reads": 119}


# -- bpftrace --info (each supported release's bpftrace, captured on this kernel) ----------------------
@pytest.mark.parametrize("capture, version, btf, probe_types", [
    # 0.14's libbpf cannot read this 6.18 kernel's BTF; "btf (depends on Build:libbpf): no".
    ("jammy-0.14.0", "v0.14.0", False, {"kprobe": True, "tracepoint": True, "kfunc": False}),
    ("bookworm-0.17.0", "v0.17.0", True, {"kprobe_multi": False, "raw_tp_special": True}),
    ("noble-0.20.2", "v0.20.2", True, {"uprobe_multi": True, "iter": False}),
    # Two columns a line from 0.23.
    ("trixie-0.23.2", "v0.23.2", True, {"fentry": False, "kprobe_multi": False, "uprobe_multi": True}),
    ("resolute-0.25.0", "v0.25.0", True, {"kprobe_multi": False, "uprobe_multi": True, "kprobe_session": False}),
])
def test_bpftrace_info(capture, version, btf, probe_types):
    info = outputs.parse_bpftrace_info(text("bpftrace.info", capture + ".txt"))
    assert info["build"]["version"] == version
    assert info["kernel_features"]["btf"] is btf
    assert info["kernel_features"]["Instruction limit"] == "1000000"
    assert {name: info["probe_types"][name] for name in probe_types} == probe_types
    assert info["system"]["OS"] == "Linux 6.18.44-fc-v1252 #1 SMP PREEMPT_DYNAMIC @0"


def test_bpftrace_info_columns_and_notes():
    two_columns = outputs.parse_bpftrace_info(text("bpftrace.info", "trixie-0.23.2.txt"))
    assert two_columns["kernel_helpers"]["get_ns_current_pid_tgid"] is True
    assert two_columns["kernel_helpers"]["lookup_percpu_elem"] is True
    assert two_columns["kernel_helpers"]["override_return"] is False
    assert two_columns["build"]["liblldb (DWARF support)"] is False
    old = outputs.parse_bpftrace_info(text("bpftrace.info", "jammy-0.14.0.txt"))
    assert old["kernel_features"]["uprobe refcount"] is True  # "(depends on ...)" dropped from the key
    assert old["build"]["libbpf"] is True and old["build"]["LLVM"] == "11.1.0"


@pytest.mark.parametrize("not_info", ["", "bpftrace v0.20.2\n", "ERROR: something\n",
                                      "System\n  OS: Linux 6.8.0\n"])
def test_bpftrace_info_of_other_text(not_info):
    assert outputs.parse_bpftrace_info(not_info) is None


# -- bpftrace running into a limit of the host ------------------------------------------------------------
@pytest.mark.parametrize("directory, capture, line", [
    ("bpftrace.tracepoint", "resolute-0.25.0-no-proc-modules.txt",
     "ERROR: Failed to open kernel function info: Error reading modules from /proc/modules "
     "(No such file or directory)"),
    ("bpftrace.uprobe", "resolute-0.25.0-no-proc-modules.txt",
     "ERROR: Failed to open kernel function info: Error reading modules from /proc/modules "
     "(No such file or directory)"),
    ("bpftrace.tracepoint", "jammy-0.14.0-no-btf-no-headers.txt",
     "ERROR: Include headers with missing type definitions or install BTF information to your system."),
])
def test_bpftrace_limits_recognised(directory, capture, line):
    meaning, seen = outputs.parse_bpftrace_limit(text(directory, capture))
    assert seen == line
    assert meaning == next(m for m, pattern in outputs.BPFTRACE_LIMITS if pattern.search(line))


@pytest.mark.parametrize("directory, capture", [
    ("bpftrace.uprobe", "jammy-0.14.0-no-btf-no-headers.txt"),  # it worked
    ("bpftrace.tracepoint", "parse_bpftrace_maps.txt"),
])
def test_bpftrace_output_without_a_limit(directory, capture):
    assert outputs.parse_bpftrace_limit(text(directory, capture)) is None


def test_bpftrace_other_errors_are_no_limit():
    # A variant doctor does not know stays a failure with bpftrace's own words.
    assert outputs.parse_bpftrace_limit("ERROR: Failed to open kernel function info: Could not read events\n") is None
    assert outputs.parse_bpftrace_limit("/bpftrace/include/clang_workarounds.h:14:10: fatal error: "
                                        "'linux/types.h' file not found\n") is None


# -- systemtap (published: the SystemTap Beginners Guide's dropwatch.stp output) ------------------------
def test_stap_dropwatch_report():
    report = outputs.parse_stap_dropwatch(text("systemtap.dropwatch", "beginners-guide-dropwatch-output.txt"))
    assert report.started and report.stopped and report.reports == 3
    assert report.drops == {"unix_stream_recvmsg": 1762 + 467 + 446, "tun_do_read": 4 + 6 + 4,
                            "nf_hook_slow": 2 + 20 + 4}
    assert report.at("nf_hook_slow") == 26 and report.total == 2715


def test_dropwatch_check_decision_on_the_published_output():
    out = text("systemtap.dropwatch", "beginners-guide-dropwatch-output.txt")
    detail, evidence = checks.judge_dropwatch(out, 26, 40000)
    assert evidence == ["2675 packets dropped at unix_stream_recvmsg", "26 packets dropped at nf_hook_slow"]
    assert detail.endswith("2675 drops counted at unix_stream_recvmsg")
    with pytest.raises(checks.CheckFailed, match=r"sent 3000 datagrams to closed port 127.0.0.1:40000, but no "
                                                 r"location counted 3000 drops \(saw 2675 at unix_stream_recvmsg, "):
        checks.judge_dropwatch(out, 3000, 40000)


def test_dropwatch_that_never_started_or_finished():
    # stap on the lab machine, which has no kernel build tree.
    with pytest.raises(checks.CheckFailed, match=r"^stap dropwatch: no 'Monitoring for dropped packets' line: the "
                                                 r"drop monitor did not start: Checking \"/lib/modules/"):
        checks.judge_dropwatch(text("systemtap.dropwatch", "stap-here-no-build-tree.txt"), 20, 40000)
    begin_only = text("systemtap.dropwatch", "beginners-guide-dropwatch-output.txt").splitlines()[0]
    with pytest.raises(checks.CheckFailed, match="never printed its report"):
        checks.judge_dropwatch(begin_only + "\n", 20, 40000)


@pytest.mark.parametrize("check_id", ["systemtap.module", "systemtap.bpf"])
def test_stap_begin_end_lines(check_id):
    # The begin/end checks read the same stap output as any script's: its
    # begin and end probes' lines (tokens here: the published script's).
    out = text("systemtap.dropwatch", "beginners-guide-dropwatch-output.txt")
    assert outputs.parse_stap_begin_end(out, outputs.DROPWATCH_BEGIN, outputs.DROPWATCH_END) == [
        "Monitoring for dropped packets", "Stopping dropped packet monitor"]
    with pytest.raises(ValueError, match="stap printed no 'tracekit-end' line"):
        outputs.parse_stap_begin_end(out, "Monitoring", "tracekit-end")


# -- sysdig (published: the sysdig User Guide's -p examples) ----------------------------------------------
@pytest.mark.parametrize("check_id", ["sysdig.kmod", "sysdig.modern-ebpf"])
def test_sysdig_events(check_id):
    events = outputs.parse_sysdig_events(text("sysdig.kmod", "user-guide-p-evt-type.txt"))
    assert [(e.type, e.name) for e in events] == [("open", "/proc/1285/task/1399/stat"),
                                                  ("open", "/proc/1285/task/1400/io"),
                                                  ("open", "/proc/1285/task/1400/statm")]
    starred = outputs.parse_sysdig_events(text("sysdig.kmod", "user-guide-p-star-evt-type.txt"))
    # The check keeps the events whose file name carries its marker's name.
    assert [e.line for e in starred if "task/1400" in e.name] == ["open < /proc/1285/task/1400/io",
                                                                  "open < /proc/1285/task/1400/statm"]
    assert [e.name for e in starred].count("<NA>") == 4


# -- kernel debug info: perf probe -L/-V (published by perf's developers), stap ----------------------------
DEBUGINFO = "perf.probe.kernel.debuginfo"


@pytest.mark.parametrize("name, function, path, count, probeable", [
    # perf 6.15's layout: tabs of the source file after "%7d  " or 9 blanks.
    ("lkml-acme-perf-probe-source-L-icmp_rcv.txt", "icmp_rcv", "/home/acme/git/linux//net/ipv4/icmp.c", 16,
     [0, 2, 8, 9, 17]),
    # The kernel's commit message: the same lines, indented by two blanks.
    ("commit-86c0bf8539e7-perf-probe-L-vfs_read.txt", "vfs_read", "/home/mhiramat/ksrc/linux/fs/read_write.c", 20,
     [0, 1, 2, 4, 6, 8, 11, 12, 13, 15, 16, 17, 18, 20]),
])
def test_perf_probe_source_lines(name, function, path, count, probeable):
    source = outputs.parse_perf_probe_lines(text(DEBUGINFO, name), function)
    assert (source.function, source.path, len(source.lines), source.probeable) == (function, path, count, probeable)
    assert source.lines[0] == (0, source.lines[0][1]) and function in source.lines[0][1]
    assert (None, "{") in source.lines or (1, "{") in source.lines


@pytest.mark.parametrize("name", ["lkml-acme-perf-probe-L-no-source.txt", "perf-probe-L-here-no-debuginfo.txt"])
def test_perf_probe_lines_that_perf_could_not_show(name):
    out = text(DEBUGINFO, name)
    with pytest.raises(ValueError, match=r"^perf probe -L printed no <icmp_rcv@FILE> header: "):
        outputs.parse_perf_probe_lines(out, "icmp_rcv")
    # Only a missing source file, once perf had the DWARF, is told apart.
    assert outputs.perf_probe_source_missing(out) is (name == "lkml-acme-perf-probe-L-no-source.txt")


def test_perf_probe_lines_of_another_function_are_not_these():
    with pytest.raises(ValueError):
        outputs.parse_perf_probe_lines(text(DEBUGINFO, "commit-86c0bf8539e7-perf-probe-L-vfs_read.txt"), "vfs")


def test_perf_probe_variables():
    entry = outputs.parse_perf_probe_vars(text(DEBUGINFO, "lkml-mhiramat-perf-probe-V-vfs_read.txt"), "vfs_read")
    assert entry.locations == {"vfs_read+0": [("char*", "buf"), ("loff_t*", "pos"), ("size_t", "count"),
                                              ("struct file*", "file")]}
    assert entry.names == ["buf", "count", "file", "pos"]
    unknown = outputs.parse_perf_probe_vars(text(DEBUGINFO, "lkml-mhiramat-perf-probe-V-kfree.txt"), "kfree")
    assert unknown.locations == {"kfree+0": [("(unknown_type)", "object")]}
    # A line of the function: one list per probe address.
    line = outputs.parse_perf_probe_vars(text(DEBUGINFO, "commit-dee36a2abb67-perf-probe-V-vfs_read-18.txt"),
                                         "vfs_read")
    assert list(line.locations) == ["vfs_read+217", "vfs_read+226"] and line.names == ["buf", "file", "pos", "ret"]


def test_perf_probe_variables_perf_could_not_list():
    with pytest.raises(ValueError, match=r"^perf probe -V printed no 'Available variables at do_sys_openat2': "
                                         r"Failed to find the path for the kernel: Invalid ELF file$"):
        outputs.parse_perf_probe_vars(text(DEBUGINFO, "perf-probe-V-here-no-debuginfo.txt"), "do_sys_openat2")
    with pytest.raises(ValueError):  # another function's list
        outputs.parse_perf_probe_vars(text(DEBUGINFO, "lkml-mhiramat-perf-probe-V-kfree.txt"), "vfs_read")


def test_perf_script_string_argument_of_a_kernel_probe():
    # What the check matches: the string argument (perf names an unnamed
    # `filename:string` filename_string; the check names its own `filename`).
    hits = outputs.parse_probe_hits(text(DEBUGINFO, "gregg-opensnoop-perf-script-filename-string.txt"), "probe")
    assert [(h.comm, h.pid, h.event) for h in hits][:1] == [("multilog", 19075, "probe:do_sys_open")]
    assert [h.fields["filename_string"] for h in hits] == [".", "./main", "lock", "/proc/net/dev",
                                                           "/proc/net/if_inet6"]


def test_kernel_build_id_from_its_notes():
    # /sys/kernel/notes of the lab machine's kernel: its GNU build-id note
    # first, then the kernel's own (Linux, Xen) notes.
    notes = (DATA / "kernel.debuginfo" / "sys-kernel-notes-here.bin").read_bytes()
    assert elf.note_build_id(notes) == "240138188b56210d7f185b8e019a165b7c9b4bfa"
    assert elf.note_build_id(notes[:30]) is None  # cut inside the note
    assert elf.note_build_id(notes[36:]) is None  # the notes after it carry no build-id


def test_stap_printed_lines():
    # stap on the lab machine (no build tree): nothing it printed is a path.
    out = text("systemtap.dropwatch", "stap-here-no-build-tree.txt")
    assert outputs.parse_printed_lines(out, "/tmp/marker-0123456789ab") == []
    marker = "/tmp/tracekit-check-x/marker-0123456789ab"
    assert outputs.parse_printed_lines("tracekit\n%s\n  %s  \n%s-not\n" % (marker, marker, marker), marker) == \
        [marker, marker]


# -- every check is covered ------------------------------------------------------------------------------
COVERED = {"ftrace.function", "ftrace.function_graph", "tracepoint", "kprobe", "kretprobe", "uprobe",
           "uretprobe", "perf.counters.hardware", "perf.counters.software", "perf.sampling", "perf.flamegraph",
           "perf.sched", "perf.probe.kernel", "perf.probe.user", "trace-cmd", "trace-cmd.function_graph", "bcc",
           "libbpf-tools",
           "bpftrace.kprobe", "bpftrace.uprobe", "bpftrace.tracepoint", "systemtap.module", "systemtap.bpf",
           "systemtap.dropwatch", "sysdig.kmod", "sysdig.modern-ebpf", "kernel.debuginfo",
           "perf.probe.kernel.debuginfo", "systemtap.kernel.debuginfo"}


def test_every_check_has_a_parsing_test_here():
    assert {c.id for c in checks.CHECKS} == COVERED
