"""What runs on the traced host itself: its facts, doctor's verdicts on them,
and the verify suite.  `tracekit verify` calls this directly for this
machine, and tracekit's zip application (tracekit.remote) runs the same code
on remote hosts.  Standard library and tracekit's own stdlib-only modules
(doctor, errors, agent) only, Python 3.8 syntax."""

import argparse
import json
import os
import sys

from tracekit import doctor
from tracekit.agent import facts as agent_facts
from tracekit.agent import verify as agent_verify

SCHEMA = "tracekit.verify/1"


def verify(only=(), artifacts=None, timeout_scale=1.0, on_result=None, on_start=None):
    """One host's verify document (schema tracekit.verify/1, per host)."""
    facts = agent_facts.collect("/")
    report = doctor.evaluate(facts)
    verdicts = {v.id: {"status": v.status, "reason": v.reason} for v in report.verdicts}
    outcome = agent_verify.run_suite(facts, verdicts, only=only, timeout_scale=timeout_scale,
                                     artifacts=artifacts, on_result=on_result, on_start=on_start)
    kernel = facts.get("kernel") or {}
    host = facts.get("host") or {}
    outcome.update({
        "host": {"hostname": host.get("hostname"), "distro": host.get("distro"),
                 "kernel": kernel.get("release")},
        "doctor": verdicts,
        "exit_code": agent_verify.exit_code(outcome),
    })
    if artifacts:
        # The whole document beside the flame graph and trace excerpts, so a
        # fleet run keeps each host's result with its artifacts.
        os.makedirs(artifacts, exist_ok=True)
        with open(os.path.join(artifacts, "verify.json"), "w") as f:
            json.dump(outcome, f, indent=1, sort_keys=True)
            f.write("\n")
    return outcome


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tracekit-agent")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("facts")
    run = sub.add_parser("verify")
    run.add_argument("--only", action="append", default=[])
    run.add_argument("--artifacts")
    run.add_argument("--timeout-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.command == "verify":
        document = verify(tuple(args.only), args.artifacts, args.timeout_scale)
    else:
        document = agent_facts.collect("/")
    json.dump(document, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0
