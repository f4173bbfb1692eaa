# SPDX-License-Identifier: Apache-2.0
"""Shared setup of the tests with several gateways behind HAProxy (routed_resume_test.py,
drain_haproxy_test.py; docs/gateway.md "Several gateways behind HAProxy").

Cluster.start() runs a real sshd, an echo target (tools/devkit/targets.py), N mana-gateway
processes with route ids gw-0.. and Debian's HAProxy 2.6 with gateway/examples/haproxy.cfg as
written (tools/devkit/haproxy.py): `send-proxy-v2` to every gateway, whose [server] section has
proxy_protocol = "v2" and trusted_proxies = ["127.0.0.1/32"] (HAProxy's address), so the per-IP
limits stay at their defaults and count the real client addresses. Every launched process goes
into the caller's `procs` (fixture.main stops and waits for them).

Clients are mana-proxy processes (Session): `ssh ... cat` with ProxyCommand=mana-proxy on the
sshd, or mana-proxy alone with its channel to the echo target, driven through stdin/stdout. They
reach HAProxy through an entry (Cluster.entry()): a fault-injecting proxy (fault_proxy.py) whose
upstream connections leave from a loopback address of its own (127.0.0.10, .11, ...), which is
the client address HAProxy hands on. Each entry is one "client address" for about ten sessions.

The gateways' /metrics and /healthz are read directly (gateway_get, resume_metrics), with a PROXY
v2 LOCAL header first, as HAProxy's own health checks send it.
"""
import asyncio
import collections
import getpass
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import FaultProxy  # noqa: E402
from fixture import PROXY_V2_LOCAL, SECRET, check, http_get, loopback, metrics, token  # noqa: E402
from devkit.gateway import start_gateway  # noqa: E402
from devkit.haproxy import start_haproxy  # noqa: E402
from devkit.sshd import start_sshd  # noqa: E402
from devkit.targets import start_target  # noqa: E402

BANNER = b"SSH-2.0-mana-echo\r\n"  # what the echo target sends first
HAPROXY_ADDRESS = "127.0.0.1"       # HAProxy's connections to the gateways leave from here


def client_address(k):
    """The loopback source address of entry k: 127.0.0.10, 127.0.0.11, ..."""
    if not 0 <= k < 240:
        raise ValueError("entry %d" % k)
    return "127.0.0.%d" % (10 + k)


def gateway_config(route, server=None, session=None):
    """A gateway behind HAProxy: its route id, the PROXY protocol v2 from HAProxy only. The
    per-IP limits ([server] max_http_connections_per_ip, [limits] max_connections_per_ip,
    [rate]) keep their defaults: they count the client addresses the PROXY header names."""
    return {"server": dict({"route_id": route, "proxy_protocol": "v2",
                            "trusted_proxies": [HAPROXY_ADDRESS + "/32"]}, **(server or {})),
            "session": dict({"resume_ttl_ms": 30000}, **(session or {}))}


def gateway_get(port, path):
    """(status, body) of GET `path` straight from a gateway behind the PROXY protocol."""
    return http_get(port, path, preface=PROXY_V2_LOCAL)


def gateway_metrics(port):
    return metrics(port, preface=PROXY_V2_LOCAL)


def resume_metrics(port):
    """mana_resumes_total by outcome."""
    out = collections.Counter()
    for k, v in gateway_metrics(port).items():
        g = re.match(r'^mana_resumes_total\{outcome="([a-z_]+)"\}$', k)
        if g:
            out[g.group(1)] += int(v)
    return out


def policy_rejections(port):
    """mana_policy_rejections_total by reason."""
    out = collections.Counter()
    for k, v in gateway_metrics(port).items():
        g = re.match(r'^mana_policy_rejections_total\{reason="([a-z_]+)"\}$', k)
        if g:
            out[g.group(1)] += int(v)
    return out


def log_events(path, event=None):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and (event is None or e.get("event") == event):
                out.append(e)
    return out


def auths(gws):
    """[(route, auth event)] of every successful authentication (a fresh session) by route."""
    return [(r, e) for r, g in gws.items() for e in log_events(g.log_path, "auth")
            if e.get("result") == "ok"]


def haproxy_routes(hap):
    """[(route asked for, server that served it)] from HAProxy's httplog lines."""
    out = []
    for line in hap.logs().splitlines():
        g = re.search(r" gateways/(\S+) .*\"GET (\S+) HTTP/1\.1\"", line)
        if not g:
            continue
        r = re.search(r"[?&]route=([^&\s]*)", g.group(2))
        if r:
            out.append((r.group(1), g.group(1)))
    return out


