"""The guest reaches the package mirrors through the lab's apt proxy, and
nothing else: not a port on this machine's loopback that was not forwarded."""

from __future__ import annotations

import json
import socket
import threading

# Run in the guest: fetch the mirror's InRelease through the proxy apt is
# configured with (the mirror is read from the guest's own sources), then try a
# loopback port of this machine directly (qemu's host alias, and the guestfwd
# address) and through the proxy. Prints one JSON line.
GUEST_PROBE = r"""
import json, re, socket, urllib.request, urllib.error
port = int(PORT)
conf = open("/etc/apt/apt.conf.d/01tracekit-lab-proxy").read()
proxy = re.search(r'Proxy "([^"]+)"', conf).group(1)
src = open("/etc/apt/sources.list.d/ubuntu.sources").read()
mirror = re.search(r"^URIs: (\S+)", src, re.M).group(1).rstrip("/")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
out = {"proxy": proxy}
with opener.open(mirror + "/dists/noble/InRelease", timeout=60) as r:
    out["mirror"] = [r.status, r.read(40).decode()]
direct = {}
for addr in ("10.0.2.2", "10.0.2.100"):
    try:
        socket.create_connection((addr, port), timeout=5).close()
        direct[addr] = "connected"
    except OSError as e:
        direct[addr] = type(e).__name__ + ": " + str(e)
out["direct"] = direct
try:
    opener.open("http://127.0.0.1:%d/" % port, timeout=20)
    out["via_proxy"] = "fetched"
except urllib.error.HTTPError as e:
    out["via_proxy"] = [e.code, e.read().decode().strip()]
except OSError as e:
    out["via_proxy"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"""


class Listener:
    """A TCP listener on this machine's 127.0.0.1 that counts connections."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.counted = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.close()
            with self.counted:
                self.accepted += 1
                self.counted.notify_all()

    def wait_for(self, count, timeout=5):
        """Wait until the accept thread has counted `count` connections:
        connect() returns as soon as the kernel queues the connection, before
        this thread has accepted it."""
        with self.counted:
            return self.counted.wait_for(lambda: self.accepted >= count, timeout)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_guest_reaches_the_proxy_and_no_unforwarded_loopback_port(vm):
    listener = Listener()
    try:
        # The listener works: this machine can connect to it.
        socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()
        assert listener.wait_for(1), "the listener never accepted this machine's own connection"
        ran = vm.ssh("python3 -", stdin=GUEST_PROBE.replace("PORT", str(listener.port)), timeout=300)
        assert ran.returncode == 0, ran.stderr[-3000:]
        result = json.loads(ran.stdout.strip().splitlines()[-1])
    finally:
        # Give a connection the guest might have made time to be counted.
        listener.wait_for(2, timeout=1)
        listener.close()
    assert result["mirror"][0] == 200 and result["mirror"][1].startswith("-----BEGIN PGP SIGNED MESSAGE"), result
    assert all(outcome != "connected" for outcome in result["direct"].values()), result
    assert result["via_proxy"][0] == 403 and "not one of the lab's apt origins" in result["via_proxy"][1], result
    assert listener.accepted == 1, f"the guest reached 127.0.0.1:{listener.port}: {result}"
    # The proxy logged the refusal (and the mirror fetch went out through it).
    proxy_log = (vm.state / "aptproxy.log").read_text()
    assert f"DENY 127.0.0.1:{listener.port}" in proxy_log, proxy_log[-2000:]
    assert "/dists/noble/InRelease" in proxy_log, proxy_log[-2000:]


def test_guest_runs_the_pinned_kernel(vm):
    ran = vm.ssh("uname -r; test -e /sys/kernel/tracing/kprobe_events || test -e /sys/kernel/debug/tracing/kprobe_events"
                 " || mount -t tracefs nodev /sys/kernel/tracing; cat /sys/kernel/tracing/available_tracers")
    assert ran.returncode == 0, ran.stderr
    release, tracers = ran.stdout.splitlines()[:2]
    assert release == vm.info["kernel"], ran.stdout
    assert {"function", "function_graph"} <= set(tracers.split()), tracers
