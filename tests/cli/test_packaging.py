"""A non-editable install in a fresh virtual environment works and carries
the Ansible roles (provision/) inside the package. Installed as install.sh
does: the dependencies from the lock for that Python, then the wheel alone."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# The venv's own site-packages only: PYTHONPATH (a checkout put first on the
# path to test it) would hand the venv the checkout's tracekit.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run(argv, **kwargs):
    kwargs.setdefault("env", CLEAN_ENV)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pkg")
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    # The build backend of the test venv (scripts/test.sh installs it from the
    # lock) when it has one; else pip fetches it into an isolated build env.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    wheel = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp / "dist"), str(REPO)]
                + isolation)
    assert wheel.returncode == 0, wheel.stdout
    (whl,) = (tmp / "dist").glob("tracekit-*.whl")
    venv = tmp / "venv"
    made = run([python, "-m", "venv", str(venv)])
    assert made.returncode == 0, made.stdout
    version = run([str(venv / "bin/python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    lock = REPO / "locks" / ("runtime-py%s.txt" % version.stdout.strip())
    assert lock.is_file(), "no lock for Python %s" % version.stdout
    install = run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--require-hashes", "--only-binary", ":all:", "-r", str(lock)])
    assert install.returncode == 0, install.stdout
    install = run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--no-deps", "--no-index", str(whl)])
    assert install.returncode == 0, install.stdout
    check = run([str(venv / "bin/python"), "-m", "pip", "check"])
    assert check.returncode == 0, check.stdout  # the lock has every dependency of the wheel
    return venv


def test_roles_ship_inside_the_package(installed):
    out = run([str(installed / "bin/python"), "-c",
               "from tracekit.paths import provision_dir; print(provision_dir())"], cwd="/")
    assert out.returncode == 0, out.stdout
    shipped = Path(out.stdout.strip())
    assert installed in shipped.parents, "provision must come from the install, not the checkout: %s" % shipped
    expected = sorted(p.relative_to(REPO / "provision") for p in (REPO / "provision").rglob("*") if p.is_file())
    present = sorted(p.relative_to(shipped) for p in shipped.rglob("*") if p.is_file())
    assert expected and present == expected


def test_console_script_runs(installed):
    version = run([str(installed / "bin/tracekit"), "--version"], cwd="/")
    assert version.returncode == 0 and version.stdout.startswith("tracekit ")
    result = subprocess.run([str(installed / "bin/tracekit"), "doctor", "--json"], cwd="/", env=CLEAN_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(result.stdout)["schema"] == "tracekit.doctor/1"
