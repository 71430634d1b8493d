"""Parsing and rendering for the perf workflow checks: ``perf stat -x,``,
``perf script`` (folded stacks and a flame graph SVG) and
``perf sched timehist``.

Pure functions on text, standard library only (see tracekit/agent/__init__.py).

Errors, the same for every parser: a ``ValueError`` with a one-line message
when the text holds no record the parser recognises (empty text, garbage, an
error message such as "Workload failed: ...", another subcommand's output).
Text that is recognised but incomplete gives a normal result that says so:
``PerfStat.unsupported``/``not_counted``, ``FoldedStacks.truncated``/``skipped``.
Tests: tests/unit/test_perfdata.py on real captures in tests/data/perf/.
"""

import re
import zlib
from dataclasses import dataclass, field
from typing import Dict, List
from xml.sax.saxutils import escape, quoteattr

NOT_SUPPORTED, NOT_COUNTED = "<not supported>", "<not counted>"
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_EVENT = re.compile(r"^[A-Za-z_][\w.:/=@+-]*$")
_PMU_EVENT = re.compile(r"^[\w.-]+/([\w.-]+)/[a-zA-Z]*$")  # cpu_core/cycles/ on hybrid CPUs


# -- perf stat -x, ---------------------------------------------------------------------
@dataclass
class PerfStat:
    """What ``perf stat -x,`` reported: counts by event name as perf printed it
    (duplicate rows, e.g. per CPU with -A or per interval with -I, are summed),
    and the events it could not count."""
    counted: Dict[str, float] = field(default_factory=dict)
    unsupported: List[str] = field(default_factory=list)
    not_counted: List[str] = field(default_factory=list)
    units: Dict[str, str] = field(default_factory=dict)

    def value(self, event):
        """The count of ``event``; hybrid PMU rows (``cpu_core/cycles/`` and
        ``cpu_atom/cycles/``) add up to ``cycles``. None if nothing counted it."""
        if event in self.counted:
            return self.counted[event]
        parts = [v for k, v in self.counted.items() if _bare_event(k) == event]
        return sum(parts) if parts else None


def _bare_event(name):
    m = _PMU_EVENT.match(name)
    return m.group(1) if m else name


def _stat_row(fields):
    """(value, unit, event) from one -x row. The layout is [prefix fields such
    as CPU0, S0-D0-C0 + count, an -I timestamp], value, unit, event, [variance%
    with -r], run time, percentage, [metric, metric unit]: find the value by
    its shape rather than by position."""
    fields = [f.strip() for f in fields]
    for i in range(len(fields) - 2):
        value, unit, event = fields[i:i + 3]
        if ((value in (NOT_SUPPORTED, NOT_COUNTED) or _NUMBER.match(value))
                and not _NUMBER.match(unit) and _EVENT.match(event)):
            return value, unit, event
    return None


def parse_perf_stat(text, sep=","):
    """Parse the stderr of ``perf stat -x<sep> -e EVENTS -- CMD``.

    Lines that are not counter rows (the command's own output, warnings) are
    ignored. A run where every counter is ``<not supported>`` is a valid result
    with an empty ``counted``. ValueError if no counter row is found."""
    if not text or not text.strip():
        raise ValueError("perf stat output is empty")
    stat, found = PerfStat(), False
    for line in text.splitlines():
        row = _stat_row(line.split(sep))
        if row is None:
            continue
        found = True
        value, unit, event = row
        if value == NOT_SUPPORTED:
            stat.unsupported += [] if event in stat.unsupported else [event]
        elif value == NOT_COUNTED:
            stat.not_counted += [] if event in stat.not_counted else [event]
        else:
            stat.counted[event] = stat.counted.get(event, 0.0) + float(value)
            if unit:
                stat.units[event] = unit
    if not found:
        if "Performance counter stats" in text:
            raise ValueError("perf stat output is not CSV: run perf stat with -x%s" % sep)
        raise ValueError("no perf stat -x%s counter rows in: %s" % (sep, _first_line(text)))
    return stat


def _first_line(text, width=80):
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[:width - 3] + "..."


# -- perf script -> folded stacks -----------------------------------------------------
# "comm  pid[/tid] [cpu] time: [period] event:" (6.1 starts at column 0; 6.8 pads
# the comm column, right-aligned with -a)
_SAMPLE = re.compile(r"^\s*(\S.*?)\s+(-?\d+)(?:/(-?\d+))?\s+(?:\[\d+\]\s+)?\d+\.\d+:(?:\s+|$)")
_AFTER_EVENT = re.compile(r"^(?:\d+\s+)?\S+:\s*(.*)$")
_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+$")


