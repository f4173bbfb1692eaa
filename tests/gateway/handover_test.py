#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Same-host upgrade without losing sessions (issue #18 §2, docs/gateway.md "Same-host upgrade").

One gateway ("old", [server] handover_socket and drain_timeout_ms) holds 50 live sessions through
mana-proxy (the first --ssh-sessions are real `ssh ... cat` logins to a real sshd, the others
mana-proxy to an echo target), all through a fault-injecting proxy (fault_proxy.py) in front of
the gateway's port. A second gateway ("new") is started with the same configuration: it takes
the old one's listening socket over the handover socket (SCM_RIGHTS), the old one stops
accepting and drains. During the overlap the fault proxy cuts connections at random, so every
resume reaches the new process, which does not know the session and forwards it to the old one
over the Unix socket. Checked:
  - garbage and a wrong version on the handover socket are refused (mana_handover_total
    {outcome="refused_bad_message"}) and the gateway keeps serving (before and after the upgrade);
  - the upgrade: the new process logs `listening` with handover "taken", the old one "handed_over";
  - every session echoes a seeded payload byte-exact (SHA-256) through the cuts of the overlap,
    in its original session (authenticated once, by the old process; none by the new one);
  - mana_forwarded_resumes_total{outcome="forwarded"} > 0 at the new process, equal to the old
    process's mana_resumes_total{outcome="accepted"} of the overlap; no resume rejected anywhere;
  - a python client's session (r0) is resumed through the new process too, then left detached;
  - when the 50 sessions have ended, a second SIGTERM stops the old process (r0's detached
    session closed with 1001): it logs `drained` and exits 0; the new one logs `old_exited`; r0's resume then gets the uniform 4011 from the new one.
Loopback only; bounded (about 20-40 s on a loaded 2-core machine).
Usage: handover_test.py --gateway PATH --proxy PATH [--sshd PATH] [--sessions 50]
                        [--ssh-sessions 5] [--kib 32] [--cuts 60] [--seed 1] [--keep]
