"""Run commands in a private mount namespace whose writes to chosen
directories land in scratch overlays: real Ansible runs change /etc/fstab,
apt sources or apt lists there, and all of it vanishes with the namespace.

Only for configuration: dpkg must never install packages under such an
overlay (the package database would then list files that vanish)."""

import shlex
import subprocess
from pathlib import Path

SEPARATOR = "----tracekit-test----"


def in_private_mounts(scratch, commands, overlays=("/etc",), timeout=900):
    """Run shell ``commands`` (a list) one after another in one private mount
    namespace with an overlay on each of ``overlays``; returns [(rc, output)]
    per command.  A changed file is found under ``upper(scratch, dir)``."""
    scratch = Path(scratch)
    script = "set -u\n"
    for directory in overlays:
        upper, work = upper_dir(scratch, directory), scratch / ("work" + directory.replace("/", "-"))
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        script += "mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s || exit 97\n" % (
            shlex.quote(directory), shlex.quote(str(upper)), shlex.quote(str(work)), shlex.quote(directory))
    script += "".join("%s; echo \"rc=$?\"; echo %s\n" % (c, SEPARATOR) for c in commands)
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    results = []
    for part in proc.stdout.split(SEPARATOR + "\n")[:-1]:
        body, _, rc = part.rstrip("\n").rpartition("\n")
        results.append((int(rc.split("=")[1]), body))
    return results


def upper_dir(scratch, directory):
    return Path(scratch) / ("upper" + directory.replace("/", "-"))


def seen(scratch, path, directory="/etc"):
    """A file as the namespace left it (the overlay's copy if it changed it)."""
    changed = upper_dir(scratch, directory) / Path(path).relative_to(directory)
    return changed if changed.exists() else Path(path)
