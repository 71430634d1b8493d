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


def debuginfod_cmd(tmp_path, *extra):
    return " ".join(shlex.quote(a) for a in TRACEKIT + [
        "setup", "ddebs", "--json", "--no-verify", "--var", "tracekit_ddebs_method=debuginfod",
        "--var", "tracekit_ddebs_facts_dir=%s" % (tmp_path / "facts.d")] + list(extra)) + " 2>/dev/null"


# The pam_env lines of Ubuntu's /etc/pam.d/sshd (openssh-server on 22.04 and
# 26.04, read from debootstrapped rootfs): plain pam_env reads /etc/environment
# (readenv is on by default). Put into this machine's runuser PAM service, in
# the namespace's /etc, they are run by the real pam_env module. sudo and sshd
# are not installed here; Debian's and Ubuntu's /etc/pam.d/sudo run pam_env
# with readenv=1, as this machine's /etc/pam.d/su does (read as it is).
SSHD_PAM_ENV = """auth sufficient pam_rootok.so
session required pam_env.so
session required pam_env.so envfile=/etc/default/locale
"""
ENVIRONMENT_BEFORE = "# the administrator's own\nLANG_TEST=kept\n"


def test_debuginfod_for_login_shells_pam_sessions_and_units(tmp_path):
    extra = "http://127.0.0.1:9/"  # never contacted: only configured
    cmd = debuginfod_cmd(tmp_path, "--var", "tracekit_ddebs_debuginfod_urls=%s" % json.dumps([extra]))
    read = "env -i PATH=/usr/sbin:/usr/bin:/bin %s root -c 'printenv DEBUGINFOD_URLS'"
    (_, _), (rc, out), (rc_again, again), (_, login), (_, _), (rc_sshd, sshd), (rc_su, su), (rc_source, _) = \
        in_private_mounts(tmp_path, [
            "printf %s >> /etc/environment" % shlex.quote(ENVIRONMENT_BEFORE),
            cmd,
            cmd,
            "env -i HOME=/root PATH=/usr/bin:/bin bash -lc 'echo \"$DEBUGINFOD_URLS\"'",
            "printf %s > /etc/pam.d/runuser" % shlex.quote(SSHD_PAM_ENV),
            read % "runuser",
            read % "su",
            "test -e %s" % SOURCE,
        ], overlays=OVERLAYS)
    assert rc == 0, out
    assert rc_again == 0 and summary(again)[0]["changed"] == 0, again
    # The distribution's servers (its *.urls files; none when debconf said no,
    # as on this machine) and the extra one.
    distribution = " ".join(Path(p).read_text().strip() for p in sorted(Path("/etc/debuginfod").glob("*.urls")))
    want = (distribution + " " + extra).split()
    assert login.split() == want
    # Non-login sessions: real pam_env reading the role's /etc/environment.
    assert rc_sshd == 0 and sshd.split() == want, sshd
    assert rc_su == 0 and su.split() == want, su
    environment = seen(tmp_path, "/etc/environment").read_text()
    assert environment.startswith(Path("/etc/environment").read_text() + ENVIRONMENT_BEFORE)
    assert environment.count("DEBUGINFOD_URLS=") == 1 and 'DEBUGINFOD_URLS="%s"' % " ".join(want) in environment
    # Units: the system manager's DefaultEnvironment. systemd is not this
    # machine's init (no daemon-reload here); the kernel lab's VM proves a
    # unit sees it.
    unit = seen(tmp_path, "/etc/systemd/system.conf.d/tracekit-debuginfod.conf").read_text()
    assert [l for l in unit.splitlines() if not l.startswith("#")] == [
        "[Manager]", 'DefaultEnvironment="DEBUGINFOD_URLS=%s"' % " ".join(want)]
    assert rc_source == 1, "debuginfod alone adds no apt source"
    fact = json.loads((tmp_path / "facts.d/tracekit_ddebs.fact").read_text())
    assert fact["archive"] is None and fact["debuginfod"] is True
    assert not Path("/etc/systemd/system.conf.d/tracekit-debuginfod.conf").exists()


