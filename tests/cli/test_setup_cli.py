"""`tracekit setup` and `tracekit render` at the edge: bad input, rendering."""

import json
import os
import subprocess
import sys

import jsonschema
import pytest
from typer.testing import CliRunner

from tracekit import setup
from tracekit.cli import app
from tracekit.paths import provision_dir, schema_file


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def one_line_error(result, text):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr


def test_unknown_component_is_a_usage_error():
    one_line_error(invoke("setup", "bogus"), "unknown component bogus; valid: debugfs")


def test_missing_inventory(tmp_path):
    one_line_error(invoke("setup", "-i", str(tmp_path / "nope.ini")), "no such file")


def test_malformed_inventory(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web\nhost1 ansible_host=\n")
    one_line_error(invoke("setup", "-i", str(inventory)), "not a valid inventory")


def test_inventory_without_hosts(tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\n")
    one_line_error(invoke("setup", "-i", str(inventory)), "lists no hosts")


def test_bad_var():
    one_line_error(invoke("setup", "--var", "oops"), "expected KEY=VALUE")


def test_render_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    one_line_error(invoke("render", str(tmp_path)), "is not empty")
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_rendered_playbook_passes_ansible_syntax_check(tmp_path):
    out = tmp_path / "tracing"
    result = invoke("render", str(out), "debugfs", "--var", "tracekit_debugfs_persist=false")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out / "tracekit.yml")
    assert (out / "roles/debugfs/meta/argument_specs.yml").is_file()
    assert "tracekit_debugfs_persist" in (out / "vars.yml").read_text()
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    check = subprocess.run([playbook, "--syntax-check", "-i", "localhost,", "-e", "@vars.yml", "tracekit.yml"],
                           cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=120)
    assert check.returncode == 0, check.stdout


def test_unknown_check_is_a_usage_error():
    one_line_error(invoke("verify", "bogus"), "unknown check bogus; valid: ftrace.function")


def test_verify_missing_inventory(tmp_path):
    one_line_error(invoke("verify", "-i", str(tmp_path / "nope.ini")), "no such file")


def test_render_json_says_what_was_written(tmp_path):
    out = tmp_path / "tracing"
    result = invoke("render", str(out), "bcc", "--var", "tracekit_debugfs_persist=false", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(schema_file("render.schema.json").read_text()))
    assert document["directory"] == str(out.resolve())
    assert document["playbook"] == str(out.resolve() / "tracekit.yml")
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in document["written"])
    assert all(os.path.dirname(p) == document["directory"] for p in document["written"])
    # What the named component needs comes along, as setup would run it.
    assert document["components"] == setup.select_components(["bcc"])
    assert document["roles"] == sorted(os.listdir(out / "roles")) == sorted(os.listdir(provision_dir() / "roles"))
    assert document["vars"] == {"tracekit_debugfs_persist": False}
    assert "false" in (out / "vars.yml").read_text()


@pytest.mark.parametrize("args, message", [
    (["render", "{tmp}/keep", "--json"], "is not empty"),
    (["render", "{tmp}/keep/file.txt", "--json"], "is not a directory"),
    (["render", "/proc/tracekit-nonexistent/out", "--json"], "/proc/tracekit-nonexistent/out: "),
    (["render", "{tmp}/new", "bogus", "--json"], "unknown component bogus"),
    (["render", "{tmp}/new", "--var", "oops", "--json"], "expected KEY=VALUE"),
    (["setup", "bogus", "--json"], "unknown component bogus"),
    (["setup", "--var", "oops", "--json"], "expected KEY=VALUE"),
    (["setup", "-i", "{tmp}/nope.ini", "--json"], "no such file"),
    (["verify", "bogus", "--json"], "unknown check bogus"),
    (["verify", "-i", "{tmp}/nope.ini", "--json"], "no such file"),
    (["verify", "--junit", "{tmp}/no/such/dir/junit.xml", "--json"], "is not a directory"),
])
def test_errors_with_json_are_one_line_on_stderr_and_nothing_on_stdout(tmp_path, args, message):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep/file.txt").write_text("mine")
    result = invoke(*(a.format(tmp=tmp_path) for a in args))
    assert result.stdout == ""
    one_line_error(result, message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "keep/file.txt").read_text() == "mine"


def _run_printed(command, *extra, cwd):
    """The printed command as a person pastes it into a shell, with ``extra`` arguments."""
    return subprocess.run(["/bin/sh", "-c", command + "".join(" " + a for a in extra)], cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)


