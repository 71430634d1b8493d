"""`tracekit setup`: build a playbook from the component roles and run it.

The play is Python data (one role per component, tagged with its name);
ansible-runner runs it from a fresh private data directory with the
ansible-playbook of tracekit's own environment.  Events are only recorded
here; presentation belongs to the CLI.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tracekit import remote
from tracekit.doctor import COMPONENTS, OPT_IN
from tracekit.errors import TracekitError, UsageError
from tracekit.paths import provision_dir

# The local connection must use a Python that has apt's bindings (the apt
# module needs python3-apt, which a virtual environment does not see).
LOCAL_INVENTORY = {"all": {"hosts": {"localhost": {
    "ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}}}}


# What a component cannot work without; selecting it selects these too.
NEEDS = {"dbgsym": ("ddebs",), "bcc": ("headers",), "systemtap": ("headers",)}
# Components that only configure apt or mounts; the rest install packages,
# all of them in one apt transaction (the `packages` role) after these ran.
BEFORE_PACKAGES = ("debugfs", "ddebs")
# Who tracekit's plays run on: every host of the inventory (the CLI narrows
# with --limit), or the pattern in tracekit_hosts (a fleet importing the
# collection's playbooks for one group of its inventory).
PLAY_HOSTS = "{{ tracekit_hosts | default('all') }}"
# What `tracekit verify` needs on a host to build its probe target.
PROBE_TOOLCHAIN = ("gcc", "libc6-dev")


def available_components():
    """Components that have a role in this tracekit, in setup order."""
    roles = provision_dir() / "roles"
    return [c for c in COMPONENTS if (roles / c / "tasks" / "main.yml").is_file()]


def select_components(names):
    """The components to set up, in setup order: the named ones (or all but
    the opt-in ones) and what they need."""
    available = available_components()
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError("unknown component %s; valid: %s" % (", ".join(unknown), ", ".join(available)))
    chosen = set(names) or {c for c in available if c not in OPT_IN}
    for name in list(chosen):
        chosen.update(n for n in NEEDS.get(name, ()) if n in available)
    return [c for c in available if c in chosen]


def require_privileges(inventory):
    """A local setup installs packages and mounts filesystems: without root
    Ansible's become would stop at its first task with a sudo prompt error."""
    if inventory is None and os.geteuid() != 0:
        raise UsageError("setting up this machine needs root (uid is %d): run `sudo tracekit setup`, "
                         "or pass -i/--inventory for hosts reached over SSH" % os.geteuid())


def parse_vars(pairs):
    """KEY=VALUE strings (VALUE may be JSON) into a dict."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError("--var %r: expected KEY=VALUE with KEY a variable name" % pair)
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result


def _ansible_bin(name):
    """The Ansible of tracekit's own environment, not whatever is on PATH."""
    return os.path.join(os.path.dirname(sys.executable), name)


def validate_inventory(path):
    """Fail early, in one line, on a missing or unparsable inventory (Ansible
    itself would only warn and run against no hosts)."""
    import subprocess

    path = Path(path)
    if not path.is_file():
        raise UsageError("--inventory %s: no such file" % path)
    proc = subprocess.run([_ansible_bin("ansible-inventory"), "-i", str(path), "--list"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED="1", ANSIBLE_NOCOLOR="1"))
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if "ERROR" in line or "Failed" in line), lines[-1] if lines else "?")
        raise UsageError("--inventory %s: not a valid inventory (%s)" % (path, reason[:300]))
    listed = json.loads(proc.stdout or "{}")
    hosts = set(listed.get("_meta", {}).get("hostvars", {}))
    for group in listed.values():
        if isinstance(group, dict):
            hosts.update(group.get("hosts", []))
    if not hosts:
        raise UsageError("--inventory %s: lists no hosts" % path)
    return sorted(hosts)