def test_check_mode_writes_no_debuginfod_setting(tmp_path):
    (rc, out), (rc_any, _), (_, environment) = in_private_mounts(tmp_path, [
        debuginfod_cmd(tmp_path, "--var", 'tracekit_ddebs_debuginfod_urls=["http://127.0.0.1:9/"]', "--check"),
        "test -e /etc/systemd/system.conf.d/tracekit-debuginfod.conf || test -e /etc/profile.d/tracekit-debuginfod.sh",
        "cat /etc/environment",
    ], overlays=OVERLAYS)
    assert rc == 0, out
    assert rc_any == 1 and "DEBUGINFOD_URLS" not in environment


def test_moving_to_the_archive_removes_the_debuginfod_settings(tmp_path, repo, signing_key):
    archive = ddebs_cmd(tmp_path, repo.url, signing_key.armored_public, [signing_key.fingerprint])
    (rc1, first), (rc2, second), (rc_any, _), (_, environment) = in_private_mounts(tmp_path, [
        debuginfod_cmd(tmp_path, "--var", 'tracekit_ddebs_debuginfod_urls=["http://127.0.0.1:9/"]'),
        archive,
        "test -e /etc/systemd/system.conf.d/tracekit-debuginfod.conf || test -e /etc/profile.d/tracekit-debuginfod.sh"
        " || test -e /etc/debuginfod/tracekit.urls",
        "cat /etc/environment",
    ], overlays=OVERLAYS)
    assert rc1 == 0, first
    assert rc2 == 0, second
    assert rc_any == 1, "a debuginfod file of tracekit's is left"
    assert "DEBUGINFOD_URLS" not in environment and "tracekit" not in environment
    assert environment == Path("/etc/environment").read_text()


def test_an_explicit_url_that_does_not_work_fails_even_with_auto(tmp_path, signing_key):
    """auto falls back only from tracekit's own default: a URL the user gave
    must work, and the run fails saying why."""
    with dead_port() as port:
        url = "http://127.0.0.1:%d/" % port
        cmd = ddebs_cmd(tmp_path, url, signing_key.armored_public, [signing_key.fingerprint]).replace(
            "tracekit_ddebs_method=archive", "tracekit_ddebs_method=auto")
        (rc, out), (rc_absent, _) = in_private_mounts(tmp_path, [
            cmd,
            "test -e %s || test -e %s || test -e /etc/profile.d/tracekit-debuginfod.sh" % (SOURCE, KEYRING),
        ], overlays=OVERLAYS)
    assert rc == 1, out
    _, failures = summary(out)
    (message,) = [f["message"] for f in failures if f["component"] == "ddebs"]
    assert message.startswith("apt source tracekit-ddebs (%s): apt-get update failed: " % url), message
    assert "Nothing was written" in message
    assert rc_absent == 1


def test_auto_falls_back_to_debuginfod_when_the_default_archive_is_unreachable(tmp_path, signing_key):
    """The default URL (here Debian's, beside the host's mirror; on Ubuntu,
    Ubuntu's ddebs archive) is unreachable: auto says so and uses debuginfod.
    The host's mirror is a signed repository on loopback with no debug
    archive beside it."""
    root = tmp_path / "mirror"
    # apt lists (and indextargets shows) a suite's index only when it has packages.
    build_repo(root / "debian", signing_key, "bookworm", packages=[PackageSpec("tracekit-mirror-probe", "1.0-1")])
    with serve(root) as mirror:
        # apt's download user reads the key: one in /etc/apt/keyrings, not in pytest's root-only tmp.
        mirror_key = "/etc/apt/keyrings/tracekit-test-mirror.asc"
        debian_sources = "Types: deb\nURIs: %sdebian/\nSuites: bookworm\nComponents: main\nSigned-By: %s\n" % (
            mirror.url, mirror_key)
        cmd = " ".join(shlex.quote(a) for a in TRACEKIT + [
            "setup", "ddebs", "--json", "--no-verify",
            "--var", "tracekit_ddebs_facts_dir=%s" % (tmp_path / "facts.d")]) + " 2>/dev/null"
        (rc_mirror, mirror_out), (rc, out), (rc_absent, _), (rc_profile, _) = in_private_mounts(tmp_path, [
            # The namespace's apt sees only the loopback mirror.
            "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* && printf %s > /etc/apt/sources.list.d/debian.sources"
            " && mkdir -p /etc/apt/keyrings && cp %s %s && apt-get update -qq --error-on=any"
            % (shlex.quote(debian_sources), shlex.quote(str(signing_key.public_path)), mirror_key),
            cmd,
            "test -e %s || test -e %s" % (SOURCE, KEYRING),
            "test -e /etc/profile.d/tracekit-debuginfod.sh",
        ], overlays=OVERLAYS + ("/var/cache/apt",))
        requests = list(mirror.requests)
    assert rc_mirror == 0, mirror_out
    assert rc == 0, out
    host = json.loads(out)["hosts"]["localhost"]
    (notice,) = [n["message"] for n in host["notices"] if n["component"] == "ddebs"]
    debug_url = mirror.url + "debian-debug/"
    assert notice.startswith("apt source tracekit-ddebs (%s): apt-get update failed: " % debug_url), notice
    assert notice.endswith("nothing was written, using debuginfod instead")
    assert any(path.startswith("/debian-debug/dists/bookworm-debug/") for path in requests), requests
    assert rc_absent == 1 and rc_profile == 0
    fact = json.loads((tmp_path / "facts.d/tracekit_ddebs.fact").read_text())
    assert fact["archive"] is None and fact["debuginfod"] is True


