#!/usr/bin/python3
"""A small caching HTTP proxy for apt, on this machine's loopback, for the kernel lab.

The lab's VM has no route out (qemu user networking with restrict=on); a guestfwd
connects its apt to this proxy. The proxy forwards plain-HTTP GET/HEAD requests to the
origins it is told about and to nothing else, so the guest reaches the package mirrors
its sources name (and the loopback test repository) and no other address:

    --mirror HOST[:PORT]   an apt mirror: immutable files (pool/, by-hash/) are cached
    --allow  HOST:PORT     passed through, never cached (a test repository whose
                           contents change from run to run)

Cached files live under --cache (shared between runs: a second lab run downloads only
the indexes). Everything else (Release, InRelease) is passed through, so apt always
checks signatures against what the mirror serves now. CONNECT (https) is refused.

    lab/aptproxy.py --cache DIR --port-file FILE --log FILE --mirror H [--allow H:P]...

Stdlib only; lab/kernel.py starts it (detached, PID recorded) and stops it by PID.

    lab/aptproxy.py relay PORT

is what qemu runs for each guest connection (guestfwd=...-cmd:...): it copies the
connection, which qemu hands over as stdin/stdout, to 127.0.0.1:PORT. A guestfwd to
a tcp: chardev instead connects once and serves one guest connection at a time
(measured: a second concurrent connection timed out), and apt opens one connection
per origin.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import os
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 1 << 16
# Request headers worth passing on; hop-by-hop ones and Proxy-* stay here.
FORWARD_HEADERS = ("User-Agent", "Accept", "Cache-Control", "If-Modified-Since", "If-None-Match", "If-Range",
                   "Range")
# Response headers apt uses.
RETURN_HEADERS = ("Content-Type", "Last-Modified", "ETag", "Content-Range", "Accept-Ranges", "Location")


def cacheable(path: str) -> bool:
    """Files a mirror never changes under the same URL."""
    return "/pool/" in path or "/by-hash/" in path or path.endswith((".deb", ".ddeb", ".udeb"))


def origin_key(host: str, port: int) -> str:
    return f"{host.lower()}:{port}"


class Proxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, cache: Path, mirrors: set[str], passthrough: set[str], log):
        super().__init__(addr, Handler)
        self.cache, self.mirrors, self.passthrough, self.logfile = cache, mirrors, passthrough, log
        self.lock = threading.Lock()

    def log(self, line: str) -> None:
        with self.lock:
            self.logfile.write(time.strftime("%H:%M:%S ") + line + "\n")
            self.logfile.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy

    def log_message(self, fmt, *args):  # the server's own log instead of stderr
        self.server.log("%s %s" % (self.client_address[0], fmt % args))

    def do_CONNECT(self):
        self.refuse(405, "tracekit lab apt proxy: CONNECT (https) is not offered; use http sources")

    def do_HEAD(self):
        self.handle_get(head=True)

    def do_GET(self):
        self.handle_get(head=False)

    # ------------------------------------------------------------------ helpers

    def refuse(self, code: int, text: str) -> None:
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def upstream(self, host: str, port: int) -> http.client.HTTPConnection:
        conns = self.__dict__.setdefault("_conns", {})
        key = (host, port)
        if key not in conns:
            conns[key] = http.client.HTTPConnection(host, port, timeout=60)
        return conns[key]

    def fetch(self, host: str, port: int, path: str, headers: dict, method: str) -> http.client.HTTPResponse:
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            conn = self.upstream(host, port)
            try:
                conn.request(method, path, headers=headers)
                return conn.getresponse()
            except (http.client.HTTPException, OSError):
                conn.close()
                self.__dict__["_conns"].pop((host, port), None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def handle_get(self, head: bool) -> None:
        url = urlsplit(self.path)
        if url.scheme != "http" or not url.hostname:
            self.refuse(400, "tracekit lab apt proxy: expected an absolute http:// URL")
            return
        host, port = url.hostname, url.port or 80
        origin = origin_key(host, port)
        mirror, passthrough = origin in self.server.mirrors, origin in self.server.passthrough
        if not (mirror or passthrough):
            self.server.log(f"DENY {origin} {url.path}")
            self.refuse(403, f"tracekit lab apt proxy: {origin} is not one of the lab's apt origins")
            return
        path = url.path + (("?" + url.query) if url.query else "")
        if mirror and cacheable(url.path):
            self.serve_cached(host, port, path, head)
        else:
            self.serve_through(host, port, path, head)

    def forward_headers(self, keep_conditional: bool) -> dict:
        headers = {}
        for name in FORWARD_HEADERS:
            if not keep_conditional and name in ("Range", "If-Range", "If-Modified-Since", "If-None-Match"):
                continue
            if self.headers.get(name):
                headers[name] = self.headers[name]
        return headers

    def send_upstream_headers(self, resp: http.client.HTTPResponse, length: int | None) -> None:
        self.send_response(resp.status, resp.reason)
        for name in RETURN_HEADERS:
            if resp.getheader(name):
                self.send_header(name, resp.getheader(name))
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def fetch_or_refuse(self, host: str, port: int, path: str, headers: dict, method: str):
        """The upstream response, or None after answering 502 (logged)."""
        try:
            return self.fetch(host, port, path, headers, method)
        except (http.client.HTTPException, OSError) as exc:
            self.server.log(f"FAIL {host}:{port} {path}: {exc}")
            self.refuse(502, f"tracekit lab apt proxy: {host}:{port}: {exc}")
            return None

    def serve_through(self, host: str, port: int, path: str, head: bool) -> None:
        resp = self.fetch_or_refuse(host, port, path, self.forward_headers(True), "HEAD" if head else "GET")
        if resp is None:
            return
        length = resp.getheader("Content-Length")
        length = int(length) if length is not None else None
        if head or resp.status in (204, 304):
            self.send_upstream_headers(resp, length if length is not None else 0)
            resp.read()
            return
        self.send_upstream_headers(resp, length)
        sent = 0
        while True:
            chunk = resp.read(CHUNK)
            if not chunk:
                break
            self.wfile.write(chunk)
            sent += len(chunk)
        self.server.log(f"PASS {resp.status} {host}:{port} {path} {sent}")

    def serve_cached(self, host: str, port: int, path: str, head: bool) -> None:
        key = hashlib.sha256(f"{origin_key(host, port)}{path}".encode()).hexdigest()
        cached = self.server.cache / key[:2] / key
        if cached.is_file():
            size = cached.stat().st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if not head:
                with open(cached, "rb") as f:
                    while chunk := f.read(CHUNK):
                        self.wfile.write(chunk)
            self.server.log(f"HIT {host}:{port} {path} {size}")
            return
        if head:
            self.serve_through(host, port, path, head)
            return
        resp = self.fetch_or_refuse(host, port, path, self.forward_headers(False), "GET")
        if resp is None:
            return
        length = resp.getheader("Content-Length")
        length = int(length) if length is not None else None
        self.send_upstream_headers(resp, length)
        tmp = None
        if resp.status == 200:
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".part-", dir=cached.parent)
            tmp = (os.fdopen(fd, "wb"), name)
        sent = 0
        try:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                if tmp:
                    tmp[0].write(chunk)
                self.wfile.write(chunk)
                sent += len(chunk)
        finally:
            if tmp:
                tmp[0].close()
                if length is None or sent == length:
                    os.replace(tmp[1], cached)
                else:
                    os.unlink(tmp[1])
        self.server.log(f"MISS {resp.status} {host}:{port} {path} {sent}")


def parse_origin(text: str, need_port: bool) -> str:
    host, sep, port = text.rpartition(":") if ":" in text else (text, "", "80")
    if need_port and not sep:
        raise SystemExit(f"aptproxy: {text!r}: expected HOST:PORT")
    if not host or not port.isdigit():
        raise SystemExit(f"aptproxy: {text!r}: expected HOST[:PORT]")
    return origin_key(host, int(port))


def relay(port: int) -> int:
    """Copy between the socket qemu gave us as stdin/stdout and the proxy. Quiet:
    stderr is the guest's connection too."""
    import socket

    sys.stderr = open(os.devnull, "w")
    guest = socket.socket(fileno=os.dup(0))
    os.close(0)
    os.close(1)
    try:
        proxy = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return 1
    proxy.settimeout(None)

    def pump(src, dst):
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    up = threading.Thread(target=pump, args=(guest, proxy), daemon=True)
    up.start()
    pump(proxy, guest)
    up.join(timeout=5)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["relay"]:
        return relay(int(argv[1]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", required=True, type=Path)
    p.add_argument("--port-file", required=True, type=Path, help="written once listening: the port")
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--port", type=int, default=0, help="default: any free port")
    p.add_argument("--mirror", action="append", default=[], help="HOST[:PORT] of an apt mirror (cached)")
    p.add_argument("--allow", action="append", default=[], help="HOST:PORT passed through uncached")
    args = p.parse_args(argv)
    mirrors = {parse_origin(m, False) for m in args.mirror}
    passthrough = {parse_origin(a, True) for a in args.allow}
    args.cache.mkdir(parents=True, exist_ok=True)
    log = open(args.log, "a", buffering=1)
    server = Proxy(("127.0.0.1", args.port), args.cache, mirrors, passthrough, log)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.log(f"listening on 127.0.0.1:{server.server_address[1]}; mirrors {sorted(mirrors)}; "
               f"pass-through {sorted(passthrough)}")
    tmp = args.port_file.with_name(f".{args.port_file.name}.tmp")
    tmp.write_text(f"{server.server_address[1]}\n")
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
