"""The command line at its edge: exit codes, streams, JSON, bad input."""

import gzip
import json
import re
import shutil

import jsonschema
import pytest
from typer.testing import CliRunner

from tracekit import __version__, doctor
from tracekit.cli import app
from tracekit.paths import schema_file

SCHEMA = json.loads(schema_file("doctor.schema.json").read_text())


def invoke(*args, input=None):
    return CliRunner().invoke(app, list(args), input=input)


def expected_exit(document):
    by_id = {m["id"]: m["status"] for m in document["methods"]}
    if any(by_id[r] != "ready" for r in document["required"]):
        return 1
    return 1 if any(m["status"] == "missing" for m in document["methods"]) else 0


@pytest.fixture(scope="module")
def live_json():
    result = invoke("doctor", "--json")
    return result, json.loads(result.stdout)


def fake_root(tmp_path, data_dir, config=True, os_release='ID=ubuntu\nVERSION_ID="24.04"\n'
              'VERSION_CODENAME=noble\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n'):
    release = "6.8.0-151-generic"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(os_release)
    kernel = tmp_path / "proc/sys/kernel"
    kernel.mkdir(parents=True)
    (kernel / "osrelease").write_text(release + "\n")
    (kernel / "arch").write_text("x86_64\n")
    if config:
        shutil.copy(data_dir / "kconfig/ubuntu-noble-6.8.0-151-generic.config.gz", tmp_path / "proc/config.gz")
    return tmp_path


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == "tracekit %s" % __version__


def test_json_is_clean_valid_and_consistent(live_json):
    result, document = live_json
    jsonschema.validate(document, SCHEMA)
    assert [m["id"] for m in document["methods"]] == list(doctor.METHOD_IDS)
    assert result.exit_code == document["exit_code"] == expected_exit(document)
    assert "{" not in result.stderr


def test_human_table_lists_every_method(live_json):
    result = invoke("doctor")
    assert result.exit_code == live_json[0].exit_code
    for method_id in doctor.METHOD_IDS:
        assert method_id in result.stdout
    assert "kernel config" in result.stdout


def test_require_a_method_that_is_not_ready_fails(tmp_path, live_json):
    facts = live_json[1]["facts"]
    not_ready = [m["id"] for m in live_json[1]["methods"] if m["status"] != "ready"]
    ready = [m["id"] for m in live_json[1]["methods"] if m["status"] == "ready"]
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(facts))
    if not_ready:
        result = invoke("doctor", "--json", "--facts", str(path), "--require", not_ready[0])
        assert result.exit_code == 1
        assert json.loads(result.stdout)["required"] == [not_ready[0]]
    if ready:
        result = invoke("doctor", "--json", "--facts", str(path), "--require", ready[0])
        assert result.exit_code == expected_exit(json.loads(result.stdout))


def test_facts_from_stdin_give_the_same_verdicts(live_json):
    result = invoke("doctor", "--json", "--facts", "-", input=json.dumps(live_json[1]["facts"]))
    assert result.exit_code == live_json[0].exit_code
    assert json.loads(result.stdout)["methods"] == live_json[1]["methods"]


@pytest.mark.parametrize("args, message", [
    (["doctor", "--require", "nope"], "tracekit: error: unknown method nope; valid: ftrace.function"),
    (["doctor", "--facts", "/nonexistent/facts.json"], "tracekit: error: --facts /nonexistent/facts.json: No such file"),
    (["doctor", "--root", "/nonexistent"], "tracekit: error: --root /nonexistent: not a directory"),
    (["doctor", "--root", "/", "--facts", "-"], "tracekit: error: --facts and --root exclude each other"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ('{"schema": 99}', "not tracekit facts"),
    ("[1, 2]", "not tracekit facts"),
])
def test_malformed_facts_file(tmp_path, content, message):
    path = tmp_path / "facts.json"
    path.write_text(content)
    result = invoke("doctor", "--facts", str(path))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_option_is_a_usage_error():
    result = invoke("doctor", "--bogus")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == "Error: No such option: --bogus"


def test_truncated_config_is_reported_not_fatal(tmp_path, data_dir):
    root = fake_root(tmp_path, data_dir)
    whole = gzip.decompress((root / "proc/config.gz").read_bytes())
    (root / "proc/config.gz").write_bytes(gzip.compress(whole)[:5000])
    result = invoke("doctor", "--json", "--root", str(root))
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    kconfig = document["facts"]["kconfig"]
    assert kconfig["source"] is None and "/proc/config.gz" in kconfig["error"]
    assert all(v is None for v in kconfig["options"].values()), "a truncated config must not say 'not set'"


def test_absent_tracefs_and_unknown_distribution(tmp_path, data_dir):
    root = fake_root(tmp_path, data_dir, os_release='ID=plan9\nPRETTY_NAME="Plan 9"\n')
    result = invoke("doctor", "--json", "--root", str(root))
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["host"]["distro"]["id"] == "plan9"
    methods = {m["id"]: m for m in document["methods"]}
    assert methods["uprobe"]["status"] == "unknown"
    assert "tracefs" in methods["uprobe"]["reason"]
    # Headers cannot be installed for a kernel of an unknown distribution.
    assert methods["bcc"]["status"] in ("missing", "unavailable")
    assert "Traceback" not in result.stderr


COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def test_every_command_is_covered_by_the_help_test():
    assert {"doctor", "setup", "verify", "render"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_reads_like_a_man_page_with_examples_and_exit_codes(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    text = result.stdout
    examples = text.index("Examples:")
    codes = text.index("Exit codes:")
    assert examples < codes
    # Each example is a tracekit command line; each exit code a number and its meaning.
    assert "tracekit %s" % command in text[examples:codes]
    listed = [m.group(1) for m in re.finditer(r"^ +(\d+) ", text[codes:], re.M)]
    assert listed[:3] == ["0", "1", "2"], text[codes:]
    assert "\x1b[" not in text, "plain text, no colour codes"
