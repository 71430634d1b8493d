"""The ddebs role against a real signed apt repository on loopback (Ubuntu's
and Debian's debug archives are unreachable from the test machines).

Each run is a real `tracekit setup ddebs` in a private mount namespace with
scratch overlays on /etc and apt's lists: this machine's apt sources, keys
and lists are left exactly as they were."""

import functools
import http.server
import json
import shlex
import sys
import threading
from pathlib import Path

import pytest

from tests.lib.aptrepo import PackageSpec, SigningKey, build_repo, dead_port, serve
from tests.lib.privatens import in_private_mounts, seen, upper_dir

TRACEKIT = [sys.executable, "-m", "tracekit"]
OVERLAYS = ("/etc", "/var/lib/apt/lists")
SOURCE = "/etc/apt/sources.list.d/tracekit-ddebs.sources"
KEYRING = "/etc/apt/keyrings/tracekit-ddebs.asc"
SUITE = "bookworm-debug"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    with SigningKey.generate(tmp_path_factory.mktemp("key")) as key:
        yield key


@pytest.fixture(scope="module")
def repo(tmp_path_factory, signing_key):
    root = tmp_path_factory.mktemp("repo")
    build_repo(root, signing_key, SUITE, packages=[PackageSpec("tracekit-probe-dbg", "1.0-1")])
    with serve(root) as server:
        yield server


def ddebs_cmd(tmp_path, url, key, fingerprints, *extra):
    args = TRACEKIT + ["setup", "ddebs", "--json", "--no-verify",
                       "--var", "tracekit_ddebs_method=archive",
                       "--var", "tracekit_ddebs_url=%s" % url,
                       "--var", "tracekit_ddebs_suites=%s" % json.dumps([SUITE]),
                       "--var", "tracekit_ddebs_key=%s" % json.dumps(key),
                       "--var", "tracekit_ddebs_key_fingerprints=%s" % json.dumps(fingerprints),
                       "--var", "tracekit_ddebs_facts_dir=%s" % (tmp_path / "facts.d")] + list(extra)
    return " ".join(shlex.quote(a) for a in args) + " 2>/dev/null"


def summary(output):
    host = json.loads(output)["hosts"]["localhost"]
    return host["components"]["ddebs"], host["failures"]


def test_check_then_apply_then_idempotent(tmp_path, repo, signing_key):
    sources_before = sorted(p.name for p in Path("/etc/apt/sources.list.d").iterdir())
    cmd = ddebs_cmd(tmp_path, repo.url, signing_key.armored_public, [signing_key.fingerprint])
    (rc_check, check), (rc_absent, _), (rc1, first), (rc2, second), (rc_policy, policy), (rc_update, update) = \
        in_private_mounts(tmp_path, [
            cmd + " --check",
            "test -e %s || test -e %s" % (SOURCE, KEYRING),
            cmd,
            cmd,
            "apt-cache policy tracekit-probe-dbg",
            "apt-get update --error-on=any >/dev/null 2>&1",
        ], overlays=OVERLAYS)
    # --check proves the repository (apt fetched its InRelease) but writes nothing.
    assert rc_check == 0, check
    assert any(path.endswith("/dists/%s/InRelease" % SUITE) for path in repo.requests)
    assert rc_absent == 1, "--check wrote the source or key"

    assert rc1 == 0, first
    counts, failures = summary(first)
    assert failures == [] and counts["changed"] >= 2
    assert rc2 == 0, second
    counts, failures = summary(second)
    assert counts["changed"] == 0 and failures == [], "second run must change nothing: %s" % counts

    # The host's own format (this machine's Debian source is deb822), signed-by the pinned key.
    source = seen(tmp_path, SOURCE).read_text()
    assert "URIs: %s" % repo.url in source and "Suites: %s" % SUITE in source
    assert "Signed-By: %s" % KEYRING in source
    assert seen(tmp_path, KEYRING).read_text() == signing_key.armored_public
    assert rc_policy == 0 and "Candidate: 1.0-1" in policy and repo.url.rstrip("/") + " " + SUITE in policy, policy
    assert rc_update == 0
    fact = json.loads((tmp_path / "facts.d/tracekit_ddebs.fact").read_text())
    assert fact["archive"] == {"url": repo.url, "suites": [SUITE], "components": ["main"]}
    # This machine's own apt configuration is untouched.
    assert sorted(p.name for p in Path("/etc/apt/sources.list.d").iterdir()) == sources_before
    assert not Path(SOURCE).exists()


def test_wrong_fingerprint_changes_nothing(tmp_path, repo, signing_key):
    wrong = "0" * 40
    (rc, out), (rc_absent, _) = in_private_mounts(tmp_path, [
        ddebs_cmd(tmp_path, repo.url, signing_key.armored_public, [wrong]),
        "test -e %s || test -e %s" % (SOURCE, KEYRING),
    ], overlays=OVERLAYS)
    assert rc == 1
    _, failures = summary(out)
    message = failures[0]["message"]
    assert signing_key.fingerprint in message and "do not match the pinned " + wrong in message
    assert rc_absent == 1


