"""The command-line edge: parse options, call the core, print, pick the exit code.

Exit codes: 0 ready (warnings allowed), 1 something required is not ready or
an operation failed, 2 usage error.  Data goes to stdout, diagnostics to
stderr, so ``--json`` output stays machine-clean.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from tracekit import __version__
from tracekit.errors import TracekitError, UsageError

app = typer.Typer(
    name="tracekit",
    help="Make a Linux box traceable (kprobes, uprobes, ftrace, perf, bcc, bpftrace, "
    "systemtap, sysdig) and prove it.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain click output: usage errors end in one "Error: ..." line, help reads like a man page.
    rich_markup_mode=None,
)


def _version(value: bool):
    if value:
        typer.echo("tracekit %s" % __version__)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
):
    """tracekit: doctor, setup and verify Linux tracing."""


def _json_option(schema):
    return Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout (schema in %s); "
                                        "progress and errors stay on stderr." % schema)]


JsonOption = _json_option("docs/json.md")
DoctorJsonOption = _json_option("docs/doctor-json.md")


# setup and verify reach the same hosts the same way.
InventoryOption = Annotated[
    Optional[Path],
    typer.Option("--inventory", "-i", metavar="FILE", help="Ansible inventory of hosts (default: this machine)."),
]
LimitOption = Annotated[Optional[str], typer.Option("--limit", "-l", help="Only hosts matching this pattern.")]


# Shell completion offers exactly what the commands accept: the names come
# from the registries they validate against (the roles setup has, the checks
# verify runs), minus those already on the command line.
def _complete_components(ctx, incomplete):
    from tracekit import setup as core

    given = ctx.params.get("components") or ()
    return [c for c in core.available_components() if c.startswith(incomplete) and c not in given]


def _complete_checks(ctx, incomplete):
    from tracekit import verify as core

    given = ctx.params.get("checks") or ()
    return [(c.id, c.title) for c in core.available_checks() if c.id.startswith(incomplete) and c.id not in given]


ComponentsArgument = Annotated[
    Optional[List[str]],
    typer.Argument(metavar="[COMPONENT]...", autocompletion=_complete_components,
                   help="Components to set up (default: all but dbgsym), e.g. debugfs perf."),
]


@app.command()
def doctor(
    json_output: DoctorJsonOption = False,
    require: Annotated[
        Optional[List[str]],
        typer.Option("--require", "-r", metavar="METHOD", envvar="TRACEKIT_REQUIRE",
                     help="Fail (exit 1) unless METHOD is ready; repeatable. "
                     "Without it, exit 1 only when `tracekit setup` could fix something."),
    ] = None,
    facts_file: Annotated[
        Optional[Path],
        typer.Option("--facts", metavar="FILE",
                     help="Judge facts saved from another host (`python3 -m tracekit.agent.facts > FILE`) "
                     "instead of this one; - reads stdin."),
    ] = None,
    root_dir: Annotated[
        Optional[Path],
        typer.Option("--root", metavar="DIR", help="Inspect the host tree mounted at DIR (files only, no live probes)."),
    ] = None,
):
    """Report what this kernel and host can trace, what is missing, and why.

    One row per tracing method: ready, missing (names the `tracekit setup`
    component that fixes it), unavailable (this kernel or host cannot, with
    the cause) or unknown (could not tell, e.g. not root).  Nothing is
    changed on the host: tracefs and securityfs are looked at from a private
    mount namespace when they are not mounted.

    \b
    Examples:
      sudo tracekit doctor
      sudo tracekit doctor --json | jq '.methods[] | select(.status != "ready")'
      sudo tracekit doctor --require uprobe --require perf.probe.user
      python3 -m tracekit.agent.facts > host.json; tracekit doctor --facts host.json

    \b
    Exit codes:
      0  nothing that `tracekit setup` could fix is missing, and every
         --require'd method is ready (kernel limits alone do not fail)
      1  something required is not ready
      2  usage error
    """
    from tracekit import doctor as core

    required = _run(lambda: core.validate_required(require or ()))
    report = _run(lambda: core.evaluate(_load_facts(facts_file, root_dir), required))
    if json_output:
        _print_json(report.to_dict(__version__))
    else:
        from tracekit import output

        output.print_doctor(report)
    raise typer.Exit(report.exit_code)


@app.command()
def setup(
    components: ComponentsArgument = None,
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    check: Annotated[bool, typer.Option("--check", help="Show what would change; change nothing.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show the changes made to files.")] = False,
    var: Annotated[
        Optional[List[str]],
        typer.Option("--var", "-e", metavar="KEY=VALUE", help="Role variable override (VALUE may be JSON); repeatable."),
    ] = None,
    json_output: JsonOption = False,
    run_verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="End with `tracekit verify` on the same hosts (not with --check).")
    ] = True,
):
    """Install and configure tracing on this machine or an inventory of hosts.

    Runs tracekit's Ansible roles (one per component) through ansible-runner,
    then `tracekit verify` on the same hosts: what was installed is proven
    by a real trace per tool.

    Progress goes to stderr: a live line per host on a terminal (the task it
    is on, tasks done, time; apt's long install marked as such), one line
    per task and host result otherwise.  The summary goes to stdout.

    \b
    Examples:
      sudo tracekit setup
      sudo tracekit setup debugfs --check --diff
      tracekit setup -i hosts.ini --limit web --var tracekit_debugfs_persist=false
      tracekit setup -i hosts.ini --json > setup.json

    \b
    Exit codes:
      0  every host succeeded (and verify found nothing failing)
      1  a component failed on some host, a host was unreachable, or verify failed
      2  usage error: unknown component, bad --var or inventory, not root
      130  interrupted
    """
    from tracekit import setup as core

    chosen = _run(lambda: core.select_components(components or []))
    variables = _run(lambda: core.parse_vars(var or []))
    _run(lambda: core.require_privileges(inventory))
    if inventory is not None:
        _run(lambda: core.validate_inventory(inventory))
    from tracekit import output

    with _interrupts(), output.setup_progress() as progress:
        result = _run(lambda: core.run(chosen, inventory=inventory, limit=limit, check=check, diff=diff,
                                       variables=variables, on_event=progress.event))
    verified = None
    if run_verify and not check and any(not h.unreachable for h in result.hosts.values()):
        verified = _verify_after_setup(inventory, limit, json_output)
    if json_output:
        document = result.to_dict()
        document["verify"] = verified.to_dict() if verified else None
        _print_json(document)
    else:
        output.print_setup(result)
        if verified:
            output.print_verify(verified)
    failed = result.status != "successful" or (verified is not None and verified.exit_code != 0)
    raise typer.Exit(1 if failed else 0)


def _verify_after_setup(inventory, limit, quiet):
    # Artifacts of this run are not kept: the table is the evidence.
    return _run_verify(inventory, limit, (), None, 1.0, quiet)


def _run_verify(inventory, limit, only, artifacts, timeout_scale, quiet):
    """The verify suite here or across the inventory, its progress on stderr
    (with ``quiet``, no per-check lines unless stderr is a terminal)."""
    from tracekit import output
    from tracekit import verify as core

    with _interrupts():
        if inventory is None:
            with output.verify_progress(len(core.select(only)), lines=not quiet) as progress:
                return core.run_local(only, artifacts, timeout_scale, on_result=progress.result,
                                      on_start=progress.start)
        with output.setup_progress() as progress:
            return _run(lambda: core.run_remote(inventory, limit, only, artifacts, timeout_scale,
                                                on_event=progress.event))


@contextlib.contextmanager
def _interrupts():
    """Ctrl-C: one line and exit 130, once the progress display inside has
    stopped and the core has cleaned up."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo("tracekit: interrupted", err=True)
        raise typer.Exit(130)


@app.command()
def verify(
    checks: Annotated[
        Optional[List[str]],
        typer.Argument(metavar="[CHECK]...", autocompletion=_complete_checks,
                       help="Checks to run (default: all), e.g. uprobe perf.flamegraph."),
    ] = None,
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    json_output: JsonOption = False,
    junit: Annotated[
        Optional[Path], typer.Option("--junit", metavar="FILE", help="Also write the results as JUnit XML.")
    ] = None,
    artifacts: Annotated[
        Optional[Path],
        typer.Option("--artifacts", metavar="DIR",
                     help="Keep flame graphs and trace excerpts here, per host (default: none kept, "
                     "nothing is written)."),
    ] = None,
    timeout_scale: Annotated[
        float, typer.Option("--timeout-scale", min=0.1, help="Multiply every check's time limit (slow or emulated hosts).")
    ] = 1.0,
):
    """Prove each tracing method with one small real trace, host by host.

    Each check causes its own events and looks for them: uprobes on a C
    program tracekit compiles on the host, tracepoints filtered to its own
    process, perf stat/record/sched, a flame graph, bpftrace, bcc, systemtap,
    sysdig. A check whose method `tracekit doctor` calls unavailable or
    missing is skipped with doctor's reason. Probes get unique names and
    tracefs instances of their own; everything is removed again, also on
    Ctrl-C, and the global tracing state is compared before and after.

    Progress goes to stderr: on a terminal a bar over the checks (or a live
    line per host with -i), otherwise one line per check (none with --json).

    \b
    Examples:
      sudo tracekit verify
      sudo tracekit verify uprobe perf.flamegraph --artifacts /tmp/tk
      tracekit verify -i hosts.ini --junit verify.xml
      sudo tracekit verify --json | jq '.hosts[].results[] | select(.status == "failed")'

    \b
    Exit codes:
      0  nothing failed (skips allowed)
      1  a check failed, the tracing state changed, or a host was unreachable
      2  usage error: unknown check, bad inventory or --junit path, not root
      130  interrupted (everything the suite created was removed)
    """
    from tracekit import output
    from tracekit import setup as setup_core
    from tracekit import verify as core

    chosen = _run(lambda: core.select(checks or []))
    if junit and not junit.parent.is_dir():
        _fail(UsageError("--junit %s: %s is not a directory" % (junit, junit.parent)))
    if inventory is None:
        _run(lambda: setup_core.require_privileges(None))
    else:
        _run(lambda: setup_core.validate_inventory(inventory))
    result = _run_verify(inventory, limit, chosen if checks else (), artifacts, timeout_scale, json_output)
    if junit:
        _run(lambda: _write(junit, result.junit() + "\n"))
    if json_output:
        _print_json(result.to_dict())
    else:
        output.print_verify(result)
    raise typer.Exit(result.exit_code)


@app.command()
def render(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Empty or new directory to write into.")],
    components: ComponentsArgument = None,
    var: Annotated[
        Optional[List[str]],
        typer.Option("--var", "-e", metavar="KEY=VALUE", help="Role variable written to vars.yml; repeatable."),
    ] = None,
    inventory: InventoryOption = None,
    json_output: JsonOption = False,
):
    """Write a standalone playbook, its vars and roles for plain ansible-playbook.

    DIR gets tracekit.yml (the play `tracekit setup` runs, without its
    doctor and verify steps), vars.yml, an ansible.cfg that finds the roles,
    and roles/.  Prints the playbook's path on stdout and, on stderr, the
    command that runs it from any directory: the ansible-playbook of
    tracekit's own environment with DIR's ansible.cfg and vars.yml, on the
    hosts of -i INVENTORY or on this machine.  With --json, what was
    written, for which components, variables and hosts, and that command.

    \b
    Examples:
      tracekit render ./tracing
      tracekit render ./tracing -i hosts.ini perf bpftrace --var tracekit_debugfs_persist=false
      sh -c "$(tracekit render ./tracing -i hosts.ini --json | jq -r .command) --check"

    \b
    Exit codes:
      0  written
      1  writing failed part-way (the message names what)
      2  usage error: unknown component, bad --var, DIR not empty or not usable
    """
    from tracekit import setup as core

    chosen = _run(lambda: core.select_components(components or []))
    variables = _run(lambda: core.parse_vars(var or []))
    if inventory is not None:
        _run(lambda: core.validate_inventory(inventory))
    rendered = _run(lambda: core.render(directory, chosen, variables, inventory))
    if json_output:
        _print_json(rendered.to_dict())
    else:
        typer.echo(str(rendered.playbook))
        # stdout is the path (for scripts); how to run it is for the person.
        typer.echo("run it with:\n  %s" % rendered.command, err=True)


def _load_facts(facts_file, root_dir):
    from tracekit.agent import facts as agent_facts

    if facts_file and root_dir:
        raise UsageError("--facts and --root exclude each other")
    if root_dir:
        if not root_dir.is_dir():
            raise UsageError("--root %s: not a directory" % root_dir)
        return agent_facts.collect(str(root_dir))
    if facts_file:
        try:
            text = sys.stdin.read() if str(facts_file) == "-" else facts_file.read_text()
            facts = json.loads(text)
        except OSError as exc:
            raise UsageError("--facts %s: %s" % (facts_file, exc.strerror or exc))
        except ValueError as exc:
            raise UsageError("--facts %s: not JSON (%s)" % (facts_file, exc))
        if not isinstance(facts, dict) or facts.get("schema") != agent_facts.SCHEMA:
            raise UsageError("--facts %s: not tracekit facts (schema %s expected)" % (facts_file, agent_facts.SCHEMA))
        return facts
    return agent_facts.collect("/")


def _write(path, text):
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise TracekitError("writing %s failed: %s" % (path, exc.strerror or exc))


def _print_json(document):
    """The whole document or nothing: it is made before anything is written."""
    text = json.dumps(document, indent=2) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()


def _run(fn):
    """Call the core; turn the domain's exceptions into one line and an exit code."""
    try:
        return fn()
    except TracekitError as exc:
        _fail(exc)


def _fail(exc):
    typer.echo("tracekit: error: %s" % exc, err=True)
    if exc.hint:
        typer.echo("hint: %s" % exc.hint, err=True)
    raise typer.Exit(exc.exit_code)


# -- the classic workflows (core: tracekit/workflows.py) ----------------------------------------
WorkflowJsonOption = _json_option("docs/workflows.md")
VerboseOption = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Also show perf's own status lines (\"[ perf record: ... ]\"); --json has them "
    "in tool_messages either way.")]
