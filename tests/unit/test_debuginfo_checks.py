"""The kernel debug-info checks decide on what perf and stap really print:
perf.probe.kernel.debuginfo passes on `perf probe -L`/`-V` output as perf
prints it (tests/data/captured/perf.probe.kernel.debuginfo, published by the
kernel's perf developers) and a `perf script` line whose string argument is
the marker's path; it says, and does not fail, when -L has the DWARF but not
the source file; systemtap.kernel.debuginfo passes when stap printed the path.
Their failure paths are in test_check_failures.py.

Stand-ins, and why: both checks need the kernel's debug info and kprobes (and
stap its module runtime), none of which this machine has (LAB.md).  So perf
and stap are shell scripts that answer with real output: perf's -L/-V files as
published, its `perf script` line in the format of the published one
(gregg-opensnoop-perf-script-filename-string.txt) with this run's marker, and
stap the path its `-c` command opens.
"""

import os

from tests.unit.test_check_failures import CAPTURED, context, script, tool_facts
from tracekit.agent import checks


def stand_in_perf(directory, lines, variables, calls):
    """perf probe -L/-V answer with ``lines``/``variables``; perf probe -a
    says it added the event; perf record runs the command and keeps the
    event's group and the command's argument (the marker) as its "data";
    perf script prints one event with that path as ``filename``.  Every
    call is appended to ``calls``."""
    return script(directory / "perf", """\
        echo "$*" >> '%s'
        case "$1 $2" in
          "probe -L") cat '%s' ;;
          "probe -V") cat '%s' ;;
          "probe -a") printf 'Added new event:\\n  %%s    (on %%s)\\n' "${3%%%%=*}" "${3#*=}" ;;
          "record -q") printf '%%s %%s\\n' "${4%%:*}" "$9" > "$6"; "$8" "$9" > /dev/null ;;
          "script -i") read group marker < "$3"
                       printf '%%s\\n' "             cat  4242 [001]  5586.323974: $group:open: (ffffffff811af8b0) filename=\\"$marker\\"" ;;
        esac
        """ % (calls, lines, variables))


def this_kernels(path, tmp_path, name):
    """A captured file, adapted here (the file stays as published): its
    function renamed to this kernel's open path function, which the check
    asks perf about, and in a variable listing vfs_read's ``buf`` (a char*
    too) named as the open path's ``filename``."""
    fn = checks.kernel_open_function()
    text = open(os.path.join(CAPTURED, path)).read()
    for published in ("icmp_rcv", "vfs_read"):
        text = text.replace(published, fn)
    out = tmp_path / name
    out.write_text(text.replace("buf", "filename") if "Available variables" in text else text)
    return out


def run(tmp_path, lines):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    variables = this_kernels("lkml-mhiramat-perf-probe-V-vfs_read.txt", tmp_path, "vars.txt")
    perf = stand_in_perf(bindir, lines, variables, calls)
    ctx = context(tmp_path, tools=tool_facts("perf", perf))
    result = checks.run_check(checks.CHECKS_BY_ID["perf.probe.kernel.debuginfo"], ctx)
    return result, calls.read_text().splitlines(), ctx


def test_perf_probe_with_debug_info_and_source(tmp_path):
    fn = checks.kernel_open_function()
    result, calls, ctx = run(tmp_path, this_kernels("lkml-acme-perf-probe-source-L-icmp_rcv.txt", tmp_path, "l.txt"))
    assert result.status == checks.PASSED, result
    assert result.detail.startswith("perf probe with %s's debug info: 16 source lines of "
                                    "/home/acme/git/linux//net/ipv4/icmp.c, 5 probe-able; variables count, file, "
                                    "filename, pos; filename=%s/marker-" % (fn, ctx.workdir)), result.detail
    assert result.detail.endswith(" decoded")
    # The probe fetched the variable by name, in a group of its own, and was deleted again.
    added = next(c for c in calls if c.startswith("probe -a "))
    group = added.split()[2].split(":")[0]
    assert added == "probe -a %s:open=%s filename=filename:string" % (group, fn)
    assert group.startswith("tk_pkd_")
    assert [c.split()[0] for c in calls] == ["probe", "probe", "probe", "record", "probe", "script"]
    assert calls[4] == "probe -q -d %s:*" % group  # deleted once the recording ended


def test_perf_probe_without_the_source_files_says_so(tmp_path):
    # The debug-symbol packages carry the DWARF but no source: perf's own words then.
    result, calls, _ = run(tmp_path, os.path.join(CAPTURED, "lkml-acme-perf-probe-L-no-source.txt"))
    assert result.status == checks.PASSED, result
    assert ": source lines not shown (perf probe -L: the kernel's source files are not on this host);" in result.detail


def test_stap_that_printed_the_marker_path(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # Runs its -c command and prints the path that command opens, as the
    # check's probe does for our cat (stap's output and cat's, merged).
    stap = script(bindir / "stap", """\
        while [ $# -gt 0 ]; do [ "$1" = -c ] && command=$2; shift; done
        $command
        echo "${command#* }"
        """)
    ctx = context(tmp_path, tools=tool_facts("stap", stap))
    result = checks.run_check(checks.CHECKS_BY_ID["systemtap.kernel.debuginfo"], ctx)
    assert result.status == checks.PASSED, result
    assert result.detail.startswith('stap kernel.function("%s"): $filename = %s/marker-'
                                    % (checks.kernel_open_function(), ctx.workdir))


def test_the_stap_script_names_the_variable_and_filters_our_command():
    text = checks.STAP_KERNEL_FUNCTION % ("do_sys_openat2", checks.OPEN_FILENAME)
    assert text == ('probe kernel.function("do_sys_openat2") {\n'
                    '  if (pid() == target()) printf("%s\\n", user_string2($filename, "<fault>"))\n}')