def build_playbook(components, doctor_agent=None, collection=None):
    """One play: each component's role in a block of its own, so one that
    fails is reported and the others still run; the host fails at the end
    if any component did.  With ``doctor_agent`` (tracekit.remote's zip
    application) each host's tracing facts are read at the end, for doctor.
    With ``collection`` (e.g. tracekit.tracing) the roles are named by their
    fully qualified names, for the collection's own setup playbook."""
    tasks = []
    if any(c not in ("debugfs",) for c in components):
        # The platform role lists the supported releases (also read by doctor):
        # any other host gets one line naming its release and the list, and
        # nothing is changed on it. Named as a step ("Set up ..."), so that a
        # refused host has its row in the summary, under "platform".
        platform = "%s.platform" % collection if collection else "platform"
        tasks.append({
            "name": "Set up platform",
            "ansible.builtin.include_role": {"name": platform, "apply": {"tags": ["always"]}},
            "tags": ["always"]})
    batch = [c for c in components if c not in BEFORE_PACKAGES]
    steps = [c for c in components if c in BEFORE_PACKAGES] + (["packages"] if batch else []) + batch
    for step in steps:
        tags = batch if step == "packages" else [step]
        role = "%s.%s" % (collection, step) if collection else step
        include = {"name": "Set up %s" % step, "ansible.builtin.include_role": {"name": role, "apply": {"tags": tags}}}
        if step == "packages":
            # gcc and libc headers: tracekit verify builds its probe target on the host.
            # Packages the roles before this step left to it join the same transaction.
            include["vars"] = {"tracekit_packages_components": batch, "tracekit_packages_extra":
                               "{{ %r + _tracekit_deferred_packages | default([]) }}" % list(PROBE_TOOLCHAIN)}
        elif step == "ddebs" and batch:
            include["vars"] = {"tracekit_ddebs_install_client": False}
        tasks.append({
            "name": "Component %s" % step,
            "tags": tags,
            "block": [include],
            "rescue": [{"name": "Note that %s failed" % step, "ansible.builtin.set_fact": {
                "_tracekit_failed_components": "{{ _tracekit_failed_components | default([]) + [%r] }}" % step}}],
        })
    if doctor_agent:
        tasks.append({
            "name": DOCTOR_TASK,
            "ansible.builtin.script": {"cmd": "%s facts" % doctor_agent,
                                       "executable": "{{ ansible_python_interpreter | default('/usr/bin/python3') }}"},
            # Reads only: also in check mode, to show what the host has now.
            "check_mode": False,
            "changed_when": False,
            "tags": ["always"]})
    tasks.append({
        "name": "Summary | every component must have succeeded",
        "ansible.builtin.assert": {
            "that": "_tracekit_failed_components | default([]) | length == 0",
            "fail_msg": "failed: {{ _tracekit_failed_components | default([]) | join(', ') }}",
            "quiet": True},
        "tags": ["always"]})
    return [{
        "name": "tracekit setup: %s" % ", ".join(components),
        "hosts": PLAY_HOSTS,
        "become": True,
        "gather_facts": True,
        # What the roles read: distribution, kernel release, architecture, and
        # their own earlier records (local facts) so unchanged ones are not rewritten.
        "gather_subset": ["!all", "!min", "distribution", "platform", "local"],
        "tasks": tasks,
    }]


@dataclass
class Rendered:
    """What `tracekit render` wrote, and for which hosts: ``inventory``
    (absolute), or None for this machine."""
    directory: Path
    components: list
    variables: dict
    roles: list
    inventory: Optional[Path] = None

    @property
    def playbook(self):
        return self.directory / "tracekit.yml"

    @property
    def written(self):
        return [self.playbook, self.directory / "vars.yml", self.directory / "ansible.cfg", self.directory / "roles"]

    @property
    def command(self):
        """The shell command that runs what was written, from any directory:
        the ansible-playbook of tracekit's own environment (install.sh puts
        none on PATH), DIR's ansible.cfg and vars.yml, and the inventory, or
        this machine as `tracekit setup` reaches it (LOCAL_INVENTORY)."""
        if self.inventory is not None:
            hosts = ["-i", str(self.inventory)]
        else:
            (name, host), = LOCAL_INVENTORY["all"]["hosts"].items()
            hosts = ["-i", name + ",", "-c", host["ansible_connection"],
                     "-e", "ansible_python_interpreter=" + host["ansible_python_interpreter"]]
        argv = [_ansible_bin("ansible-playbook")] + hosts + [str(self.playbook),
                                                             "-e", "@%s" % (self.directory / "vars.yml")]
        return "ANSIBLE_CONFIG=%s %s" % (shlex.quote(str(self.directory / "ansible.cfg")),
                                         " ".join(shlex.quote(arg) for arg in argv))

    def to_dict(self):
        return {"schema": "tracekit.render/1", "directory": str(self.directory), "playbook": str(self.playbook),
                "written": [str(p) for p in self.written], "components": list(self.components),
                "roles": list(self.roles), "vars": self.variables,
                "inventory": str(self.inventory) if self.inventory is not None else None, "command": self.command}