CommandArgument = Annotated[
    List[str], typer.Argument(metavar="-- CMD...", show_default=False, help="The command to trace, after --.")]
# Options end at the first argument, as for perf and time: `-- CMD -l` keeps CMD's -l.
WORKFLOW_CONTEXT = {"allow_interspersed_args": False}
WORKFLOW_EXIT_CODES = """
    tracekit's options go before the first argument: what follows is
    FUNC/PROBE and CMD, as for perf and time.

    \b
    Exit codes:
      0    the trace was made (CMD's own exit status is reported, not passed on)
      1    refused (doctor: this host cannot; its reason is printed) or the trace failed
      2    usage error (no CMD, CMD not found, not root)
      130  interrupted after the recording (Ctrl-C during it only ends the recording)
"""


def _workflow_doc(fn):
    fn.__doc__ += WORKFLOW_EXIT_CODES
    return fn


@app.command(context_settings=WORKFLOW_CONTEXT)
@_workflow_doc
def flamegraph(
    command: CommandArgument,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE.svg", help="Where the flame graph goes.")
    ] = Path("flamegraph.svg"),
    frequency: Annotated[
        int, typer.Option("--frequency", "-F", metavar="HZ", min=1, help="Samples per second (perf record -F).")
    ] = 997,
    verbose: VerboseOption = False,
    json_output: WorkflowJsonOption = False,
):
    """Sample CMD's stacks and draw them as an SVG flame graph.

    perf record -g on the cpu-clock event (no hardware PMU needed) while CMD
    runs, its stacks folded and drawn by tracekit itself (nothing is
    fetched): the same code as `tracekit verify perf.flamegraph`. Refused
    with doctor's reason where perf sampling cannot work. Ctrl-C ends the
    recording and the graph is drawn from what was sampled.

    \b
    Examples:
      sudo tracekit flamegraph -- ./myprogram --its-args
      sudo tracekit flamegraph -o build.svg -F 99 -- make -j2
      sudo tracekit flamegraph --json -- gzip -k big.log | jq .hottest
    """
    from tracekit import output as human
    from tracekit import workflows

    _workflow(json_output, lambda: workflows.flamegraph(command, output, frequency, verbose=verbose),
              human.print_flamegraph)