class FoldedStacks(dict):
    """{"comm;outer;...;inner": samples} (Brendan Gregg's folded format, as
    FlameGraph's stackcollapse-perf.pl makes it), plus ``truncated``: the text
    ended inside a sample, which was dropped, and ``skipped``: how many lines
    were neither a sample header nor a stack frame."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.truncated, self.skipped = False, 0

    @property
    def samples(self):
        return sum(self.values())


def _frame(text):
    """(symbol, dso) from "addr symbol+0x1d (dso)"; None if it is not a frame.
    The dso is the last balanced (...) group: symbols and dsos can hold
    parentheses ("operator()(int)", "/tmp/x (deleted)")."""
    m = re.match(r"^([0-9a-fA-F]+)\s+(.*\))$", text.strip())
    if not m:
        return None
    rest, depth = m.group(2), 0
    for i in range(len(rest) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(rest[i], 0)
        if depth == 0:
            return rest[:i].strip(), rest[i + 1:-1]
    return None


def _frame_name(symbol, dso):
    name = _OFFSET.sub("", symbol)
    if not name or name == "[unknown]":
        base = dso.rstrip("/").rsplit("/", 1)[-1].strip("[]") if dso and dso != "[unknown]" else ""
        name = "[%s]" % (base or "unknown")
    return name.replace(";", ":")


def fold_perf_script(text, include_pid=False):
    """Fold default-format ``perf script`` output (of ``perf record -g`` or
    ``--call-graph dwarf``) into root-first stacks with the process name (or
    "comm-pid") as the root frame. Offsets are stripped; unknown symbols become
    "[dso basename]" or "[unknown]". Samples without a callchain fold to the
    frame on their header line, or to the process name alone.

    Text that ends mid-line or mid-sample (perf killed, output cut) gives
    ``truncated=True`` and the incomplete last sample is dropped: pass perf's
    output unstripped. ValueError if no sample header is found."""
    if not text or not text.strip():
        raise ValueError("perf script output is empty")
    folded, lines = FoldedStacks(), text.split("\n")
    # The last element is "" when the text ends with a newline, else a cut line.
    folded.truncated = lines.pop() != ""
    current, headers, blank_terminated = None, 0, False

    def finish(sample):
        key = ";".join([sample[0]] + sample[1][::-1])
        folded[key] = folded.get(key, 0) + 1

    for line in lines:
        if not line.strip():
            if current is not None:
                finish(current)
                current, blank_terminated = None, True
            continue
        m = _SAMPLE.match(line)
        if m:
            if current is not None:  # no callchains: one line per sample
                finish(current)
            headers += 1
            root = m.group(1).replace(" ", "_").replace(";", ":")
            current = ["%s-%s" % (root, m.group(2)) if include_pid else root, []]
            tail = _AFTER_EVENT.match(line[m.end():])
            frame = _frame(tail.group(1)) if tail and tail.group(1) else None
            if frame:
                current[1].append(_frame_name(*frame))
            continue
        frame = _frame(line) if current is not None else None
        if frame:
            current[1].append(_frame_name(*frame))
        else:
            folded.skipped += 1
    if current is not None:
        # Samples with callchains end with a blank line: one without it was cut.
        if folded.truncated or blank_terminated:
            folded.truncated = True
        else:
            finish(current)
    if not headers:
        raise ValueError("no perf script samples in: %s" % _first_line(text))
    return folded


def stacks_through(folded, function):
    """The folded stacks (and their sample counts) that pass through
    ``function``: one of its frames below the comm is exactly that name."""
    return {stack: n for stack, n in folded.items() if function in stack.split(";")[1:]}


def leaf_samples(folded):
    """Samples per function of its own (the leaf frame of each stack; a
    stack of the process name alone counts under that name)."""
    leaves = {}
    for stack, n in folded.items():
        leaf = stack.rsplit(";", 1)[-1]
        leaves[leaf] = leaves.get(leaf, 0) + n
    return leaves


def format_folded(folded):
    """The folded stacks as text for FlameGraph's flamegraph.pl ("stack count" lines)."""
    return "".join("%s %d\n" % (stack, n) for stack, n in sorted(folded.items()))


# -- flame graph ------------------------------------------------------------------------
def _esc(text):
    return escape(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "?", str(text)))


