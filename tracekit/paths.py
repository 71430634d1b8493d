"""Where tracekit's own files are, installed or in a checkout."""

from pathlib import Path

from tracekit.errors import TracekitError

PACKAGE = Path(__file__).resolve().parent


def provision_dir():
    """The Ansible content (playbooks, roles/).  An installed wheel carries it
    as tracekit/provision; a source checkout has it at the top level."""
    for candidate in (PACKAGE / "provision", PACKAGE.parent / "provision"):
        if (candidate / "roles").is_dir():
            return candidate
    raise TracekitError("tracekit's Ansible roles are missing (looked in %s)" % (PACKAGE / "provision"),
                        hint="reinstall tracekit: sudo ./install.sh")


def schema_file(name):
    return PACKAGE / "schemas" / name