@app.command(context_settings=WORKFLOW_CONTEXT)
@_workflow_doc
def funcgraph(
    function: Annotated[str, typer.Argument(metavar="FUNC", help="Kernel function to graph, e.g. do_sys_openat2.")],
    command: CommandArgument,
    json_output: WorkflowJsonOption = False,
):
    """Show the kernel call graph of FUNC as CMD calls it (function_graph).

    The function_graph tracer in a private tracefs instance, filtered to
    CMD's pid and the processes it starts (funcgraph-proc shows which), as
    `tracekit verify ftrace.function_graph` does. Where instances have no
    function_graph (Linux 6.8), the global tracer is borrowed only when idle
    and every setting restored; otherwise refused ("global tracer in use").
    Refused with doctor's reason where the kernel has no usable
    function_graph tracer.

    \b
    Examples:
      sudo tracekit funcgraph do_sys_openat2 -- cat /etc/hostname
      sudo tracekit funcgraph --json vfs_read -- head -c 1 /etc/passwd
    """
    from tracekit import output as human
    from tracekit import workflows

    _workflow(json_output, lambda: workflows.funcgraph(function, command), human.print_funcgraph)


@app.command(context_settings=WORKFLOW_CONTEXT)
@_workflow_doc
def sched(command: CommandArgument, verbose: VerboseOption = False, json_output: WorkflowJsonOption = False):
    """Wait time, scheduling delay and run time of each of CMD's tasks.

    perf sched record while CMD runs, then perf sched timehist, added up per
    task: CMD, its threads and the processes it starts (from the recording's
    fork events), as `tracekit verify perf.sched` does. Wait time is time
    off the CPU, scheduling delay the time from wakeup to running, run time
    the time on the CPU (milliseconds). Refused with doctor's reason where
    perf or the sched tracepoints cannot work.

    \b
    Examples:
      sudo tracekit sched -- make -j2
      sudo tracekit sched --json -- sh -c 'sleep 0.1; ls' | jq '.tasks[] | {comm, sch_delay_ms}'
    """
    from tracekit import output as human
    from tracekit import workflows

    _workflow(json_output, lambda: workflows.sched(command, verbose=verbose), human.print_sched)


