#!/usr/bin/env python3
"""Build tracekit's Ansible collection (tracekit.tracing) from this checkout.

    scripts/build-collection.py OUTPUT_DIR [--install COLLECTIONS_PATH]

Writes OUTPUT_DIR/tracekit-tracing-<version>.tar.gz and prints its path; with
--install also installs it with ansible-galaxy into COLLECTIONS_PATH. Needs
Python 3 and ansible-core (ansible-galaxy), no network and no tracekit
install: tracekit's own modules come from this checkout. See
docs/collection.md."""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tracekit import collection  # noqa: E402
from tracekit.errors import TracekitError  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="directory for the collection artifact")
    parser.add_argument("--install", type=Path, metavar="COLLECTIONS_PATH",
                        help="also install it there (ansible-galaxy collection install -p)")
    args = parser.parse_args(argv)
    try:
        artifact = collection.build(args.output, ROOT / "docs" / "collection.md")
        if args.install:
            installed = collection.install(artifact, args.install)
            print("installed %s in %s" % (collection.FQCN, installed), file=sys.stderr)
    except TracekitError as exc:
        print("build-collection: %s" % exc, file=sys.stderr)
        return 1
    print(artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