def test_render_ends_with_the_command_that_runs_it_here(tmp_path):
    out, elsewhere = tmp_path / "tracing", tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = invoke("render", str(out), "debugfs")
    assert result.exit_code == 0, result.output
    assert result.stdout == str(out / "tracekit.yml") + "\n"  # stdout stays the path, for scripts
    hint, command = result.stderr.splitlines()
    assert hint == "run it with:"
    command = command.strip()
    # tracekit's own ansible-playbook (install.sh puts none on PATH), DIR's cfg and vars, this machine.
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    assert command == ("ANSIBLE_CONFIG=%s/ansible.cfg %s -i localhost, -c local -e "
                       "ansible_python_interpreter=/usr/bin/python3 %s/tracekit.yml -e @%s/vars.yml"
                       % (out.resolve(), playbook, out.resolve(), out.resolve()))
    # It runs from any directory: ansible-playbook reads DIR's ansible.cfg and
    # finds the play's host, and the play passes its syntax check.
    version = _run_printed(command, "--version", cwd=elsewhere)
    assert version.returncode == 0 and "config file = %s/ansible.cfg" % out.resolve() in version.stdout, version.stdout
    hosts = _run_printed(command, "--list-hosts", cwd=elsewhere)
    assert hosts.returncode == 0 and hosts.stdout.split("hosts (1):")[1].split() == ["localhost"], hosts.stdout
    check = _run_printed(command, "--syntax-check", cwd=elsewhere)
    assert check.returncode == 0, check.stdout


def test_render_with_an_inventory_prints_the_command_for_its_hosts(tmp_path, monkeypatch):
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=127.0.0.2\nweb2 ansible_host=127.0.0.3\n")
    monkeypatch.chdir(tmp_path)  # a relative -i is the caller's
    result = invoke("render", "tracing", "-i", "hosts.ini", "perf", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(schema_file("render.schema.json").read_text()))
    assert document["inventory"] == str(tmp_path / "hosts.ini")
    assert " -i %s " % (tmp_path / "hosts.ini") in document["command"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hosts = _run_printed(document["command"], "--list-hosts", cwd=elsewhere)
    assert hosts.returncode == 0 and sorted(hosts.stdout.split("hosts (2):")[1].split()) == ["web1", "web2"], \
        hosts.stdout
    # Without --json the same command, on stderr.
    human = invoke("render", "again", "-i", "hosts.ini", "perf")
    assert human.stderr.splitlines()[1].strip() == document["command"].replace(str(tmp_path / "tracing"),
                                                                                 str(tmp_path / "again"))


def test_render_refuses_a_bad_inventory_before_writing(tmp_path):
    one_line_error(invoke("render", str(tmp_path / "out"), "-i", str(tmp_path / "nope.ini")), "no such file")
    assert not (tmp_path / "out").exists()


# -- verify writes nothing where it runs unless --artifacts asks -----------------------------------
@pytest.fixture
def suite_stand_in(monkeypatch):
    """The local suite's entry point, standing in for the real one (it traces
    for real and touches the shared tracing state: tests/host/test_verify.py
    runs it).  Like the real one, it writes its document where told."""
    seen = []

    def run(only=(), artifacts=None, timeout_scale=1.0, on_result=None, on_start=None):
        seen.append(artifacts)
        if artifacts:
            os.makedirs(artifacts, exist_ok=True)
            with open(os.path.join(artifacts, "verify.json"), "w") as f:
                f.write("{}\n")
        return {"results": [], "exit_code": 0, "state_changed": [], "interrupted": False}
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr("tracekit.hostrun.verify", run)
    return seen


def test_local_verify_leaves_the_current_directory_as_it_was(tmp_path, monkeypatch, suite_stand_in):
    monkeypatch.chdir(tmp_path)
    for args in (["verify"], ["verify", "--json"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert os.listdir(tmp_path) == []
    assert suite_stand_in == [None, None]
    assert json.loads(result.stdout)["artifacts"] is None
    result = invoke("verify", "--artifacts", "kept")
    assert result.exit_code == 0, result.output
    assert suite_stand_in[-1] == os.path.join("kept", "localhost")
    assert os.listdir(tmp_path / "kept/localhost") == ["verify.json"]


def test_remote_verify_fetches_nothing_unless_asked(tmp_path, monkeypatch):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("web1 ansible_host=127.0.0.2\n")
    asked = []

    def run_play(build, inventory=None, limit=None, variables=None, on_event=None, **kwargs):
        # Stands in for ansible-runner: no host to reach here (tests/fleet runs the real play).
        asked.append(variables["tracekit_verify_artifacts"])
        return "failed", 4, "stand-in: no hosts"
    monkeypatch.setattr(setup, "run_play", run_play)
    monkeypatch.chdir(tmp_path)
    invoke("verify", "-i", str(inventory))
    assert asked == [""] and sorted(os.listdir(tmp_path)) == ["hosts.ini"]
    invoke("verify", "-i", str(inventory), "--artifacts", "out")
    assert asked[-1] == str(tmp_path / "out")