@app.command(context_settings=WORKFLOW_CONTEXT)
@_workflow_doc
def probe(
    definition: Annotated[
        str, typer.Argument(metavar="PROBE", help="perf probe definition, quoted when it has arguments: "
                            "'FUNC ARG...', 'FUNC%return $retval'.")],
    command: CommandArgument,
    binary: Annotated[
        Optional[Path], typer.Option("--exec", "-x", metavar="BINARY",
                                     help="Probe a function of this program or library (uprobe); "
                                     "without it, a kernel function (kprobe).")
    ] = None,
    add: Annotated[
        Optional[List[str]], typer.Option("--add", "-a", metavar="PROBE", help="Another probe in the same run; "
                                          "repeatable.")
    ] = None,
    verbose: VerboseOption = False,
    json_output: WorkflowJsonOption = False,
):
    """Dynamic probes on CMD: perf probe add, record, script, delete.

    Adds the probes (perf probe; -x for a user program's function) in a
    group of their own, records CMD with them (perf record -e), prints every
    hit with its arguments, and deletes the probes again whatever happens,
    Ctrl-C included: the same code as `tracekit verify perf.probe.user` and
    perf.probe.kernel. Refused with doctor's reason where the kernel cannot
    (no uprobes for -x, no kprobes without it).

    \b
    Examples:
      sudo tracekit probe -x ./myprogram 'parse_line len' -- ./myprogram input.txt
      sudo tracekit probe -x /lib/x86_64-linux-gnu/libc.so.6 'malloc bytes=%di:u64' -- ls
      sudo tracekit probe 'do_sys_openat2 dfd filename:string' -- cat /etc/hostname
      sudo tracekit probe --json -x ./a.out 'work%return $retval' -- ./a.out | jq .counts
    """
    from tracekit import output as human
    from tracekit import workflows

    definitions = [definition] + list(add or [])
    _workflow(json_output,
              lambda: workflows.probe(definitions, command, str(binary) if binary is not None else None,
                                      verbose=verbose),
              human.print_probe)


def _workflow(json_output, fn, printer):
    """Run a workflow: its result as JSON or for a person; a refusal or
    failure is one line (stdout empty), Ctrl-C after the recording exit 130."""
    with _interrupts():
        result = _run(fn)
    if result.interrupted or result.exit_status != 0:
        typer.echo("tracekit: note: %s %s" % (result.command[0], result.ended), err=True)
    if json_output:
        _print_json(result.to_dict())
    else:
        printer(result)


def main():
    # One name however it was started (`python -m tracekit` too): usage
    # lines and shell completion's _TRACEKIT_COMPLETE variable depend on it.
    app(prog_name="tracekit")