"""
import argparse
import asyncio
import getpass
import hashlib
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import Fault, FaultProxy  # noqa: E402
from fixture import (ORIGIN, SECRET, Failure, check, connect, expect_close, hello, loopback,  # noqa: E402
                     metrics, token)
from rel_support import Client  # noqa: E402
from lb_support import BANNER, Session, echo_all, log_events  # noqa: E402
from devkit.gateway import start_gateway  # noqa: E402
from devkit.sshd import start_sshd  # noqa: E402
from devkit.targets import start_target  # noqa: E402


def gateway_config(sock_path):
    # Every client comes from 127.0.0.1 (through the fault proxy): per-IP limits raised as in
    # routed_resume_test.
    return {"server": {"route_id": "gw-a", "handover_socket": sock_path,
                       "drain_timeout_ms": 30000, "max_http_connections_per_ip": 1000},
            "session": {"resume_ttl_ms": 30000},
            "limits": {"max_connections_per_ip": 1000},
            "rate": {"open_burst": 200, "resume_fail_burst": 200}}


def counter(port, name, label):
    return int(metrics(port).get('%s{outcome="%s"}' % (name, label), 0))


def events(gw, name, **match):
    return [e for e in log_events(gw.log_path) if e.get("event") == name
            and all(e.get(k) == v for k, v in match.items())]


def bad_peers(sock_path):
    """Garbage, then a well-formed record with the wrong version: each connection is closed by
    the gateway without an answer."""
    out = []
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"MNH1" + bytes([1]) + struct.pack(">H", 7) + b"bogus 9"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(sock_path)
        s.sendall(payload)
        try:
            out.append(s.recv(64))
        except (ConnectionResetError, socket.timeout) as e:
            out.append(repr(e))
        s.close()
    return out


async def run(args, tmp):
    user = getpass.getuser()
    sock_path = os.path.join(tmp, "mana.sock")
    sshd = start_sshd(os.path.join(tmp, "sshd"), user=user, sshd_path=args.sshd)
    known_hosts = sshd.known_hosts(os.path.join(tmp, "known_hosts"), "mana-test-sshd")
    echo = start_target("echo", banner=BANNER, log_path=os.path.join(tmp, "echo.log"))
    gws = []
    fp = None
    sessions = []
    r0 = None
    try:
        common = dict(origins=[ORIGIN], allow_missing_origin=True,
                      targets=loopback(sshd.port, echo.port), config=gateway_config(sock_path),
                      secret=SECRET)
        old = start_gateway(args.gateway, tmp, "old", **common)
        gws.append(old)
        port = old.port
        mode = os.stat(sock_path).st_mode & 0o777
        check(mode == 0o600, "handover socket %s created with mode %o" % (sock_path, mode))

        # ---- bad input on the handover socket (old process) -------------------------------
        answers = bad_peers(sock_path)
        check(answers == [b"", b""] and counter(port, "mana_handover_total",
                                                "refused_bad_message") == 2,
              "garbage and a wrong version on the handover socket: closed without an answer, "
              "mana_handover_total{outcome=\"refused_bad_message\"} = 2")

        fp = FaultProxy(port, seed=args.seed, min_bytes=8 << 10,
                        max_bytes=max(32 << 10, args.kib << 11), max_cuts=0)
        fport = await fp.start()
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
                s = Session("s%02d" % i, argv)
            else:
                s = Session("s%02d" % i, proxy.replace("%h %p", "127.0.0.1 %d" % echo.port).split(),
                            prefix=BANNER)
            sessions.append(s)
            await s.start()
            if s.kind == "ssh":
                await asyncio.sleep(0.3)  # remote login shells start one after the other
        hellos = [("hello %02d\n" % i).encode() for i in range(len(sessions))]
        await echo_all(sessions, hellos, 60,
                       "%d sessions through mana-proxy and the fault proxy to the old gateway "
                       "(%d ssh logins to sshd) are up" % (len(sessions), args.ssh_sessions))
        r0 = Client(port, "r0")
        await r0.attach()
        check((await r0.open(1, echo.port)).get("t") == "open_ok", "r0: a channel on the old gateway")
        await r0.wait_rx(1, len(BANNER))

        # ---- the upgrade -------------------------------------------------------------------
        t_up = time.monotonic()
        new = start_gateway(args.gateway, tmp, "new", listen="127.0.0.1:%d" % port, **common)
        gws.append(new)
        listening = events(new, "listening")
        end = time.monotonic() + 5
        while not events(old, "handover", result="handed_over") and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(new.port == port and listening and listening[0].get("handover") == "taken"
              and events(old, "handover", result="handed_over"),
              "the new gateway took over port %d from the old one (%.2f s)"
              % (port, time.monotonic() - t_up))
        check(old.alive() and metrics(port).get("mana_handover_total{outcome=\"taken\"}") == 1,
              "the old process drains; /metrics on the port is the new process's")

        # ---- overlap: forced drops, resumes forwarded to the old process ------------------
        # The connections made before the upgrade were never cut (max_cuts 0): all of them are cut
        # once while the payloads flow, and the resumed connections at random byte offsets.
        rng = random.Random(args.seed)
        payloads = [rng.randbytes(args.kib << 10) for _ in sessions]

        # Every connection is cut as the payloads start (an echo of 32 KiB can finish in 0.2 s on
        # a quiet machine, so a later cut could miss the flow): no payload gets through without a
        # resume, and resumed connections are cut again at random offsets (args.cuts).
        fp.max_cuts = fp.cut(rst=True) + args.cuts
        await echo_all(sessions, payloads, 60,
                       "overlap: %d sessions echoed %d KiB each byte-exact (SHA-256) while every "
                       "connection was cut" % (len(sessions), args.kib))
        client_resumes = sum(s.resumes for s in sessions)
        check(fp.cuts >= len(sessions) and client_resumes >= len(sessions),
              "forced drops: %d cuts, %d resumes counted by the clients" % (fp.cuts,
                                                                             client_resumes))
        r0.abort()
        await asyncio.wait_for(r0.lost.wait(), 5)
        ok = await r0.attach(resume=True)
        more = os.urandom(4096)
        await r0.send(1, more)
        await r0.wait_rx(1, len(BANNER) + len(more))
        check(ok.get("t") == "hello_ok" and r0.ch[1].hash.hexdigest()
              == hashlib.sha256(BANNER + more).hexdigest(),
              "r0: resumed through the new process (forwarded), its channel echoes byte-exact")
        answers = bad_peers(sock_path)
        check(answers == [b"", b""] and counter(port, "mana_handover_total",
                                                "refused_bad_message") == 2,
              "garbage on the new process's handover socket: refused, it keeps serving")

        end = time.monotonic() + 5
        while True:
            fwd = counter(port, "mana_forwarded_resumes_total", "forwarded")
            accepted = len(events(old, "resume", result="accepted"))
            if fwd == accepted or time.monotonic() > end:
                break
            await asyncio.sleep(0.2)
        rejected_old = [e for e in events(old, "resume") if e.get("result") not in
                        ("accepted", "forwarded")]
        new_res = {k: int(v) for k, v in metrics(port).items()
                   if k.startswith("mana_resumes_total")}
        check(fwd > 0 and fwd == accepted and fwd >= client_resumes + 1 and not rejected_old
              and not new_res,
              "mana_forwarded_resumes_total{outcome=\"forwarded\"} = %d at the new process = "
              "%d resumes accepted by the old one (clients counted %d + r0); rejected: old %s, "
              "new %s" % (fwd, accepted, client_resumes, rejected_old[:3], new_res))
        auth_old = {e.get("principal") for e in events(old, "auth", result="ok")}
        auth_new = [e.get("principal") for e in events(new, "auth", result="ok")]
        check(len(auth_old) == len(sessions) + 1 and not auth_new,
              "every session was authenticated once, by the old process (none restarted on "
              "the new one: %s)" % auth_new[:5])

        # ---- the old process ends -----------------------------------------------------------
        fp.max_cuts = fp.cuts
        fp.script = lambda index, rng: Fault(rst=False)
        rcs = await asyncio.gather(*(s.finish(20) for s in sessions))
        check(set(rcs) == {0}, "the %d sessions end normally (exit 0; got %s)"
              % (len(sessions), sorted(set(rcs))))
        r0.abort()  # its session stays detached on the old process (resume_ttl_ms)
        end = time.monotonic() + 10
        while len(events(old, "close")) < len(sessions) and time.monotonic() < end:
            await asyncio.sleep(0.1)
        # The operator does not wait for r0: a second SIGTERM during the drain stops at once.
        old._signal(signal.SIGTERM)
        end = time.monotonic() + 10
        while old.alive() and time.monotonic() < end:
            await asyncio.sleep(0.1)
        check(old.poll() == 0 and events(old, "drained"),
              "the old process, left with r0's detached session, stopped on a second SIGTERM, "
              "drained and exited 0 (%.1f s after the upgrade)" % (time.monotonic() - t_up))
        end = time.monotonic() + 3
        while not events(new, "handover", result="old_exited") and time.monotonic() < end:
            await asyncio.sleep(0.05)
        check(events(new, "handover", result="old_exited"), "the new process saw it go")
        ws = await connect("ws://127.0.0.1:%d/" % port)
        await ws.send(hello(token(sub="r0", exp_in=600),
                            resume={"token": r0.token, "channels": [
                                {"id": 1, "rx": r0.ch[1].rx, "credit": 0}]}))
        code, reason = await expect_close(ws, 5)
        check(code == 4011 and counter(port, "mana_resumes_total", "rejected") == 1,
              "r0's resume after the old process exited: %s %r from the new process" % (code,
                                                                                       reason))
        check(new.alive() and metrics(port).get("mana_sessions_active") is not None,
              "the new process keeps serving")
    finally:
        for s in sessions:
            if s.proc is not None and s.proc.returncode is None:
                s.proc.kill()
                await s.proc.wait()
        if r0 is not None and r0.ws is not None:
            r0.abort()
        if fp is not None:
            await fp.stop()
        for g in gws:
            g.stop(grace=2)
        sshd.stop()
        echo.proc.kill()
        echo.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--sshd", default=None)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--ssh-sessions", type=int, default=5)
    ap.add_argument("--kib", type=int, default=32)
    ap.add_argument("--cuts", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mana-handover-")
    t0 = time.monotonic()
    try:
        asyncio.run(run(args, tmp))
    except Failure as e:
        print("FAIL -", e)
        print("# logs in", tmp)
        return 1
    print("handover: all checks passed in %.1f s" % (time.monotonic() - t0))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