class Session:
    """One client through mana-proxy: writes payloads, hashes what comes back."""

    def __init__(self, principal, argv, prefix=b""):
        self.principal = principal
        self.argv = argv
        self.prefix = prefix       # bytes the target sends first (the echo target's banner)
        self.kind = "ssh" if argv[0] == "ssh" else "proxy"
        self.resumes = 0           # "session resumed" lines of mana-proxy --verbose
        self.stderr = []
        self.want = 0              # bytes expected back in the current echo
        self.got = 0
        self.hash = hashlib.sha256()
        self.done = asyncio.Event()
        self.exited_at = None
        self.proc = None
        self.expect = None         # SHA-256 of the current echo's expected bytes

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        self.readers = [asyncio.ensure_future(self._read_out()),
                        asyncio.ensure_future(self._read_err())]
        self.waiter = asyncio.ensure_future(self._wait())

    async def _wait(self):
        await self.proc.wait()
        self.exited_at = time.monotonic()

    async def _read_out(self):
        while True:
            b = await self.proc.stdout.read(1 << 16)
            if not b:
                return
            self.got += len(b)
            self.hash.update(b)
            if self.got >= self.want:
                self.done.set()

    async def _read_err(self):
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            self.stderr.append(text)
            if "session resumed" in text:
                self.resumes += 1

    async def echo(self, payload):
        """Sends `payload`; done is set once as many bytes came back (check ok())."""
        if self.want == 0:
            # First echo: the target's banner (already arriving) is counted and hashed with it.
            self.want = len(self.prefix) + len(payload)
            self.expect = hashlib.sha256(self.prefix + payload).hexdigest()
        else:
            self.want, self.got, self.hash = len(payload), 0, hashlib.sha256()
            self.expect = hashlib.sha256(payload).hexdigest()
        self.done.clear()
        try:
            self.proc.stdin.write(payload)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self.stderr.append("(stdin closed: exited with %s)" % self.proc.returncode)
            self.done.set()

    def ok(self):
        """The current echo came back complete and byte-exact."""
        return self.got == self.want and self.hash.hexdigest() == self.expect

    async def finish(self, timeout):
        """Closes stdin (ssh ends `cat`, mana-proxy its channel) and returns the exit status."""
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(*self.readers, return_exceptions=True)
        return self.proc.returncode


async def echo_all(sessions, payloads, timeout, what):
    """Each session echoes its payload; checks that all came back byte-exact (SHA-256)."""
    t0 = time.monotonic()
    await asyncio.gather(*(s.echo(p) for s, p in zip(sessions, payloads)))
    try:
        await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in sessions)), timeout)
    except asyncio.TimeoutError:
        pass
    bad = [s.principal for s in sessions if not s.ok()]
    for s in sessions:
        if s.principal in bad[:4]:
            print("#", s.principal, s.got, "/", s.want, s.stderr[-8:])
    check(not bad, "%s (%.1f s)%s" % (what, time.monotonic() - t0,
                                       "; failed: %s" % bad if bad else ""))


async def kill_sessions(sessions):
    for s in sessions:
        if s.proc is not None and s.proc.returncode is None:
            s.proc.kill()
            await s.proc.wait()


