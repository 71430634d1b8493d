"""Smoke traces: one small, real trace per tracing method, each observing
events it caused itself.

Every check leaves the host's tracing state as it found it: probes get
unique names in the "tracekit" group, events are recorded in a private
tracefs instance, and everything created is removed in ``finally`` blocks.

Standard library only (see tracekit/agent/__init__.py): the same checks run
here and, shipped by Ansible, on remote hosts.
"""

import contextlib
import os
import pkgutil
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from . import elf, outputs, perfdata
from .facts import find_libbpf_tool

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
GROUP = "tracekit"
# Register holding a function's first (and second) integer argument.
ARG_REGS = {"x86_64": ("%di", "%si"), "aarch64": ("%x0", "%x1"), "riscv64": ("%a0", "%a1"),
            "ppc64le": ("%r3", "%r4"), "s390x": ("%r2", "%r3")}
# The `tracekit setup` component that installs each tool.
SETUP_COMPONENT = {"perf": "perf", "trace-cmd": "perf", "bcc": "bcc", "libbpf-tools": "bcc",
                   "bpftrace": "bpftrace", "stap": "systemtap", "sysdig": "sysdig"}
# The kernel's symbol table: where the open path's function is looked up.
KALLSYMS = "/proc/kallsyms"
OPEN_FUNCTIONS = ("do_sys_openat2", "do_sys_open")  # do_sys_openat2 from 5.6


class CheckFailed(Exception):
    """The trace did not happen; the message says what was seen instead."""


class CheckSkipped(Exception):
    """The trace could not be tried now without disturbing someone else's
    tracing (e.g. the global tracer is in use); the message says whose."""


class HostLimit(CheckSkipped):
    """The tool ran into a limit of this host that doctor names as a reason
    for `unavailable` (or `missing`): verify skips it as doctor's verdict
    would have; the message quotes the tool.  Only recognised messages
    (tracekit.agent.outputs) count: any other failure stays a failure."""

    # Every such message says so (tests tell these skips from the others by it).
    MARK = "ran into a limit of this host"


class Result:
    def __init__(self, check_id, status, detail, evidence=(), seconds=0.0):
        self.id, self.status, self.detail = check_id, status, detail
        self.evidence, self.seconds = list(evidence), seconds

    def to_dict(self):
        return {"id": self.id, "status": self.status, "detail": self.detail,
                "evidence": self.evidence, "seconds": round(self.seconds, 3)}

    def __repr__(self):
        return "Result(%s, %s, %r)" % (self.id, self.status, self.detail)


class Context:
    """What the checks share: a work directory, the compiled target, tools."""

    def __init__(self, facts, workdir=None, timeout_scale=1.0, artifacts=None, target=None):
        self.facts = facts
        # Where checks leave files for the person (flame graph SVG, trace
        # excerpts); None: nowhere.
        self.artifacts = artifacts
        self.arch = (facts.get("kernel") or {}).get("arch") or os.uname().machine
        self.tracefs = (facts.get("tracefs") or {}).get("path") or "/sys/kernel/tracing"
        self.timeout_scale = timeout_scale
        self._own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="tracekit-check-")
        # A prebuilt probe target instead of the one compiled from target.c.
        self._target = target
        self._serial = 0
        self.token = uuid.uuid4().hex[:8]
        # The running check's Deadline (run_check sets it): its tools' timeout.
        self.deadline = None

    def close(self):
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def unique(self, stem):
        """A probe/instance name no other run on this kernel uses: a random
        token per run (pids repeat across PID namespaces sharing a kernel)."""
        self._serial += 1
        return "tk_%s_%s_%d" % (stem, self.token, self._serial)

    def tool(self, name):
        info = (self.facts.get("tools") or {}).get(name) or {}
        path = info.get("usable_path") or info.get("path")
        if not path:
            raise not_installed(name)
        return executable(path, name)

    def artifact(self, name, text):
        """Keep ``text`` as an artifact; returns its path (None without a directory)."""
        if not self.artifacts:
            return None
        os.makedirs(self.artifacts, exist_ok=True)
        path = os.path.join(self.artifacts, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def target(self):
        """The probe target, compiled here (so it matches this host's ABI)."""
        if self._target is not None and not os.access(self._target, os.X_OK):
            raise CheckFailed("probe target %s: %s" % (self._target, "No such file or directory"
                                                       if not os.path.exists(self._target) else "not executable"))
        if self._target is None:
            out = os.path.join(self.workdir, "tracekit-target")
            gcc = shutil.which("gcc") or shutil.which("cc")
            if not gcc:
                raise CheckFailed("no C compiler to build the probe target")
            # Frame pointers: perf record -g walks them (without, stacks
            # stop at tk_work and never show main).
            # Read through the loader: inside tracekit's zip application there
            # is no target.c file to hand gcc.
            source = os.path.join(self.workdir, "target.c")
            with open(source, "wb") as f:
                f.write(pkgutil.get_data(__package__, "target.c"))
            run([gcc, "-g", "-O1", "-fno-omit-frame-pointer", "-o", out, source], timeout=self.deadline or 60)
            self._target = out
        return self._target

    def marker(self):
        """A file whose unique name shows up in traces of the opens we cause."""
        path = os.path.join(self.workdir, "marker-" + uuid.uuid4().hex[:12])
        with open(path, "w") as f:
            f.write("tracekit\n")
        return path

    @contextlib.contextmanager
    def instance(self):
        """A private tracefs instance: our events never touch the global buffer."""
        instances = os.path.join(self.tracefs, "instances")
        if not os.path.isdir(instances):
            raise CheckFailed("no tracefs at %s (no instances directory): mount it, e.g. `tracekit setup debugfs`"
                              % self.tracefs)
        path = os.path.join(instances, self.unique("inst"))
        os.mkdir(path)
        try:
            yield path
        finally:
            with sigint_deferred():
                # Only files the instance has (tracefs makes them; writing must not create one).
                for name, value in (("events/enable", "0"), ("current_tracer", "nop")):
                    if os.path.exists(os.path.join(path, name)):
                        with contextlib.suppress(OSError):
                            write(os.path.join(path, name), value)
                _rmdir_retry(path)

    @contextlib.contextmanager
    def dynamic_event(self, kind, definition, name):
        """Add a kprobe/uprobe event definition; always remove it again."""
        events_file = os.path.join(self.tracefs, kind)
        append(events_file, definition)
        try:
            yield os.path.join("events", GROUP, name)
        finally:
            remove_dynamic_event(events_file, "%s/%s" % (GROUP, name))


# -- file and process helpers ------------------------------------------------
def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def append(path, text):
    # O_APPEND without O_TRUNC: truncating kprobe_events/uprobe_events would
    # delete every probe on the system.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    except OSError as exc:
        raise CheckFailed("writing %r to %s: %s" % (text, path, exc.strerror))
    finally:
        os.close(fd)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def remove_dynamic_event(events_file, group_name):
    with contextlib.suppress(OSError):
        if group_name in read(events_file):
            append(events_file, "-:%s" % group_name)


def _rmdir_retry(path):
    for _ in range(20):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY while a reader still holds the buffer
            time.sleep(0.05)
    os.rmdir(path)


def not_installed(tool, what=None):
    return CheckFailed("%s not installed: install it with `tracekit setup %s`"
                       % (what or tool + " is", SETUP_COMPONENT.get(tool, tool)))


def executable(path, tool, what=None):
    """``path`` if it is an executable file; else CheckFailed saying what to do."""
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise CheckFailed("%s is not at %s any more: install it again with `tracekit setup %s` and rerun "
                          "`tracekit doctor`" % (what or tool, path, SETUP_COMPONENT.get(tool, tool)))
    return path


def exit_text(returncode):
    """How a process ended, for a person: "exited 2" or "crashed (SIGSEGV)"."""
    if returncode < 0:
        try:
            return "crashed (%s)" % signal.Signals(-returncode).name
        except ValueError:
            return "was killed by signal %d" % -returncode
    return "exited %d" % returncode


# Of every check's time limit, what is kept for ending its tools (SIGINT,
# 10 s, SIGKILL) and removing what it created once their time is up: this,
# or a quarter of a limit scaled down below a minute.
CLEANUP_SECONDS = 15


class Deadline:
    """When the running check's tools must have ended: its time limit
    (``limit``: Check.timeout, scaled) less the cleanup reserve.  Every tool
    a check runs gets the time left as its timeout, so the tools it runs one
    after another share that one budget, and none outlives the check."""

    def __init__(self, limit):
        self.limit = limit
        self.seconds = limit - min(CLEANUP_SECONDS, limit / 4)
        self._end = time.monotonic() + self.seconds

    def left(self):
        return max(0.0, self._end - time.monotonic())


def seconds_left(timeout):
    """A timeout in seconds for the next tool: a Deadline's time left, else
    ``timeout`` itself (None: no limit)."""
    return timeout.left() if isinstance(timeout, Deadline) else timeout


def timed_out(argv, timeout, seconds):
    """CheckFailed for a tool that ran past its timeout."""
    who = os.path.basename(argv[0])
    if isinstance(timeout, Deadline):
        return CheckFailed("%s timed out: the check's time limit (%gs) ran out; on a slow host raise it with "
                           "--timeout-scale" % (who, round(timeout.limit, 1)))
    return CheckFailed("%s timed out after %gs" % (who, round(seconds, 1)))


def run(argv, timeout=30, check=True, cwd=None, host_limit=None):
    """Run a command; CheckFailed with its last output lines if it fails.  A
    command killed by a signal (a crash) fails even with ``check=False``.
    ``timeout``: seconds, or the running check's Deadline.  ``host_limit``:
    a function of a failed command's output that returns a HostLimit where
    the output shows one (raised instead of the failure), else None."""
    seconds = seconds_left(timeout)
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds,
                              env=dict(os.environ, LC_ALL="C"), universal_newlines=True,
                              stdin=subprocess.DEVNULL, cwd=cwd)
    except FileNotFoundError:
        raise CheckFailed("%s: not found" % argv[0])
    except subprocess.TimeoutExpired:
        raise timed_out(argv, timeout, seconds)
    if proc.returncode < 0 or (check and proc.returncode != 0):
        limit = host_limit(proc.stdout) if host_limit and proc.returncode > 0 else None
        raise limit or failed_command(argv, proc.returncode, proc.stdout)
    return proc.stdout


def failed_command(argv, returncode, output, program=None):
    """CheckFailed saying how ``argv`` ended, with its last output lines."""
    who = os.path.basename(argv[0])
    if returncode < 0 and "--" in argv[:-1]:
        # perf ends with the fatal signal of the program it ran: either crashed.
        program = program or os.path.basename(argv[argv.index("--") + 1])
        who = "%s or the program it ran (%s)" % (who, program)
    return CheckFailed("%s %s: %s" % (who, exit_text(returncode), _tail(output)))


def _tail(text, lines=3):
    kept = [line.strip() for line in (text or "").strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept) or "(no output)"


# -- recordings: a tracer running a command ------------------------------------------------
# The perf checks and tracekit's workflow commands (tracekit/workflows.py) run
# their tools through these: a check on its own probe target, output captured
# and a deadline; a workflow on the person's command, whose output goes to
# our stderr as it comes and which Ctrl-C may end.
class Recorded:
    """How a recording command ended: its exit status (perf record's is its
    workload's), what it printed (None when it went to the terminal), and
    whether Ctrl-C ended it."""

    def __init__(self, argv, returncode, output=None, interrupted=False, program=None):
        self.argv, self.returncode, self.output = argv, returncode, output
        self.interrupted, self.program = interrupted, program

    def check(self):
        """CheckFailed, as run() says it, unless the command exited 0."""
        if self.returncode != 0:
            raise failed_command(self.argv, self.returncode, self.output, self.program)
        return self


def start(argv, passthrough=False):
    """Start ``argv``: output captured (stdout and stderr merged, C locale, no
    stdin), or passed through to our stderr with our stdin and environment
    (``passthrough`` True; or the file descriptor its stderr goes to)."""
    try:
        if passthrough:
            return subprocess.Popen(argv, stdout=2, stderr=2 if passthrough is True else passthrough)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, LC_ALL="C"), universal_newlines=True)
    except FileNotFoundError:
        raise CheckFailed("%s: not found" % argv[0])


def finish(proc, argv, timeout=60, check=True, interruptible=False, program=None):
    """Wait for a started recording; a Recorded.  Ctrl-C ends it the way the
    terminal does (SIGINT: perf stops its workload and writes what it
    recorded); with ``interruptible`` that is the recording's normal end,
    else KeyboardInterrupt goes on once it has ended.  A deadline, or any
    other exception, ends it the same way before going on."""
    interrupted = False
    seconds = seconds_left(timeout)
    try:
        try:
            out, _ = proc.communicate(timeout=seconds)
        except KeyboardInterrupt:
            out = _end(proc)
            if not interruptible:
                raise
            interrupted = True
        except subprocess.TimeoutExpired:
            _end(proc, grace=0)
            raise timed_out(argv, timeout, seconds)
    except BaseException:
        _end(proc, grace=0)
        raise
    recorded = Recorded(argv, proc.returncode, out, interrupted, program)
    return recorded.check() if check else recorded


def record(argv, timeout=60, check=True, passthrough=False, interruptible=False, program=None):
    """Run a recording command to its end (see start and finish)."""
    return finish(start(argv, passthrough), argv, timeout, check, interruptible, program)


def _end(proc, grace=1.0):
    """End a recording: wait ``grace`` seconds (it may have had the terminal's
    SIGINT already), then SIGINT, then SIGKILL after 10 s; its last output."""
    for sig, wait in ((None, grace), (signal.SIGINT, 10), (signal.SIGKILL, None)):
        if proc.poll() is not None:
            break
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return proc.communicate(timeout=wait)[0]
    with contextlib.suppress(ValueError, OSError):
        return proc.communicate()[0]
    return None


@contextlib.contextmanager
def sigint_deferred():
    """Ctrl-C waits until the block (removing what a trace created) is done."""
    seen = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    except ValueError:  # not the main thread: signals go elsewhere anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if seen:
        # What the handler it replaced would have done (Python's raises
        # KeyboardInterrupt; an ignored SIGINT stays ignored).
        if callable(previous):
            previous(signal.SIGINT, None)
        elif previous == signal.SIG_DFL:
            raise KeyboardInterrupt


# Shell prologues for a traced command: write its pid where we can read it
# (perf runs it, so it is perf's child, not ours), or stop it until its
# tracing is set up (SIGCONT starts it).  Both keep the pid: `exec`.
PID_REPORTING = 'echo $$ > "$0" && exec "$@"'
STOPPED_START = 'kill -STOP $$ && exec "$@"'


def start_stopped(argv):
    """Start ``argv`` stopped before its exec (so a pid filter can be set
    first), output passed through; resume with os.kill(pid, SIGCONT)."""
    proc = start(["/bin/sh", "-c", STOPPED_START, "sh"] + list(argv), passthrough=True)
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        proc.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        raise CheckFailed("%s did not start: its shell %s" % (argv[0], exit_text(proc.returncode)))
    return proc


def open_marker(path, times=3):
    for _ in range(times):
        with open(path):
            pass


def kernel_open_function():
    """The open path's kernel function this kernel has (do_sys_openat2 from 5.6)."""
    text = ""
    with contextlib.suppress(OSError):
        text = read(KALLSYMS)
    name = outputs.parse_kallsyms_function(text, OPEN_FUNCTIONS)
    if name is None:
        raise CheckFailed("neither %s in %s: this kernel's open path is not known to tracekit"
                          % (" nor ".join(OPEN_FUNCTIONS), KALLSYMS))
    return name


def kernel_pid(instance):
    """Our pid as tracing records it.  Inside a PID namespace (a container)
    os.getpid() is another number than the one in trace events and filters,
    so ask the kernel: write a unique line to the instance's trace_marker and
    read back the pid it was recorded with."""
    token = "tracekit-pid-" + uuid.uuid4().hex[:12]
    write(os.path.join(instance, "trace_marker"), token)
    pid = outputs.parse_marker_pid(read(os.path.join(instance, "trace")), token)
    if pid is None:
        raise CheckFailed("trace_marker: our own line did not appear in the instance's trace")
    return pid


def trace_lines(instance, needle):
    return outputs.parse_trace_lines(read(os.path.join(instance, "trace")), needle)


# -- tracefs checks ----------------------------------------------------------------
def check_tracepoint(ctx):
    marker = ctx.marker()
    with ctx.instance() as inst:
        event = os.path.join(inst, "events/syscalls/sys_enter_openat")
        if not os.path.isdir(event):
            raise CheckFailed("no syscalls/sys_enter_openat event in tracefs")
        pid = kernel_pid(inst)
        write(os.path.join(event, "filter"), "common_pid == %d" % pid)
        write(os.path.join(event, "enable"), "1")
        open_marker(marker)
        write(os.path.join(event, "enable"), "0")
        hits = trace_lines(inst, "sys_openat(")
    if len(hits) < 3:
        raise CheckFailed("expected 3 sys_enter_openat events from pid %d, saw %d" % (pid, len(hits)))
    return "%d sys_enter_openat events from our pid" % len(hits), hits[:3]


