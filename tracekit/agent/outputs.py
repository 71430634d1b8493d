"""Parsing the output of the tracing tools the smoke checks run (tracefs
``trace`` files, trace-cmd report, perf script, execsnoop, bpftrace,
systemtap, sysdig).  The perf stat, perf script folding and perf sched
timehist parsers live in perfdata.

Pure functions on text, standard library only (see tracekit/agent/__init__.py):
tracekit.agent.checks runs the tools and hands their output here, so what a
check decides can be tested on real captured output without running anything.

Errors: a ``ValueError`` with a one-line message where the text is not the
tool's output at all (no execsnoop header, no stap begin line...); text that
is recognised but holds nothing of interest gives an empty result.
Tests: tests/unit/test_outputs.py on the captures in tests/data/captured/.
"""

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional


def _first_line(text, width=80):
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[:width - 3] + "..."


# -- tracefs trace files, trace-cmd report, perf script ---------------------------------
def parse_trace_lines(text, needle):
    """The records of a tracefs ``trace`` file (or of ``trace-cmd report`` /
    ``perf script``) that contain ``needle``, stripped; header and comment
    lines (``#``...) are not records."""
    return [line.strip() for line in (text or "").splitlines()
            if needle in line and not line.lstrip().startswith("#")]


_MARKER_PID = r"^\s*.+?-(\d+)\s+\[\d+\].*"


def parse_marker_pid(text, token):
    """The pid a ``trace_marker`` write of ``token`` was recorded with (the
    ``comm-PID [CPU]`` column), or None if the line is not in ``text``."""
    for line in (text or "").splitlines():
        match = re.match(_MARKER_PID + re.escape(token), line)
        if match:
            return int(match.group(1))
    return None


# name=value fetch arguments of a kprobe/uprobe record: strings are quoted.
_FIELD = re.compile(r'(?:^|\s)([$\w.]+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_probe_fields(line):
    """The ``name=value`` fetch arguments of a dynamic-event record (kprobe,
    uprobe, perf probe), in order; quoted string values unquoted.  Only the
    part after the probe address ``(...)`` counts, so a ``=`` in the task name
    is not an argument."""
    rest = line
    address = re.search(r":\s+\([^)]*\)", line)
    if address:
        rest = line[address.end():]
    fields = {}
    for match in _FIELD.finditer(rest):
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        fields[match.group(1)] = value
    return fields


def probe_value(line, name, base=10):
    """The integer fetch argument ``name`` of a record (None when absent or not
    a number).  ``base`` 10 for the s/u types, 16 for x types and for older
    kernels' untyped values, which print hex without ``0x``."""
    value = parse_probe_fields(line).get(name)
    if value is None:
        return None
    try:
        return int(value, base)
    except ValueError:
        return None


_CALLED = re.compile(r"([\w.$]+)\(\)")


def parse_function_graph(text, function):
    """(call-tree lines of ``function``, all records) of a function_graph
    trace: ``function() {`` opens a call tree, ``function();`` is a leaf call.
    ``function`` is a name, or a glob as set_graph_function takes it (vfs_*)."""
    lines = [line.rstrip() for line in (text or "").splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    calls = [line for line in lines if any(fnmatch.fnmatchcase(name, function) for name in _CALLED.findall(line))]
    return calls, lines


@dataclass
class GraphRecord:
    """One line of a function_graph trace: the CPU, the task and pid (with
    funcgraph-proc), the duration in microseconds (None on a line that opens
    a call), the call depth and the text (``name() {``, ``name();``, ``}``)."""
    cpu: int
    task: Optional[str]
    pid: Optional[int]
    duration_us: Optional[float]
    depth: int
    call: str


# " 0)    sh-4802     |   0.616 us    |      name();": CPU, [TASK-PID |], [overhead mark] DURATION, |, call.
_GRAPH = re.compile(r"^\s*(\d+)\)\s+(?:(\S.*?)-(\d+)\s+\|)?\s*(?:[-+!#*@$]\s*)?(?:(\d+(?:\.\d+)?)\s+us\s+)?\|( *)(\S.*)$")


def parse_function_graph_records(text):
    """The records of a function_graph trace, in order (comment lines, and
    lines such as context-switch markers that are not calls, are skipped)."""
    records = []
    for line in (text or "").splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = _GRAPH.match(line)
        if not m:
            continue
        records.append(GraphRecord(cpu=int(m.group(1)), task=m.group(2), pid=int(m.group(3)) if m.group(3) else None,
                                   duration_us=float(m.group(4)) if m.group(4) else None,
                                   depth=max(0, (len(m.group(5)) - 1) // 2), call=m.group(6).rstrip()))
    return records


def trace_cmd_lists(text, function):
    """Whether ``trace-cmd list -f FUNCTION`` listed the function (it reads
    available_filter_functions; nothing listed means no function tracer)."""
    return function in (text or "").split()


# -- perf script (callchains) ----------------------------------------------------------
# "\t    55d0c3a0f149 tk_work+0x19 (/path/target)": one callchain frame.
_FRAME = re.compile(r"^\s+[0-9a-fA-F]+\s+(\S+?)(?:\+0x[0-9a-fA-F]+)?\s+\(")


@dataclass
class ProbeHit:
    """One event of ``perf script`` output of probe events: who hit it
    (comm, pid, tid), where (cpu) and when, which event, its fetched
    arguments by name."""
    comm: str
    pid: int
    tid: int
    cpu: Optional[int]
    time: float
    event: str
    fields: Dict[str, str]
    line: str


# " tracekit-target  1704 [000] 18154.421852: tracekit:tk_pu_6b4a8166_9: (55ef71df6179) n=1"
_PROBE_HIT = re.compile(r"^\s*(\S.*?)\s+(-?\d+)(?:/(-?\d+))?\s+(?:\[(\d+)\]\s+)?(\d+\.\d+):\s+([\w.-]+:[\w.-]+):")


def parse_probe_hits(text, group=None):
    """The probe events of ``perf script`` output (of ``group`` only, when
    given), in order; lines that are not events are skipped."""
    hits = []
    for line in (text or "").splitlines():
        m = _PROBE_HIT.match(line)
        if not m or (group is not None and m.group(6).split(":")[0] != group):
            continue
        pid = int(m.group(2))
        hits.append(ProbeHit(comm=m.group(1), pid=pid, tid=int(m.group(3)) if m.group(3) else pid,
                             cpu=int(m.group(4)) if m.group(4) else None, time=float(m.group(5)),
                             event=m.group(6), fields=parse_probe_fields(line), line=line.strip()))
    return hits


# "  tracekit:tk_pu_1    (on tk_work in /tmp/t/target with n)"
_PROBE_ADDED = re.compile(r"^\s+([\w.-]+:[\w.-]+)\s+\(on (.*)\)\s*$")


def parse_perf_probe_added(text):
    """The events ``perf probe -a`` says it added: [(GROUP:EVENT, where: the
    "(on ...)" text)], in order ([] when it names none)."""
    return [(m.group(1), m.group(2)) for m in map(_PROBE_ADDED.match, (text or "").splitlines()) if m]


def perf_script_frames(text, symbol):
    """How many callchain frames of ``perf script`` output are in ``symbol``."""
    frames = (_FRAME.match(line) for line in (text or "").splitlines())
    return sum(1 for m in frames if m and m.group(1) == symbol)


def parse_target_pid(text):
    """The pid tracekit's probe target printed first ("pid N"), in the output
    of a tool that ran it (perf sched record merges the two)."""
    match = re.search(r"^pid (\d+)$", text or "", re.M)
    if not match:
        raise ValueError("no 'pid N' line of the probe target in: %s" % _first_line(text))
    return int(match.group(1))


# -- execsnoop (bcc and libbpf-tools) ----------------------------------------------------
@dataclass
class ExecRow:
    """One exec that execsnoop reported, as it printed it."""
    comm: str
    pid: int
    ppid: Optional[int]
    ret: int
    args: str
    line: str


def parse_execsnoop(text):
    """The rows of execsnoop output, read by its header (``PCOMM PID [PPID] RET
    ARGS``, with ``TIME(s)``/``TIME`` or ``UID`` columns in front as -t/-U add
    them).  Lines that do not fit the columns (warnings, ``[...]``) are
    skipped.  ValueError if there is no header."""
    lines = (text or "").splitlines()
    header = None
    rows = []
    for line in lines:
        words = line.split()
        if "PCOMM" in words and words[-1:] == ["ARGS"]:
            header = words
            continue
        if header is None or len(words) < len(header) - 1:
            continue
        fixed = words[:len(header) - 1]
        # ARGS is the rest of the line, spaces and all.
        args = line.split(None, len(header) - 1)[-1] if len(words) >= len(header) else ""
        record = dict(zip(header, fixed))
        try:
            row = ExecRow(comm=record["PCOMM"], pid=int(record["PID"]),
                          ppid=int(record["PPID"]) if "PPID" in record else None,
                          ret=int(record["RET"]), args=args, line=line.rstrip())
        except (KeyError, ValueError):
            continue
        rows.append(row)
    if header is None:
        raise ValueError("no execsnoop header (PCOMM ... ARGS) in: %s" % _first_line(text))
    return rows


# -- bpftrace ------------------------------------------------------------------------------
def parse_bpftrace_maps(text):
    """The scalar maps bpftrace printed at exit (``@name: 42``), by name."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^@(\w+): (-?\d+)$", text or "", re.M)}


_INFO_DEPENDS = re.compile(r"\s*\(depends on [^)]*\)")


def parse_bpftrace_info(text):
    """``bpftrace --info`` by section: {"build": {"version": "v0.14.0", ...},
    "kernel_features": {"btf": False, ...}, "probe_types": {"kprobe_multi":
    False, ...}, ...}.  Section names lower case with "_"; keys as printed
    less a "(depends on ...)" note (0.14: "btf (depends on Build:libbpf)");
    "yes"/"no" as booleans, other values as text.  Two layouts: one
    "key: value" a line (to 0.22), or two a line padded into columns (from
    0.23).  None when the text has no "Kernel features" section (not --info
    output: an error, or a bpftrace without --info)."""
    sections, current = {}, None
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            current = sections.setdefault(line.strip().lower().replace(" ", "_"), {})
            continue
        if current is None:
            continue
        # Columns are padded with at least three spaces; "OS: Linux 6.8.0 #1 SMP" has single ones.
        for column in re.split(r"\s{3,}", line.strip()):
            key, sep, value = column.partition(": ")
            if not sep:
                continue
            value = value.strip()
            current[_INFO_DEPENDS.sub("", key).strip()] = {"yes": True, "no": False}.get(value, value)
    return sections if "kernel_features" in sections else None


# What bpftrace prints when it runs into a limit of this host rather than a
# fault of the program: (what it means, a pattern of its error line).
# tracekit.doctor predicts each (its bpftrace requirements) and quotes the
# same text; verify reports them as that limit, anything else as a failure.
BPFTRACE_NO_PROC_MODULES = "Failed to open kernel function info: Error reading modules from /proc/modules"
BPFTRACE_NO_KERNEL_TYPES = "Include headers with missing type definitions or install BTF information"
BPFTRACE_LIMITS = (
    # bpftrace 0.25 on a kernel without CONFIG_MODULES (bpftrace commit f3fd78e23, 0.26, fixed it).
    ("this bpftrace needs /proc/modules, which a kernel without loadable modules lacks",
     re.compile(r"^.*%s.*$" % re.escape(BPFTRACE_NO_PROC_MODULES), re.M)),
    # No BTF that bpftrace can read and no kernel headers: kernel types such as the
    # s64 and umode_t of a tracepoint's arguments are unknown to its C parser.
    ("this bpftrace reads no kernel BTF here and there are no kernel headers, so the kernel types "
     "the program uses are unknown to it", re.compile(r"^.*%s.*$" % re.escape(BPFTRACE_NO_KERNEL_TYPES), re.M)),
)


def parse_bpftrace_limit(text):
    """(what the limit is, bpftrace's own error line) when bpftrace's output
    says it ran into a limit of the host (BPFTRACE_LIMITS); None otherwise."""
    for meaning, pattern in BPFTRACE_LIMITS:
        match = pattern.search(text or "")
        if match:
            return meaning, match.group(0).strip()
    return None


# -- systemtap -----------------------------------------------------------------------------
def parse_stap_begin_end(text, begin, end):
    """The lines a stap script printed from its begin and its end probe (the
    lines containing ``begin`` and ``end``), in order.  ValueError naming
    the one that is missing."""
    lines = (text or "").splitlines()
    seen = {}
    for token in (begin, end):
        hits = [line for line in lines if token in line]
        if not hits:
            raise ValueError("stap printed no %r line" % token)
        seen[token] = hits[0]
    return [seen[begin], seen[end]]


# The classic dropwatch.stp's words (systemtap's testsuite/systemtap.examples/
# network/dropwatch.stp); tracekit's own drop monitor prints the same.
DROPWATCH_BEGIN = "Monitoring for dropped packets"
DROPWATCH_END = "Stopping dropped packet monitor"
_DROPS = re.compile(r"^\s*(\d+) packets dropped at (\S.*?)\s*$")


@dataclass
class DropReport:
    """What a dropwatch-style stap script reported: drops per location (a
    symbol such as ``__udp4_lib_rcv``, ``symname+0x1c``, or a raw address
    where stap could not symbolise it), summed over all of its reports."""
    started: bool = False
    stopped: bool = False
    reports: int = 0
    drops: Dict[str, int] = field(default_factory=dict)

    @property
    def total(self):
        return sum(self.drops.values())

    def at(self, name):
        """Drops at locations in function ``name`` (``name`` or ``name+0x..``)."""
        return sum(n for loc, n in self.drops.items() if re.sub(r"\+0x[0-9a-fA-F]+.*$", "", loc) == name)


def parse_stap_dropwatch(text):
    """Parse the output of a dropwatch.stp-style script: its begin line, any
    number of reports of ``N packets dropped at LOCATION`` lines, its end
    line.  ValueError if the begin line is missing (the script never ran)."""
    report = DropReport()
    in_report = False
    for line in (text or "").splitlines():
        if DROPWATCH_BEGIN in line:
            report.started = True
        elif DROPWATCH_END in line:
            report.stopped = True
        match = _DROPS.match(line)
        if match:
            if not in_report:
                report.reports += 1
                in_report = True
            location = match.group(2)
            report.drops[location] = report.drops.get(location, 0) + int(match.group(1))
        else:
            in_report = False
    if not report.started:
        raise ValueError("no %r line: the drop monitor did not start: %s" % (DROPWATCH_BEGIN, _first_line(text)))
    return report


# -- sysdig ----------------------------------------------------------------------------------
@dataclass
class SysdigEvent:
    type: str
    name: str
    line: str


def parse_sysdig_events(text):
    """Events of ``sysdig -r CAPTURE -p "%evt.type ... %fd.name"`` output:
    the first field is the event type, the last the fd (file) name.  Lines of
    one field (``<NA>`` placeholders aside) are not events."""
    events = []
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) < 2 or not re.match(r"^[a-z_][a-z0-9_]*$", words[0]):
            continue
        events.append(SysdigEvent(type=words[0], name=words[-1], line=line.rstrip()))
    return events


def parse_kallsyms_function(text, candidates):
    """The first of ``candidates`` that /proc/kallsyms text lists (None if none)."""
    names = set()
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in candidates:
            names.add(parts[2])
    return next((name for name in candidates if name in names), None)


# -- perf probe -L / -V (kernel debug info) -----------------------------------------------
@dataclass
class SourceLines:
    """What ``perf probe -L FUNCTION`` showed: the source file it read and its
    lines, each (line number, text); the number is relative to the
    function's first line, and None on a line with no probe point."""
    function: str
    path: str
    lines: List[tuple]

    @property
    def probeable(self):
        return [n for n, _ in self.lines if n is not None]


# "<vfs_read@/home/mhiramat/ksrc/linux/fs/read_write.c:0>", or "<vfs_read@...>"
_LINE_RANGE = re.compile(r"^\s*<([^@<>]+)@(.*?)(?::(\d+))?>\s*$")
# "      0  int icmp_rcv(...)": perf prints "%7d  %s" where it can probe, 9 blanks otherwise.
_NUMBERED_LINE = re.compile(r"^\s*(\d+)  (.*)$")
# What perf prints when it has the DWARF but not the source file it names.
PERF_NO_SOURCE = "Failed to find source file path"


def parse_perf_probe_lines(text, function):
    """``perf probe -L FUNCTION`` output: a SourceLines.  ValueError when
    there is no ``<FUNCTION@FILE:N>`` header (perf found no line range)."""
    lines = (text or "").splitlines()
    for i, line in enumerate(lines):
        header = _LINE_RANGE.match(line)
        if header and header.group(1) == function:
            break
    else:
        raise ValueError("perf probe -L printed no <%s@FILE> header: %s" % (function, _first_line(text)))
    source = []
    for line in lines[i + 1:]:
        numbered = _NUMBERED_LINE.match(line)
        if numbered:
            source.append((int(numbered.group(1)), numbered.group(2).rstrip()))
        elif line.strip():
            source.append((None, line.strip()))
    return SourceLines(function=function, path=header.group(2), lines=source)


def perf_probe_source_missing(text):
    """Whether ``perf probe -L`` stopped because the source file is not here
    (it had found the function's lines in the debug info)."""
    return PERF_NO_SOURCE in (text or "")


@dataclass
class VariableList:
    """What ``perf probe -V FUNCTION`` listed: per probe location
    (``vfs_read+0``) the variables in scope there, each (type, name)."""
    function: str
    locations: Dict[str, List[tuple]]

    @property
    def names(self):
        return sorted({name for variables in self.locations.values() for _, name in variables})


_VARIABLES_AT = re.compile(r"^\s*Available variables at (\S+)\s*$")
_LOCATION = re.compile(r"^\s*@<([^>]+)>\s*$")


def parse_perf_probe_vars(text, function):
    """``perf probe -V FUNCTION`` output: a VariableList (a variable's name
    is the last word of its line, its type the words before: ``char*``,
    ``struct file*``, ``(unknown_type)``).  ValueError when perf listed no
    variables of ``function`` at all."""
    locations, location, found = {}, None, False
    for line in (text or "").splitlines():
        heading = _VARIABLES_AT.match(line)
        if heading:
            # "vfs_read" or "vfs_read:18" (a line of it)
            found = heading.group(1).split(":")[0] == function
            location = None
            continue
        if not found:
            continue
        at = _LOCATION.match(line)
        if at:
            location = at.group(1)
            locations.setdefault(location, [])
            continue
        words = line.split()
        # "(No matched variables)" is perf's word for none at a location.
        if location is not None and len(words) >= 2 and not line.lstrip().startswith("(No "):
            locations[location].append((" ".join(words[:-1]), words[-1]))
    if not found:
        raise ValueError("perf probe -V printed no 'Available variables at %s': %s" % (function, _first_line(text)))
    return VariableList(function=function, locations=locations)


def parse_printed_lines(text, value):
    """The lines of a tool's output that are exactly ``value`` (surrounding
    blanks aside): e.g. the paths a stap script printed, one a line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip() == value]