def test_unreachable_repository_is_never_written_and_apt_stays_healthy(tmp_path, signing_key):
    with dead_port() as port:
        url = "http://127.0.0.1:%d/" % port
        (rc, out), (rc_absent, _), (rc_update, update) = in_private_mounts(tmp_path, [
            ddebs_cmd(tmp_path, url, signing_key.armored_public, [signing_key.fingerprint]),
            "test -e %s || test -e %s" % (SOURCE, KEYRING),
            "apt-get update --error-on=any 2>&1",
        ], overlays=OVERLAYS)
    assert rc == 1
    _, failures = summary(out)
    message = failures[0]["message"]
    assert "apt-get update failed" in message and "127.0.0.1:%d" % port in message
    assert "Nothing was written" in message
    assert rc_absent == 1
    assert rc_update == 0, update
    assert not list((upper_dir(tmp_path, "/etc") / "apt").rglob("tracekit-ddebs*"))


class ProbeOnlyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves each file once (the role's probe update), then answers 500:
    the host's own update after the source is written fails, which is what
    the role's rollback is for."""

    served = set()

    def do_GET(self):
        if self.path in self.served:
            self.send_error(500, "mirror broke")
            return
        self.served.add(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


def test_source_is_removed_again_when_the_hosts_update_fails(tmp_path, signing_key):
    root = tmp_path / "repo"
    build_repo(root, signing_key, SUITE, packages=[PackageSpec("tracekit-probe-dbg", "1.0-1")])
    handler = functools.partial(ProbeOnlyHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/" % server.server_address[1]
        (rc, out), (rc_absent, _), (rc_update, update) = in_private_mounts(tmp_path, [
            ddebs_cmd(tmp_path, url, signing_key.armored_public, [signing_key.fingerprint]),
            "test -e %s" % SOURCE,
            "apt-get update --error-on=any 2>&1",
        ], overlays=OVERLAYS)
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 1, out
    _, failures = summary(out)
    assert any("the source was removed again" in f["message"] for f in failures), failures
    assert rc_absent == 1
    assert rc_update == 0, update


def test_debuginfod_for_login_shells(tmp_path):
    extra = "http://127.0.0.1:9/"  # never contacted: only configured
    cmd = " ".join(shlex.quote(a) for a in TRACEKIT + [
        "setup", "ddebs", "--json", "--no-verify", "--var", "tracekit_ddebs_method=debuginfod",
        "--var", "tracekit_ddebs_debuginfod_urls=%s" % json.dumps([extra]),
        "--var", "tracekit_ddebs_facts_dir=%s" % (tmp_path / "facts.d")]) + " 2>/dev/null"
    (rc, out), (rc_again, again), (_, urls), (rc_source, _) = in_private_mounts(tmp_path, [
        cmd,
        cmd,
        "env -i HOME=/root PATH=/usr/bin:/bin bash -lc 'echo \"$DEBUGINFOD_URLS\"'",
        "test -e %s" % SOURCE,
    ], overlays=OVERLAYS)
    assert rc == 0, out
    assert rc_again == 0 and summary(again)[0]["changed"] == 0, again
    # The distribution's servers (from its *.urls files) and the extra one.
    distribution = " ".join(Path(p).read_text().strip() for p in sorted(Path("/etc/debuginfod").glob("*.urls")))
    assert urls.split() == (distribution + " " + extra).split()
    assert rc_source == 1, "debuginfod alone adds no apt source"
    fact = json.loads((tmp_path / "facts.d/tracekit_ddebs.fact").read_text())
    assert fact["archive"] is None and fact["debuginfod"] is True


def test_auto_falls_back_to_debuginfod_when_the_archive_is_unreachable(tmp_path, signing_key):
    with dead_port() as port:
        url = "http://127.0.0.1:%d/" % port
        cmd = ddebs_cmd(tmp_path, url, signing_key.armored_public, [signing_key.fingerprint]).replace(
            "tracekit_ddebs_method=archive", "tracekit_ddebs_method=auto")
        (rc, out), (rc_absent, _), (rc_profile, _) = in_private_mounts(tmp_path, [
            cmd,
            "test -e %s || test -e %s" % (SOURCE, KEYRING),
            "test -e /etc/profile.d/tracekit-debuginfod.sh",
        ], overlays=OVERLAYS)
    assert rc == 0, out
    host = json.loads(out)["hosts"]["localhost"]
    (notice,) = [n["message"] for n in host["notices"] if n["component"] == "ddebs"]
    assert notice.startswith("apt source tracekit-ddebs (%s): apt-get update failed: " % url)
    assert notice.endswith("nothing was written, using debuginfod instead")
    assert rc_absent == 1 and rc_profile == 0
    fact = json.loads((tmp_path / "facts.d/tracekit_ddebs.fact").read_text())
    assert fact["archive"] is None and fact["debuginfod"] is True
