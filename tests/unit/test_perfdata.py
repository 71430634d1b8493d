"""tracekit.agent.perfdata on real perf output captured on the lab machine
(tests/data/perf/README.md says how each file was made)."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tracekit.agent.perfdata import (FoldedStacks, flamegraph_svg, fold_perf_script, format_folded,
                                     parse_perf_stat, parse_sched_timehist, task_times_for_pid)

DATA = Path(__file__).resolve().parents[1] / "data" / "perf"
SOFTWARE = ["task-clock", "context-switches", "cpu-migrations", "page-faults"]
SVG = "{http://www.w3.org/2000/svg}"


def data(name):
    return (DATA / name).read_text()


def one_line_value_error(fn, text, match):
    with pytest.raises(ValueError, match=match) as info:
        fn(text)
    assert "\n" not in str(info.value)


# -- perf stat -x, -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["stat-x.txt", "stat-x-perf6.8.txt", "stat-x-repeat.txt",
                                  "stat-x-per-cpu.txt", "stat-x-interval.txt"])
def test_stat_software_counted_hardware_not_supported(name):
    stat = parse_perf_stat(data(name))
    assert list(stat.counted) == SOFTWARE
    assert stat.unsupported == ["cycles", "instructions"]
    assert stat.not_counted == []
    assert stat.units == {"task-clock": "msec"}
    assert stat.value("task-clock") > 0 and stat.value("page-faults") > 0
    assert stat.value("cycles") is None


def test_stat_values_of_the_captured_run():
    stat = parse_perf_stat(data("stat-x.txt"))
    assert stat.counted == {"task-clock": 0.85, "context-switches": 2, "cpu-migrations": 0, "page-faults": 59}


def test_stat_rows_per_cpu_and_per_interval_are_summed():
    per_cpu = parse_perf_stat(data("stat-x-per-cpu.txt"))  # CPU0,... CPU1,... (-a -A)
    assert per_cpu.counted["task-clock"] == pytest.approx(21.65 + 21.66)
    assert per_cpu.counted["context-switches"] == 17 + 5
    interval = parse_perf_stat(data("stat-x-interval.txt"))  # leading -I timestamp field
    assert interval.counted["task-clock"] == pytest.approx(0.78 + 0.02 + 0.02 + 0.05)


def test_stat_perf_6_8_default_events():
    stat = parse_perf_stat(data("stat-x-default-events-perf6.8.txt"))
    assert list(stat.counted) == SOFTWARE
    assert stat.unsupported == ["cycles", "instructions", "branches", "branch-misses"]


def test_stat_ignores_the_commands_own_output():
    # tracekit's run() merges the target's stdout ("pid N") into perf's stderr.
    assert parse_perf_stat("pid 11152\n" + data("stat-x.txt")) == parse_perf_stat(data("stat-x.txt"))


def test_stat_other_separator():
    line = "0.49;msec;task-clock;485531;100.00;0.370;CPUs utilized\n"  # perf 6.1 -x';', captured
    assert parse_perf_stat(line, sep=";").counted == {"task-clock": 0.49}


def test_stat_every_counter_not_supported_is_a_result():
    rows = "".join(line for line in data("stat-x.txt").splitlines(True) if "<not supported>" in line)
    stat = parse_perf_stat(rows)
    assert stat.counted == {} and stat.unsupported == ["cycles", "instructions"]


def test_stat_hybrid_pmu_rows():
    # Synthetic rows, not a captured format: the parser's tolerance for PMU-named
    # events (cpu_core/cycles/) and <not counted>, which hybrid CPUs produce.
    stat = parse_perf_stat("1000,,cpu_core/cycles/,500,60.00,,\n200,,cpu_atom/cycles/,500,40.00,,\n"
                           "<not counted>,,cpu_atom/instructions/,0,0.00,,\n")
    assert stat.value("cycles") == 1200
    assert stat.value("cpu_core/cycles/") == 1000
    assert stat.not_counted == ["cpu_atom/instructions/"]


def test_stat_failures():
    one_line_value_error(parse_perf_stat, "", "empty")
    one_line_value_error(parse_perf_stat, " \n\n", "empty")
    one_line_value_error(parse_perf_stat, data("stat-x-workload-failed.txt"), "Workload failed")
    one_line_value_error(parse_perf_stat, data("stat-human.txt"), "not CSV.*-x,")
    one_line_value_error(parse_perf_stat, "\x00\x01garbage, more, 12\n" * 3, "no perf stat")


# -- perf script -> folded -----------------------------------------------------------------
def test_fold_dwarf_callchains_put_tk_work_under_main():
    folded = fold_perf_script(data("script-dwarf.txt"))
    assert not folded.truncated and folded.skipped == 0
    assert folded.samples == data("script-dwarf.txt").count(" cpu-clock:") == 100
    # stackcollapse-perf.pl order: process name, then outermost to innermost.
    assert dict(folded) == {"target;_start;__libc_start_main_impl;__libc_start_call_main;main;tk_work": 100}


def test_fold_frame_pointer_callchains():
    """perf record -g of the target as tracekit builds it (-O1, no frame
    pointers): user stacks are the sampled function alone, main is missing."""
    text = data("script-g.txt")
    folded = fold_perf_script(text)
    assert not folded.truncated and folded.skipped == 0
    assert folded.samples == text.count(" cpu-clock:") == 582
    assert folded["target;tk_work"] == 548
    assert all(stack.startswith("target;") for stack in folded)
    assert not any("+0x" in stack for stack in folded)
    frames = {frame for stack in folded for frame in stack.split(";")}
    assert {"[unknown]", "do_syscall_64", "_dl_start_user", "handle_amd"} <= frames
    assert "main" not in frames
    # exec from the kernel side, entered from an unknown user address: root first
    assert any(s.startswith("target;[unknown];entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_execve;")
               for s in folded)


def test_fold_perf_6_8_padded_comm_and_unknown_symbols():
    folded = fold_perf_script(data("script-g-perf6.8.txt"))
    assert folded.samples == 250 and not folded.truncated
    assert folded["target;tk_work"] == 219
    # symbol-less frames are named after their dso, like stackcollapse-perf.pl
    assert "target;[ld-linux-x86-64.so.2];[ld-linux-x86-64.so.2];[ld-linux-x86-64.so.2];" \
           "[ld-linux-x86-64.so.2];[ld-linux-x86-64.so.2]" in folded


def test_fold_real_truncated_output():
    """Ubuntu's perf 6.8 died of SIGPIPE in the middle of perf script (its
    addr2line helper was missing): 12 samples, then half a header line."""
    text = data("script-dwarf-perf6.8-truncated.txt")
    assert not text.endswith("\n")
    folded = fold_perf_script(text)
    assert folded.truncated
    assert dict(folded) == {"target;_start;__libc_start_main;[libc.so.6];main;tk_work": 12}


@pytest.mark.parametrize("cut", ["mid-line", "between-frames"])
def test_fold_truncated_drops_the_incomplete_sample(cut):
    text = data("script-dwarf.txt")
    end = text.index("main+0xf5", len(text) // 2)
    text = text[:end] if cut == "mid-line" else text[:text.index("\n", end) + 1]
    folded = fold_perf_script(text)
    assert folded.truncated
    assert list(folded) == ["target;_start;__libc_start_main_impl;__libc_start_call_main;main;tk_work"]
    assert folded.samples == text.count(" cpu-clock:") - 1


def test_fold_without_callchains_uses_the_header_frame():
    folded = fold_perf_script(data("script-no-callchain.txt"))
    assert dict(folded) == {"target;tk_work": 20} and not folded.truncated


def test_fold_include_pid_and_format():
    folded = fold_perf_script(data("script-dwarf.txt"), include_pid=True)
    (stack,) = folded
    assert stack.startswith("target-11283;_start;")
    assert format_folded(folded) == stack + " 100\n"


def test_fold_failures():
    one_line_value_error(fold_perf_script, "", "empty")
    one_line_value_error(fold_perf_script, "\n\n  \n", "empty")
    one_line_value_error(fold_perf_script, "Segmentation fault\nno samples (really)\n", "no perf script samples")
    one_line_value_error(fold_perf_script, data("stat-x.txt"), "no perf script samples")


# -- flame graph ------------------------------------------------------------------------------
def frames_of(svg):
    root = ET.fromstring(svg)
    out = {}
    for g in root.iter(SVG + "g"):
        name = re.match(r"^(.*) \((\d+) samples, ([\d.]+)%\)$", g.find(SVG + "title").text)
        rect = g.find(SVG + "rect")
        out.setdefault(name.group(1), []).append(
            (int(name.group(2)), float(rect.get("x")), float(rect.get("width")), int(rect.get("y"))))
    return root, out


def test_flamegraph_of_real_stacks():
    folded = fold_perf_script(data("script-dwarf.txt"))
    svg = flamegraph_svg(folded, "tk_work <dwarf> & more")
    root, frames = frames_of(svg)
    assert "tk_work <dwarf> & more" in [t.text for t in root.iter(SVG + "text")]
    assert frames["all"] == [(100, 10.0, 1180.0, frames["all"][0][3])]
    (count, x, width, y), = frames["tk_work"]
    assert count == 100 and width == pytest.approx(1180.0)
    assert y < frames["main"][0][3] < frames["all"][0][3]  # callees above callers
    assert svg == flamegraph_svg(folded, "tk_work <dwarf> & more")  # deterministic


def test_flamegraph_widths_omissions_and_labels():
    folded = fold_perf_script(data("script-g.txt"))
    svg = flamegraph_svg(folded, "script-g")
    _, frames = frames_of(svg)
    (count, _, width, _), = frames["tk_work"]
    assert count == 548 + 3  # plus the samples taken in interrupts on top of it
    assert width == pytest.approx(1180.0 * count / folded.samples, abs=0.05)
    assert all(w >= 1180.0 * 0.001 - 1e-9 for boxes in frames.values() for _, _, w, _ in boxes)
    tiny = flamegraph_svg({"a;b": 10000, "a;c" + "x" * 40: 5, "a;d": 20}, "t")
    _, frames = frames_of(tiny)
    assert "c" + "x" * 40 not in frames and "d" in frames  # 5/10025 < 0.1% < 20/10025
    labels = [t.text for t in ET.fromstring(flamegraph_svg({"a;" + "n" * 300: 1, "a;b": 1}, "t"))
              .iter(SVG + "text")]
    assert any(label.endswith("..") and label.startswith("nnn") for label in labels)


def test_flamegraph_failures():
    one_line_value_error(lambda f: flamegraph_svg(f, "t"), {}, "no samples")
    one_line_value_error(lambda f: flamegraph_svg(f, "t"), FoldedStacks(), "no samples")


# -- perf sched timehist ----------------------------------------------------------------------
def summary_run_times():
    """tid -> (sched-in count, run-time ms) from the -s summary of the same recording."""
    out = {}
    row = re.compile(r"^\s*(\S.*?)\[(-?\d+)(?:/\d+)?\]\s+-?\d+\s+(\d+)\s+([\d.]+)\s", re.M)
    for m in row.finditer(data("sched-timehist-summary.txt")):
        out[int(m.group(2))] = (int(m.group(3)), float(m.group(4)))
    return out


def test_timehist_totals_match_perfs_own_summary():
    tasks = parse_sched_timehist(data("sched-timehist.txt"))
    summary = summary_run_times()
    assert len(summary) == 14
    for tid, (count, run_ms) in summary.items():
        mine = [t for t in tasks.values() if t.tid == tid]
        assert sum(t.switches for t in mine) == count, tid
        # the summary sums nanoseconds, the rows print microseconds
        assert sum(t.run_ms for t in mine) == pytest.approx(run_ms, abs=0.0005 * (count + 1)), tid


def test_timehist_target_process():
    tasks = parse_sched_timehist(data("sched-timehist.txt"))
    # "target 5 20" slept 5 x 20 ms; before its exec pid 11489 was "sh"
    assert tasks["target[11489]"].wait_ms == pytest.approx(99.61)
    assert tasks["sh[11489]"].switches == 1
    total = task_times_for_pid(tasks, 11489)
    assert (total.comm, total.tid, total.pid, total.switches) == ("target", 11489, 11489, 7)
    assert (total.wait_ms, total.sch_delay_ms, total.run_ms) == (99.61, 0.143, 12.705)
    assert task_times_for_pid(tasks, 424242) is None


def test_timehist_threads():
    tasks = parse_sched_timehist(data("sched-timehist.txt"))
    thread = tasks["python3[11491/11490]"]
    assert (thread.comm, thread.tid, thread.pid, thread.switches) == ("python3", 11491, 11490, 4)
    assert tasks[":-1[-1/11490]"].tid == -1  # perf 6.1 could not name an exited thread
    assert tasks["<idle>"].pid == 0
    process = task_times_for_pid(tasks, 11490)
    assert process.comm == "python3" and process.switches == 25 + 4 + 5 + 2
    assert process.run_ms == pytest.approx(23.202 + 5.279 + 7.84 + 1.788)


def test_timehist_extra_columns_give_the_same_totals():
    plain = parse_sched_timehist(data("sched-timehist.txt"))
    wide = parse_sched_timehist(data("sched-timehist-wmnv.txt"))  # -w -M -n --state -V
    assert set(wide) == set(plain)
    del plain["<idle>"], wide["<idle>"]  # see the README: three idle rows differ
    assert wide == plain


def test_timehist_failures():
    one_line_value_error(parse_sched_timehist, "", "empty")
    one_line_value_error(parse_sched_timehist, data("sched-timehist-summary.txt"), "only the -s summary")
    one_line_value_error(parse_sched_timehist, "perf.data: No such file or directory\n", "no perf sched")
    one_line_value_error(parse_sched_timehist, data("script-g.txt"), "no perf sched timehist rows")

