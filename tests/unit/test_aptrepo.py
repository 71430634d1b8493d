"""tests/lib/aptrepo.py: the loopback repository it builds is one that a real
apt (in a sandbox, never the host's apt state) accepts, verifies and downloads
from, and it fails the way an unreachable or wrongly keyed repository must."""

import hashlib
import subprocess

import pytest

from tests.lib.aptrepo import (PackageSpec, SigningKey, build_repo, dead_port, deb822_source,
                               one_line_source, sandboxed_apt, serve)

# Ubuntu-style pockets at one URL (a newer version in -updates) and a Debian
# debug-archive style suite, as the ddebs role configures them.
NOBLE = [PackageSpec("libhello1-dbgsym", "1.0-1"), PackageSpec("hello-dbgsym", "1.0-1")]
UPDATES = [PackageSpec("libhello1-dbgsym", "1.0-2"),
           PackageSpec("hello-dbgsym", "1.0-2", depends="libhello1-dbgsym (= 1.0-2)")]
DEBUG = [PackageSpec("hello-dbgsym", "2:1.1-1")]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    with SigningKey.generate(base / "repo") as key, SigningKey.generate(base / "other") as other:
        yield key, other


@pytest.fixture(scope="module")
def repo(tmp_path_factory, keys):
    root = tmp_path_factory.mktemp("repo")
    build_repo(root, keys[0], "noble", packages=NOBLE, codename="noble")
    build_repo(root, keys[0], "noble-updates", packages=UPDATES, codename="noble")
    build_repo(root, keys[0], "bookworm-debug", packages=DEBUG)
    with serve(root) as server:
        yield root, server


@pytest.fixture
def apt(tmp_path):
    return sandboxed_apt(tmp_path / "apt")


def output(result):
    return result.stdout + result.stderr


def test_key_is_a_fresh_signing_key_outside_root_gnupg(keys):
    key, other = keys
    assert len(key.fingerprint) == 40 and key.fingerprint == key.fingerprint.upper()
    assert key.fingerprint != other.fingerprint
    assert key.armored_public.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert key.public_path.suffix == ".asc" and key.public_path.read_text() == key.armored_public
    assert "/.gnupg" not in str(key.homedir)


def test_release_lists_every_index_with_its_size_and_digests(repo):
    root, _ = repo
    dist = root / "dists" / "noble-updates"
    release = (dist / "Release").read_text()
    assert "Suite: noble-updates\nCodename: noble\n" in release
    assert "Architectures: amd64\nComponents: main\n" in release
    md5, sha256 = release.split("MD5Sum:\n")[1].split("SHA256:\n")
    for section, algo in ((md5, hashlib.md5), (sha256, hashlib.sha256)):
        entries = [line.split() for line in section.splitlines()]
        assert {name for *_, name in entries} == {"main/binary-amd64/Packages", "main/binary-amd64/Packages.gz"}
        for digest, size, name in entries:
            data = (dist / name).read_bytes()
            assert (algo(data).hexdigest(), int(size)) == (digest, len(data))
    assert (dist / "InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")


@pytest.mark.parametrize("style", ["deb822", "one-line"])
def test_apt_accepts_the_repo_with_an_armored_signed_by_key(repo, keys, apt, style):
    _, server = repo
    key = keys[0]
    if style == "deb822":
        apt.add_source("test.sources", deb822_source(server.url, ["noble", "noble-updates"], key.public_path))
    else:
        apt.add_source("test.list", one_line_source(server.url, "noble", key.public_path)
                       + one_line_source(server.url, "noble-updates", key.public_path))
    del server.requests[:]
    update = apt.run("update", "--error-on=any")
    assert update.returncode == 0, output(update)
    assert "W:" not in output(update) and "E:" not in output(update)
    assert {"/dists/noble/InRelease", "/dists/noble-updates/InRelease"} <= set(server.requests)

    policy = apt.run("policy", "hello-dbgsym", tool="apt-cache", check=True).stdout
    assert "Candidate: 1.0-2" in policy
    assert f"{server.url.rstrip('/')} noble-updates/main amd64 Packages" in policy
    assert f"{server.url.rstrip('/')} noble/main amd64 Packages" in policy


