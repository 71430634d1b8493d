"""tracekit.agent runs on remote hosts with a bare Python: standard library
and its own modules only."""

import ast
import sys
from pathlib import Path

import tracekit.agent

AGENT = Path(tracekit.agent.__file__).parent
# Shipped to targets with the agent (tracekit.remote): the same rules apply.
HOST_FILES = sorted(AGENT.glob("*.py")) + [AGENT.parent / n for n in ("doctor.py", "errors.py", "hostrun.py", "releases.py")]


def imported_modules(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def test_agent_imports_only_the_standard_library():
    offenders = []
    for path in HOST_FILES:
        for module, line in imported_modules(path):
            if module not in sys.stdlib_module_names and module != "tracekit":
                offenders.append("%s:%d imports %s" % (path.name, line, module))
    assert not offenders, offenders


def test_agent_avoids_syntax_newer_than_python_38():
    # Remote targets may be older than the controller (Ubuntu 20.04 has 3.8).
    for path in HOST_FILES:
        ast.parse(path.read_text(), str(path), feature_version=(3, 8))


def test_host_files_import_only_what_is_shipped():
    from tracekit import remote

    shipped = {"tracekit." + n[:-3] for n in remote.HOST_MODULES} | {"tracekit.agent"}
    for path in HOST_FILES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.startswith("tracekit"):
                names = {node.module} if node.module != "tracekit" else {"tracekit." + a.name for a in node.names}
                assert all(n in shipped or n.startswith("tracekit.agent") for n in names), (path.name, names)
