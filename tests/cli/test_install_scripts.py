"""install.sh and scripts/test.sh, run for real with stand-ins for what
cannot run here: the real `tracekit setup` changes this machine, the real
pip and apt need the network and minutes, and apt's sources and os-release
are this machine's (tests must not touch them). The stand-ins are small shell
scripts on PATH (apt-get, apt-cache, dpkg-query, id) or named by $PYTHON (a
"python" that answers the few calls the scripts make and records each one);
the scripts' own logic (lock choice, heartbeat, universe, closing line, which
packages) is what runs. The dependency locks are checked as files."""

import os
import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10 (jammy): pytest's own dependency
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
# The Python each supported release ships: jammy, bookworm, noble, trixie, resolute.
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# -- the locks ------------------------------------------------------------------------------------------
def parse_lock(path):
    """{name: (version, [hashes])} of a pip requirements file with hashes;
    fails on any line that is not a pin of one version."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)", line)
        assert m, "%s: not a hashed pin: %r" % (path.name, line)
        name = canonicalize_name(m.group(1))
        assert name not in pins, "%s pins %s twice" % (path.name, name)
        pins[name] = (Version(m.group(2)), re.findall(r"sha256:([0-9a-f]{64})", m.group(3)))
    return pins


def required(kind):
    reqs = PYPROJECT["project"]["dependencies"] + PYPROJECT["build-system"]["requires"]
    if kind == "test":
        reqs = reqs + PYPROJECT["project"]["optional-dependencies"]["test"] + ["editables"]
    return [Requirement(r) for r in reqs]


@pytest.mark.parametrize("kind", ["runtime", "test"])
@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_lock_pins_every_dependency_with_hashes(kind, python):
    pins = parse_lock(REPO / "locks" / ("%s-py%s.txt" % (kind, python)))
    for req in required(kind):
        name = canonicalize_name(req.name)
        assert name in pins, "locks/%s-py%s.txt does not pin %s" % (kind, python, req.name)
        version, hashes = pins[name]
        assert req.specifier.contains(version, prereleases=True), "%s==%s breaks pyproject's %s" % (
            name, version, req)
        assert hashes, "%s has no hash" % name
    assert all(hashes for _, hashes in pins.values())
    # pyproject's comment: typer 0.29 costs doctor its 0.2 s budget.
    assert pins["typer"][0] < Version("0.29")


def test_every_lock_is_for_a_supported_python():
    found = sorted(p.name for p in (REPO / "locks").glob("*.txt"))
    assert found == sorted("%s-py%s.txt" % (k, v) for k in ("runtime", "test") for v in SUPPORTED_PYTHONS)


def test_runtime_lock_is_a_subset_of_the_test_lock_where_it_can_be():
    # Same resolver, same preferences: a runtime pin differs from the test
    # lock's only where a test tool forces it (molecule on 3.10 wants ansible-core 2.16).
    for python in SUPPORTED_PYTHONS:
        runtime = parse_lock(REPO / "locks" / ("runtime-py%s.txt" % python))
        test = parse_lock(REPO / "locks" / ("test-py%s.txt" % python))
        assert set(runtime) <= set(test)
        differ = {n for n in runtime if runtime[n][0] != test[n][0]}
        assert differ <= {"ansible-core", "resolvelib"}, (python, differ)


# -- stand-ins ------------------------------------------------------------------------------------------
FAKE_PYTHON = r"""#!/bin/sh
# Stands in for python3 and the venv's python: records each call.
echo "python $*" >>"$FAKE_LOG"
case "$1 $2" in
    "-c import sys"*) echo "$FAKE_PY_VERSION" ;;
    "-c import ensurepip"*) [ -e "$FAKE_DIR/has-venv" ] ;;
    "-m venv")
        mkdir -p "$3/bin"
        cp "$0" "$3/bin/python"
        cp "$FAKE_DIR/tracekit" "$3/bin/tracekit" ;;
    "-m pip")
        # a slow "download" when asked, printing what pip prints
        case "$*" in *" -r "*)
            echo "Collecting typer==0.28.0"
            echo "Downloading typer-0.28.0-py3-none-any.whl"
            [ -z "${FAKE_PIP_KILLS_PARENT:-}" ] || kill -TERM "$PPID"
            sleep "${FAKE_PIP_SECONDS:-0}"
            exit "${FAKE_PIP_RC:-0}" ;;
        esac ;;
    "-m pytest") exit "${FAKE_PYTEST_RC:-0}" ;;
    *) echo "fake python: unexpected $*" >&2; exit 99 ;;