def test_debian_debug_style_suite(repo, keys, apt):
    _, server = repo
    apt.add_source("debug.sources", deb822_source(server.url, "bookworm-debug", keys[0].public_path))
    assert apt.run("update", "--error-on=any").returncode == 0
    assert "Candidate: 2:1.1-1" in apt.run("policy", "hello-dbgsym", tool="apt-cache").stdout


def test_detached_release_gpg_is_valid_too(tmp_path, keys, apt):
    # Without InRelease apt falls back to Release + Release.gpg.
    root = tmp_path / "repo"
    build_repo(root, keys[0], "noble", packages=NOBLE[:1])
    (root / "dists" / "noble" / "InRelease").unlink()
    with serve(root) as server:
        apt.add_source("test.list", one_line_source(server.url, "noble", keys[0].public_path))
        update = apt.run("update", "--error-on=any")
        assert update.returncode == 0, output(update)
        assert "/dists/noble/Release.gpg" in server.requests


@pytest.mark.parametrize("style", ["deb822", "one-line"])
def test_another_key_is_refused(repo, keys, apt, style):
    _, server = repo
    key, other = keys
    source = (deb822_source(server.url, "noble", other.public_path) if style == "deb822"
              else one_line_source(server.url, "noble", other.public_path))
    apt.add_source("test.sources" if style == "deb822" else "test.list", source)
    update = apt.run("update", "--error-on=any")
    assert update.returncode != 0
    assert f"NO_PUBKEY {key.fingerprint[-16:]}" in output(update)
    # Nothing from the refused repository reaches apt's lists.
    assert not list((apt.root / "state" / "lists").glob("*Packages*"))
    assert "Candidate" not in apt.run("policy", "hello-dbgsym", tool="apt-cache").stdout


def test_unreachable_repo_fails_only_with_error_on_any(keys, apt):
    with dead_port() as port:
        apt.add_source("dead.sources", deb822_source(f"http://127.0.0.1:{port}/", "noble", keys[0].public_path))
        # Retries=0: apt 2.6 retries 3 times with 1+2+4 s back-off (7 s per update).
        strict = apt.run("update", "--error-on=any", "-oAcquire::Retries=0")
        lenient = apt.run("update", "-oAcquire::Retries=0")
    assert strict.returncode == 100 and "Connection refused" in output(strict)
    # apt-get's default: a transient fetch failure is only a warning, exit 0.
    assert lenient.returncode == 0 and "W: Failed to fetch" in output(lenient)


def test_packages_download_from_the_repo(repo, keys, apt, tmp_path):
    _, server = repo
    apt.add_source("test.sources", deb822_source(server.url, ["noble", "noble-updates"], keys[0].public_path))
    apt.run("update", "--error-on=any", check=True)

    # apt-get download: one file into the working directory, dependencies ignored.
    (tmp_path / "dl").mkdir()
    download = apt.run("download", "hello-dbgsym", cwd=tmp_path / "dl")
    assert download.returncode == 0, output(download)
    [deb] = (tmp_path / "dl").glob("*.deb")
    assert deb.name == "hello-dbgsym_1.0-2_amd64.deb"
    fields = subprocess.run(["dpkg-deb", "--field", deb, "Package", "Version"],
                            capture_output=True, text=True, check=True).stdout
    assert fields == "Package: hello-dbgsym\nVersion: 1.0-2\n"
    contents = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True, check=True).stdout
    assert "./usr/share/doc/hello-dbgsym/README" in contents

    # install --download-only resolves the dependency from the same repository.
    install = apt.run("install", "--download-only", "-y", "hello-dbgsym")
    assert install.returncode == 0, output(install)
    archives = sorted(p.name for p in (apt.root / "cache" / "archives").glob("*.deb"))
    assert archives == ["hello-dbgsym_1.0-2_amd64.deb", "libhello1-dbgsym_1.0-2_amd64.deb"]
    assert "/pool/main/l/libhello1-dbgsym/libhello1-dbgsym_1.0-2_amd64.deb" in server.requests
