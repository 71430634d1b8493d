"""tracekit's agent as one file a target can run with its own python3.

The agent package is stdlib-only, so the same code that reads facts (and
runs checks) here runs on every host of an inventory, shipped by Ansible's
script module as a zip application: nothing is installed on the target."""

import zipfile
from pathlib import Path

from tracekit.paths import PACKAGE

_MAIN = '''import sys
from tracekit.agent import facts
facts.main(sys.argv[1:])
'''


def facts_zipapp(directory):
    """Write <directory>/tracekit-agent.pyz; returns its path."""
    target = Path(directory) / "tracekit-agent.pyz"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__main__.py", _MAIN)
        # An empty package root: the real tracekit/__init__ is the
        # controller's (its imports are not the agent's business).
        archive.writestr("tracekit/__init__.py", "")
        for path in sorted((PACKAGE / "agent").iterdir()):
            if path.suffix in (".py", ".c"):
                archive.write(path, "tracekit/agent/" + path.name)
    return target