def render(directory, components, variables=None, inventory=None):
    """Write a standalone playbook a fleet can run with plain ansible-playbook;
    returns a Rendered (its ``command`` runs it on ``inventory``, or on this
    machine).  A DIR that cannot be used is a usage error; a write that
    fails half-way is an error that names what failed."""
    target = Path(directory)
    try:
        if target.exists() and not target.is_dir():
            raise UsageError("%s is not a directory" % target)
        if target.exists() and any(target.iterdir()):
            raise UsageError("%s is not empty" % target)
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError("%s: %s" % (target, exc.strerror or exc))
    roles = provision_dir() / "roles"
    rendered = Rendered(target.resolve(), list(components), dict(variables or {}),
                        sorted(p.name for p in roles.iterdir() if p.is_dir()),
                        Path(inventory).resolve() if inventory is not None else None)
    try:
        shutil.copytree(roles, target / "roles")
        (target / "tracekit.yml").write_text(_yaml(build_playbook(components)))
        (target / "vars.yml").write_text(_yaml(rendered.variables))
        (target / "ansible.cfg").write_text("[defaults]\nroles_path = ./roles\n")
    except OSError as exc:
        raise TracekitError("writing %s failed: %s" % (target, exc.strerror or exc))
    return rendered


def _yaml(data):
    # JSON is valid YAML; ansible-core's yaml is also available but this keeps
    # rendered files stable and dependency-free.
    return "---\n" + json.dumps(data, indent=2) + "\n"


@dataclass
class HostSummary:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: bool = False
    failures: list = field(default_factory=list)
    notices: list = field(default_factory=list)
    components: dict = field(default_factory=dict)
    # What `tracekit doctor` reports for the host after the run:
    # {"summary": {status: count}, "methods": {id: status}}.
    doctor: dict = None


@dataclass
class SetupResult:
    status: str
    rc: int
    hosts: dict
    error: str = None

    def to_dict(self):
        return {"schema": "tracekit.setup/1", "status": self.status, "rc": self.rc, "error": self.error,
                "hosts": {h: vars(s) for h, s in self.hosts.items()}}


def run(components, inventory=None, limit=None, check=False, diff=False, variables=None, on_event=None):
    """Run the play; returns a SetupResult.  ``on_event`` sees every runner event."""
    hosts = {}
    current = {"component": "-"}

    def handle(event):
        _account(hosts, event, current)
        if on_event:
            on_event(event)

    status, rc, error = run_play(lambda agent: build_playbook(components, doctor_agent=agent), inventory=inventory,
                                 limit=limit, check=check, diff=diff, variables=variables, on_event=handle,
                                 any_host=lambda: bool(hosts))
    return SetupResult(status, rc, hosts, error)


