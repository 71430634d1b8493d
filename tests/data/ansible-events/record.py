"""Record the ansible-runner events tracekit's progress displays see, from
real runs on this machine (see README.md beside this file).

    unshare -m --propagation private sh -c '
      mount -t overlay overlay -o lowerdir=/etc,upperdir=U1,workdir=W1 /etc &&
      mount -t overlay overlay -o lowerdir=/var/lib/apt/lists,upperdir=U2,workdir=W2 /var/lib/apt/lists &&
      python3 tests/data/ansible-events/record.py setup OUTDIR'
    python3 tests/data/ansible-events/record.py verify OUTDIR

Each file is the list of events as ansible-runner handed them to
tracekit's ``on_event``, in order.  Two things are cut, and only those:
gathered ``ansible_facts`` (this machine's inventory of itself) and the
stdout of the doctor and verify agent tasks (a facts or results document of
tens of kilobytes, of which the progress displays read nothing) become
"<cut>" -- everything else is as recorded.
"""

import json
import sys
import tempfile
from pathlib import Path

from tracekit import setup, verify

CUT = "<cut>"


def trim(event):
    event = json.loads(json.dumps(event, default=str))
    data = event.get("event_data") or {}
    res = data.get("res")
    if isinstance(res, dict):
        if "ansible_facts" in res:
            res["ansible_facts"] = CUT
        if data.get("task") in (setup.DOCTOR_TASK, verify.VERIFY_TASK):
            for key in ("stdout", "stdout_lines"):
                if key in res:
                    res[key] = CUT
    # The event's own copy of Ansible's console text repeats those.
    if data.get("task") in (setup.DOCTOR_TASK, verify.VERIFY_TASK) and event.get("event") == "runner_on_ok":
        event["stdout"] = CUT
    return event


def main(kind, outdir):
    outdir = Path(outdir)
    events = []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "hosts.ini"
        if kind == "setup":
            # Two names for this machine, so two hosts' events interleave as
            # on a fleet, in check mode (nothing changes); `hello`, which is
            # not installed here, so the apt install task runs (in check
            # mode).  beta's debugfs gets a variable its argument spec
            # rejects, so that component fails there; gamma is an SSH port on
            # 127.0.0.1 nothing listens on: unreachable.
            local = "ansible_connection=local ansible_python_interpreter=/usr/bin/python3"
            inventory.write_text("[all]\nalpha %s\nbeta %s tracekit_debugfs_persist=maybe\n"
                                 "gamma ansible_host=127.0.0.1 ansible_port=9\n" % (local, local))
            result = setup.run(["debugfs", "bpftrace"], inventory=inventory, check=True,
                               variables={"tracekit_packages_extra": ["gcc", "libc6-dev", "hello"]},
                               on_event=events.append)
            print("setup: %s" % result.status, file=sys.stderr)
        else:
            inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
            result = verify.run_remote(inventory, only=("tracepoint",), artifacts=Path(tmp) / "artifacts",
                                       on_event=events.append)
            print("verify: exit %s" % result.exit_code, file=sys.stderr)
    target = outdir / ("%s.json" % kind)
    target.write_text(json.dumps([trim(e) for e in events], indent=1, sort_keys=True) + "\n")
    print("%d events -> %s" % (len(events), target), file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:])
