"""A real, signed apt repository built and served on loopback, and an apt
sandbox to consume it: the debug-symbol archives (Ubuntu ddebs, Debian's debug
archive) are unreachable from the test machines, so tests of tracekit's apt
source handling run against this instead.  Independent of pytest.

    with SigningKey.generate(tmp / "key") as key, serve(tmp / "repo") as srv:
        build_repo(tmp / "repo", key, ["noble", "noble-updates"],
                   packages=[PackageSpec("hello-dbgsym", "1.0")])
        apt = sandboxed_apt(tmp / "apt")
        apt.add_source("t.sources", deb822_source(srv.url, ["noble"], key.public_path))
        apt.run("update", "--error-on=any", check=True)

Only gpg, gpgconf, dpkg-deb and apt are needed (no apt-ftparchive): the index
files are written here.

As a command (for molecule and people building a lab), it builds such a
repository and serves it from a detached process until stopped:

    python -m tests.lib.aptrepo serve --root DIR --state DIR \
        --suite noble=main,restricted,universe,multiverse --suite bookworm-debug=main
    python -m tests.lib.aptrepo stop --state DIR

`serve` prints JSON and leaves in the state directory: url, fingerprint,
signing-key.asc (the public key), pid (and pid.start, the process's start
time, so `stop` never signals a process that merely reused the PID).
"""

import argparse
import contextlib
import email.utils
import functools
import gzip
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SigningKey", "PackageSpec", "build_repo", "serve", "dead_port",
           "sandboxed_apt", "AptSandbox", "deb822_source", "one_line_source"]

# gpg-agent puts its sockets in the homedir when /run/user/<uid> is absent (as on
# the test machines); a unix socket path is limited to 107 bytes and pytest's
# tmp_path can be long, so a long homedir moves to a short private /tmp dir.
_GNUPG_PATH_MAX = 80


def _run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


class SigningKey:
    """An OpenPGP signing key in a private GNUPGHOME (root's ~/.gnupg is never
    used).  ``close()`` stops the gpg-agent that gpg started for it."""

    def __init__(self, homedir: Path, fingerprint: str, public_path: Path, owns_homedir=False):
        self.homedir, self.fingerprint, self.public_path = homedir, fingerprint, public_path
        self.armored_public = public_path.read_text()
        self._owns_homedir = owns_homedir

    @classmethod
    def generate(cls, directory, uid="tracekit test repository <repo@tracekit.invalid>"):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        home, owned = directory / "gnupg", False
        if len(str(home)) > _GNUPG_PATH_MAX:
            home, owned = Path(tempfile.mkdtemp(prefix="tk-gnupg-")), True
        home.mkdir(mode=0o700, exist_ok=True)
        key = None
        try:
            # ed25519: generation takes milliseconds (rsa3072 takes seconds).
            cls._gpg(home, "--passphrase", "", "--pinentry-mode", "loopback",
                     "--quick-gen-key", uid, "ed25519", "sign", "never")
            colons = cls._gpg(home, "--with-colons", "--list-secret-keys").stdout
            fpr = next(line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:"))
            public = directory / "signing-key.asc"
            public.write_text(cls._gpg(home, "--armor", "--export", fpr).stdout)
            public.chmod(0o644)
            key = cls(home, fpr.upper(), public, owned)
            return key
        finally:
            if key is None:
                cls._stop_agent(home, owned)

    @staticmethod
    def _gpg(home, *args, **kw):
        return _run(["gpg", "--batch", "--quiet", "--no-tty", "--homedir", str(home), *args], **kw)

    def sign(self, release: Path):
        """InRelease (clearsigned) and Release.gpg (detached, armored) next to ``release``."""
        common = ("--yes", "--local-user", self.fingerprint, "--digest-algo", "SHA512")
        self._gpg(self.homedir, *common, "--clearsign", "--output", str(release.with_name("InRelease")), str(release))
        self._gpg(self.homedir, *common, "--armor", "--detach-sign",
                  "--output", str(release.with_name("Release.gpg")), str(release))

    @staticmethod
    def _stop_agent(home, owned):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)
        if owned:
            shutil.rmtree(home, ignore_errors=True)

    def close(self):
        self._stop_agent(self.homedir, self._owns_homedir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class PackageSpec:
    name: str
    version: str
    depends: str | None = None
    description: str = "tracekit test package"
    section: str = "debug"


def _control(spec: PackageSpec, arch: str) -> dict:
    fields = {"Package": spec.name, "Version": spec.version, "Architecture": arch,
              "Maintainer": "tracekit tests <repo@tracekit.invalid>", "Installed-Size": "1",
              "Section": spec.section, "Priority": "optional"}
    if spec.depends:
        fields["Depends"] = spec.depends
    fields["Description"] = spec.description
    return fields


def _stanza(fields: dict) -> str:
    return "".join(f"{k}: {v}\n" for k, v in fields.items())


def _build_deb(root: Path, component: str, spec: PackageSpec, arch: str):
    """A real .deb (control + one doc file) in pool/; returns (relative path, control fields)."""
    upstream = spec.version.split(":", 1)[-1]  # file names never carry the epoch
    rel = Path("pool", component, spec.name[0], spec.name, f"{spec.name}_{upstream}_{arch}.deb")
    control = _control(spec, arch)
    with tempfile.TemporaryDirectory(dir=root) as staging:
        staging = Path(staging)
        (staging / "DEBIAN").mkdir(mode=0o755)
        (staging / "DEBIAN" / "control").write_text(_stanza(control))
        doc = staging / "usr" / "share" / "doc" / spec.name
        doc.mkdir(parents=True)
        (doc / "README").write_text(f"{spec.name} {spec.version}: built by tests/lib/aptrepo.py\n")
        for d in [staging, *staging.rglob("*")]:  # mkdtemp's 0700 would end up in the .deb
            d.chmod(0o755 if d.is_dir() else 0o644)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        # gzip: the fastest compressor dpkg-deb offers; root-owner-group: no uid leaks.
        _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(staging), str(root / rel)])
    return rel, control


