"""Kernel build configuration: where to find it and how to read it.

Standard library only: this module also runs on remote targets that have no
tracekit installed (see tracekit/agent/__init__.py).
"""

import gzip
import os
import zlib

# Searched in this order; the first readable one wins.  /proc/config.gz is the
# running kernel's own (CONFIG_IKCONFIG_PROC); the others are what distribution
# packages install next to the kernel image or its modules.
CONFIG_LOCATIONS = (
    "proc/config.gz",
    "boot/config-{release}",
    "lib/modules/{release}/config",
    "lib/modules/{release}/build/.config",
)

# A config written by the kernel's kconfig always starts with this banner.
_BANNER = "# Automatically generated file; DO NOT EDIT."


class KernelConfig:
    """Parsed kernel config.

    ``get`` answers "y", "m", a value, "n" (explicitly unset or absent from a
    complete config) or None (unknown: no config, or a truncated one that may
    have lost the option).
    """

    def __init__(self, options, source=None, complete=False, error=None):
        self.options = options
        self.source = source
        self.complete = complete
        self.error = error

    def get(self, name):
        if not name.startswith("CONFIG_"):
            name = "CONFIG_" + name
        if name in self.options:
            return self.options[name]
        return "n" if self.complete else None

    def enabled(self, name):
        """True, False, or None when the config cannot tell."""
        value = self.get(name)
        if value is None:
            return None
        return value not in ("n", "")


def parse(text):
    """Return ({option: value}, complete) for kernel config text."""
    options = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            name, _, value = line.partition("=")
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            options[name] = value
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            options[line[2:-len(" is not set")]] = "n"
    # A truncated file cannot vouch that an absent option is unset.
    complete = text.lstrip().startswith("#") and _BANNER in text[:400] and text.endswith("\n")
    return options, complete


def load(root="/", release=None):
    """Find and parse the kernel config below ``root`` for kernel ``release``
    (None: only release-independent locations)."""
    errors = []
    for pattern in CONFIG_LOCATIONS:
        if release is None and "{release}" in pattern:
            continue
        path = os.path.join(root, pattern.format(release=release))
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rt", errors="replace") as f:
                    text = f.read()
            else:
                with open(path, errors="replace") as f:
                    text = f.read()
        except FileNotFoundError:
            continue
        except (OSError, EOFError, zlib.error) as exc:
            # Unreadable or corrupt: remember why and try the next location.
            errors.append("%s: %s" % (_display(root, path), _reason(exc)))
            continue
        options, complete = parse(text)
        if not options:
            errors.append("%s: no CONFIG_ lines" % _display(root, path))
            continue
        error = None if complete else "%s looks truncated" % _display(root, path)
        return KernelConfig(options, _display(root, path), complete, error)
    return KernelConfig({}, None, False, "; ".join(errors) or "no kernel config found")


def _display(root, path):
    return "/" + os.path.relpath(path, root)


def _reason(exc):
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
