# SPDX-License-Identifier: Apache-2.0
"""The one launcher of HAProxy (Debian 12: 2.6) for the Python tools: several mana-gateway
processes behind one balancer with routed resume (docs/gateway.md, "Several gateways behind
HAProxy").

    from devkit.haproxy import start_haproxy
    hap = start_haproxy(tmp, [("gw-0", gw0.port), ("gw-1", gw1.port)])
    # hap.port, hap.url, hap.pid, hap.servers() -> {"gw-0": "UP", ...}, hap.logs()
    hap.stop()

start_haproxy(dir, servers, *, name="haproxy", binary="haproxy", example=None,
              default_server=None, log_path=None, timeout=10.0) -> Haproxy
  servers         [(route id, port)] of gateways on 127.0.0.1; each server is named by the route
                  id of its gateway ([server] route_id), which is what `use-server` matches
  example         the configuration it starts from (default gateway/examples/haproxy.cfg)
  default_server  replaces the example's `default-server` line (check intervals), e.g.
                  "check inter 200ms fall 1 rise 1"

It writes <dir>/<name>.cfg: the example as written, except that its `bind` line listens on a
loopback port of its own, its `server` lines are the given gateways, and `global` gets a stats
socket <dir>/<name>.sock (mode 600) for servers(). HAProxy runs in the foreground (-db), its log
(stdout, stderr) in <dir>/<name>.log. HAProxy cannot listen on port 0 and report the port: the port
comes from net.free_port() and a start that lost it is retried with a new one. Startup is bounded
by `timeout` (net.start_and_wait, shared with gateway.py); the error carries the tail of the log.
"""
import os
import re
import signal
import socket
import subprocess
import time

from .net import StartError, free_port, start_and_wait, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "gateway", "examples", "haproxy.cfg")
ROUTE_ID = re.compile(r"^[a-z0-9-]{1,32}\Z")


def haproxy_config(example_text, port, servers, stats_socket, default_server=None):
    """The configuration text: `example_text` with its bind and server lines replaced."""
    for route, p in servers:
        if not ROUTE_ID.match(route):
            raise ValueError("server name %r is not a route id" % (route,))
        if not 0 < int(p) < 65536:
            raise ValueError("bad port %r" % (p,))
    out = []
    bind_done = servers_done = False
    for line in example_text.splitlines():
        word = line.strip().split(" ", 1)[0]
        indent = line[:len(line) - len(line.lstrip())]
        if word == "global":
            out += [line, "%sstats socket %s mode 600 level admin" % ("    ", stats_socket)]
            continue
        if word == "bind":
            if not bind_done:
                out.append("%sbind 127.0.0.1:%d" % (indent, port))
                bind_done = True
            continue
        if word == "server":
            if not servers_done:
                out += ["%sserver %s 127.0.0.1:%d" % (indent, r, p) for r, p in servers]
                servers_done = True
            continue
        if word == "default-server" and default_server is not None:
            out.append("%sdefault-server %s" % (indent, default_server))
            continue
        out.append(line)
    if not (bind_done and servers_done):
        raise ValueError("the example has no bind or no server line")
    return "\n".join(out) + "\n"


class Haproxy:
    def __init__(self, proc, port, name, dir, config_path, log_path, stats_socket):
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.name = name
        self.dir = dir
        self.config_path = config_path
        self.log_path = log_path
        self.stats_socket = stats_socket
        self.url = "ws://127.0.0.1:%d/" % port

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, n=2000):
        return self.logs()[-n:]

    def alive(self):
        return self.proc.poll() is None

    def command(self, cmd, timeout=5.0):
        """One command on the stats socket (e.g. "show stat"); returns the answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.stats_socket)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace")

    def servers(self, backend="gateways"):
        """{server name: status} of `backend` ("UP", "DOWN", "NOLB", "MAINT", ...)."""
        lines = self.command("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        head = lines[0][2:].split(",")
        out = {}
        for ln in lines[1:]:
            row = dict(zip(head, ln.split(",")))
            if row.get("pxname") == backend and row.get("svname") not in ("BACKEND", "FRONTEND"):
                out[row["svname"]] = row.get("status", "")
        return out

    def stop(self, grace=5.0):
        """SIGTERM (HAProxy stops at once), then SIGKILL after `grace` s; returns the status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_haproxy(dir, servers, *, name="haproxy", binary="haproxy", example=None,
                  default_server=None, log_path=None, timeout=10.0):
    with open(example or EXAMPLE) as f:
        example_text = f.read()
    config_path = os.path.join(dir, name + ".cfg")
    stats_socket = os.path.join(dir, name + ".sock")
    log_path = log_path or os.path.join(dir, name + ".log")
    end = time.monotonic() + timeout
    last = None
    for _attempt in range(5):
        port = free_port()
        with open(config_path, "w") as f:
            f.write(haproxy_config(example_text, port, servers, stats_socket, default_server))
        if os.path.exists(stats_socket):
            os.unlink(stats_socket)

        def ready():
            return True if os.path.exists(stats_socket) and wait_port(port, timeout=0.2) else None
        try:
            proc, _ = start_and_wait("haproxy", [binary, "-db", "-f", config_path], log_path,
                                     ready, timeout=max(0.1, end - time.monotonic()))
        except StartError as e:
            # HAProxy cannot listen on port 0: a port taken since free_port() is tried again.
            if e.status is None or "cannot bind socket" not in e.tail or time.monotonic() >= end:
                raise
            last = e
            continue
        return Haproxy(proc, port, name, dir, config_path, log_path, stats_socket)
    raise last