def _digests(path: Path):
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data)


def _write_release(dist: Path, suite: str, codename: str, key: SigningKey):
    """Release over every index below dists/<suite> (so components added by
    separate build_repo calls all appear), then sign it."""
    files = sorted(p for p in dist.rglob("*") if p.is_file() and p.parent != dist)
    components = sorted({p.relative_to(dist).parts[0] for p in files})
    archs = sorted({p.parent.name.removeprefix("binary-") for p in files if p.parent.name.startswith("binary-")})
    sums = {p: _digests(p) for p in files}
    width = max(len(str(s[2])) for s in sums.values())
    lines = ["Origin: tracekit-test", "Label: tracekit-test", f"Suite: {suite}", f"Codename: {codename}",
             f"Date: {email.utils.formatdate(usegmt=True)}", f"Architectures: {' '.join(archs)}",
             f"Components: {' '.join(components)}", "Description: tracekit test repository"]
    for title, index in (("MD5Sum", 0), ("SHA256", 1)):
        lines.append(f"{title}:")
        lines += [f" {s[index]} {s[2]:>{width}} {p.relative_to(dist)}" for p, s in sums.items()]
    release = dist / "Release"
    release.write_text("\n".join(lines) + "\n")
    key.sign(release)


def build_repo(root, key: SigningKey, suite, component="main", packages=(), arch="amd64", codename=None):
    """Write ``packages`` into pool/ and dists/<suite>/<component>/binary-<arch>/
    for one suite or a list of suites, each with a signed Release/InRelease.
    Call again to add suites or components to the same repository (one URL);
    each call writes the complete package list of its suite(s)/component.
    ``codename`` defaults to the suite name.  Returns the .deb paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    suites = [suite] if isinstance(suite, str) else list(suite)
    built = [_build_deb(root, component, spec, arch) for spec in packages]
    stanzas = []
    for rel, control in built:
        md5, sha256, size = _digests(root / rel)
        stanzas.append(_stanza({**control, "Filename": rel.as_posix(), "Size": size,
                                "MD5sum": md5, "SHA256": sha256}))
    text = "\n".join(stanzas).encode()
    for name in suites:
        dist = root / "dists" / name
        index = dist / component / f"binary-{arch}"
        index.mkdir(parents=True, exist_ok=True)
        (index / "Packages").write_bytes(text)
        # mtime=0: identical content gives identical bytes (and digests).
        (index / "Packages.gz").write_bytes(gzip.compress(text, mtime=0))
        _write_release(dist, name, codename or name, key)
    return [root / rel for rel, _ in built]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory):
        self.requests: list[str] = []                  # request paths, in arrival order
        self.responses: list[tuple[str, int]] = []     # (path, HTTP status)
        handler = functools.partial(_Handler, directory=str(directory))
        super().__init__(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code="-", size="-"):
        # Record instead of printing: the test asserts on what apt fetched.
        self.server.requests.append(self.path)
        self.server.responses.append((self.path, int(getattr(code, "value", code))))

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(root):
    """Serve ``root`` over HTTP on 127.0.0.1 (ephemeral port) from a daemon
    thread; yields an object with ``.url``, ``.requests`` and ``.responses``."""
    server = _Server(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def dead_port():
    """A loopback port that refuses connections: bound (so no one else gets it
    while the test runs) but never listening, so a connect gets RST at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def one_line_source(url, suite, keyring, components="main"):
    return f"deb [signed-by={keyring}] {url} {suite} {components}\n"


def deb822_source(url, suites, keyring, components="main"):
    suites = [suites] if isinstance(suites, str) else suites
    return (f"Types: deb\nURIs: {url}\nSuites: {' '.join(suites)}\n"
            f"Components: {components}\nSigned-By: {keyring}\n")


class AptSandbox:
    """apt-get/apt-cache that see only this sandbox: its own sources, lists,
    cache, dpkg status and trust store, and none of the host's apt.conf.d."""

    def __init__(self, root: Path, arch="amd64"):
        self.root = root = Path(root)
        etc, state, cache = root / "etc", root / "state", root / "cache"
        self.sources_dir = etc / "sources.list.d"
        for d in (self.sources_dir, etc / "apt.conf.d", etc / "preferences.d", etc / "trusted.gpg.d",
                  state / "lists" / "partial", cache / "archives" / "partial", root / "log"):
            d.mkdir(parents=True, exist_ok=True)
        (state / "status").touch()  # an empty dpkg database: nothing installed
        self.options = {
            "Dir::Etc::SourceList": etc / "sources.list", "Dir::Etc::SourceParts": self.sources_dir,
            "Dir::Etc::Main": etc / "apt.conf", "Dir::Etc::Parts": etc / "apt.conf.d",
            "Dir::Etc::Preferences": etc / "preferences", "Dir::Etc::PreferencesParts": etc / "preferences.d",
            "Dir::Etc::Trusted": etc / "trusted.gpg", "Dir::Etc::TrustedParts": etc / "trusted.gpg.d",
            "Dir::Etc::netrc": etc / "auth.conf", "Dir::Etc::netrcparts": etc / "auth.conf.d",
            "Dir::State": state, "Dir::State::Lists": state / "lists", "Dir::State::status": state / "status",
            "Dir::State::extended_states": state / "extended_states",
            "Dir::Cache": cache, "Dir::Cache::archives": cache / "archives", "Dir::Log": root / "log",
            # Not the host's foreign architectures, translations or proxy.
            "APT::Architecture": arch, "APT::Architectures": arch, "Acquire::Languages": "none",
            "Acquire::http::Proxy": "DIRECT",
            # apt hands downloads to user _apt, which cannot enter a 0700 tmp dir (pytest's
            # tmp_path): it would fall back to root with a warning on every file.
            "APT::Sandbox::User": "root",
        }
        # apt reads apt.conf.d *before* it parses -o, so "-o Dir::Etc::Parts" comes
        # too late to keep out the host's hooks (e.g. Update::Post-Invoke) and
        # overrides (e.g. Check-Valid-Until false): APT_CONFIG is read first.
        self.config = root / "apt.conf"
        self.config.write_text("".join(f'{k} "{v}";\n' for k, v in self.options.items()))
        self.env = {**os.environ, "APT_CONFIG": str(self.config), "LC_ALL": "C.UTF-8",
                    "DEBIAN_FRONTEND": "noninteractive"}

    def argv(self, tool="apt-get"):
        """Argument prefix; with ``env`` it isolates apt, and the -o options
        alone already keep every file apt writes inside the sandbox."""
        return [tool, *(f"-o{k}={v}" for k, v in self.options.items())]

    def add_source(self, name, text):
        path = self.sources_dir / name
        path.write_text(text)
        return path

    def run(self, *args, tool="apt-get", check=False, timeout=60, cwd=None):
        return subprocess.run([*self.argv(tool), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check, cwd=cwd)


def sandboxed_apt(tmpdir, arch="amd64") -> AptSandbox:
    return AptSandbox(tmpdir, arch)


# --------------------------------------------------------------------------- command line

_FILES = ("url", "fingerprint", "pid", "pid.start")
_PACKAGE = "tracekit-probe-dbgsym=1.0-1"


def _start_time(pid):
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def _write(path: Path, text: str):
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _parse_suites(specs):
    """["noble=main,universe", "bookworm-debug"] -> {"noble": ["main", "universe"], "bookworm-debug": ["main"]}"""
    suites = {}
    for spec in specs:
        name, _, components = spec.partition("=")
        comps = [c for c in components.split(",") if c] or ["main"]
        if not name or "/" in name:
            raise SystemExit(f"aptrepo: --suite {spec!r}: expected SUITE[=COMPONENT,...]")
        suites[name] = comps
    return suites


def cmd_serve(args) -> int:
    state, root = Path(args.state).resolve(), Path(args.root).resolve()
    state.mkdir(parents=True, exist_ok=True)
    pid_file = state / "pid"
    if pid_file.is_file() and _start_time(int(pid_file.read_text())) == int((state / "pid.start").read_text()):
        raise SystemExit(f"aptrepo: already serving from {state} (pid {pid_file.read_text().strip()}): stop it first")
    for name in _FILES:
        (state / name).unlink(missing_ok=True)
    packages = []
    for spec in args.package or [_PACKAGE]:
        name, _, version = spec.partition("=")
        packages.append(PackageSpec(name, version or "1.0-1"))
    # One key signs every suite; its agent goes once the repository is signed.
    with SigningKey.generate(state) as key:
        for suite, components in _parse_suites(args.suite).items():
            for i, component in enumerate(components):  # the packages go into the first component
                build_repo(root, key, suite, component, packages if i == 0 else ())
    log = open(state / "httpd.log", "ab")
    child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_httpd",
                              "--root", str(root), "--state", str(state)],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
    log.close()
    child.returncode = 0  # detached on purpose: not ours to wait for
    _write(state / "pid.start", f"{_start_time(child.pid)}\n")
    _write(state / "pid", f"{child.pid}\n")
    deadline = time.monotonic() + 15
    while not (state / "url").is_file():
        if _start_time(child.pid) is None or time.monotonic() > deadline:
            tail = (state / "httpd.log").read_text()[-2000:]
            cmd_stop(args)
            raise SystemExit(f"aptrepo: the server did not start:\n{tail}")
        time.sleep(0.02)
    _write(state / "fingerprint", key.fingerprint + "\n")
    info = {"url": (state / "url").read_text().strip(), "fingerprint": key.fingerprint,
            "key": str(key.public_path), "pid": child.pid, "root": str(root)}
    print(json.dumps(info, indent=1))
    return 0


