#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Routed resume across gateways (issue #18 §1, docs/gateway.md "Several gateways behind HAProxy").

Three mana-gateway processes (route ids gw-0, gw-1, gw-2) behind Debian's HAProxy 2.6 with the
configuration of gateway/examples/haproxy.cfg (tools/devkit/haproxy.py), a real sshd, and a
fault-injecting proxy (fault_proxy.py) between the clients and HAProxy that cuts connections at
random byte offsets. Every client is a mana-proxy (one JWT principal per session, s00..s49):
the first --ssh-sessions (10) are real `ssh` processes with ProxyCommand=mana-proxy running `cat`
on the sshd, the others mana-proxy processes whose channel goes to an echo target (tools/devkit
targets.py), driven through their stdin/stdout. (Fifty remote login shells at once contend on a
small machine: the login user's shell start-up files run for each.)

Phase 1, routed resumes: every session echoes a seeded payload byte-exact (SHA-256) through the
random cuts. Each cut makes mana-proxy resume at the URL with ?route=<id> of its hello_ok. Checked:
  - every session was authenticated once (no session restarted fresh), on one gateway: its owner;
  - mana_resumes_total{outcome="accepted"} summed over the gateways equals the resumes the clients
    counted, and no gateway counts a rejected, out-of-range or rate-limited resume;
  - per session, every accepted resume is on its owner (gateway logs, by principal);
  - HAProxy served every request that carried ?route=X with server X (its log).
Phase 2, the owner dies: `kill -9` of the gateway holding the most sessions. Its clients resume to
a dead route, HAProxy sends them elsewhere, they get 4011 ("resume rejected") and mana-proxy exits
with it: each within 3 s of the kill. The sessions on the other gateways keep their session (no new
authentication), echo another payload byte-exact and end with exit 0; the survivors counted one
rejected resume per client of the dead gateway.

Loopback only; bounded (about 20-40 s on a loaded 2-core machine).
Usage: routed_resume_test.py --gateway PATH --proxy PATH [--sshd PATH] [--haproxy PATH]
                             [--sessions 50] [--ssh-sessions 10] [--kib 64] [--cuts 100]
                             [--seed 1] [--keep]
"""
import argparse
import asyncio
import collections
import getpass
import hashlib
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import Fault, FaultProxy  # noqa: E402
from fixture import SECRET, Failure, check, loopback, metrics, token  # noqa: E402
from devkit.gateway import start_gateway  # noqa: E402
from devkit.haproxy import start_haproxy  # noqa: E402
from devkit.sshd import start_sshd  # noqa: E402
from devkit.targets import start_target  # noqa: E402

BANNER = b"SSH-2.0-mana-echo\r\n"  # what the echo target sends first

KILL_BOUND_S = 3.0


def gateway_config(route):
    # Behind HAProxy every client has HAProxy's address (127.0.0.1): the per-IP limits are raised
    # so that 50 clients of one address fit (issue #18 §3 gives the gateway the real address).
    # The failed-resume budget stays per IP, as in production; its burst covers the clients of
    # the killed gateway, which all fail their resume at once from that one address.
    return {"server": {"route_id": route, "max_http_connections_per_ip": 1000},
            "session": {"resume_ttl_ms": 30000},
            "limits": {"max_connections_per_ip": 1000},
            "rate": {"open_burst": 200, "resume_fail_burst": 200}}


class Session:
    """One `ssh ... cat` through mana-proxy: writes payloads, hashes what comes back."""

    def __init__(self, i, argv, prefix=b""):
        self.i = i
        self.principal = "s%02d" % i
        self.argv = argv
        self.prefix = prefix       # bytes the target sends first (the echo target's banner)
        self.kind = "ssh" if argv[0] == "ssh" else "proxy"
        self.resumes = 0           # "session resumed" lines of mana-proxy --verbose
        self.stderr = []
        self.want = 0              # bytes expected back in the current phase
        self.got = 0
        self.hash = hashlib.sha256()
        self.done = asyncio.Event()
        self.exited_at = None
        self.proc = None

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
        """Sends `payload`; done is set once as many bytes came back (check digest())."""
        if self.want == 0:
            # First echo: the target's banner (already arriving) is counted and hashed with it.
            self.want = len(self.prefix) + len(payload)
        else:
            self.want, self.got, self.hash = len(payload), 0, hashlib.sha256()
        self.done.clear()
        try:
            self.proc.stdin.write(payload)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self.stderr.append("(ssh's stdin closed: ssh exited with %s)" % self.proc.returncode)
            self.done.set()

    def digest(self):
        return self.hash.hexdigest() if self.got == self.want else None

    async def finish(self, timeout):
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await asyncio.gather(*self.readers, return_exceptions=True)
        return self.proc.returncode


def log_events(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict):
                out.append(e)
    return out


def resume_metrics(port):
    m = metrics(port)
    out = collections.Counter()
    for k, v in m.items():
        g = re.match(r'^mana_resumes_total\{outcome="([a-z_]+)"\}$', k)
        if g:
            out[g.group(1)] += int(v)
    return out


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


async def run(args, tmp):
    user = getpass.getuser()
    sshd = start_sshd(os.path.join(tmp, "sshd"), user=user, sshd_path=args.sshd)
    known_hosts = sshd.known_hosts(os.path.join(tmp, "known_hosts"), "mana-test-sshd")
    echo = start_target("echo", banner=BANNER, log_path=os.path.join(tmp, "echo.log"))
    gws = {}
    hap = None
    fp = None
    sessions = []
    try:
        for i in range(3):
            route = "gw-%d" % i
            gws[route] = start_gateway(args.gateway, tmp, route, allow_missing_origin=True,
                                       targets=loopback(sshd.port, echo.port),
                                       config=gateway_config(route),
                                       secret=SECRET)
        # The example's configuration as written (health checks included): a dead gateway is
        # found by `option redispatch 1` at the first refused connection, not by the checks.
        hap = start_haproxy(tmp, [(r, g.port) for r, g in gws.items()], binary=args.haproxy)
        end = time.monotonic() + 10
        while set(hap.servers().values()) != {"UP"} and time.monotonic() < end:
            await asyncio.sleep(0.1)
        check(set(hap.servers().values()) == {"UP"},
              "HAProxy %s in front of gateways %s: all UP" % (
                  hap.port, ", ".join("%s=%d" % (r, g.port) for r, g in gws.items())))
        for r, g in gws.items():
            listening = [e for e in log_events(g.log_path) if e.get("event") == "listening"]
            check(listening and listening[0].get("route") == r,
                  "%s logs its route id in the `listening` line" % r)

        fp = FaultProxy(hap.port, seed=args.seed, min_bytes=16 << 10,
                        max_bytes=max(64 << 10, args.kib << 11), max_cuts=args.cuts)
        fport = await fp.start()

        rng = random.Random(args.seed)
        t_start = time.monotonic()
        for i in range(args.sessions):
            tok_path = os.path.join(tmp, "token-%02d" % i)
            with open(tok_path, "w") as f:
                f.write(token(sub="s%02d" % i, exp_in=600) + "\n")
            os.chmod(tok_path, 0o600)
            proxy = ("%s --url ws://127.0.0.1:%d/ --token-file %s --reconnect-min-ms 20 "
                     "--reconnect-max-ms 200 --connect-timeout-ms 30000 --verbose %%h %%p"
                     % (args.proxy, fport, tok_path))
            if i < args.ssh_sessions:
                argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o",
                        "IdentitiesOnly=yes", "-i", sshd.user_key["path"],
                        "-o", "UserKnownHostsFile=" + known_hosts,
                        "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                        "-o", "HostKeyAlias=mana-test-sshd", "-o", "LogLevel=ERROR",
                        "-o", "ProxyCommand=" + proxy, "-p", str(sshd.port), "-T",
                        "%s@127.0.0.1" % user, "cat"]
                s = Session(i, argv)
            else:
                s = Session(i, proxy.replace("%h %p", "127.0.0.1 %d" % echo.port).split(),
                            prefix=BANNER)
            sessions.append(s)
            await s.start()
            if s.kind == "ssh":
                await asyncio.sleep(0.3)  # remote login shells start one after the other

        # Every session logged in (a short line echoed) before the load starts: on a small,
        # shared machine the logins and the bulk echo at once starve each other.
        hellos = [("hello %02d\n" % s.i).encode() for s in sessions]
        await asyncio.gather(*(s.echo(h) for s, h in zip(sessions, hellos)))
        hellos = [s.prefix + h for s, h in zip(sessions, hellos)]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in sessions)), 60)
        except asyncio.TimeoutError:
            pass
        bad = [s.principal for s, h in zip(sessions, hellos)
               if s.digest() != hashlib.sha256(h).hexdigest()]
        for s in sessions:
            if s.principal in bad[:4]:
                print("#", s.principal, s.got, "/", s.want, s.stderr[-8:])
        n_ssh = sum(1 for s in sessions if s.kind == "ssh")
        check(not bad, "%d sessions through mana-proxy, the fault proxy and HAProxy are up: %d "
              "ssh logins to sshd (`cat`), %d to an echo target (%.1f s)%s"
              % (len(sessions), n_ssh, len(sessions) - n_ssh, time.monotonic() - t_start,
                 "; failed: %s" % bad if bad else ""))

        # ---- phase 1: echo through random cuts ------------------------------------------------
        t_start = time.monotonic()
        payloads = [rng.randbytes(args.kib << 10) for _ in sessions]
        await asyncio.gather(*(s.echo(p) for s, p in zip(sessions, payloads)))
        try:
            await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in sessions)), 90)
        except asyncio.TimeoutError:
            pass
        t_phase1 = time.monotonic() - t_start
        bad = [s.principal for s, p in zip(sessions, payloads)
               if s.digest() != hashlib.sha256(p).hexdigest()]
        if bad:
            for s in sessions:
                if s.principal in bad[:4]:
                    print("#", s.principal, s.got, "/", s.want, s.stderr[-8:])
        check(not bad, "phase 1: %d sessions echoed %d KiB each byte-exact (SHA-256) through %d "
              "cuts in %.1f s%s" % (len(sessions), args.kib, fp.cuts, t_phase1,
                                    "; wrong: %s" % bad if bad else ""))
        client_resumes = sum(s.resumes for s in sessions)
        check(fp.cuts >= min(args.cuts, args.sessions) // 2 and client_resumes >= fp.cuts // 2,
              "forced drops: %d cuts, %d resumes counted by the clients" % (fp.cuts,
                                                                             client_resumes))

        # Owners: the gateway that authenticated the principal, exactly once over all gateways.
        owner = {}
        auths = collections.Counter()
        for r, g in gws.items():
            for e in log_events(g.log_path):
                if e.get("event") == "auth" and e.get("result") == "ok":
                    owner[e.get("principal")] = r
                    auths[e.get("principal")] += 1
        check(len(owner) == len(sessions) and set(auths.values()) == {1},
              "every session was authenticated once, by one gateway (none restarted fresh)")
        per_gw = collections.Counter(owner.values())

        # Metrics: accepted resumes on the owners == the clients' count; no rejection anywhere.
        end = time.monotonic() + 5
        while True:
            mets = {r: resume_metrics(g.port) for r, g in gws.items()}
            client_resumes = sum(s.resumes for s in sessions)
            accepted = sum(m["accepted"] for m in mets.values())
            if accepted == client_resumes or time.monotonic() > end:
                break
            await asyncio.sleep(0.2)
        others = {r: sum(v for k, v in m.items() if k != "accepted") for r, m in mets.items()}
        check(accepted == client_resumes and not any(others.values()),
              "mana_resumes_total{outcome=\"accepted\"} over the gateways = %d = the clients' "
              "%d resumes; other outcomes per gateway %s" % (accepted, client_resumes, others))
        misplaced = []
        by_principal = collections.Counter()
        for r, g in gws.items():
            for e in log_events(g.log_path):
                if e.get("event") == "resume" and e.get("result") == "accepted":
                    by_principal[e.get("principal")] += 1
                    if owner.get(e.get("principal")) != r:
                        misplaced.append((e.get("principal"), r))
        wrong_count = [s.principal for s in sessions if by_principal[s.principal] != s.resumes]
        check(not misplaced and not wrong_count,
              "per session, every accepted resume is on its owner (misplaced %s, counts differ "
              "for %s)" % (misplaced[:5], wrong_count[:5]))
        routed = haproxy_routes(hap)
        stray = [(a, b) for a, b in routed if a != b]
        check(len(routed) >= client_resumes and not stray,
              "HAProxy served all %d requests with ?route=X by server X (stray: %s)"
              % (len(routed), stray[:5]))
        resumes_per_gw = {r: mets[r]["accepted"] for r in gws}
        print("# sessions per gateway %s; accepted resumes per gateway %s"
              % (dict(sorted(per_gw.items())), resumes_per_gw))

        # ---- phase 2: kill -9 of an owner ------------------------------------------------------
        # No more cuts. New connections end with FIN: in random mode the fault proxy ends a
        # connection whose upstream closed with a RST half of the time, which can discard the
        # gateway's close frame (a 4011) on its way to the client.
        fp.max_cuts = fp.cuts
        fp.script = lambda index, rng: Fault(rst=False)
        victim = max(per_gw, key=lambda r: per_gw[r])
        victims = [s for s in sessions if owner[s.principal] == victim]
        survivors = [s for s in sessions if owner[s.principal] != victim]
        t_kill = time.monotonic()
        gws[victim].kill()
        # Meanwhile the others keep working.
        more = [rng.randbytes(64 << 10) for _ in survivors]
        await asyncio.gather(*(s.echo(p) for s, p in zip(survivors, more)))
        try:
            await asyncio.wait_for(asyncio.gather(*(s.waiter for s in victims)), 15)
        except asyncio.TimeoutError:
            pass
        delays = sorted((s.exited_at - t_kill) if s.exited_at else float("inf") for s in victims)
        with_4011 = [s for s in victims if any("4011" in ln for ln in s.stderr)]
        for s in victims:
            if s not in with_4011 or s.exited_at is None:
                print("#", s.principal, s.stderr[-4:])
        check(len(with_4011) == len(victims) and delays[-1] <= KILL_BOUND_S,
              "kill -9 of %s (%d sessions): each client got 4011 and mana-proxy ended, after "
              "%.2f s (median) / %.2f s (max) <= %.1f s" % (
                  victim, len(victims), delays[len(delays) // 2], delays[-1], KILL_BOUND_S))
        try:
            await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in survivors)), 30)
        except asyncio.TimeoutError:
            pass
        bad = [s.principal for s, p in zip(survivors, more)
               if s.digest() != hashlib.sha256(p).hexdigest()]
        check(not bad, "the %d sessions of the other gateways echo 64 KiB more byte-exact%s"
              % (len(survivors), "; wrong: %s" % bad if bad else ""))
        rcs = await asyncio.gather(*(s.finish(20) for s in survivors))
        new_auth = [e.get("principal") for r, g in gws.items() if r != victim
                    for e in log_events(g.log_path)
                    if e.get("event") == "auth" and e.get("result") == "ok"
                    and owner.get(e.get("principal")) != r]
        check(set(rcs) == {0} and not new_auth,
              "they end normally (exit 0) in their original sessions (none started anew: %s)"
              % new_auth)
        after = {r: resume_metrics(g.port) for r, g in gws.items() if r != victim}
        rejected = sum(m["rejected"] for m in after.values())
        if rejected != len(victims):
            for s in victims:
                print("#", s.principal, s.stderr[-12:])
        check(rejected == len(victims) and not any(
                  v for m in after.values() for k, v in m.items()
                  if k not in ("accepted", "rejected")),
              "the surviving gateways answered the %d resumes of the dead one with the uniform "
              "4011 \"resume rejected\" (%s)" % (len(victims),
                                                  {r: dict(m) for r, m in after.items()}))
    finally:
        for s in sessions:
            if s.proc is not None and s.proc.returncode is None:
                s.proc.kill()
                await s.proc.wait()
        if fp is not None:
            await fp.stop()
        if hap is not None:
            hap.stop()
        for g in gws.values():
            g.stop(grace=2)
        sshd.stop()
        echo.proc.kill()
        echo.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--sshd", default=None)
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--ssh-sessions", type=int, default=10,
                    help="how many of them are ssh logins to sshd (the rest: mana-proxy to an "
                         "echo target)")
    ap.add_argument("--kib", type=int, default=64)
    ap.add_argument("--cuts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mana-routed-")
    t0 = time.monotonic()
    try:
        asyncio.run(run(args, tmp))
    except Failure as e:
        print("FAIL -", e)
        print("# logs in", tmp)
        return 1
    print("routed resume: all checks passed in %.1f s" % (time.monotonic() - t0))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
