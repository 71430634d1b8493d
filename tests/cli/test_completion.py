"""Shell completion: the script `--show-completion bash` prints, run by a
real bash against the installed `tracekit` command, offers what the
commands accept."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tracekit import setup, verify

# Typer asks shellingham which shell runs it unless this is set; with it,
# --show-completion takes the shell as its value.
NO_DETECTION = {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}


@pytest.fixture(scope="module")
def tracekit_on_path(tmp_path_factory):
    """A PATH whose `tracekit` is this environment's console script (what an
    install puts on PATH), or, where tracekit is not installed as one, a
    wrapper that starts the same code."""
    script = Path(sys.executable).parent / "tracekit"
    if script.is_file():
        return str(script.parent)
    bindir = tmp_path_factory.mktemp("bin")
    wrapper = bindir / "tracekit"
    wrapper.write_text('#!/bin/sh\nexec "%s" -m tracekit "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    return str(bindir)


@pytest.fixture(scope="module")
def bash_script(tracekit_on_path):
    # Typer reads the variable when it builds the command line, before
    # CliRunner would set it: a process of its own.
    proc = subprocess.run([os.path.join(tracekit_on_path, "tracekit"), "--show-completion", "bash"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60,
                          env=dict(os.environ, **NO_DETECTION))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def complete(bash_script, tracekit_on_path, words):
    """What bash offers after ``words`` (the last one being completed), with
    the completion script sourced as a user's shell would."""
    bash = shutil.which("bash")
    if not bash:
        pytest.skip("no bash on this machine")
    words_literal = " ".join("'%s'" % w for w in words)
    program = "\n".join([bash_script, "COMP_WORDS=(%s); COMP_CWORD=%d" % (words_literal, len(words) - 1),
                         "_tracekit_completion tracekit", 'printf "%s\\n" "${COMPREPLY[@]}"', ""])
    env = dict(os.environ, PATH=tracekit_on_path + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([bash, "--norc", "--noprofile", "-c", program], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_show_completion_prints_a_bash_script_for_tracekit(bash_script):
    assert "complete -o default -F _tracekit_completion tracekit" in bash_script
    assert "_TRACEKIT_COMPLETE=complete_bash" in bash_script
    bash = shutil.which("bash")
    if bash:
        syntax = subprocess.run([bash, "-n"], input=bash_script, universal_newlines=True, stderr=subprocess.PIPE)
        assert syntax.returncode == 0, syntax.stderr


def test_commands_complete(bash_script, tracekit_on_path):
    offered = complete(bash_script, tracekit_on_path, ["tracekit", ""])
    assert {"doctor", "setup", "verify", "render"} <= set(offered)


def test_setup_completes_the_component_names(bash_script, tracekit_on_path):
    assert complete(bash_script, tracekit_on_path, ["tracekit", "setup", ""]) == setup.available_components()
    offered = complete(bash_script, tracekit_on_path, ["tracekit", "setup", "perf", "b"])
    assert offered == [c for c in setup.available_components() if c.startswith("b")]
    # A name already given is not offered again.
    assert "perf" not in complete(bash_script, tracekit_on_path, ["tracekit", "setup", "perf", ""])


def test_render_completes_the_component_names_after_its_directory(bash_script, tracekit_on_path):
    offered = complete(bash_script, tracekit_on_path, ["tracekit", "render", "/tmp/out", "sys"])
    assert offered == [c for c in setup.available_components() if c.startswith("sys")]


def test_verify_completes_the_check_ids(bash_script, tracekit_on_path):
    ids = [c.id for c in verify.available_checks()]
    assert complete(bash_script, tracekit_on_path, ["tracekit", "verify", ""]) == ids
    offered = complete(bash_script, tracekit_on_path, ["tracekit", "verify", "perf."])
    assert offered == [i for i in ids if i.startswith("perf.")]
    assert "uprobe" not in complete(bash_script, tracekit_on_path, ["tracekit", "verify", "uprobe", "u"])


def test_what_completion_offers_is_what_the_commands_accept():
    for name in setup.available_components():
        assert setup.select_components([name])
    assert verify.select([c.id for c in verify.available_checks()]) == [c.id for c in verify.available_checks()]
