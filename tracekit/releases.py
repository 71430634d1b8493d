"""The releases tracekit sets up, as the platform role lists them.

provision/roles/platform/vars/main.json is the one list: the role refuses
any other release before a change, and doctor (here) knows which remedies
`tracekit setup` can really apply and what a release does not package.
JSON rather than YAML so that reading it costs doctor no YAML parser.
Standard library only: doctor runs on remote hosts too (tracekit.remote).
"""

from __future__ import annotations

import functools
import json
import os
import pkgutil

# Inside the package (an installed wheel, and the agent's zip application,
# which doctor also runs in), else beside it (a checkout).
DATA = "provision/roles/platform/vars/main.json"

# os-release ID -> Ansible's ansible_distribution.
DISTRIBUTIONS = {"ubuntu": "Ubuntu", "debian": "Debian"}


@functools.lru_cache(maxsize=1)
def releases():
    """{"Ubuntu": {"noble": {"version": "24.04", "unpackaged": [...]}, ...}, ...}"""
    try:
        data = pkgutil.get_data("tracekit", DATA)
    except OSError:
        with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), DATA), "rb") as f:
            data = f.read()
    return json.loads(data.decode())["_tracekit_platform_releases"]


def supported_text():
    """'Ubuntu 22.04, 24.04, 26.04; Debian 12, 13'"""
    return "; ".join("%s %s" % (name, ", ".join(r["version"] for r in by_codename.values()))
                     for name, by_codename in releases().items())


def _release(distro):
    """(distribution, entry) of a supported release; (distribution, None)
    for another release; (None, None) when the facts cannot tell."""
    distro = distro or {}
    name = DISTRIBUTIONS.get(distro.get("id"))
    if not distro.get("id"):
        return None, None
    if name is None:
        return distro["id"], None
    by_codename = releases()[name]
    entry = by_codename.get(distro.get("codename"))
    if entry is None and not distro.get("codename"):
        entry = next((r for r in by_codename.values() if r["version"] == distro.get("version_id")), None)
    return name, entry


def unsupported(distro):
    """Why `tracekit setup` refuses this host ('Ubuntu 18.04 is not
    supported by tracekit setup (supported: ...)'), or None (supported, or
    the distribution is not known)."""
    name, entry = _release(distro)
    if name is None or entry is not None:
        return None
    shown = (distro or {}).get("name") or " ".join(
        filter(None, [DISTRIBUTIONS.get(distro.get("id"), distro.get("id")), distro.get("version_id")]))
    return "%s is not supported by tracekit setup (supported: %s)" % (shown, supported_text())


def not_packaged_by(distro, package):
    """'Debian 13' when that release does not package ``package`` at all, else None."""
    name, entry = _release(distro)
    if entry is not None and package in entry["unpackaged"]:
        return "%s %s" % (name, entry["version"])
    return None
