"""`tracekit verify`: one small real trace per tool and method, on this
machine or on every host of an inventory, with the same host-side code
(tracekit.hostrun, shipped to remote hosts in tracekit's zip application).

Results are data (VerifyResult); tables, JSON and JUnit are made from it."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tracekit import hostrun
from tracekit.agent import verify as agent_verify
from tracekit.errors import TracekitError, UsageError

VERIFY_TASK = "Verify | run the smoke checks"


def available_checks():
    """Every check, in the order the suite runs them (what select() accepts)."""
    return agent_verify.select(())


def select(only):
    try:
        return [c.id for c in agent_verify.select(tuple(only))]
    except ValueError as exc:
        raise UsageError(str(exc))


@dataclass
class VerifyResult:
    # {host: the host's verify document, or {"unreachable": message} / {"error": message}}
    hosts: dict = field(default_factory=dict)
    artifacts: str = None

    @property
    def exit_code(self):
        codes = [doc.get("exit_code", 1) for doc in self.hosts.values()]
        if 130 in codes:
            return 130
        return 1 if not codes or any(codes) else 0

    def to_dict(self):
        return {"schema": hostrun.SCHEMA, "exit_code": self.exit_code, "artifacts": self.artifacts,
                "hosts": self.hosts}

    def junit(self):
        """JUnit XML: a testsuite per host, a testcase per check."""
        suites = ET.Element("testsuites", name="tracekit verify")
        for host, doc in sorted(self.hosts.items()):
            results = doc.get("results", [])
            suite = ET.SubElement(suites, "testsuite", name=host, tests=str(len(results)),
                                  failures=str(sum(r["status"] == "failed" for r in results)),
                                  skipped=str(sum(r["status"] == "skipped" for r in results)),
                                  time="%.3f" % sum(r["seconds"] for r in results))
            if "results" not in doc:
                case = ET.SubElement(suite, "testcase", classname=host, name="host")
                ET.SubElement(case, "error", message=doc.get("unreachable") or doc.get("error") or "no result")
            for r in results:
                case = ET.SubElement(suite, "testcase", classname=host, name=r["id"], time="%.3f" % r["seconds"])
                if r["status"] == "skipped":
                    ET.SubElement(case, "skipped", message=r["detail"])
                elif r["status"] == "failed":
                    ET.SubElement(case, "failure", message=r["detail"])
                else:
                    ET.SubElement(case, "system-out").text = "\n".join([r["detail"]] + list(r["evidence"]))
            if doc.get("state_changed"):
                case = ET.SubElement(suite, "testcase", classname=host, name="tracing-state-restored")
                ET.SubElement(case, "failure", message="global tracing state changed: %s" % sorted(doc["state_changed"]))
        return ET.tostring(suites, encoding="unicode")


def run_local(only=(), artifacts=None, timeout_scale=1.0, on_result=None, on_start=None):
    """The suite on this machine, in this process (Ctrl-C stops it cleanly)."""
    target = Path(artifacts) / "localhost" if artifacts else None
    doc = hostrun.verify(tuple(only), str(target) if target else None, timeout_scale, on_result, on_start)
    return VerifyResult({"localhost": doc}, str(artifacts) if artifacts else None)


def build_play(agent):
    """The verify play: tracekit's zip application (``agent``, a path on the
    controller, or one relative to the playbook's files/ in the collection)
    runs the suite on each host, the artifacts come back and the host fails
    when a check failed.  `tracekit verify -i` and the collection's verify
    playbook are this play; what they choose comes in variables (the CLI
    passes its options as extra vars, see play_vars):

    tracekit_verify_checks         check ids to run (default: all)
    tracekit_verify_timeout_scale  multiplies every check's time limit (default 1.0)
    tracekit_verify_artifacts      controller directory for <host>/ artifacts
                                   (default: none kept)"""
    from tracekit.setup import PLAY_HOSTS

    command = " ".join([
        str(agent), "verify", "--artifacts {{ __tracekit_verify_dir.path | quote }}",
        "--timeout-scale {{ tracekit_verify_timeout_scale | default(1.0) | float }}",
        "{% for check in tracekit_verify_checks | default([]) %} --only {{ check | quote }}{% endfor %}"])
    results = "(__tracekit_verify.stdout | from_json)"
    tasks = [
        {"name": "Preflight | the checks asked for exist",
         "ansible.builtin.assert": {
             "that": "tracekit_verify_checks | default([]) | difference(_tracekit_verify_known) | length == 0",
             "fail_msg": "unknown check {{ tracekit_verify_checks | default([]) | difference(_tracekit_verify_known) | join(', ') }}; "
                         "valid: {{ _tracekit_verify_known | join(', ') }}",
             "quiet": True},
         "vars": {"_tracekit_verify_known": [c.id for c in agent_verify.select()]}},
        {"name": "Verify | a private directory for the artifacts",
         "ansible.builtin.tempfile": {"state": "directory", "prefix": "tracekit-verify-"},
         "register": "__tracekit_verify_dir"},
        {"name": "Verify | run and bring the artifacts back",
         "block": [
             {"name": VERIFY_TASK,
              "ansible.builtin.script": {
                  "cmd": command, "executable": "{{ ansible_python_interpreter | default('/usr/bin/python3') }}"},
              "register": "__tracekit_verify", "changed_when": False},
             {"name": "Verify | find the artifacts",
              "ansible.builtin.find": {"paths": "{{ __tracekit_verify_dir.path }}"},
              "register": "__tracekit_verify_artifacts",
              "when": "tracekit_verify_artifacts | default('') | length > 0"},
             {"name": "Verify | bring the artifacts back",
              "ansible.builtin.fetch": {
                  "src": "{{ item.path }}", "flat": True,
                  "dest": "{{ tracekit_verify_artifacts | ansible.builtin.realpath }}/{{ inventory_hostname }}/"},
              "loop": "{{ __tracekit_verify_artifacts.files | default([]) }}",
              "loop_control": {"label": "{{ item.path | basename }}"}},
         ],
         # Also when the suite could not run: nothing of tracekit's stays on the host.
         "always": [
             {"name": "Verify | remove the artifacts from the host",
              "ansible.builtin.file": {"path": "{{ __tracekit_verify_dir.path }}", "state": "absent"}},
         ]},
        {"name": "Verify | results",
         "ansible.builtin.debug": {
             "msg": "{{ %s.results | map(attribute='status') | zip(%s.results | map(attribute='id'), "
                    "%s.results | map(attribute='detail')) | map('join', ' ') | list }}" % (results, results, results)}},
        {"name": "Verify | nothing failed and the tracing state is as it was",
         "ansible.builtin.assert": {
             "that": ["%s.exit_code == 0" % results],
             "fail_msg": "failed: {{ %s.results | selectattr('status', 'equalto', 'failed') | map(attribute='id') "
                         "| join(', ') or 'none' }}; tracing state changed: {{ %s.state_changed | list | join(', ') "
                         "or 'no' }}; interrupted: {{ %s.interrupted }}" % (results, results, results),
             "quiet": True}},
    ]
    return [{"name": "tracekit verify", "hosts": PLAY_HOSTS, "become": True, "gather_facts": False, "tasks": tasks}]


def play_vars(only=(), artifacts=None, timeout_scale=1.0):
    """The verify play's variables for what the CLI was asked."""
    return {"tracekit_verify_checks": list(only), "tracekit_verify_timeout_scale": timeout_scale,
            "tracekit_verify_artifacts": os.path.abspath(artifacts) if artifacts else ""}


