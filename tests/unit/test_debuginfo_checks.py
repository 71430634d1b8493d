"""The kernel debug-info checks.  kernel.debuginfo matches the running
kernel's build-id (its /sys/kernel/notes, as captured here) with the DWARF
vmlinux doctor found, or with what debuginfod serves for it: the real client
library, libdebuginfod, against an HTTP server of the test's own on
127.0.0.1, its cache in the test's directory.

The perf and stap checks decide on what perf and stap really print:
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

import contextlib
import ctypes
import http.server
import os
import sys
import threading
import time

import pytest

from tests.unit.fakehost import elf
from tests.unit.test_check_failures import context, script, tool_facts
from tracekit.agent import checks, verify

CAPTURED = os.path.join(os.path.dirname(__file__), "..", "data", "captured", "perf.probe.kernel.debuginfo")


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
                       event="$group:open: (ffffffff811af8b0) filename=\\"$marker\\""
                       printf '%%s\\n' "             cat  4242 [001]  5586.323974: $event" ;;
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


# -- kernel.debuginfo: the running kernel's DWARF, matched by build-id ------------------------------
# This machine's /sys/kernel/notes as captured (tests/data/captured/README.md).
NOTES = os.path.join(os.path.dirname(CAPTURED), "kernel.debuginfo", "sys-kernel-notes-here.bin")
NOTES_BUILD_ID = "240138188b56210d7f185b8e019a165b7c9b4bfa"


def vmlinux(path, notes, dwarf=True):
    """A vmlinux-shaped ELF file: .text, .debug_info (when ``dwarf``) and the
    kernel's notes as its SHT_NOTE section, where vmlinux keeps its build-id."""
    path.write_bytes(elf([".text"] + ([".debug_info"] if dwarf else []), contents={".notes": (7, notes)}))
    return str(path)


def other_build_notes():
    """The captured notes with another build-id (one byte changed)."""
    notes = bytearray(open(NOTES, "rb").read())
    start = bytes(notes).index(bytes.fromhex(NOTES_BUILD_ID))
    notes[start] ^= 0xff
    return bytes(notes)


@pytest.fixture
def this_kernel(monkeypatch):
    """The running kernel's notes: the captured ones (so the build-id is known)."""
    monkeypatch.setattr(checks, "KERNEL_NOTES", NOTES)
    monkeypatch.delenv("DEBUGINFOD_URLS", raising=False)


def kernel_debuginfo(tmp_path, path=None):
    ctx = context(tmp_path)
    ctx.facts["debuginfo"] = {"vmlinux": path}
    return checks.run_check(checks.CHECKS_BY_ID["kernel.debuginfo"], ctx)


def test_vmlinux_of_the_running_kernel(tmp_path, this_kernel):
    path = vmlinux(tmp_path / "vmlinux", open(NOTES, "rb").read())
    result = kernel_debuginfo(tmp_path, path)
    assert (result.status, result.detail, result.evidence) == (
        checks.PASSED, "DWARF of the running kernel (build-id %s) from %s" % (NOTES_BUILD_ID, path), [path])


def test_vmlinux_of_another_build(tmp_path, this_kernel):
    path = vmlinux(tmp_path / "vmlinux", other_build_notes())
    result = kernel_debuginfo(tmp_path, path)
    assert result.status == checks.FAILED
    assert result.detail == "%s is another kernel build's debug info (build-id %s; the running kernel's is %s)" % (
        path, "db" + NOTES_BUILD_ID[2:], NOTES_BUILD_ID)


def test_vmlinux_without_dwarf(tmp_path, this_kernel):
    path = vmlinux(tmp_path / "vmlinux", open(NOTES, "rb").read(), dwarf=False)
    result = kernel_debuginfo(tmp_path, path)
    assert (result.status, result.detail) == (checks.FAILED, "%s has no DWARF (.debug_info)" % path)


def test_no_vmlinux_and_no_debuginfod(tmp_path, this_kernel):
    result = kernel_debuginfo(tmp_path)
    assert (result.status, result.detail) == (checks.FAILED, "no kernel debug info: no vmlinux with DWARF where "
                                              "doctor looked, and DEBUGINFOD_URLS is not set")