esac
"""

FAKE_TRACEKIT = r"""#!/bin/sh
echo "tracekit $*" >>"$FAKE_LOG"
case $1 in
    --version) echo "tracekit 0.0.0-fake" ;;
    setup) echo "SETUP RAN"; exit "${FAKE_SETUP_RC:-0}" ;;
    doctor) echo "DOCTOR REPORT"; exit "${FAKE_DOCTOR_RC:-0}" ;;
esac
"""

# apt: packages named in $FAKE_APT_CANDIDATES can be installed; nothing is
# installed yet; every apt-get call is recorded; install fails on a package
# without a candidate, update when FAKE_APT_UPDATE_FAILS is set.
FAKE_TOOLS = {
    "id": 'echo "${FAKE_UID:-0}"\n',
    "dpkg-query": "exit 1\n",
    "apt-cache": textwrap.dedent("""\
        [ "$1" = policy ] || exit 1
        for c in $(cat "$FAKE_DIR/candidates"); do
            if [ "$c" = "$2" ]; then printf '%s:\\n  Installed: (none)\\n  Candidate: 1.0\\n' "$2"; exit 0; fi
        done
        printf '%s:\\n  Installed: (none)\\n  Candidate: (none)\\n' "$2"
        """),
    "apt-get": textwrap.dedent("""\
        echo "apt-get $*" >>"$FAKE_LOG"
        case $1 in
            update)
                [ -z "${FAKE_APT_UPDATE_FAILS:-}" ] || { echo "E: update failed"; exit 100; }
                # universe now listed: its packages become candidates
                if grep -qs universe "$TRACEKIT_APT_ETC/sources.list.d/ubuntu.sources"; then
                    echo "$FAKE_UNIVERSE" >>"$FAKE_DIR/candidates"
                fi ;;
            install)
                shift
                for p in "$@"; do
                    case $p in -*) continue ;; esac
                    grep -qw -- "$p" "$FAKE_DIR/candidates" || { echo "E: Unable to locate package $p"; exit 100; }
                done ;;
        esac
        """),
}


class Harness:
    def __init__(self, tmp):
        self.tmp = tmp
        self.dir = tmp / "fake"
        self.bin = self.dir / "bin"
        self.bin.mkdir(parents=True)
        self.log = self.dir / "log"
        self.log.write_text("")
        (self.dir / "python").write_text(FAKE_PYTHON)
        (self.dir / "tracekit").write_text(FAKE_TRACEKIT)
        for name, body in FAKE_TOOLS.items():
            (self.bin / name).write_text("#!/bin/sh\n" + body)
        for p in [self.dir / "python", self.dir / "tracekit"] + list(self.bin.iterdir()):
            p.chmod(0o755)
        self.candidates("")
        self.apt_etc = tmp / "etc-apt"
        (self.apt_etc / "sources.list.d").mkdir(parents=True)
        self.os_release = tmp / "os-release"
        self.distro("debian", "12", "bookworm")
        self.env = {
            "PATH": "%s:/usr/bin:/bin" % self.bin, "LC_ALL": "C",
            "FAKE_DIR": str(self.dir), "FAKE_LOG": str(self.log), "FAKE_PY_VERSION": "3.12",
            "PYTHON": str(self.dir / "python"), "TRACEKIT_PREFIX": str(tmp / "prefix"),
            "TRACEKIT_BINDIR": str(tmp / "bin"), "TRACEKIT_TEST_VENV": str(tmp / "test-venv"),
            "TRACEKIT_OS_RELEASE": str(self.os_release), "TRACEKIT_APT_ETC": str(self.apt_etc),
        }

    def candidates(self, names):
        (self.dir / "candidates").write_text(names + "\n")

    def distro(self, distro_id, version_id, codename):
        self.os_release.write_text('ID=%s\nVERSION_ID="%s"\nVERSION_CODENAME=%s\n' % (distro_id, version_id, codename))

    def has_venv_module(self):
        (self.dir / "has-venv").write_text("")

    def run(self, script, *args, timeout=60, **env):
        proc = subprocess.run([str(REPO / script)] + list(args), env=dict(self.env, **env), cwd=str(self.tmp),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=timeout)
        proc.calls = self.log.read_text().splitlines()
        return proc


@pytest.fixture
def fake(tmp_path):
    h = Harness(tmp_path)
    h.has_venv_module()
    return h


def pip_locks(calls):
    return [c.split(" -r ", 1)[1].split()[0] for c in calls if c.startswith("python -m pip") and " -r " in c]


# -- which lock -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_install_sh_installs_from_the_runtime_lock_of_its_python(fake, python):
    proc = fake.run("install.sh", "--version", FAKE_PY_VERSION=python)
    assert proc.returncode == 0, proc.stderr
    assert pip_locks(proc.calls) == [str(REPO / "locks" / ("runtime-py%s.txt" % python))]
    pip = [c for c in proc.calls if c.startswith("python -m pip")]
    assert "--require-hashes" in pip[0] and "--only-binary :all:" in pip[0]
    # the checkout itself: no dependencies, nothing fetched, after the lock
    assert pip[1].endswith("--no-deps --no-build-isolation --no-index --force-reinstall %s" % REPO)
    assert (fake.tmp / "bin" / "tracekit").resolve() == fake.tmp / "prefix/venv/bin/tracekit"


@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_test_sh_installs_from_the_test_lock_of_its_python(fake, python):
    proc = fake.run("scripts/test.sh", "-q", FAKE_PY_VERSION=python, FAKE_UID="1000")
    assert proc.returncode == 0, proc.stderr
    assert pip_locks(proc.calls) == [str(REPO / "locks" / ("test-py%s.txt" % python))]
    assert "python -m pip install --disable-pip-version-check --progress-bar off --no-deps --no-build-isolation " \
           "--no-index -e %s" % REPO in proc.calls
    assert proc.calls[-1] == "python -m pytest -q"


@pytest.mark.parametrize("script", ["install.sh", "scripts/test.sh"])
def test_a_python_without_a_lock_is_one_line_and_nothing_installed(fake, script):
    proc = fake.run(script, FAKE_PY_VERSION="3.9")
    assert proc.returncode == 1
    kind = "runtime" if script == "install.sh" else "test"
    assert proc.stderr.splitlines() == [
        "%s: error: no dependency lock for Python 3.9 (locks/%s-py3.9.txt; there are locks for: %s); "
        "scripts/lock.sh 3.9 makes one" % (Path(script).name, kind, " ".join(SUPPORTED_PYTHONS))]
    assert not any(c.startswith(("python -m", "apt-get")) for c in proc.calls)


# -- install.sh's ending ----------------------------------------------------------------------------------
def test_failed_setup_still_shows_doctor_and_a_closing_line(fake):
    proc = fake.run("install.sh", FAKE_SETUP_RC="1", FAKE_DOCTOR_RC="1")
    assert proc.returncode == 1
    assert [c for c in proc.calls if c.startswith("tracekit")] == ["tracekit --version", "tracekit setup",
                                                                   "tracekit doctor"]
    assert proc.stdout.index("SETUP RAN") < proc.stdout.index("DOCTOR REPORT")
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("install.sh: tracekit is installed, but `tracekit setup` (or the verify it ends with) "
                           "failed with exit 1;") and last.endswith("run `sudo tracekit setup` again.")


def test_setup_exit_code_is_install_sh_exit_code(fake):
    assert fake.run("install.sh", FAKE_SETUP_RC="3").returncode == 3


@pytest.mark.parametrize("doctor_rc, closing", [
    ("0", "install.sh: done: tracekit is installed and this machine is set up;"),
    ("1", "install.sh: done: tracekit is installed and set up; doctor (above) lists what this host still lacks"),
])
def test_successful_install_closes_with_what_happened(fake, doctor_rc, closing):
    proc = fake.run("install.sh", FAKE_DOCTOR_RC=doctor_rc)
    assert proc.returncode == 0, proc.stderr
    assert "DOCTOR REPORT" in proc.stdout
    assert proc.stderr.splitlines()[-1].startswith(closing)


def test_install_sh_with_args_runs_them_instead_of_setup(fake):
    proc = fake.run("install.sh", "doctor", "--json")
    assert proc.returncode == 0
    assert [c for c in proc.calls if c.startswith("tracekit")] == ["tracekit --version", "tracekit doctor --json"]


# -- heartbeat ------------------------------------------------------------------------------------------
def test_long_pip_step_says_what_it_does_while_it_runs(fake):
    proc = fake.run("install.sh", "--version", FAKE_PIP_SECONDS="1.5", TRACEKIT_HEARTBEAT_INTERVAL="0.3")
    assert proc.returncode == 0, proc.stderr
    beats = [ln for ln in proc.stderr.splitlines() if "still running after" in ln]
    assert len(beats) >= 3, proc.stderr
    assert all(ln.startswith("install.sh: installing tracekit's dependencies from locks/runtime-py3.12.txt "
                             "(pip: downloading and installing): still running after ") for ln in beats)
    assert beats[-1].endswith("(last: Downloading typer-0.28.0-py3-none-any.whl)")


def test_heartbeat_stops_with_its_step(fake):
    # A heartbeat (or its sleep) left running would hold stderr open for its
    # 30 s interval: the run would not end within the timeout.
    t0 = time.monotonic()
    proc = fake.run("install.sh", "--version", FAKE_PIP_SECONDS="0.5", TRACEKIT_HEARTBEAT_INTERVAL="30", timeout=20)
    assert proc.returncode == 0 and time.monotonic() - t0 < 15
    assert "still running" not in proc.stderr


def test_heartbeat_never_outlives_a_killed_script(fake):
    # install.sh gets SIGTERM mid-step: its traps stop the heartbeat and its sleep.
    t0 = time.monotonic()
    proc = fake.run("install.sh", "--version", FAKE_PIP_KILLS_PARENT="1", FAKE_PIP_SECONDS="0.2",
                    TRACEKIT_HEARTBEAT_INTERVAL="30", timeout=20)
    assert proc.returncode == 143
    assert time.monotonic() - t0 < 15


def test_heartbeat_interval_defaults_to_10_seconds():
    text = (REPO / "scripts/lib.sh").read_text()
    assert 'sleep "${TRACEKIT_HEARTBEAT_INTERVAL:-10}"' in text


# -- python3-venv and Ubuntu's universe ------------------------------------------------------------------
NOBLE_MAIN_ONLY = textwrap.dedent("""\
    Types: deb
    URIs: http://archive.example/ubuntu/
    Suites: noble noble-updates noble-backports
    Components: main
    Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

    Types: deb
    URIs: http://archive.example/ubuntu/
    Suites: noble-security
    Components: main restricted
    Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

    # a third-party repository stays as it is
    Types: deb
    URIs: https://vendor.example/apt/
    Suites: stable
    Components: main
    """)


@pytest.fixture
def minimal_noble(tmp_path):
    h = Harness(tmp_path)  # no venv module
    h.distro("ubuntu", "24.04", "noble")
    (h.apt_etc / "sources.list.d/ubuntu.sources").write_text(NOBLE_MAIN_ONLY)
    h.env["FAKE_UNIVERSE"] = "python3-venv python3.12-venv"
    return h


def test_install_sh_enables_universe_for_python3_venv(minimal_noble):
    h = minimal_noble
    proc = h.run("install.sh", "--version")
    assert proc.returncode == 0, proc.stderr
    sources = (h.apt_etc / "sources.list.d/ubuntu.sources").read_text()
    assert sources == NOBLE_MAIN_ONLY.replace("Components: main\nSigned", "Components: main universe\nSigned") \
        .replace("Components: main restricted\n", "Components: main restricted universe\n")
    assert sources.count("universe") == 2  # not the vendor's stanza
    assert (h.apt_etc / "sources.list.d/ubuntu.sources.tracekit.bak").read_text() == NOBLE_MAIN_ONLY
    assert [c for c in proc.calls if c.startswith("apt-get")] == [
        "apt-get install -y -q python3-venv python3.12-venv", "apt-get update -q", "apt-get update -q",
        "apt-get install -y -q python3-venv python3.12-venv"]
    assert "install.sh: enabled Ubuntu's universe component in %s/sources.list.d/ubuntu.sources" % h.apt_etc \
        in proc.stderr


def test_universe_is_put_back_when_apt_update_fails_with_it(minimal_noble):
    h = minimal_noble
    # The first update (before universe) must pass: fail only the second.
    apt_get = h.bin / "apt-get"
    apt_get.write_text(apt_get.read_text().replace(
        '[ -z "${FAKE_APT_UPDATE_FAILS:-}" ]',
        '! grep -qs universe "$TRACEKIT_APT_ETC/sources.list.d/ubuntu.sources"'))
    proc = h.run("install.sh", "--version")
    assert proc.returncode == 1
    assert (h.apt_etc / "sources.list.d/ubuntu.sources").read_text() == NOBLE_MAIN_ONLY
    assert not (h.apt_etc / "sources.list.d/ubuntu.sources.tracekit.bak").exists()
    assert "is back as it was" in proc.stderr
    assert proc.stderr.splitlines()[-1] == ("install.sh: error: no apt source offers python3-venv; add the one that "
                                           "has it (on Ubuntu: universe) and run sudo ./install.sh again")


def test_debian_without_python3_venv_names_it(tmp_path):
    h = Harness(tmp_path)
    proc = h.run("install.sh", "--version")
    assert proc.returncode == 1
    assert not list(h.apt_etc.rglob("*.tracekit.*"))
    assert proc.stderr.splitlines()[-1].startswith("install.sh: error: no apt source offers python3-venv;")


def lib(tmp_path, script, **env):
    """Run a piece of shell with scripts/lib.sh sourced."""
    return subprocess.run(["sh", "-c", 'me=t; . "%s"; %s' % (REPO / "scripts/lib.sh", script)],
                          env=dict(os.environ, **env), cwd=str(tmp_path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=30)


def test_legacy_sources_list_gets_universe_on_the_release_lines_only(tmp_path):
    original = textwrap.dedent("""\
        deb http://archive.example/ubuntu jammy main
        deb [arch=amd64 signed-by=/k.gpg] http://archive.example/ubuntu jammy-updates main restricted # updates
        # deb http://archive.example/ubuntu jammy-backports main
        deb http://archive.example/ubuntu jammy-security main universe
        deb http://ppa.example/ubuntu focal main
        """)
    src = tmp_path / "sources.list"
    src.write_text(original)
    out = lib(tmp_path, 'add_universe_list jammy <sources.list')
    assert out.returncode == 0, out.stderr
    assert out.stdout == textwrap.dedent("""\
        deb http://archive.example/ubuntu jammy main universe
        deb [arch=amd64 signed-by=/k.gpg] http://archive.example/ubuntu jammy-updates main restricted universe # updates
        # deb http://archive.example/ubuntu jammy-backports main
        deb http://archive.example/ubuntu jammy-security main universe
        deb http://ppa.example/ubuntu focal main
        """)


def test_enable_universe_does_nothing_when_it_is_there(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    text = NOBLE_MAIN_ONLY.replace("Components: main\nSigned", "Components: main universe\nSigned") \
        .replace("main restricted\n", "main restricted universe\n")
    (tmp_path / "sources.list.d/ubuntu.sources").write_text(text)
    out = lib(tmp_path, 'enable_universe "$PWD" noble log')
    assert out.returncode == 1
    assert (tmp_path / "sources.list.d/ubuntu.sources").read_text() == text
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sources.list.d", "ubuntu.sources"]


# -- scripts/test.sh's packages ------------------------------------------------------------------------------
COMMON = ("gcc libc6-dev python3-venv python3.12-venv util-linux mount debootstrap debian-archive-keyring gpg gpg-agent "
          "openssh-client qemu-system-x86 qemu-utils")


def installed_by(proc):
    (install,) = [c for c in proc.calls if c.startswith("apt-get install")]
    return set(install.split()[5:])


def test_test_sh_on_debian_installs_linux_perf_and_gpg_agent(fake):
    fake.candidates(COMMON + " vagrant linux-perf linux-tools-common linux-tools-generic")
    proc = fake.run("scripts/test.sh")
    assert proc.returncode == 0, proc.stderr
    assert installed_by(proc) == set(COMMON.split()) | {"vagrant", "linux-perf"}
    assert "apt-get install -y -q --no-install-recommends" in [c for c in proc.calls if "install" in c][0]


def test_test_sh_on_ubuntu_2404_installs_linux_tools_and_names_what_it_cannot_have(fake):
    fake.distro("ubuntu", "24.04", "noble")
    fake.candidates(COMMON + " linux-tools-common linux-tools-generic")  # no vagrant, no linux-perf
    proc = fake.run("scripts/test.sh")
    assert proc.returncode == 0, proc.stderr
    assert installed_by(proc) == set(COMMON.split()) | {"linux-tools-common", "linux-tools-generic"}
    assert [ln for ln in proc.stderr.splitlines() if "cannot be installed" in ln] == [
        "test.sh: vagrant cannot be installed on ubuntu 24.04 (no apt source offers it): "
        "tests/cli/test_lab_recipes.py and the fleet tier's Vagrantfile test skip"]
    assert "linux-perf" not in proc.stderr


def test_test_sh_on_ubuntu_2604_adds_linux_perf(fake):
    fake.distro("ubuntu", "26.04", "resolute")
    fake.candidates(COMMON + " vagrant linux-perf linux-tools-common linux-tools-generic")
    proc = fake.run("scripts/test.sh")
    assert proc.returncode == 0, proc.stderr
    assert installed_by(proc) == set(COMMON.split()) | {"vagrant", "linux-perf", "linux-tools-common",
                                                        "linux-tools-generic"}


def test_test_sh_as_a_user_installs_no_packages(fake):
    proc = fake.run("scripts/test.sh", FAKE_UID="1000")
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in proc.calls if c.startswith("apt-get")]


def test_test_sh_passes_pytest_exit_code_and_names_an_empty_run(fake):
    proc = fake.run("scripts/test.sh", FAKE_UID="1000", FAKE_PYTEST_RC="5")
    assert proc.returncode == 5
    assert proc.stderr.splitlines()[-1] == "test.sh: pytest collected no tests"