def run_remote(inventory, limit=None, only=(), artifacts=None, timeout_scale=1.0, on_event=None):
    """The suite on every host of ``inventory`` through Ansible; the hosts'
    artifacts come back to ``artifacts`` (None: none are fetched, nothing
    is written here)."""
    from tracekit import setup

    hosts = {}

    def handle(event):
        data = event.get("event_data") or {}
        host, kind = data.get("host"), event.get("event", "")
        result = data.get("res") or {}
        if host and data.get("task") == VERIFY_TASK:
            if kind == "runner_on_ok":
                try:
                    hosts[host] = json.loads(result.get("stdout", ""))
                except ValueError:
                    hosts[host] = {"error": "unreadable result: %s" % (result.get("stdout", "")[-300:] or result)}
            elif kind == "runner_on_failed":
                hosts[host] = {"error": " ".join(str(result.get("msg") or result.get("stderr") or "failed").split())[:500]}
        if host and kind == "runner_on_unreachable":
            hosts[host] = {"unreachable": " ".join(str(result.get("msg", "unreachable")).split())[:500]}
        if on_event:
            on_event(event)

    _, _, error = setup.run_play(build_play, inventory=inventory, limit=limit,
                                 variables=play_vars(only, artifacts, timeout_scale), on_event=handle,
                                 any_host=lambda: bool(hosts), prefix="tracekit-verify-")
    if error and not hosts:
        raise TracekitError("ansible: %s" % error)
    return VerifyResult(hosts, str(artifacts) if artifacts else None)