def _color(name):
    # crc32, not hash(): the same name gets the same colour in every run
    h = zlib.crc32(name.encode("utf-8", "replace"))
    r, g, b = h & 255, h >> 8 & 255, h >> 16 & 255
    return "rgb(%d,%d,%d)" % (205 + r * 50 // 255, g * 230 // 255, b * 55 // 255)


def flamegraph_svg(folded, title="Flame Graph", width=1200, min_fraction=0.001):
    """A self-contained SVG flame graph of folded stacks: root "all" at the
    bottom, callees above, widths proportional to samples; frames narrower than
    ``min_fraction`` of all samples are left out. ValueError if there are no samples."""
    total = sum(folded.values())
    if total <= 0:
        raise ValueError("no samples to draw a flame graph from")
    root = ["all", 0, {}]  # name, samples, children by name
    for stack, count in folded.items():
        node = root
        node[1] += count
        for name in stack.split(";"):
            node = node[2].setdefault(name, [name, 0, {}])
            node[1] += count
    frames, todo = [], [(root, 0, 0)]
    while todo:
        node, depth, x = todo.pop()
        frames.append((node[0], node[1], depth, x))
        for name in sorted(node[2]):
            child = node[2][name]
            if child[1] >= total * min_fraction:
                todo.append((child, depth + 1, x))
            x += child[1]
    pad, top, fh, char_w = 10, 34, 16, 7.0
    scale = (width - 2 * pad) / float(total)
    height = top + (max(f[2] for f in frames) + 1) * fh + pad
    out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
           '<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d">' % (width, height, width, height),
           '<style>text{font-family:Verdana,sans-serif;font-size:12px;fill:#000}'
           'rect{stroke:#fff;stroke-width:0.5}</style>',
           '<rect x="0" y="0" width="%d" height="%d" fill="#f8f8f8" stroke="none"/>' % (width, height),
           '<text x="%d" y="22" text-anchor="middle" style="font-size:16px">%s</text>'
           % (width // 2, _esc(title))]
    for name, count, depth, x in frames:
        rx, w, y = pad + x * scale, count * scale, height - pad - (depth + 1) * fh
        tip = "%s (%d samples, %.2f%%)" % (name, count, 100.0 * count / total)
        out.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill=%s/>'
                   % (_esc(tip), rx, y, w, fh - 1, quoteattr(_color(name))))
        fit = int((w - 6) / char_w)
        if fit >= 3:
            label = name if len(name) <= fit else name[:fit - 2] + ".."
            out.append('<text x="%.1f" y="%d">%s</text>' % (rx + 3, y + fh - 4, _esc(label)))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# -- perf sched timehist --------------------------------------------------------------
@dataclass
class TaskTimes:
    """One task's totals over its timehist rows (one row per sched-out)."""
    comm: str
    tid: int
    pid: int
    switches: int = 0
    wait_ms: float = 0.0
    sch_delay_ms: float = 0.0
    run_ms: float = 0.0


_TH_ROW = re.compile(r"^\s*\d+\.\d+\s+\[\d+\]\s")
_TH_TIMES = re.compile(r"^(.+?)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)(?:\s|$)")
_TH_TASK = re.compile(r"^(.*)\[(-?\d+)(?:/(-?\d+))?\]$")


def parse_sched_timehist(text):
    """Per-task totals from ``perf sched timehist`` (also with -V, -w, -M, -n,
    --state; wakeup and migration rows carry no times and are skipped).

    Keys are the task names as perf prints them: "comm[tid]", or
    "comm[tid/pid]" for a thread that is not its process's main thread
    ("<idle>" is every CPU's idle task, tid and pid 0). A task renamed by
    exec() appears under each name it had. ValueError if there are no rows,
    e.g. for the -s summary alone."""
    if not text or not text.strip():
        raise ValueError("perf sched timehist output is empty")
    tasks, col = {}, None
    for line in text.splitlines():
        if col is None and "task name" in line:
            col = line.index("task name")  # -V inserts a column before it
            continue
        m = _TH_ROW.match(line)
        if not m:
            continue
        if col is not None and m.end() - 1 <= col < len(line) and line[col - 1] == " ":
            rest = line[col:]
        else:
            rest = line[m.end():]
        times = _TH_TIMES.match(rest.strip())
        if not times:
            continue
        name = times.group(1).strip()
        task = tasks.get(name)
        if task is None:
            t = _TH_TASK.match(name)
            tid = int(t.group(2)) if t else 0
            pid = int(t.group(3)) if t and t.group(3) else tid
            task = tasks[name] = TaskTimes(t.group(1) if t else name, tid, pid)
        task.switches += 1
        task.wait_ms += float(times.group(2))
        task.sch_delay_ms += float(times.group(3))
        task.run_ms += float(times.group(4))
    for task in tasks.values():  # perf prints microseconds: keep sums exact
        task.wait_ms, task.sch_delay_ms, task.run_ms = (round(task.wait_ms, 3), round(task.sch_delay_ms, 3),
                                                        round(task.run_ms, 3))
    if not tasks:
        if "Runtime summary" in text:
            raise ValueError("perf sched timehist output is only the -s summary: run it without -s")
        raise ValueError("no perf sched timehist rows in: %s" % _first_line(text))
    return tasks


def task_times_for_pid(tasks, pid):
    """The totals of process ``pid``: all its threads and all names it had
    (the comm is its main thread's latest). None if it does not appear."""
    mine = [t for t in tasks.values() if t.pid == pid]
    if not mine:
        return None
    main = [t for t in mine if t.tid == pid] or mine
    return combined(main[-1].comm, pid, pid, mine)


def combined(comm, tid, pid, parts):
    """One TaskTimes adding up ``parts`` (TaskTimes), under the given names."""
    total = TaskTimes(comm, tid, pid)
    for t in parts:
        total.switches += t.switches
        total.wait_ms += t.wait_ms
        total.sch_delay_ms += t.sch_delay_ms
        total.run_ms += t.run_ms
    total.wait_ms, total.sch_delay_ms, total.run_ms = (round(total.wait_ms, 3), round(total.sch_delay_ms, 3),
                                                       round(total.run_ms, 3))
    return total


def missed_comm(comm, tid):
    """Whether ``comm`` is perf's stand-in for a name it never saw: a thread
    it knows of no comm or fork record for is ":TID" (perf's thread.c)."""
    return comm == ":%d" % tid


def tasks_by_tid(tasks, tids, comms=None):
    """The tasks of timehist ``tasks`` whose thread id is in ``tids``, one
    TaskTimes per thread (the names it had, e.g. before and after an exec,
    summed under its latest), in the order they first ran.  A thread whose
    names perf missed (":TID") gets its name from ``comms`` ({tid: comm},
    parse_sched_comms), when it is there."""
    names = {}
    for task in tasks.values():  # parse_sched_timehist keeps the order of first appearance
        if task.tid in tids:
            names.setdefault(task.tid, []).append(task)
    merged = []
    for tid, parts in names.items():
        known = [t.comm for t in parts if not missed_comm(t.comm, tid)]
        comm = known[-1] if known else (comms or {}).get(tid, parts[-1].comm)
        merged.append(combined(comm, tid, parts[-1].pid, parts))
    return merged


# -- perf script: sched_process_fork ---------------------------------------------------
_FORK = re.compile(r"sched:sched_process_fork:\s+comm=(.*?)\s+pid=(-?\d+)\s+child_comm=(.*?)\s+child_pid=(-?\d+)\s*$")


@dataclass
class Fork:
    """A sched_process_fork event: a process or thread ``child_pid`` started by ``pid``."""
    comm: str
    pid: int
    child_comm: str
    child_pid: int


def parse_sched_forks(text):
    """The sched_process_fork events in ``perf script`` output of a perf
    sched record (threads too: their child_pid is the thread id), in order.
    Records of other events are skipped: a command that started nothing
    gives []. ValueError if there is no perf script sample at all."""
    if not text or not text.strip():
        raise ValueError("perf script output is empty")
    forks, samples = [], 0
    for line in text.splitlines():
        if _SAMPLE.match(line):
            samples += 1
        m = _FORK.search(line)
        if m:
            forks.append(Fork(m.group(1), int(m.group(2)), m.group(3), int(m.group(4))))
    if not samples:
        raise ValueError("no perf script samples in: %s" % _first_line(text))
    return forks


# The task names the kernel wrote into the sched tracepoints' records:
# "prev_comm=sh prev_pid=5", "next_comm=... next_pid=", "comm=... pid=",
# "child_comm=... child_pid=" (a comm may hold spaces).
_PAYLOAD_COMM = re.compile(r"(?<!\w)((?:prev_|next_|child_)?)comm=(.*?)\s+\1pid=(-?\d+)(?=\s|$)")


def parse_sched_comms(text):
    """{tid: comm}: each task's latest name in the sched events of ``perf
    script`` output of a perf sched record, as the kernel recorded it in
    the events themselves (sched_switch's prev_comm and next_comm, the
    wakeups', sched_process_fork's child_comm...), so also where perf
    missed the comm and fork records it names tasks by.  ValueError if
    there is no perf script sample at all."""
    if not text or not text.strip():
        raise ValueError("perf script output is empty")
    comms, samples = {}, 0
    for line in text.splitlines():
        if not _SAMPLE.match(line):
            continue
        samples += 1
        for _, comm, tid in _PAYLOAD_COMM.findall(line):
            if int(tid) > 0:  # 0: a CPU's idle task
                comms[int(tid)] = comm
    if not samples:
        raise ValueError("no perf script samples in: %s" % _first_line(text))
    return comms


def command_tasks(tasks, script, pid):
    """The tasks of the command ``pid`` in timehist ``tasks``: it, its
    threads and what it started (the sched_process_fork events of
    ``script``, the perf script text of the same recording), one per thread,
    named as the kernel named them where perf missed their names."""
    return tasks_by_tid(tasks, descendants(parse_sched_forks(script), pid), parse_sched_comms(script))


def descendants(forks, pid):
    """``pid`` and every task it started, directly or through its children
    (the events may come in any order)."""
    children = {}
    for fork in forks:
        children.setdefault(fork.pid, []).append(fork.child_pid)
    seen, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen
