"""tracekit.agent runs on remote hosts with a bare Python: standard library
and its own modules only."""

import ast
import sys
from pathlib import Path

import tracekit.agent

AGENT = Path(tracekit.agent.__file__).parent


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
    for path in sorted(AGENT.glob("*.py")):
        for module, line in imported_modules(path):
            if module not in sys.stdlib_module_names:
                offenders.append("%s:%d imports %s" % (path.name, line, module))
    assert not offenders, offenders


def test_agent_avoids_syntax_newer_than_python_38():
    # Remote targets may be older than the controller (Ubuntu 20.04 has 3.8).
    for path in sorted(AGENT.glob("*.py")):
        ast.parse(path.read_text(), str(path), feature_version=(3, 8))
