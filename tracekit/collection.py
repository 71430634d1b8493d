"""tracekit's Ansible content as a collection, tracekit.tracing, for fleets
that install their Ansible content with ansible-galaxy.

Nothing in it is written twice: the roles are provision/roles as they are
(inside a collection a role's unqualified `include_role: name: packages`
finds the collection's own role first, so the same files work in both
places), the setup and verify playbooks are the plays `tracekit setup` and
`tracekit verify -i` run (tracekit.setup.build_playbook with fully qualified
role names, tracekit.verify.build_play), and the verify agent beside them is
tracekit's own zip application (tracekit.remote).  Building needs no network:
`ansible-galaxy collection build` only packs the tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tracekit import __version__, remote, setup, verify
from tracekit.errors import TracekitError
from tracekit.paths import provision_dir

NAMESPACE = "tracekit"
NAME = "tracing"
FQCN = "%s.%s" % (NAMESPACE, NAME)
# The oldest ansible-core tracekit's roles are written for (their meta/main.yml say so too).
REQUIRES_ANSIBLE = ">=2.15.0"
AGENT = "tracekit-agent.pyz"


def galaxy_info():
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "version": __version__,
        "readme": "README.md",
        "authors": ["tracekit"],
        "description": "Make Linux hosts traceable (debugfs, debug symbols, headers, perf, bcc, bpftrace, "
                       "systemtap, sysdig) and prove it with one real trace per tool.",
        "license": ["Apache-2.0"],
        "tags": ["tracing", "ebpf", "perf", "ftrace", "observability", "linux"],
        "dependencies": {},
    }


def write_tree(directory, readme):
    """Write the collection's source tree into ``directory`` (new or empty);
    ``readme`` becomes its README.md.  Returns the directory."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise TracekitError("%s is not empty" % root)
    (root / "galaxy.yml").write_text(setup._yaml(galaxy_info()))
    (root / "meta").mkdir()
    (root / "meta" / "runtime.yml").write_text(setup._yaml({"requires_ansible": REQUIRES_ANSIBLE}))
    shutil.copyfile(readme, root / "README.md")
    shutil.copytree(provision_dir() / "roles", root / "roles",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    playbooks = root / "playbooks"
    (playbooks / "files").mkdir(parents=True)
    components = setup.select_components([])  # what `tracekit setup` sets up by default
    (playbooks / "setup.yml").write_text(setup._yaml(setup.build_playbook(components, collection=FQCN)))
    # The script module finds the agent in files/ beside the playbook.
    remote.agent_zipapp(playbooks / "files")
    (playbooks / "verify.yml").write_text(setup._yaml(verify.build_play(AGENT)))
    return root


def ansible_galaxy():
    """ansible-galaxy of the environment running this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "ansible-galaxy"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("ansible-galaxy")
    if not found:
        raise TracekitError("ansible-galaxy is not installed", hint="install ansible-core")
    return found


def build(output_dir, readme):
    """Build the collection artifact into ``output_dir``; returns its path
    (tracekit-tracing-<version>.tar.gz; an older build of the same version
    is replaced)."""
    output = Path(output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tracekit-collection-") as scratch:
        tree = write_tree(Path(scratch) / "src", readme)
        proc = subprocess.run([ansible_galaxy(), "collection", "build", "--force", "--output-path", str(output),
                               str(tree)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    if proc.returncode != 0:
        raise TracekitError("ansible-galaxy collection build failed: %s" % proc.stdout.strip()[-800:])
    artifact = output / ("%s-%s-%s.tar.gz" % (NAMESPACE, NAME, __version__))
    if not artifact.is_file():
        raise TracekitError("ansible-galaxy collection build wrote no %s: %s" % (artifact.name, proc.stdout.strip()))
    return artifact


def install(artifact, collections_path):
    """ansible-galaxy collection install of a built artifact (no network: it
    has no dependencies).  Returns the installed collection's directory."""
    path = Path(collections_path).resolve()
    proc = subprocess.run([ansible_galaxy(), "collection", "install", "--force", "-p", str(path), str(artifact)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    if proc.returncode != 0:
        raise TracekitError("ansible-galaxy collection install failed: %s" % proc.stdout.strip()[-800:])
    return path / "ansible_collections" / NAMESPACE / NAME