def cmd_httpd(args) -> int:
    server = _Server(Path(args.root))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _write(Path(args.state) / "url", server.url + "\n")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_stop(args) -> int:
    """Stop the server by the PID `serve` recorded, if that process still runs; idempotent."""
    state = Path(args.state)
    try:
        pid, start = int((state / "pid").read_text()), int((state / "pid.start").read_text())
    except (FileNotFoundError, ValueError):
        return 0
    if _start_time(pid) == start:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _start_time(pid) == start and time.monotonic() < deadline:
            time.sleep(0.02)
        if _start_time(pid) == start:
            os.kill(pid, signal.SIGKILL)
    for name in ("pid", "pid.start", "url"):
        (state / name).unlink(missing_ok=True)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.lib.aptrepo",
                                description="A signed apt repository served on 127.0.0.1, for tests and labs.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{serve,stop}")
    s = sub.add_parser("serve", help="generate a key, build the repository and serve it detached")
    s.add_argument("--root", required=True, help="directory to build the repository in")
    s.add_argument("--state", required=True, help="where url, fingerprint, signing-key.asc and pid go")
    s.add_argument("--suite", action="append", required=True, metavar="SUITE[=COMP,...]",
                   help="a suite and its components (default main); repeatable")
    s.add_argument("--package", action="append", metavar="NAME=VERSION",
                   help=f"a package in each suite's first component (default {_PACKAGE}); repeatable")
    t = sub.add_parser("stop", help="stop the server of a state directory (by its recorded PID)")
    t.add_argument("--state", required=True)
    h = sub.add_parser("_httpd")  # the detached server itself
    h.add_argument("--root", required=True)
    h.add_argument("--state", required=True)
    args = p.parse_args(argv)
    return {"serve": cmd_serve, "stop": cmd_stop, "_httpd": cmd_httpd}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