class Cluster:
    """sshd + echo target + gateways gw-0.. + HAProxy, and the entries the clients go through."""

    def __init__(self, args, tmp, procs):
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.user = getpass.getuser()
        self.gws = {}
        self.entries = []

    async def start(self, n=3, server=None, session=None):
        tmp = self.tmp
        self.sshd = start_sshd(os.path.join(tmp, "sshd"), user=self.user,
                               sshd_path=self.args.sshd)
        self.procs.append(self.sshd)
        self.known_hosts = self.sshd.known_hosts(os.path.join(tmp, "known_hosts"),
                                                 "mana-test-sshd")
        self.echo = start_target("echo", banner=BANNER, log_path=os.path.join(tmp, "echo.log"))
        self.procs.append(self.echo)
        for i in range(n):
            route = "gw-%d" % i
            self.gws[route] = start_gateway(
                self.args.gateway, tmp, route, allow_missing_origin=True,
                targets=loopback(self.sshd.port, self.echo.port),
                config=gateway_config(route, server, session), secret=SECRET)
            self.procs.append(self.gws[route])
        # The example's configuration as written (health checks and send-proxy-v2 included).
        self.hap = start_haproxy(tmp, [(r, g.port) for r, g in self.gws.items()],
                                 binary=self.args.haproxy)
        self.procs.append(self.hap)
        states = await self.wait_states({r: "UP" for r in self.gws}, 10)
        check(states == {r: "UP" for r in self.gws},
              "HAProxy %s in front of gateways %s (PROXY protocol v2): all UP (%s)" % (
                  self.hap.port, ", ".join("%s=%d" % (r, g.port) for r, g in self.gws.items()),
                  states))
        for r, g in self.gws.items():
            listening = log_events(g.log_path, "listening")
            check(listening and listening[0].get("route") == r,
                  "%s logs its route id in the `listening` line" % r)

    async def wait_states(self, want, timeout):
        """HAProxy's server states once they equal `want` (or after `timeout` s)."""
        end = time.monotonic() + timeout
        while True:
            states = self.hap.servers()
            if states == want or time.monotonic() > end:
                return states
            await asyncio.sleep(0.05)

    async def entry(self, seed=1, **fault):
        """A new entry (fault_proxy.FaultProxy to HAProxy, `fault` its keywords; no cuts unless
        given; its rng seeded with `seed` and its index) from the next client address:
        (FaultProxy, its port)."""
        k = len(self.entries)
        fault.setdefault("max_cuts", 0)
        fp = FaultProxy(self.hap.port, seed=seed * 1000 + k, local_ip=client_address(k), **fault)
        port = await fp.start()
        self.entries.append(fp)
        return fp, port

    async def stop_entries(self):
        for fp in self.entries:
            await fp.stop()

    def session(self, principal, port, ssh):
        """A Session for `principal` through the entry on `port`: `ssh ... cat` on the sshd with
        ProxyCommand=mana-proxy, or mana-proxy alone to the echo target. Not started."""
        tok_path = os.path.join(self.tmp, "token-" + principal)
        with open(tok_path, "w") as f:
            f.write(token(sub=principal, exp_in=600) + "\n")
        os.chmod(tok_path, 0o600)
        proxy = ("%s --url ws://127.0.0.1:%d/ --token-file %s --reconnect-min-ms 20 "
                 "--reconnect-max-ms 200 --connect-timeout-ms 30000 --verbose %%h %%p"
                 % (self.args.proxy, port, tok_path))
        if not ssh:
            return Session(principal,
                           proxy.replace("%h %p", "127.0.0.1 %d" % self.echo.port).split(),
                           prefix=BANNER)
        argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-i", self.sshd.user_key["path"], "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "HostKeyAlias=mana-test-sshd", "-o", "LogLevel=ERROR",
                "-o", "ProxyCommand=" + proxy, "-p", str(self.sshd.port), "-T",
                "%s@127.0.0.1" % self.user, "cat"]
        return Session(principal, argv)

    async def start_sessions(self, principals, per_entry, n_ssh, **fault):
        """Starts one session per principal, `per_entry` per new entry (one client address
        each, `fault` its keywords), the first `n_ssh` of them ssh logins (started 0.3 s apart:
        remote login shells start one after the other). Returns (sessions, entries)."""
        sessions, entries = [], []
        port = None
        for i, p in enumerate(principals):
            if i % per_entry == 0:
                fp, port = await self.entry(**fault)
                entries.append(fp)
            s = self.session(p, port, ssh=i < n_ssh)
            sessions.append(s)
            await s.start()
            if s.kind == "ssh":
                await asyncio.sleep(0.3)
        return sessions, entries

    def owners(self):
        """{principal: route of the gateway that authenticated it} and how often each was."""
        owner, count = {}, collections.Counter()
        for r, e in auths(self.gws):
            owner[e.get("principal")] = r
            count[e.get("principal")] += 1
        return owner, count

    def check_client_addresses(self, principals):
        """Every authentication of `principals` was logged with the client address of its entry
        (from the PROXY v2 header), not HAProxy's."""
        allowed = {client_address(k) for k in range(len(self.entries))}
        ips = collections.Counter(e.get("ip") for _, e in auths(self.gws)
                                  if e.get("principal") in principals)
        check(ips and set(ips) <= allowed and HAPROXY_ADDRESS not in ips,
              "the gateways logged the clients' own addresses from HAProxy's PROXY v2 header, "
              "not HAProxy's %s: %s" % (HAPROXY_ADDRESS, dict(sorted(ips.items()))))