def run_play(build, inventory=None, limit=None, check=False, diff=False, variables=None, on_event=None,
             any_host=lambda: True, prefix="tracekit-"):
    """Run the play ``build(agent_zipapp_path)`` returns, from a fresh private
    data directory, with the ansible-playbook of tracekit's own environment.
    Returns (status, rc, error); ``error`` is Ansible's own message when it
    stopped before any host ran (a syntax or argument error)."""
    import ansible_runner

    def handle(event):
        if on_event:
            on_event(event)
        return True

    playbook_dir = tempfile.mkdtemp(prefix=prefix)
    try:
        playbook = Path(playbook_dir) / "project" / "tracekit.yml"
        playbook.parent.mkdir()
        agent = remote.agent_zipapp(playbook.parent)
        playbook.write_text(_yaml(build(agent)))
        # With binary= ansible-runner passes the command line through as it is
        # (raw mode), so the playbook goes in it.
        cmdline = [shlex.quote(str(playbook))]
        if check:
            cmdline.append("--check")
        if diff:
            cmdline.append("--diff")
        runner = ansible_runner.run(
            private_data_dir=playbook_dir,
            # ansible-playbook runs in the private data directory: a relative
            # path would be looked for there and, not found, taken for a host name.
            inventory=os.path.abspath(inventory) if inventory else LOCAL_INVENTORY,
            limit=limit,
            extravars=variables or {},
            cmdline=" ".join(cmdline),
            envvars={"ANSIBLE_ROLES_PATH": str(provision_dir() / "roles"),
                     "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
                     "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
                     # One SSH round trip per task instead of several.
                     "ANSIBLE_PIPELINING": "1"},
            binary=_ansible_bin("ansible-playbook"),
            event_handler=handle,
            quiet=True,
            suppress_env_files=True,
            rotate_artifacts=1,
        )
        status, rc = runner.status, runner.rc
        error = None
        if rc != 0 and not any_host():
            lines = [line.strip() for line in runner.stdout.read().splitlines() if line.strip()]
            error = next((line for line in lines if "ERROR" in line), lines[-1] if lines else None)
    finally:
        shutil.rmtree(playbook_dir, ignore_errors=True)
    return status, rc, error


DOCTOR_TASK = "Doctor | read what this host can trace now"

# Roles tell the person running them what they could not do, and why, with
# debug tasks named "Notice | ...".
NOTICE_PREFIX = "Notice |"


def _account(hosts, event, current):
    """Count one runner event.  Tasks belong to the component whose "Set up"
    step runs them (the linear strategy keeps hosts on the same task), which
    also covers helper roles such as apt_source and the shared apt step."""
    data = event.get("event_data") or {}
    host = data.get("host")
    kind = event.get("event", "")
    if kind == "playbook_on_task_start":
        name = str(data.get("task", ""))
        if name.startswith("Set up "):
            current["component"] = name[len("Set up "):]
        elif name.startswith("Summary |"):
            current["component"] = "-"
    if not host or not kind.startswith("runner_on_"):
        return
    summary = hosts.setdefault(host, HostSummary())
    component = current["component"]
    per = summary.components.setdefault(component, {"ok": 0, "changed": 0, "failed": 0, "skipped": 0})
    result = data.get("res") or {}
    if kind == "runner_on_ok":
        key = "changed" if result.get("changed") else "ok"
        if data.get("task") == DOCTOR_TASK:
            summary.doctor = _doctor_summary(result.get("stdout", ""))
            return
        if str(data.get("task", "")).startswith(NOTICE_PREFIX):
            summary.notices.append({"component": component, "message": " ".join(str(result.get("msg", "")).split())})
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        key = "failed"
        summary.failures.append({"component": component, "task": data.get("task"),
                                 "message": _failure_message(result)})
    elif kind == "runner_on_skipped":
        key = "skipped"
    elif kind == "runner_on_unreachable":
        summary.unreachable = True
        summary.failures.append({"component": component, "task": data.get("task"),
                                 "message": result.get("msg", "unreachable")})
        return
    else:
        return
    setattr(summary, key, getattr(summary, key) + 1)
    per[key] += 1


def _doctor_summary(output):
    from tracekit import doctor

    try:
        report = doctor.evaluate(json.loads(output))
    except ValueError as exc:
        return {"error": "could not read the host's facts: %s" % exc}
    return {"summary": report.summary, "exit_code": report.exit_code,
            "methods": {v.id: v.status for v in report.verdicts}}


def _failure_message(result):
    msg = result.get("msg") or result.get("stderr") or result.get("module_stderr") or "failed"
    return " ".join(str(msg).split())[:500]