GLOBAL_COPY = "/etc/apt/trusted.gpg.d/tracekit-test-global.asc"


def apt_source_play(tmp_path, url, key):
    """apt_source on its own, as the ddebs role includes it for Ubuntu's
    keyring, whose package may put a copy of the key in trusted.gpg.d."""
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "roles": [{
        "role": "apt_source", "vars": {
            "tracekit_apt_source_name": "tracekit-test-global", "tracekit_apt_source_uris": [url],
            "tracekit_apt_source_suites": [SUITE], "tracekit_apt_source_key": key.armored_public,
            "tracekit_apt_source_fingerprints": [key.fingerprint],
            "tracekit_apt_source_global_keys": [GLOBAL_COPY]}}]}]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    playbook = Path(sys.executable).with_name("ansible-playbook")
    return "ANSIBLE_ROLES_PATH=%s %s -i localhost, -e ansible_python_interpreter=/usr/bin/python3 %s >%s 2>&1" % (
        shlex.quote(str(Path(__file__).resolve().parents[2] / "provision/roles")), shlex.quote(str(playbook)),
        shlex.quote(str(path)), shlex.quote(str(tmp_path / "play.log")))


def test_global_copy_of_the_key_goes_out_with_the_source_going_in(tmp_path, repo, signing_key):
    (_, _), (rc, _), (rc_global, _), (rc_update, update) = in_private_mounts(tmp_path, [
        "cp %s %s" % (shlex.quote(str(signing_key.public_path)), GLOBAL_COPY),
        apt_source_play(tmp_path, repo.url, signing_key),
        "test -e %s" % GLOBAL_COPY,
        "apt-get update --error-on=any 2>&1",
    ], overlays=OVERLAYS)
    assert rc == 0, (tmp_path / "play.log").read_text()[-3000:]
    assert "Signed-By: /etc/apt/keyrings/tracekit-test-global.asc" in seen(
        tmp_path, "/etc/apt/sources.list.d/tracekit-test-global.sources").read_text()
    assert rc_global == 1, "the global copy is still trusted for every source"
    assert rc_update == 0, update
    assert not Path(GLOBAL_COPY).exists()


def test_global_copy_of_the_key_comes_back_when_the_source_is_rolled_back(tmp_path, signing_key):
    root = tmp_path / "repo"
    build_repo(root, signing_key, SUITE, packages=[PackageSpec("tracekit-probe-dbg", "1.0-1")])
    handler = functools.partial(ProbeOnlyHandler, directory=str(root))
    ProbeOnlyHandler.served = set()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/" % server.server_address[1]
        (_, _), (rc, _), (rc_source, _), (_, restored) = in_private_mounts(tmp_path, [
            "cp %s %s" % (shlex.quote(str(signing_key.public_path)), GLOBAL_COPY),
            apt_source_play(tmp_path, url, signing_key),
            "test -e /etc/apt/sources.list.d/tracekit-test-global.sources",
            "cat %s" % GLOBAL_COPY,
        ], overlays=OVERLAYS)
    finally:
        server.shutdown()
        server.server_close()
    log = (tmp_path / "play.log").read_text()
    assert rc != 0, log[-3000:]
    assert "the source was removed again and %s put back" % GLOBAL_COPY in log, log[-3000:]
    assert rc_source == 1
    assert restored == signing_key.armored_public.rstrip("\n")
