"""Run a small play with tracekit's own Ansible on this machine (local
connection, no become), the way `tracekit setup` runs its plays."""

import sys

import yaml

from tracekit import setup


def local_inventory(directory, name="host"):
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {name: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}}}}))
    return str(inventory)


def run_tasks(directory, tasks, variables=None, check=False):
    """(rc, results): each task result as Ansible reported it, with
    failed=True for a failure, in order."""
    play = [{"hosts": "all", "gather_facts": False, "tasks": tasks}]
    results = []

    def on_event(event):
        if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
            data = event["event_data"]
            results.append(dict(data.get("res") or {}, task=data.get("task"), failed=event["event"] == "runner_on_failed",
                                skipped=event["event"] == "runner_on_skipped"))

    _, rc, _ = setup.run_play(lambda agent: play, inventory=local_inventory(directory), on_event=on_event,
                              variables=variables or {}, check=check)
    return rc, results