def test_running_kernel_without_notes(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "KERNEL_NOTES", str(tmp_path / "notes"))
    result = kernel_debuginfo(tmp_path)
    assert (result.status, result.detail) == (checks.FAILED, "%s: No such file or directory" % (tmp_path / "notes"))


# debuginfod: the real client library (libdebuginfod, as perf and stap use it)
# against a server of the test's own on 127.0.0.1.
def libdebuginfod():
    try:
        ctypes.CDLL("libdebuginfod.so.1")
        return True
    except OSError:
        return False


needs_libdebuginfod = pytest.mark.skipif(not libdebuginfod(), reason="libdebuginfod.so.1 is not installed here")


@contextlib.contextmanager
def debuginfod_server(files, hang=False):
    """An HTTP server on 127.0.0.1 answering /buildid/ID/debuginfo from
    ``files`` ({build-id: bytes}), 404 otherwise; ``hang``: never answers."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if hang:
                time.sleep(30)
                return
            parts = self.path.strip("/").split("/")
            data = files.get(parts[1]) if len(parts) == 3 and parts[0] == "buildid" and parts[2] == "debuginfo" \
                else None
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def debuginfod_cache(tmp_path, monkeypatch):
    """libdebuginfod's cache in the test's directory, not the user's."""
    monkeypatch.setenv("DEBUGINFOD_CACHE_PATH", str(tmp_path / "debuginfod-cache"))


@needs_libdebuginfod
def test_debuginfod_serves_the_running_kernels_debug_info(tmp_path, this_kernel, debuginfod_cache, monkeypatch):
    served = elf([".text", ".debug_info"], contents={".notes": (7, open(NOTES, "rb").read())})
    with debuginfod_server({NOTES_BUILD_ID: served}) as url:
        monkeypatch.setenv("DEBUGINFOD_URLS", url)
        result = kernel_debuginfo(tmp_path)
    assert result.status == checks.PASSED, result
    assert result.detail == "DWARF of the running kernel (build-id %s) from debuginfod (%s)" % (NOTES_BUILD_ID, url)
    assert open(result.evidence[0], "rb").read() == served  # what the client downloaded


@needs_libdebuginfod
def test_debuginfod_without_the_running_kernel(tmp_path, this_kernel, debuginfod_cache, monkeypatch):
    with debuginfod_server({}) as url:
        monkeypatch.setenv("DEBUGINFOD_URLS", url)
        result = kernel_debuginfo(tmp_path)
    assert (result.status, result.detail) == (checks.FAILED, "debuginfod has no debug info for the running kernel "
                                              "(build-id %s): No such file or directory" % NOTES_BUILD_ID)


@needs_libdebuginfod
def test_debuginfod_serving_another_build(tmp_path, this_kernel, debuginfod_cache, monkeypatch):
    # A server answering with the wrong file is caught by its build-id.
    with debuginfod_server({NOTES_BUILD_ID: elf([".debug_info"], contents={".notes": (7, other_build_notes())})}) \
            as url:
        monkeypatch.setenv("DEBUGINFOD_URLS", url)
        result = kernel_debuginfo(tmp_path)
    assert result.status == checks.FAILED and " is another kernel build's debug info (build-id db" in result.detail


@needs_libdebuginfod
def test_a_debuginfod_download_gets_the_checks_budget_and_no_more(tmp_path, this_kernel, debuginfod_cache,
                                                                   monkeypatch):
    check = checks.CHECKS_BY_ID["kernel.debuginfo"]
    scale = 1.2 / check.timeout
    with debuginfod_server({}, hang=True) as url:
        monkeypatch.setenv("DEBUGINFOD_URLS", url)
        ctx = context(tmp_path)
        ctx.timeout_scale = scale
        ctx.facts["debuginfo"] = {"vmlinux": None}
        result = verify.run_within_limit(check, ctx)
    assert result.status == checks.FAILED
    assert result.detail == ("%s timed out: the check's time limit (1.2s) ran out; on a slow host raise it with "
                             "--timeout-scale" % os.path.basename(sys.executable))
    assert check.deadline(scale).seconds * 0.95 <= result.seconds < check.seconds(scale)
