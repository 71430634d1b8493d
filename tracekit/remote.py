"""tracekit's host-side code as one file a target runs with its own python3.

The agent (facts, checks), doctor and tracekit.hostrun use only the standard
library, so the same code that runs here runs on every host of an inventory,
shipped by Ansible's script module as a zip application: nothing is
installed on the target.

    python3 tracekit-agent.pyz facts
    python3 tracekit-agent.pyz verify [--only ID]... [--artifacts DIR]
"""

import zipfile
from pathlib import Path

from tracekit import releases
from tracekit.paths import PACKAGE, provision_dir

_MAIN = '''import sys
from tracekit import hostrun
sys.exit(hostrun.main(sys.argv[1:]))
'''
# The controller-only modules (CLI, Ansible driver, output) stay home.
HOST_MODULES = ("doctor.py", "errors.py", "hostrun.py", "releases.py")


def agent_zipapp(directory):
    """Write <directory>/tracekit-agent.pyz; returns its path."""
    target = Path(directory) / "tracekit-agent.pyz"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__main__.py", _MAIN)
        archive.writestr("tracekit/__init__.py", "")
        for name in HOST_MODULES:
            archive.write(PACKAGE / name, "tracekit/" + name)
        # The supported releases, which doctor (tracekit.releases) reads.
        archive.write(provision_dir() / "roles" / "platform" / "vars" / "main.json", "tracekit/" + releases.DATA)
        for path in sorted((PACKAGE / "agent").iterdir()):
            if path.suffix in (".py", ".c"):
                archive.write(path, "tracekit/agent/" + path.name)
    return target
