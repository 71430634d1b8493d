"""`tracekit verify` on this machine, for real: what passes and what is
skipped is derived from `tracekit doctor`'s report, and the global tracing
state is the same afterwards, also when the suite is interrupted."""

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from tracekit.agent import checks
from tracekit.paths import schema_file

TRACEKIT = [sys.executable, "-m", "tracekit"]
SCHEMA = json.loads(schema_file("verify.schema.json").read_text())


@pytest.fixture(scope="module")
def verified(tracefs, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify")
    before = checks.snapshot_tracing_state(tracefs)
    proc = subprocess.run(TRACEKIT + ["verify", "--json", "--junit", str(out / "junit.xml"),
                                      "--artifacts", str(out / "artifacts")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=900)
    after = checks.snapshot_tracing_state(tracefs)
    doctor = subprocess.run(TRACEKIT + ["doctor", "--json"], stdout=subprocess.PIPE, universal_newlines=True)
    return proc, json.loads(proc.stdout), json.loads(doctor.stdout), before, after, out


def test_passes_what_doctor_calls_possible_and_skips_the_rest_with_its_reason(verified):
    proc, document, doctor, _, _, _ = verified
    verdicts = {m["id"]: m for m in doctor["methods"]}
    results = {r["id"]: r for r in document["hosts"]["localhost"]["results"]}
    assert list(results) == [c.id for c in checks.CHECKS]
    for check in checks.CHECKS:
        result = results[check.id]
        blocked = [verdicts[m] for m in check.methods if verdicts[m]["status"] in ("unavailable", "missing")]
        if blocked:
            assert result["status"] == "skipped", result
            expected = blocked[0]["reason"] if blocked[0]["id"] == check.id else \
                "%s: %s" % (blocked[0]["id"], blocked[0]["reason"])
            assert result["detail"] == expected
        else:
            assert result["status"] == "passed", result
            assert result["evidence"], "a pass must show what it saw: %s" % result
    assert proc.returncode == 0 and document["exit_code"] == 0, proc.stderr


def test_json_has_the_documented_shape_and_progress_stays_off_stdout(verified):
    proc, document, _, _, _, _ = verified
    jsonschema.validate(document, SCHEMA)
    # --json without a terminal: no per-check lines either.
    assert proc.stderr == "", proc.stderr


class Terminal:
    """tracekit with its stderr on a real terminal (a pty, 120 columns) and
    stdout a pipe; ``screen`` is what the terminal got, escapes removed."""

    def __init__(self, argv):
        self.leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("TTY_INTERACTIVE", "TTY_COMPATIBLE", "NO_COLOR")}
        env["TERM"] = "xterm"
        self.proc = subprocess.Popen(TRACEKIT + argv, stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        self.chunks = []
        self.reader = threading.Thread(target=self._drain)
        self.reader.start()

    def _drain(self):
        while True:
            try:
                chunk = os.read(self.leader, 4096)
            except OSError:  # EIO: the last writer is gone
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def raw(self):
        return b"".join(self.chunks).decode("utf-8", "replace")

    @property
    def screen(self):
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.raw)

    def wait_for(self, text, seconds=300):
        deadline = time.monotonic() + seconds
        while text not in self.screen and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return text in self.screen

    def finish(self):
        out, _ = self.proc.communicate(timeout=300)
        self.reader.join(timeout=30)
        os.close(self.leader)
        return out.decode()


def global_settings(tracefs):
    """The tracing state without any tracekit run's probes and instances:
    other runs on this shared kernel (the fleet tier's hosts, other
    checkouts' tests) come and go meanwhile.  The run's own leftovers are
    judged by the run itself (state_changed, against its own token)."""
    return checks.without_other_runs(checks.snapshot_tracing_state(tracefs), token="")


def test_on_a_terminal_the_bar_goes_to_stderr_and_stdout_stays_json(tracefs, tmp_path):
    before = global_settings(tracefs)
    only = ["tracepoint", "uprobe", "kprobe"]
    terminal = Terminal(["verify", "--json", "--artifacts", str(tmp_path)] + only)
    out = terminal.finish()
    document = json.loads(out)
    jsonschema.validate(document, SCHEMA)
    assert [r["id"] for r in document["hosts"]["localhost"]["results"]] == [c.id for c in checks.CHECKS
                                                                            if c.id in only]
    assert terminal.proc.returncode == document["exit_code"]
    assert document["hosts"]["localhost"]["state_changed"] == {}
    assert "3/3" in terminal.screen and "verify" in terminal.screen, terminal.screen
    assert terminal.raw.rstrip().endswith("\x1b[?25h"), "the cursor is shown again: %r" % terminal.raw[-200:]
    assert global_settings(tracefs) == before


def test_ctrl_c_on_a_terminal_stops_the_bar_and_cleans_up(tracefs, tmp_path):
    before = global_settings(tracefs)
    terminal = Terminal(["verify", "--json", "--artifacts", str(tmp_path)])
    # The bar names the check that runs: interrupt inside the uretprobe check.
    assert terminal.wait_for("uretprobe: "), terminal.screen
    terminal.proc.send_signal(signal.SIGINT)
    document = json.loads(terminal.finish())
    jsonschema.validate(document, SCHEMA)
    host = document["hosts"]["localhost"]
    assert terminal.proc.returncode == document["exit_code"] == 130, terminal.screen
    assert host["interrupted"] is True and host["state_changed"] == {}
    assert len(host["results"]) < len(checks.CHECKS), "stopped within the suite"
    assert terminal.raw.rstrip().endswith("\x1b[?25h"), "the cursor is shown again: %r" % terminal.raw[-200:]
    assert "Traceback" not in terminal.screen
    assert global_settings(tracefs) == before


def test_global_tracing_state_is_unchanged(verified):
    _, document, _, before, after, _ = verified
    assert document["hosts"]["localhost"]["state_changed"] == {}
    assert before == after


def test_artifacts_and_junit(verified):
    _, document, _, _, _, out = verified
    results = {r["id"]: r for r in document["hosts"]["localhost"]["results"]}
    kept = json.loads((out / "artifacts/localhost/verify.json").read_text())
    assert {r["id"]: r["status"] for r in kept["results"]} == {i: r["status"] for i, r in results.items()}
    if results["perf.flamegraph"]["status"] == "passed":
        svg = ET.parse(str(out / "artifacts/localhost/flamegraph.svg")).getroot()
        assert svg.tag.endswith("svg") and "tk_work" in ET.tostring(svg, encoding="unicode")
    suite = ET.parse(str(out / "junit.xml")).getroot().find("testsuite")
    assert suite.get("name") == "localhost"
    assert int(suite.get("tests")) == len(results)
    assert int(suite.get("skipped")) == sum(r["status"] == "skipped" for r in results.values())
    assert int(suite.get("failures")) == 0


def test_interrupted_suite_leaves_the_tracing_state_as_found(tracefs, tmp_path):
    before = checks.snapshot_tracing_state(tracefs)
    proc = subprocess.Popen(TRACEKIT + ["verify", "--artifacts", str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    # Interrupt once the uprobe checks are done, in the middle of the suite
    # (the perf checks come next).
    deadline, seen = time.monotonic() + 300, []
    for line in proc.stderr:
        seen.append(line)
        if " uretprobe " in line or time.monotonic() > deadline:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + err
    assert "interrupted" in out + err
    assert checks.snapshot_tracing_state(tracefs) == before
    leftovers = [n for n in os.listdir(os.path.join(tracefs, "instances")) if n.startswith("tk_")]
    assert leftovers == []