def _arg_regs(ctx):
    regs = ARG_REGS.get(ctx.arch)
    if not regs:
        raise CheckFailed("no argument registers known for %s" % ctx.arch)
    return regs


def _record_dynamic_event(ctx, events_file, definition, name, trigger, pid=None):
    """Define a probe, record it in a private instance while ``trigger()``
    runs, remove everything; the trace lines naming the probe."""
    if not os.path.exists(os.path.join(ctx.tracefs, events_file)):
        raise CheckFailed("no %s in %s" % (events_file, ctx.tracefs))
    with ctx.dynamic_event(events_file, definition, name) as event_rel:
        with ctx.instance() as inst:
            event = os.path.join(inst, event_rel)
            if pid is not None:
                write(os.path.join(event, "filter"), "common_pid == %d" % pid)
            write(os.path.join(event, "enable"), "1")
            trigger()
            write(os.path.join(event, "enable"), "0")
            return trace_lines(inst, name)


def _check_kprobe(ctx, ret):
    fn = kernel_open_function()
    name = ctx.unique("kretprobe" if ret else "kprobe")
    definition = ("r:%s/%s %s ret=$retval:s32" % (GROUP, name, fn) if ret else
                  "p:%s/%s %s filename=+0(%s):ustring" % (GROUP, name, fn, _arg_regs(ctx)[1]))
    marker = ctx.marker()
    hits = _record_dynamic_event(ctx, "kprobe_events", definition, name, lambda: open_marker(marker),
                                 pid=os.getpid())
    if ret:
        returns = [(line, outputs.probe_value(line, "ret")) for line in hits]
        fds = [line for line, fd in returns if fd is not None and fd >= 0]
        if len(fds) < 3:
            raise CheckFailed("expected 3 %s returns with a file descriptor, saw %d" % (fn, len(fds)))
        return "kretprobe on %s: %d returns with $retval" % (fn, len(fds)), fds[:3]
    seen = [line for line in hits if os.path.basename(marker) in outputs.parse_probe_fields(line).get("filename", "")]
    if len(seen) < 3:
        raise CheckFailed("expected 3 %s hits naming %s, saw %d" % (fn, os.path.basename(marker), len(seen)))
    return "kprobe on %s: %d hits with the filename argument" % (fn, len(seen)), seen[:3]


def check_kprobe(ctx):
    return _check_kprobe(ctx, ret=False)


def check_kretprobe(ctx):
    return _check_kprobe(ctx, ret=True)


def _check_uprobe(ctx, ret):
    target = ctx.target()
    try:
        offset = elf.symbol_file_offset(target, "tk_work")
    except OSError as exc:
        raise CheckFailed("probe target %s: %s" % (target, exc.strerror))
    except LookupError:
        raise CheckFailed("probe target %s has no function tk_work to probe" % target)
    except ValueError as exc:
        raise CheckFailed("probe target %s: %s" % (target, exc))
    name = ctx.unique("uretprobe" if ret else "uprobe")
    fetch = "ret=$retval:s32" if ret else "n=%s:s32" % _arg_regs(ctx)[0]
    definition = "%s:%s/%s %s:0x%x %s" % ("r" if ret else "p", GROUP, name, target, offset, fetch)
    hits = _record_dynamic_event(ctx, "uprobe_events", definition, name,
                                 lambda: run([target, "3", "0"], timeout=ctx.deadline))
    values = [v for v in (outputs.probe_value(h, "ret" if ret else "n") for h in hits) if v is not None]
    expected = [3, 5, 7] if ret else [1, 2, 3]
    if values != expected:
        raise CheckFailed("expected %s values %s from tk_work, saw %s" % ("return" if ret else "argument",
                                                                         expected, values))
    return "%s on tk_work: %s %s" % ("uretprobe" if ret else "uprobe", "returns" if ret else "arguments",
                                       values), hits


def check_uprobe(ctx):
    return _check_uprobe(ctx, ret=False)


def check_uretprobe(ctx):
    return _check_uprobe(ctx, ret=True)


def offers_tracer(tracefs_dir, tracer):
    """Whether a tracefs directory (the root or an instance) lists ``tracer``."""
    return tracer in read(os.path.join(tracefs_dir, "available_tracers")).split()


def check_function(ctx):
    fn = kernel_open_function()
    marker = ctx.marker()
    with ctx.instance() as inst:
        if not offers_tracer(inst, "function"):
            raise CheckFailed("function tracer not offered in a tracefs instance")
        try:
            write(os.path.join(inst, "set_ftrace_filter"), fn)
            write(os.path.join(inst, "set_ftrace_pid"), str(os.getpid()))
            write(os.path.join(inst, "current_tracer"), "function")
        except OSError as exc:
            raise CheckFailed("setting up the function tracer: %s" % exc.strerror)
        open_marker(marker)
        hits = trace_lines(inst, fn)
    if not hits:
        raise CheckFailed("function tracer recorded no %s calls" % fn)
    return "function tracer: %d calls of %s" % (len(hits), fn), hits[:3]


def check_function_graph(ctx):
    fn = kernel_open_function()
    marker = ctx.marker()
    trace = function_graph(ctx, fn, os.getpid(), lambda: open_marker(marker))
    calls, lines = outputs.parse_function_graph(trace, fn)
    if not calls:
        raise CheckFailed("function_graph recorded no %s call tree" % fn)
    return "function_graph: %d %s call trees" % (len(calls), fn), lines[:8]


def function_graph(ctx, fn, pid, traced, follow_forks=False):
    """The function_graph trace (the ``trace`` file's text, funcgraph-proc
    column on) of the calls of kernel function ``fn`` by ``pid`` (and, with
    ``follow_forks``, by the children it starts) while ``traced()`` runs.
    The `tracekit funcgraph` command and the function_graph check."""
    settings = [("set_graph_function", fn), ("set_ftrace_pid", str(pid)), ("options/funcgraph-proc", "1")]
    with function_graph_tracer(ctx) as tracefs_dir:
        # function-fork (Linux 4.12 on) adds the children of a traced pid to the filter.
        if follow_forks and os.path.exists(os.path.join(tracefs_dir, "options/function-fork")):
            settings.append(("options/function-fork", "1"))
        for name, value in settings + [("current_tracer", "function_graph")]:
            try:
                write(os.path.join(tracefs_dir, name), value)
            except OSError as exc:
                raise CheckFailed("setting up function_graph: writing %s to %s: %s" % (value, name, exc.strerror))
        traced()
        return read(os.path.join(tracefs_dir, "trace"))


@contextlib.contextmanager
def function_graph_tracer(ctx):
    """A tracefs directory whose function_graph tracer is ours: a private
    instance, or where instances offer none (6.8) the global tracer,
    borrowed only while nobody else uses it and restored afterwards."""
    with ctx.instance() as inst:
        if offers_tracer(inst, "function_graph"):
            yield inst
            return
        if not offers_tracer(ctx.tracefs, "function_graph"):
            try:
                write(os.path.join(inst, "current_tracer"), "function_graph")
            except OSError as exc:
                raise CheckFailed("function_graph tracer: %s" % exc.strerror)
            raise CheckFailed("function_graph is not an available tracer")
    with borrowed_global_tracer(ctx.tracefs) as root:
        yield root


GLOBAL_SETTINGS = ("current_tracer", "set_graph_function", "set_ftrace_pid", "options/funcgraph-proc",
                   "options/function-fork", "tracing_on")


@contextlib.contextmanager
def borrowed_global_tracer(tracefs):
    """Use the global tracer if idle; restore every setting touched.
    Someone else's tracer or events are never touched: the check is skipped."""
    try:
        current = read(os.path.join(tracefs, "current_tracer")).strip()
        events = read(os.path.join(tracefs, "set_event")).strip()
    except FileNotFoundError as exc:
        raise CheckFailed("no tracefs at %s (no %s): mount it" % (tracefs, os.path.basename(exc.filename)))
    if current != "nop" or events:
        raise CheckSkipped("global tracer in use (current_tracer=%s%s)" % (
            current, ", events enabled" if events else ""))
    saved = {}
    for name in GLOBAL_SETTINGS:
        with contextlib.suppress(OSError):
            saved[name] = read(os.path.join(tracefs, name))
    try:
        yield tracefs
    finally:
        with sigint_deferred():
            _restore_global(tracefs, saved)


def _restore_global(tracefs, saved):
    write(os.path.join(tracefs, "current_tracer"), "nop")
    for name in ("set_graph_function", "set_ftrace_pid"):
        text = saved.get(name, "")
        # Reading back "#### all functions enabled ####" or "no pid" means empty.
        with contextlib.suppress(OSError):
            fd = os.open(os.path.join(tracefs, name), os.O_WRONLY | os.O_TRUNC)
            os.close(fd)
        keep = [t for t in text.split() if not t.startswith("#") and t != "no" and t != "pid"]
        if keep:
            with contextlib.suppress(OSError):
                write(os.path.join(tracefs, name), " ".join(keep))
    for name in ("options/funcgraph-proc", "options/function-fork", "tracing_on"):
        if name in saved:
            with contextlib.suppress(OSError):
                write(os.path.join(tracefs, name), saved[name].strip())


# -- perf ------------------------------------------------------------------------
STAT_SOFTWARE = ("task-clock", "context-switches", "cpu-migrations", "page-faults")
STAT_HARDWARE = ("cycles", "instructions")


def _perf_stat(ctx, events):
    perf = ctx.tool("perf")
    out = run([perf, "stat", "-x", ",", "-e", ",".join(events), "--", ctx.target(), "2", "10"], timeout=ctx.deadline)
    ctx.artifact("perf-stat.csv", out)
    return perfdata.parse_perf_stat(out)


def check_perf_hardware(ctx):
    return judge_perf_hardware(_perf_stat(ctx, STAT_HARDWARE))


def judge_perf_hardware(stat):
    """Pass when perf stat counted every hardware event (a perfdata.PerfStat)."""
    missing = [e for e in STAT_HARDWARE if stat.value(e) is None]
    if missing:
        raise CheckFailed("perf stat: %s" % ", ".join(
            "%s %s" % (e, "<not supported>" if e in stat.unsupported else "<not counted>") for e in missing))
    return "perf stat: " + ", ".join("%s %.0f" % (e, stat.value(e)) for e in STAT_HARDWARE), \
        ["%s,%.0f" % (e, stat.value(e)) for e in STAT_HARDWARE]


def check_perf_software(ctx):
    """perf stat of the sample program with the classic counter set; the
    software counters must count, the hardware ones are reported either way."""
    return judge_perf_software(_perf_stat(ctx, STAT_SOFTWARE + STAT_HARDWARE))


def judge_perf_software(stat):
    """Pass when the software counters counted; name the unsupported hardware ones."""
    uncounted = [e for e in STAT_SOFTWARE if stat.value(e) is None]
    if uncounted:
        raise CheckFailed("perf stat counted nothing for %s" % ", ".join(uncounted))
    unsupported = [e for e in STAT_HARDWARE if stat.value(e) is None]
    detail = "perf stat: " + ", ".join("%s %.0f" % (e, stat.value(e)) for e in STAT_SOFTWARE)
    if unsupported:
        detail += "; not supported on this host: " + ", ".join(unsupported)
    return detail, ["%s,%s" % (e, "<not supported>" if stat.value(e) is None else "%.0f" % stat.value(e))
                    for e in STAT_SOFTWARE + STAT_HARDWARE]


# perf record's sampling rate (Hz): not a multiple of the timer tick, so
# samples do not beat with it (the FlameGraph tradition's 99 Hz, higher for
# short programs).
SAMPLE_FREQUENCY = 997
# The probe target's loops, delay and work for perf record: about 35 samples in tk_work.
SAMPLED_RUN = ("8", "0", "2000000")


def perf_record_script(perf, argv, data, frequency=SAMPLE_FREQUENCY, **how):
    """perf record -g of ``argv`` on cpu-clock (it needs no hardware PMU),
    then perf script of the recording: (its text, Recorded).  ``how``:
    record()'s timeout, check, passthrough, interruptible."""
    recorded = record([perf, "record", "-q", "-e", "cpu-clock", "-F", str(frequency), "-g", "-o", data, "--"]
                      + list(argv), **how)
    if not os.path.exists(data):
        raise CheckFailed("perf record wrote no data (it %s)" % exit_text(recorded.returncode))
    return run([perf, "script", "-i", data], timeout=how.get("timeout", 60)), recorded


def check_perf_sampling(ctx):
    perf = ctx.tool("perf")
    script, _ = perf_record_script(perf, (ctx.target(),) + SAMPLED_RUN,
                                   os.path.join(ctx.workdir, ctx.unique("perf") + ".data"), timeout=ctx.deadline)
    samples = outputs.perf_script_frames(script, "tk_work")
    if samples < 5:
        raise CheckFailed("perf record: %d samples in tk_work" % samples)
    return "perf record -g: %d stack frames in tk_work" % samples, script.splitlines()[:6]


class FlameGraph:
    """A recording's stacks (perfdata.FoldedStacks), its SVG, its Recorded."""

    def __init__(self, folded, svg, recorded):
        self.folded, self.svg, self.recorded = folded, svg, recorded


def flame_graph(perf, argv, data, title, frequency=SAMPLE_FREQUENCY, **how):
    """perf record -g of ``argv``, the stacks folded and drawn as an SVG flame
    graph: `tracekit flamegraph` and the perf.flamegraph check."""
    script, recorded = perf_record_script(perf, argv, data, frequency, **how)
    try:
        folded = perfdata.fold_perf_script(script)
    except ValueError as exc:
        raise CheckFailed("perf record -g of %s: %s" % (os.path.basename(argv[0]), exc))
    return FlameGraph(folded, perfdata.flamegraph_svg(folded, title), recorded)


def check_flamegraph(ctx):
    """perf record -g, stacks folded, an SVG flame graph written."""
    perf = ctx.tool("perf")
    graph = flame_graph(perf, (ctx.target(),) + SAMPLED_RUN, os.path.join(ctx.workdir, ctx.unique("flame") + ".data"),
                        "tracekit: perf record -g of tk_work", timeout=ctx.deadline)
    folded = graph.folded
    in_work = perfdata.stacks_through(folded, "tk_work")
    if sum(in_work.values()) < 5:
        raise CheckFailed("perf record -g: %d samples in tk_work (of %d)" % (sum(in_work.values()), folded.samples))
    svg = ctx.artifact("flamegraph.svg", graph.svg)
    ctx.artifact("stacks.folded", perfdata.format_folded(folded))
    top = max(in_work, key=in_work.get)
    return "flame graph of %d samples, %d in tk_work%s" % (
        folded.samples, sum(in_work.values()), ", written to " + svg if svg else ""), \
        ["%s %d" % (top, in_work[top])]


class SchedTimes:
    """A perf sched recording of a command: its pid, every task's
    perfdata.TaskTimes by timehist name (``all_tasks``: system-wide), the
    command's own tasks merged per thread (``tasks``: it, its threads and
    what it started), the timehist text, the Recorded."""

    def __init__(self, pid, all_tasks, tasks, timehist, recorded):
        self.pid, self.all_tasks, self.tasks = pid, all_tasks, tasks
        self.timehist, self.recorded = timehist, recorded


def perf_sched(perf, argv, workdir, name, **how):
    """perf sched record of ``argv``, then perf sched timehist: wait time,
    scheduling delay and run time per task.  The command's pid comes from a
    shell prologue (perf starts it), its threads and children from the
    recording's sched_process_fork events.  `tracekit sched` and the
    perf.sched check."""
    data, pidfile = (os.path.join(workdir, name + ext) for ext in (".data", ".pid"))
    recorded = record([perf, "sched", "record", "-o", data, "--", "/bin/sh", "-c", PID_REPORTING, pidfile]
                      + list(argv), program=os.path.basename(argv[0]), **how)
    try:
        pid = int(read(pidfile))
    except (OSError, ValueError):
        raise CheckFailed("perf sched record did not start %s (it %s): %s"
                          % (argv[0], exit_text(recorded.returncode), _tail(recorded.output)))
    timeout = how.get("timeout", 60)
    timehist = run([perf, "sched", "timehist", "-i", data], timeout=timeout)
    try:
        all_tasks = perfdata.parse_sched_timehist(timehist)
        tasks = perfdata.command_tasks(all_tasks, run([perf, "script", "-i", data], timeout=timeout), pid)
    except ValueError as exc:
        raise CheckFailed("perf sched: %s" % exc)
    return SchedTimes(pid, all_tasks, tasks, timehist, recorded)


def check_perf_sched(ctx):
    """perf sched record + timehist: the sample's wait, delay and run time."""
    perf = ctx.tool("perf")
    sched = perf_sched(perf, [ctx.target(), "4", "20", "200000"], ctx.workdir, ctx.unique("sched"),
                       timeout=ctx.deadline)
    try:
        printed = outputs.parse_target_pid(sched.recorded.output)
    except ValueError as exc:
        raise CheckFailed("perf sched record: %s" % exc)
    if printed != sched.pid:
        raise CheckFailed("perf sched record: the target printed pid %d, its shell wrote pid %d"
                          % (printed, sched.pid))
    pid = sched.pid
    ctx.artifact("sched-timehist.txt", sched.timehist)
    times = perfdata.task_times_for_pid(sched.all_tasks, pid)
    if times is None or times.run_ms <= 0:
        raise CheckFailed("perf sched timehist shows no run time for the sample (pid %d)" % pid)
    detail = "pid %d: run %.3f ms, wait %.3f ms, sched delay %.3f ms over %d switches" % (
        pid, times.run_ms, times.wait_ms, times.sch_delay_ms, times.switches)
    return detail, [detail]


@contextlib.contextmanager
def perf_probe(perf, args, event, timeout=30):
    """perf probe ``args`` (-x, -a ...), yielding what it printed; ``event``
    ("GROUP:EVENT", or "GROUP:*" for a group of one's own) deleted again
    whatever happens, Ctrl-C included."""
    try:
        yield run([perf, "probe"] + list(args), timeout=timeout)
    finally:
        # Within the cleanup reserve even when the check's time ran out: a
        # probe left behind shows in verify's state comparison.
        with sigint_deferred(), contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([perf, "probe", "-q", "-d", event], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=CLEANUP_SECONDS)


class ProbeRecording:
    """perf script of a recording with probes (``script``), the Recorded, and
    the events perf probe added: [(GROUP:EVENT, where perf put it)]."""

    def __init__(self, script, recorded, added):
        self.script, self.recorded, self.added = script, recorded, added


def perf_probe_record(perf, args, event, argv, data, **how):
    """perf probe ``args``, perf record -e ``event`` of ``argv``, the probes
    deleted, perf script of the recording: a ProbeRecording.  `tracekit
    probe` and the perf.probe checks."""
    # A recording with no time limit (a workflow's) still gives perf probe its 30 s.
    with perf_probe(perf, args, event, timeout=how.get("timeout") or 30) as added:
        recorded = record([perf, "record", "-q", "-e", event, "-o", data, "--"] + list(argv), **how)
    if not os.path.exists(data):
        raise CheckFailed("perf record wrote no data (it %s)" % exit_text(recorded.returncode))
    script = run([perf, "script", "-i", data], timeout=how.get("timeout", 60))
    return ProbeRecording(script, recorded, outputs.parse_perf_probe_added(added))


def check_perf_probe_kernel(ctx):
    perf = ctx.tool("perf")
    fn = kernel_open_function()
    name = ctx.unique("pk")
    marker = ctx.marker()
    data = os.path.join(ctx.workdir, name + ".data")
    script = perf_probe_record(perf, ["-a", "%s:%s=%s" % (GROUP, name, fn)], "%s:%s" % (GROUP, name),
                               ["cat", marker], data, timeout=ctx.deadline).script
    hits = outputs.parse_trace_lines(script, name)
    if not hits:
        raise CheckFailed("perf probe on %s recorded nothing" % fn)
    return "perf probe %s: %d hits" % (fn, len(hits)), hits[:3]


def check_perf_probe_user(ctx):
    perf = ctx.tool("perf")
    target = ctx.target()
    name = ctx.unique("pu")
    data = os.path.join(ctx.workdir, name + ".data")
    script = perf_probe_record(perf, ["-x", target, "-a", "%s:%s=tk_work n" % (GROUP, name)],
                               "%s:%s" % (GROUP, name), [target, "3", "0"], data, timeout=ctx.deadline).script
    values = [v for v in (outputs.probe_value(line, "n") for line in outputs.parse_trace_lines(script, name))
              if v is not None]
    if values != [1, 2, 3]:
        raise CheckFailed("perf probe -x tk_work: expected n=1,2,3, saw %s" % values)
    return "perf probe -x tk_work: arguments %s" % values, script.splitlines()[:3]


# The running kernel's ELF notes: its build-id, which its debug info must carry.
KERNEL_NOTES = "/sys/kernel/notes"
# Asks debuginfod (the servers in DEBUGINFOD_URLS) for the debug info of a
# build-id with libdebuginfod, the client library perf and stap use; in a
# child process, so the check's deadline ends a download (about 1 GB).
DEBUGINFOD_FETCH = r"""import ctypes, os, sys
try:
    lib = ctypes.CDLL("libdebuginfod.so.1")
except OSError as exc:
    print("error: no libdebuginfod (%s): install it with `tracekit setup ddebs`" % exc)
    sys.exit()
lib.debuginfod_begin.restype = ctypes.c_void_p
lib.debuginfod_end.argtypes = [ctypes.c_void_p]
lib.debuginfod_find_debuginfo.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_char_p)]
client = lib.debuginfod_begin()
path = ctypes.c_char_p()
build_id = bytes.fromhex(sys.argv[1])
fd = lib.debuginfod_find_debuginfo(client, build_id, len(build_id), ctypes.byref(path)) if client else -12
print("path: %s" % path.value.decode() if fd >= 0 else "error: %s" % os.strerror(-fd))
"""


def running_kernel_build_id():
    try:
        with open(KERNEL_NOTES, "rb") as f:
            found = elf.note_build_id(f.read())
    except OSError as exc:
        raise CheckFailed("%s: %s" % (KERNEL_NOTES, exc.strerror or exc))
    if not found:
        raise CheckFailed("%s has no build-id: the kernel's debug info cannot be matched to it" % KERNEL_NOTES)
    return found


def check_kernel_debuginfo(ctx):
    """The running kernel's DWARF: doctor's vmlinux, which must be this
    build (same build-id), or debuginfod's answer for its build-id."""
    wanted = running_kernel_build_id()
    vmlinux = (ctx.facts.get("debuginfo") or {}).get("vmlinux")
    if vmlinux:
        how = vmlinux
    elif os.environ.get("DEBUGINFOD_URLS", "").strip():
        answer = run([sys.executable, "-c", DEBUGINFOD_FETCH, wanted], timeout=ctx.deadline).strip()
        if not answer.startswith("path: "):
            raise CheckFailed("debuginfod has no debug info for the running kernel (build-id %s): %s"
                              % (wanted, _tail(answer).replace("error: ", "", 1)))
        vmlinux, how = answer[len("path: "):], "debuginfod (%s)" % os.environ["DEBUGINFOD_URLS"].strip()
    else:
        raise CheckFailed("no kernel debug info: no vmlinux with DWARF where doctor looked, and DEBUGINFOD_URLS "
                          "is not set")
    if not elf.has_section(vmlinux, (".debug_info", ".zdebug_info")):
        raise CheckFailed("%s has no DWARF (.debug_info)" % vmlinux)
    try:
        found = elf.build_id(vmlinux)
    except (OSError, ValueError) as exc:
        raise CheckFailed("%s: %s" % (vmlinux, exc))
    if found != wanted:
        raise CheckFailed("%s is another kernel build's debug info (build-id %s; the running kernel's is %s)"
                          % (vmlinux, found or "none", wanted))
    return "DWARF of the running kernel (build-id %s) from %s" % (wanted, how), [vmlinux]


# The open path's argument the debug-info checks read by name: do_sys_openat2(dfd,
# filename, how) and do_sys_open(dfd, filename, flags, mode) both have it.
OPEN_FILENAME = "filename"


def check_perf_probe_kernel_debuginfo(ctx):
    """perf probe reads the kernel's DWARF: the open path's source lines (-L),
    its variables (-V), and a probe that fetches ``filename`` by name."""
    perf = ctx.tool("perf")
    fn = kernel_open_function()
    source = perf_probe_source_lines(run([perf, "probe", "-L", fn], timeout=ctx.deadline, check=False), fn)
    listed = run([perf, "probe", "-V", fn], timeout=ctx.deadline, check=False)
    try:
        variables = outputs.parse_perf_probe_vars(listed, fn)
    except ValueError:
        raise CheckFailed("perf probe -V %s listed no variables: %s" % (fn, _tail(listed)))
    if OPEN_FILENAME not in variables.names:
        raise CheckFailed("perf probe -V %s lists no variable %r (saw %s)"
                          % (fn, OPEN_FILENAME, ", ".join(variables.names) or "none"))
    # A group of its own: should the function have inlined copies, perf adds
    # an event for each, and GROUP:* records and deletes them all.
    group = ctx.unique("pkd")
    marker = ctx.marker()
    data = os.path.join(ctx.workdir, group + ".data")
    recording = perf_probe_record(perf, ["-a", "%s:open=%s %s=%s:string" % (group, fn, OPEN_FILENAME, OPEN_FILENAME)],
                                  group + ":*", ["/bin/cat", marker], data, timeout=ctx.deadline)
    hits = outputs.parse_probe_hits(recording.script, group)
    ours = [h for h in hits if h.fields.get(OPEN_FILENAME) == marker]
    if not ours:
        seen = sorted({h.fields.get(OPEN_FILENAME, "?") for h in hits})[:3]
        raise CheckFailed("perf probe %s %s:string recorded no open of %s (%d hits%s)"
                          % (fn, OPEN_FILENAME, marker, len(hits), ": " + ", ".join(seen) if seen else ""))
    return ("perf probe with %s's debug info: %s; variables %s; %s=%s decoded"
            % (fn, source, ", ".join(variables.names), OPEN_FILENAME, marker), [ours[0].line])


def perf_probe_source_lines(out, fn):
    """What ``perf probe -L`` showed, in words.  The debug-symbol packages
    carry no source files: perf then finds the function's lines in the DWARF
    but cannot print them, which is said, not failed (DWARF is what the
    check proves; source lines need the kernel's source tree)."""
    if outputs.perf_probe_source_missing(out):
        return "source lines not shown (perf probe -L: the kernel's source files are not on this host)"
    try:
        source = outputs.parse_perf_probe_lines(out, fn)
    except ValueError:
        raise CheckFailed("perf probe -L %s showed no source lines: %s" % (fn, _tail(out)))
    if not source.probeable:
        raise CheckFailed("perf probe -L %s shows no line it can probe: %s" % (fn, _tail(out)))
    return "%d source lines of %s, %d probe-able" % (len(source.lines), source.path, len(source.probeable))


# -- trace-cmd -----------------------------------------------------------------------
def check_trace_cmd(ctx):
    trace_cmd = ctx.tool("trace-cmd")
    fn = kernel_open_function()
    # `trace-cmd list -f` reads available_filter_functions: without access to
    # the function tracer nothing else trace-cmd does here can work.
    listed = run([trace_cmd, "list", "-f", fn], check=False, timeout=ctx.deadline)
    if not outputs.trace_cmd_lists(listed, fn):
        raise CheckFailed("trace-cmd list -f %s: %s" % (fn, _tail(listed)))
    marker = ctx.marker()
    instance = ctx.unique("tc")
    data = os.path.join(ctx.workdir, instance + ".dat")
    try:
        # -B: a private instance, so the global buffer is left alone.
        run([trace_cmd, "record", "-q", "-B", instance, "-p", "function", "-l", fn, "-F",
             "-o", data, "cat", marker], timeout=ctx.deadline)
    finally:
        path = os.path.join(ctx.tracefs, "instances", instance)
        if os.path.isdir(path):
            with contextlib.suppress(OSError):
                write(os.path.join(path, "current_tracer"), "nop")
            with contextlib.suppress(OSError):
                _rmdir_retry(path)
    report = run([trace_cmd, "report", "-i", data], timeout=ctx.deadline)
    hits = outputs.parse_trace_lines(report, fn)
    if not hits:
        raise CheckFailed("trace-cmd report shows no %s" % fn)
    return "trace-cmd record/report: %d %s calls" % (len(hits), fn), hits[:3]


def check_trace_cmd_function_graph(ctx):
    """trace-cmd record -p function_graph -g on the open path. Instances on
    some kernels (6.8) offer no function_graph, so this borrows the idle
    global tracer as the function_graph check does (measured in the kernel
    lab: trace-cmd's own reset plus the borrow's restore leave the global
    settings as they were)."""
    trace_cmd = ctx.tool("trace-cmd")
    fn = kernel_open_function()
    marker = ctx.marker()
    data = os.path.join(ctx.workdir, ctx.unique("tcgraph") + ".dat")
    with borrowed_global_tracer(ctx.tracefs):
        # Asked first: trace-cmd, failing to set a tracer the kernel lacks,
        # mounts debugfs on its way (measured here) and leaves it mounted.
        if not offers_tracer(ctx.tracefs, "function_graph"):
            raise CheckFailed("function_graph is not an available tracer")
        run([trace_cmd, "record", "-q", "-p", "function_graph", "-g", fn, "-O", "funcgraph-proc", "-F",
             "-o", data, "cat", marker], timeout=ctx.deadline)
    report = run([trace_cmd, "report", "-i", data], timeout=ctx.deadline)
    trees, lines = outputs.parse_function_graph(report, fn)
    if not trees:
        raise CheckFailed("trace-cmd report shows no %s call tree: %s" % (fn, _tail(report)))
    return "trace-cmd function_graph: %d %s call trees" % (len(trees), fn), lines[:8]


# -- BPF tools ------------------------------------------------------------------------
# Of a snoop check's budget, what is kept for our exec to show up once the
# tool has printed its header (the rest is the tool's start-up).
EXEC_REPORT_SECONDS = 15


def _watch_execs(ctx, argv, ready_pattern):
    """Run a snoop tool, exec a marked command until the tool shows it, all
    within the check's deadline."""
    tag = "tkmark" + uuid.uuid4().hex[:10]
    # stdbuf: C tools block-buffer a pipe, and we read their lines as they come.
    stdbuf = shutil.which("stdbuf")
    argv = ([stdbuf, "-oL"] if stdbuf else []) + argv
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            universal_newlines=True, env=dict(os.environ, LC_ALL="C", PYTHONUNBUFFERED="1"),
                            start_new_session=True)
    output = []
    name = os.path.basename(argv[-1])
    try:
        deadline = time.monotonic() + ctx.deadline.left()
        started = deadline - EXEC_REPORT_SECONDS * ctx.timeout_scale
        if not _wait_for_line(proc, output, ready_pattern, started):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)  # its output ended: it is exiting
            ended = "" if proc.poll() is None else " (it %s)" % exit_text(proc.returncode)
            raise CheckFailed("%s did not start%s: %s" % (name, ended, _tail("".join(output))))
        seen = False
        while not seen and time.monotonic() < deadline:
            subprocess.run(["/bin/sh", "-c", ": " + tag], stdout=subprocess.DEVNULL)
            seen = _wait_for_line(proc, output, re.escape(tag), min(deadline, time.monotonic() + 1))
        if not seen:
            ended = "" if proc.poll() is None else " (it %s)" % exit_text(proc.returncode)
            raise CheckFailed("%s did not report the exec of our marker%s" % (name, ended))
    finally:
        _stop(proc)
    return execs_with(output, tag, name)


def execs_with(output, tag, name="execsnoop"):
    """The execsnoop rows (as printed) whose arguments carry ``tag``."""
    try:
        rows = outputs.parse_execsnoop("".join(output))
    except ValueError as exc:
        raise CheckFailed("%s: %s" % (name, exc))
    hits = [row.line for row in rows if tag in row.args]
    if not hits:
        raise CheckFailed("%s printed our marker, but in no exec row of its table" % name)
    return hits[:3]


def _wait_for_line(proc, output, pattern, deadline):
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if any(re.search(pattern, line) for line in output):
                return True
            if not sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
                if proc.poll() is not None:
                    return False
                continue
            line = proc.stdout.readline()
            if not line:
                return any(re.search(pattern, line) for line in output)
            output.append(line)
        return any(re.search(pattern, line) for line in output)
    finally:
        sel.close()


def _stop(proc):
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


def check_bcc(ctx):
    info = (ctx.facts.get("tools") or {}).get("bcc") or {}
    if not info.get("found"):
        raise not_installed("bcc")
    tool = executable(os.path.join(info["tools_dir"], "execsnoop-bpfcc" if info["tools_dir"].endswith("sbin")
                                   else "execsnoop"), "bcc", "bcc's execsnoop")
    lines = _watch_execs(ctx, [tool], r"PCOMM|COMM")
    return "bcc execsnoop saw our exec", lines


def check_libbpf_tools(ctx):
    info = (ctx.facts.get("tools") or {}).get("libbpf-tools") or {}
    if not info.get("found"):
        raise not_installed("libbpf-tools", "libbpf-tools are")
    tool = executable(find_libbpf_tool(info["tools_dir"], "execsnoop")
                      or os.path.join(info["tools_dir"], "execsnoop"), "libbpf-tools", "libbpf-tools' execsnoop")
    lines = _watch_execs(ctx, [tool], r"PCOMM|COMM")
    return "libbpf-tools execsnoop saw our exec", lines


def _bpftrace(ctx, program, command):
    bpftrace = ctx.tool("bpftrace")
    # From the work directory: the marker's relative name fits bpftrace's
    # 64-byte strings whatever the temporary directory is.
    out = run([bpftrace, "-e", program, "-c", command], timeout=ctx.deadline, cwd=ctx.workdir,
              host_limit=bpftrace_host_limit)
    return outputs.parse_bpftrace_maps(out), out


def bpftrace_host_limit(output):
    """HostLimit when bpftrace's output shows a limit of this host that
    doctor knows (outputs.BPFTRACE_LIMITS), else None.  Doctor predicts
    them: seeing one here means its facts were stale or it missed a case."""
    limit = outputs.parse_bpftrace_limit(output)
    if limit is None:
        return None
    return HostLimit("bpftrace %s: %s (bpftrace: %s); `tracekit doctor` should have predicted it"
                     % ((HostLimit.MARK,) + limit))


# Our opens are told by the marker's unique name, not by `pid == cpid`:
# inside a PID namespace (a container) bpftrace's pid is the kernel's and
# cpid the namespace's, so they never match there.
def check_bpftrace_kprobe(ctx):
    fn = kernel_open_function()
    name = os.path.basename(ctx.marker())
    # arg1: the filename of do_sys_openat2(dfd, filename, how) and do_sys_open(dfd, filename, ...),
    # a user pointer: read as a kernel one it gives "" (measured in the kernel lab: bpftrace 0.20
    # on 6.8 counted 0 with str(arg1), 1 with str(uptr(arg1))).
    maps, out = _bpftrace(ctx, 'kprobe:%s /str(uptr(arg1)) == "%s"/ { @opens = count(); }' % (fn, name),
                          "/bin/cat " + name)
    if maps.get("opens", 0) < 1:
        raise CheckFailed("bpftrace kprobe:%s counted no opens of %s: %s" % (fn, name, _tail(out)))
    return "bpftrace kprobe:%s: %d opens of our marker" % (fn, maps["opens"]), out.strip().splitlines()[-2:]


def check_bpftrace_tracepoint(ctx):
    name = os.path.basename(ctx.marker())
    maps, out = _bpftrace(ctx, 'tracepoint:syscalls:sys_enter_openat /str(args->filename) == "%s"/ '
                               '{ @opens = count(); }' % name, "/bin/cat " + name)
    if maps.get("opens", 0) < 1:
        raise CheckFailed("bpftrace tracepoint counted no openat of %s: %s" % (name, _tail(out)))
    return "bpftrace tracepoint:syscalls:sys_enter_openat: %d of our marker" % maps["opens"], \
        out.strip().splitlines()[-2:]


def check_bpftrace_uprobe(ctx):
    target = ctx.target()
    maps, out = _bpftrace(ctx, "uprobe:%s:tk_work { @calls = count(); @argsum = sum(arg0); }" % target,
                          "%s 3 0" % target)
    if maps.get("calls") != 3 or maps.get("argsum") != 6:
        raise CheckFailed("bpftrace uprobe: expected 3 calls with arguments summing to 6, saw %s" % maps)
    return "bpftrace uprobe:tk_work: 3 calls, arguments sum 6", out.strip().splitlines()[-2:]


# -- systemtap, sysdig ------------------------------------------------------------------
STAP_BEGIN_END = 'probe begin { println("tracekit-begin") exit() } probe end { println("tracekit-end") }'


def _stap(ctx, extra):
    stap = ctx.tool("stap")
    out = run([stap] + extra + ["-e", STAP_BEGIN_END], timeout=ctx.deadline)
    try:
        lines = outputs.parse_stap_begin_end(out, "tracekit-begin", "tracekit-end")
    except ValueError as exc:
        raise CheckFailed("%s: %s" % (exc, _tail(out)))
    return "stap begin/end probes ran", lines


def check_systemtap_module(ctx):
    return _stap(ctx, [])


def check_systemtap_bpf(ctx):
    return _stap(ctx, ["--runtime=bpf"])


# A drop monitor in the spirit of systemtap's classic dropwatch.stp
# (testsuite/systemtap.examples/network/dropwatch.stp): an associative array
# counting skb frees per kernel location on the kfree_skb tracepoint, printed
# with the same words (outputs.parse_stap_dropwatch reads both).  Only
# $location is used: kernels from 5.17 add a `reason`, older ones lack it.
# It prints once, at the end: the window is the life of the sender stap -c
# runs, so what it counts is what happened while we caused drops.
STAP_DROPWATCH = r"""
global locations
probe begin { printf("Monitoring for dropped packets\n") }
probe kernel.trace("kfree_skb") { locations[$location] <<< 1 }
probe end {
  foreach (l in locations-)
    printf("%d packets dropped at %s\n", @count(locations[l]), symname(l))
  printf("Stopping dropped packet monitor\n")
}
"""
# The sender: UDP datagrams to 127.0.0.1 on a port nobody listens on (the check
# bound it and closed it again). No socket takes them, so the UDP receive path
# frees each one with kfree_skb. Loopback only, never another address.
DROP_SENDER = """import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(count):
    sock.sendto(b"tracekit-dropwatch", ("127.0.0.1", port))
sock.close()
"""
DROPS_SENT = 20


def closed_loopback_port():
    """A UDP port on 127.0.0.1 that was free a moment ago and has no socket now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_systemtap_dropwatch(ctx):
    """dropwatch.stp's kfree_skb counting sees the drops the check causes."""
    stap = ctx.tool("stap")
    sender = os.path.join(ctx.workdir, "drop-sender.py")
    write(sender, DROP_SENDER)
    port = closed_loopback_port()
    out = run([stap, "-d", "kernel", "-e", STAP_DROPWATCH,
               "-c", "%s %s %d %d" % (sys.executable, sender, port, DROPS_SENT)],
              timeout=ctx.deadline)
    return judge_dropwatch(out, DROPS_SENT, port)


def judge_dropwatch(out, sent, port):
    """Pass when one kernel location counted at least the ``sent`` datagrams."""
    try:
        report = outputs.parse_stap_dropwatch(out)
    except ValueError as exc:
        raise CheckFailed("stap dropwatch: %s" % exc)
    if not report.stopped:
        raise CheckFailed("stap dropwatch: the monitor never printed its report: %s" % _tail(out))
    ours = sorted(((n, loc) for loc, n in report.drops.items() if n >= sent), reverse=True)
    if not ours:
        seen = ", ".join("%d at %s" % (n, loc) for loc, n in sorted(report.drops.items(), key=lambda i: -i[1])[:3])
        raise CheckFailed("stap dropwatch: sent %d datagrams to closed port 127.0.0.1:%d, but no location counted "
                          "%d drops (saw %s)" % (sent, port, sent, seen or "no drops"))
    count, location = ours[0]
    return ("dropwatch: %d datagrams to closed port 127.0.0.1:%d, %d drops counted at %s"
            % (sent, port, count, location),
            ["%d packets dropped at %s" % (n, loc) for n, loc in ours[:3]])


# A kernel.function probe with a DWARF $variable: only debug info can name it.
STAP_KERNEL_FUNCTION = """probe kernel.function("%s") {
  if (pid() == target()) printf("%%s\\n", user_string2($%s, "<fault>"))
}"""


def check_systemtap_kernel_debuginfo(ctx):
    """stap resolves the open path's $filename from the kernel's DWARF and
    prints the path our cat opens (systemtap's module runtime)."""
    stap = ctx.tool("stap")
    fn = kernel_open_function()
    marker = ctx.marker()
    out = run([stap, "-e", STAP_KERNEL_FUNCTION % (fn, OPEN_FILENAME), "-c", "/bin/cat " + marker],
              timeout=ctx.deadline)
    if not outputs.parse_printed_lines(out, marker):
        raise CheckFailed("stap kernel.function(\"%s\") printed no $%s %s: %s"
                          % (fn, OPEN_FILENAME, marker, _tail(out)))
    return "stap kernel.function(\"%s\"): $%s = %s" % (fn, OPEN_FILENAME, marker), [marker]


def _sysdig(ctx, extra):
    sysdig = ctx.tool("sysdig")
    marker = ctx.marker()
    capture = os.path.join(ctx.workdir, ctx.unique("sysdig") + ".scap")
    tag = os.path.basename(marker)
    proc = subprocess.Popen([sysdig] + extra + ["-w", capture, "proc.pid=%d" % os.getpid()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            universal_newlines=True, start_new_session=True)
    try:
        time.sleep(2 * ctx.timeout_scale)
        if proc.poll() is not None:
            raise CheckFailed("sysdig %s: %s" % (exit_text(proc.returncode), _tail(proc.stdout.read())))
        open_marker(marker)
        time.sleep(min(1.0, ctx.deadline.left()))  # for the capture to take the events in
    finally:
        _stop(proc)
    out = run([sysdig, "-r", capture, "-p", "%evt.type %fd.name", "fd.name contains %s" % tag], timeout=ctx.deadline)
    hits = [event.line for event in outputs.parse_sysdig_events(out) if tag in event.name]
    if not hits:
        raise CheckFailed("sysdig capture has no event on our marker file")
    return "sysdig captured %d events on our marker" % len(hits), hits[:3]


def check_sysdig_kmod(ctx):
    return _sysdig(ctx, [])


def check_sysdig_modern(ctx):
    return _sysdig(ctx, ["--modern-bpf"])


# -- global state ------------------------------------------------------------------
GLOBAL_STATE_FILES = ("tracing_on", "current_tracer", "set_event", "set_ftrace_filter", "set_ftrace_pid",
                      "set_graph_function", "set_event_pid", "kprobe_events", "uprobe_events", "dynamic_events",
                      "buffer_size_kb", "trace_options", "tracing_cpumask")


# Names Context.unique makes: tk_<stem>_<run token>_<serial>.
_RUN_NAME = re.compile(r"tk_[a-z_]+?_([0-9a-f]{8})_\d+")


def without_other_runs(state, token):
    """A snapshot without what other tracekit runs have in flight on this
    kernel (hosts sharing a kernel, as containers do, verify at the same
    time): their instances and probes come and go and are not this run's."""
    return without_runs(state, lambda run: run != token)


def without_runs(state, whose):
    """A snapshot without the instances and probes of the tracekit runs
    (by their token) for which ``whose(token)`` is true."""
    def theirs(text):
        return any(whose(m.group(1)) for m in _RUN_NAME.finditer(text))

    trimmed = dict(state)
    if isinstance(state.get("instances"), list):
        trimmed["instances"] = [i for i in state["instances"] if not theirs(i)]
    for key in ("kprobe_events", "uprobe_events", "dynamic_events"):
        if isinstance(state.get(key), str):
            trimmed[key] = "\n".join(line for line in state[key].splitlines() if not theirs(line))
    return trimmed


def run_tokens(state):
    """The tokens of the tracekit runs whose instances or probes ``state`` shows."""
    texts = list(state.get("instances") or []) + [state.get(k) or "" for k in
                                                    ("kprobe_events", "uprobe_events", "dynamic_events")]
    return {m.group(1) for text in texts for m in _RUN_NAME.finditer(text)}


def snapshot_tracing_state(tracefs):
    """The global tracing settings every check must leave as they were (perf
    probes live in kprobe_events/uprobe_events, so they are included)."""
    state = {}
    for name in GLOBAL_STATE_FILES:
        try:
            state[name] = read(os.path.join(tracefs, name))
        except FileNotFoundError:
            state[name] = None
        except OSError as exc:
            state[name] = "<%s>" % (exc.strerror or exc)
    try:
        state["instances"] = sorted(os.listdir(os.path.join(tracefs, "instances")))
    except OSError:
        state["instances"] = None
    return state


# -- the registry --------------------------------------------------------------------
class Check:
    """A smoke trace; ``method`` is the doctor method it proves (its id unless
    the check is a workflow built on a method); ``also`` are further methods
    it needs; ``timeout`` its budget in seconds (scaled on slow hosts): the
    one number that limits it.  verify's alarm ends the check there, and the
    tools it runs share that budget less a cleanup reserve (see Deadline)."""

    def __init__(self, check_id, title, fn, method=None, also=(), timeout=60):
        self.id, self.title, self.fn, self.method = check_id, title, fn, method or check_id
        self.also, self.timeout = tuple(also), timeout

    @property
    def methods(self):
        return (self.method,) + self.also

    def seconds(self, scale=1.0):
        """The check's time limit on a host whose limits are scaled by ``scale``."""
        return self.timeout * scale

    def deadline(self, scale=1.0):
        """A Deadline for the tools of a run starting now."""
        return Deadline(self.seconds(scale))


# One check per doctor method (same id); explicit, in the order they run.
CHECKS = (
    Check("ftrace.function", "function tracer on the open path", check_function),
    Check("ftrace.function_graph", "function_graph of the open path",
          check_function_graph),
    Check("tracepoint", "syscalls:sys_enter_openat of our own pid", check_tracepoint),
    Check("kprobe", "kprobe with the filename argument", check_kprobe),
    Check("kretprobe", "kretprobe with $retval", check_kretprobe),
    Check("uprobe", "uprobe on tk_work with its argument", check_uprobe),
    Check("uretprobe", "uretprobe on tk_work with $retval", check_uretprobe),
    Check("perf.counters.hardware", "perf stat cycles, instructions",
          check_perf_hardware),
    Check("perf.counters.software", "perf stat software counters",
          check_perf_software),
    # A recording, then perf script (and perf sched timehist) reading it back.
    Check("perf.sampling", "perf record -g of tk_work", check_perf_sampling, timeout=120),
    Check("perf.flamegraph", "perf record -g folded into an SVG flame graph", check_flamegraph,
          method="perf.sampling", timeout=120),
    Check("perf.sched", "perf sched timehist of the sample", check_perf_sched,
          method="perf.counters.software", also=("tracepoint",), timeout=180),
    # perf probe (reading the kernel's debug info), perf record, perf script.
    Check("perf.probe.kernel", "perf probe on the kernel open path",
          check_perf_probe_kernel, timeout=150),
    Check("perf.probe.user", "perf probe -x tk_work with its argument",
          check_perf_probe_user, timeout=150),
    # A debuginfod download of the kernel's debug info is about 1 GB.
    Check("kernel.debuginfo", "the running kernel's DWARF, matched by build-id", check_kernel_debuginfo,
          timeout=600),
    # Kernel debug info: perf probe reads the DWARF vmlinux (about 1 GB) three
    # times (-L, -V, -a), then records; with debuginfod the first fetches it.
    Check("perf.probe.kernel.debuginfo", "perf probe -L/-V and a probe with the open path's filename variable",
          check_perf_probe_kernel_debuginfo, method="kernel.debuginfo", also=("perf.probe.kernel",), timeout=300),
    # trace-cmd list, record (120 s) and report (120 s).
    Check("trace-cmd", "trace-cmd record/report of the open path", check_trace_cmd, timeout=270),
    Check("trace-cmd.function_graph", "trace-cmd function_graph of the open path (global tracer, if idle)",
          check_trace_cmd_function_graph, method="trace-cmd", also=("ftrace.function_graph",), timeout=240),
    # bcc compiles at start: about 47 s under emulation (LAB.md); then our exec must show.
    Check("bcc", "bcc execsnoop sees our exec", check_bcc, timeout=180 + EXEC_REPORT_SECONDS + CLEANUP_SECONDS),
    Check("libbpf-tools", "libbpf-tools execsnoop sees our exec", check_libbpf_tools,
          timeout=60 + EXEC_REPORT_SECONDS + CLEANUP_SECONDS),
    Check("bpftrace.kprobe", "bpftrace kprobe counts our opens", check_bpftrace_kprobe),
    Check("bpftrace.uprobe", "bpftrace uprobe on tk_work", check_bpftrace_uprobe),
    Check("bpftrace.tracepoint", "bpftrace tracepoint counts our opens",
          check_bpftrace_tracepoint),
    # stap builds a kernel module first (its runtime's autoconf pass alone
    # compiles dozens of probes against the headers): up to 30 minutes.
    Check("systemtap.module", "stap begin/end (kernel module)", check_systemtap_module, timeout=1800),
    Check("systemtap.bpf", "stap begin/end (BPF runtime)", check_systemtap_bpf, timeout=300),
    # A workflow on the kernel module runtime: doctor's systemtap.module
    # verdict decides whether it runs.  It builds a module too.
    Check("systemtap.dropwatch", "dropwatch.stp-style drop monitor sees our loopback drops",
          check_systemtap_dropwatch, method="systemtap.module", timeout=1800),
    # A module build too (systemtap.module), on a kernel.function probe with a $variable.
    Check("systemtap.kernel.debuginfo", "stap kernel.function with the open path's $filename",
          check_systemtap_kernel_debuginfo, method="kernel.debuginfo", also=("systemtap.module",), timeout=1800),
    Check("sysdig.kmod", "sysdig captures our opens (kernel module)", check_sysdig_kmod),
    Check("sysdig.modern-ebpf", "sysdig captures our opens (modern eBPF)",
          check_sysdig_modern),
)
CHECKS_BY_ID = {c.id: c for c in CHECKS}
# The checks that prove one doctor method each (doctor's truth is tested with them).
METHOD_CHECKS = tuple(c for c in CHECKS if c.id == c.method)


def run_check(check, ctx):
    """Run one check, its tools within its budget (ctx.deadline); never
    raises for a failed trace."""
    start = time.monotonic()
    ctx.deadline = check.deadline(ctx.timeout_scale)
    try:
        detail, evidence = check.fn(ctx)
        status = PASSED
    except CheckFailed as exc:
        status, detail, evidence = FAILED, str(exc), []
    except CheckSkipped as exc:
        status, detail, evidence = SKIPPED, str(exc), []
    except (OSError, LookupError, ValueError) as exc:
        status, detail, evidence = FAILED, "%s: %s" % (type(exc).__name__, exc), []
    finally:
        ctx.deadline = None
    return Result(check.id, status, detail, evidence, time.monotonic() - start)
