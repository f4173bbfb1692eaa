#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fault scenarios against the real mana-gateway (issue #8, CI tier).

Starts its own sshd (loopback, own config and host key), target processes
(tools/devkit/targets.py: SSH-banner echo, seeded stream, black hole), mana-gateway processes
with short timers, and drives
them with a resuming mana.v1 client (python3-websockets, real HS256 JWTs) and the seeded fault
proxy (fault_proxy.py). Each scenario asserts behaviour and prints what it measured.

Scenarios (--only NAME,NAME runs a subset):
  refused      target port closed -> open_err target_unreachable, session unaffected
  vanish       target process killed mid-stream -> that channel closes; a channel to sshd works
  blackhole    target accepts, never sends -> channel closes "not_ssh" after banner_timeout_ms
  sshd_child   the sshd session process killed -> its channel closes, connection + sshd work
  halfopen_client  client silenced without FIN (proxy freeze) -> dead peer detected within
               2.5 x heartbeat_ms; the session resumes within TTL; unresumed, the target socket
               is freed after the TTL
  netns_halfopen  the same with a true half-open: inside `unshare -rn` (own loopback), the
               loopback link goes down under a live session (packets dropped, no FIN/RST)
  halfopen_target  gateway->target link frozen -> bounded buffering, gateway CPU stays small
  random_cuts  a seeded 24 MiB stream through <= 200 cuts at random byte offsets -> 0 lost / 0 dup
  flapping     300 ms outage every 1.5 s while a seeded stream flows -> 0 lost / 0 duplicated
  resume_partition  transport lost right after the resume hello -> the next resume with the
               same token succeeds, 0 lost bytes
  sigterm      SIGTERM -> clients get 1001, exit 0 within shutdown_grace_ms
  sigkill      SIGKILL + restart -> resume gets 4011, new sessions within 5 s of restart
  fd_exhaustion  RLIMIT_NOFILE 64, connections beyond it -> no busy loop, serves again after
  clock_step   the gateway's wall clock steps +1 h, then -2 h (LD_PRELOAD fault shim, monotonic
               clock untouched) -> heartbeat, idle timeout, resume TTL and ping rate limit as
               without a step; JWT exp/nbf follow the stepped wall clock at hello only
Usage: reliability_test.py --gateway PATH [--sshd PATH] [--only LIST] [--clock-shim PATH]
                           [--timing-scale F]
"""
import argparse
import asyncio
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import FaultProxy  # noqa: E402
from fixture import (Failure, check, connect, established_to, free_port, hello,  # noqa: E402
                     loopback, metrics, start_gateway, start_sshd, stop_all, token)
from rel_support import (BANNER, WINDOW, Client, children, cpu_s, rss_kib,  # noqa: E402
                         seeded_stream, start_target)

HEARTBEAT_MS = 400
MISSES = 2
TTL_MS = 3000
BANNER_TIMEOUT_MS = 500
GRACE_MS = 1500
SCALE = 1.0  # --timing-scale: upper time/CPU bounds are multiplied by it (sanitized builds)
HERE = os.path.dirname(os.path.abspath(__file__))

SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


def log_event_time(path, pred):
    """Wall-clock time (s) of the first JSON log line of `path` matching `pred`, or None."""
    import datetime
    for line in open(path, errors="replace"):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if pred(j):
            ts = datetime.datetime.strptime(j["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
            return ts.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


def figure(name, text):
    print("figure - %s: %s" % (name, text))


class Env:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.procs = []
        self.seq = 0
        self.targets = {}

    def sub(self, what):
        self.seq += 1
        return "rel-%s-%d" % (what, self.seq)

    def start_target(self, name, mode, *extra, port=None):
        t = start_target(mode, *extra, banner=BANNER,
                         log_path=os.path.join(self.tmp, name + ".log"),
                         listen=None if port is None else "127.0.0.1:%d" % port)
        self.procs.append(t.proc)
        self.targets[name] = (t.proc, t.port)
        return t.proc, t.port

    def config(self, server=None):
        return {"server": dict({"shutdown_grace_ms": GRACE_MS}, **(server or {})),
                "session": {"heartbeat_ms": HEARTBEAT_MS, "heartbeat_misses": MISSES,
                            "resume_ttl_ms": TTL_MS, "max_channels": 8},
                "limits": {"max_sessions_per_principal": 64},
                "rate": {"open_rate": 200, "open_burst": 400, "ping_rate": 200,
                         "ping_burst": 400, "resume_fail_rate": 50, "resume_fail_burst": 100},
                "relay": {"connect_timeout_ms": 1500, "banner_timeout_ms": BANNER_TIMEOUT_MS}}

    def gateway(self, name, ports, port=None, preexec=None, server=None, env_vars=None,
                config=None):
        proc, gport, log = start_gateway(
            self.tmp, self.args.gateway, name,
            config if config is not None else self.config(server), targets=loopback(*ports),
            listen="127.0.0.1:%d" % (port or 0), preexec_fn=preexec, env=env_vars)
        self.procs.append(proc)
        return proc, gport, log


# ---- scenarios ---------------------------------------------------------------------------------

@scenario
async def refused(env):
    c = Client(env.gw_port, env.sub("refused"))
    await c.attach()
    t0 = time.monotonic()
    m = await c.open(1, env.closed_port)
    dt = (time.monotonic() - t0) * 1e3
    check(m["t"] == "open_err" and m.get("code") == "target_unreachable",
          "refused: closed target port -> open_err target_unreachable (%s)" % m.get("code"))
    await c.ping_ok()
    m = await c.open(2, env.echo_port)
    check(m["t"] == "open_ok", "refused: the same session opens another channel")
    figure("refused", "open_err after %.1f ms" % dt)
    await c.close()


@scenario
async def vanish(env):
    victim, vport = env.start_target("vanish-echo", "echo", port=env.vanish_port)
    c = Client(env.gw_port, env.sub("vanish"))
    await c.attach()
    check((await c.open(1, vport))["t"] == "open_ok", "vanish: channel 1 to an echo target")
    check((await c.open(2, env.ssh_port))["t"] == "open_ok", "vanish: channel 2 to sshd")
    await c.wait_rx(1, len(BANNER))
    await c.send(1, b"x" * 1000)
    await c.wait_rx(1, len(BANNER) + 1000)
    await c.wait_rx(2, 8)
    victim.kill()
    t0 = time.monotonic()
    m = await c.wait_ctl(lambda j: j.get("t") == "close" and j.get("id") == 1, 5)
    dt = (time.monotonic() - t0) * 1e3
    check(True, "vanish: target killed -> channel 1 closes (reason %r)" % m.get("reason"))
    rx2 = c.ch[2].rx
    await c.send(2, b"SSH-2.0-mana_reliability\r\n")
    await c.wait_rx(2, rx2 + 6)
    check(c.closed is None and c.ch[2].open, "vanish: channel 2 keeps working (sshd KEXINIT)")
    figure("vanish", "close after %.1f ms" % dt)
    await c.close()


@scenario
async def blackhole(env):
    c = Client(env.gw_port, env.sub("blackhole"))
    await c.attach()
    t0 = time.monotonic()
    m = await c.open(1, env.blackhole_port)
    if m["t"] == "open_ok":
        m = await c.wait_ctl(lambda j: j.get("t") == "close" and j.get("id") == 1, 5)
        dt = (time.monotonic() - t0) * 1e3
        check(m.get("reason") == "not_ssh" and BANNER_TIMEOUT_MS * 0.9 <= dt <=
              BANNER_TIMEOUT_MS + 1000 * SCALE,
              "blackhole: silent target -> close not_ssh after %.0f ms (banner_timeout_ms %d)"
              % (dt, BANNER_TIMEOUT_MS))
    else:
        dt = (time.monotonic() - t0) * 1e3
        check(m.get("code") == "not_ssh", "blackhole: silent target -> open_err not_ssh")
    await c.ping_ok()
    figure("blackhole", "not_ssh after %.0f ms" % dt)
    await c.close()


@scenario
async def sshd_child(env):
    c = Client(env.gw_port, env.sub("sshd"))
    await c.attach()
    before = set(children(env.sshd.pid))
    check((await c.open(1, env.ssh_port))["t"] == "open_ok", "sshd_child: channel 1 to sshd")
    await c.wait_rx(1, 8)
    await c.send(1, b"SSH-2.0-mana_reliability\r\n")
    rx = c.ch[1].rx
    await c.wait_rx(1, rx + 6)
    new = [p for p in children(env.sshd.pid) if p not in before]
    tree = list(new)
    for p in new:
        tree += children(p)
    check(len(new) >= 1, "sshd_child: sshd forked a session process (%s, tree %s)" % (new, tree))
    for p in tree:
        os.kill(p, signal.SIGKILL)
    t0 = time.monotonic()
    m = await c.wait_ctl(lambda j: j.get("t") == "close" and j.get("id") == 1, 5)
    dt = (time.monotonic() - t0) * 1e3
    check(True, "sshd_child: session process killed -> channel closes (reason %r)"
          % m.get("reason"))
    await c.ping_ok()
    check((await c.open(2, env.ssh_port))["t"] == "open_ok", "sshd_child: a new channel opens")
    await c.wait_rx(2, 8)
    check(c.ch[2].head.startswith(b"SSH-2.0-"), "sshd_child: sshd still serves (banner)")
    figure("sshd_child", "close after %.1f ms" % dt)
    await c.close()


@scenario
async def halfopen_client(env):
    bound_ms = 2.5 * HEARTBEAT_MS * SCALE
    figures = []
    tcp_close = []
    for resume in (True, False):
        proxy = FaultProxy(env.gw_port, seed=21, max_cuts=0)
        pport = await proxy.start()
        c = Client(pport, env.sub("halfopen"))
        await c.attach()
        check((await c.open(1, env.echo_port))["t"] == "open_ok",
              "halfopen_client: channel to echo through the proxy")
        await c.wait_rx(1, len(BANNER))
        base = established_to(env.echo_port)
        await asyncio.sleep(HEARTBEAT_MS * 1.5 / 1000)  # a few heartbeats pass normally
        proxy.freeze("drop")
        conn = proxy.all[-1]
        wall0 = time.time()
        end = time.monotonic() + 4 * bound_ms / 1000
        seen = None
        while seen is None and time.monotonic() < end:
            await asyncio.sleep(0.02)
            seen = log_event_time(env.gw_log, lambda j: j.get("event") == "detach" and
                                  j.get("principal") == c.sub and j.get("code") == 4012)
        if seen is None:
            raise Failure("halfopen_client: gateway did not detach the silent peer within %.0f ms"
                          % (4 * bound_ms))
        det = (seen - wall0) * 1e3
        figures.append(det)
        check(det <= bound_ms, "halfopen_client: dead peer detected after %.0f ms (<= 2.5 x %d"
              " = %.0f ms)" % (det, HEARTBEAT_MS, bound_ms))
        check(c.closed is None, "halfopen_client: the client saw no close (true half-open)")
        if resume:
            c.abort()
            await proxy.stop()
            await asyncio.sleep(0.2)
            c.url = "ws://127.0.0.1:%d/" % env.gw_port
            await c.attach(resume=True)
            rx = c.ch[1].rx
            await c.send(1, b"after-resume")
            await c.wait_rx(1, rx + 12)
            check(True, "halfopen_client: session resumed within TTL, channel echoes")
            await c.close()
            continue
        # Not resumed: the target socket stays for the TTL, then goes; note when the gateway
        # gives up on the silent TCP socket itself.
        freed = None
        end = seen + (TTL_MS + 3000) / 1000
        while time.time() < end and (freed is None or "u2c" not in conn.eof_at):
            if freed is None and established_to(env.echo_port) < base:
                freed = (time.time() - seen) * 1e3
            await asyncio.sleep(0.02)
        tcp_close.append(("%.0f" % ((conn.eof_at["u2c"] - conn.frozen_at) * 1e3))
                         if "u2c" in conn.eof_at else "> %d" % (TTL_MS + 3000))
        # The 4012 close frame goes out, the dead peer never answers it: the gateway waits at
        # most 1 s for the close handshake (Connection::close_handshake_ms), then drops the socket.
        gone = (conn.eof_at["u2c"] - conn.frozen_at) * 1e3 - det if "u2c" in conn.eof_at else None
        check(gone is not None and gone <= (1000 + 500) * SCALE,
              "halfopen_client: the gateway closed the silent TCP socket %s ms after the detach "
              "(close handshake bound 1000 ms)" % ("%.0f" % gone if gone is not None else "never"))
        check(freed is not None and TTL_MS * 0.9 <= freed <= TTL_MS + 1500 * SCALE,
              "halfopen_client: unresumed session frees its target socket %s ms after the "
              "detection (TTL %d ms)" % ("%.0f" % freed if freed else "never", TTL_MS))
        c.abort()
        await proxy.stop()
    figure("halfopen_client", "detection %s ms, bound %.0f ms; gateway closed the silent TCP "
           "socket %s ms after the freeze" % (", ".join("%.0f" % d for d in figures), bound_ms,
                                             ", ".join(tcp_close)))


@scenario
async def netns_halfopen(env):
    """True half-open in a network namespace of our own (unshare -rn): loopback goes down."""
    p = subprocess.run(["unshare", "-rn", sys.executable, os.path.abspath(__file__),
                        "--gateway", env.args.gateway, "--netns-child",
                        "--timing-scale", str(SCALE)],
                       capture_output=True, text=True, timeout=60)
    for line in p.stdout.splitlines():
        if line.startswith(("ok -", "figure -", "FAIL -")):
            print("  [netns] " + line)
    if p.returncode != 0:
        raise Failure("netns_halfopen: child failed (%d): %s" % (
            p.returncode, (p.stdout + p.stderr)[-1500:]))


async def netns_child(env):
    """Runs inside `unshare -rn`: gateway, echo target and client share a private loopback."""
    def ip_lo(state):
        subprocess.run(["ip", "link", "set", "lo", state], check=True)
    bound_ms = 2.5 * HEARTBEAT_MS * SCALE
    c = Client(env.gw_port, env.sub("netns"))
    await c.attach()
    check((await c.open(1, env.echo_port))["t"] == "open_ok", "netns: channel to echo")
    await c.wait_rx(1, len(BANNER))
    await asyncio.sleep(HEARTBEAT_MS * 1.5 / 1000)
    wall0 = time.time()
    ip_lo("down")  # every packet is dropped from here on: no FIN, no RST either way
    seen = None
    end = time.monotonic() + 4 * bound_ms / 1000
    try:
        while seen is None and time.monotonic() < end:
            await asyncio.sleep(0.02)
            seen = log_event_time(env.gw_log, lambda j: j.get("event") == "detach" and
                                  j.get("principal") == c.sub and j.get("code") == 4012)
    finally:
        ip_lo("up")
    if seen is None:
        raise Failure("netns: gateway did not detach the silent peer within %.0f ms"
                      % (4 * bound_ms))
    det = (seen - wall0) * 1e3
    check(det <= bound_ms, "netns: loopback down -> dead peer detected after %.0f ms "
          "(<= 2.5 x %d = %.0f ms)" % (det, HEARTBEAT_MS, bound_ms))
    check(c.closed is None, "netns: the client saw no close (true half-open)")
    c.abort()
    await c.attach(resume=True)
    rx = c.ch[1].rx
    await c.send(1, b"after-netns")
    await c.wait_rx(1, rx + 11)
    check(True, "netns: after the link is back the session resumes and echoes")
    # A slow link: tc tbf on the namespace's loopback (both legs cross it), 1 MiB byte-exact.
    # (burst above the 64 KiB loopback MTU, or big segments never pass.)
    rate_bit = 16_000_000
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", str(rate_bit),
                    "burst", "96kb", "latency", "200ms"], check=True)
    length = 1 << 20
    want = hashlib.sha256(BANNER + seeded_stream(61, length)).hexdigest()
    t0 = time.monotonic()
    check((await c.open(2, env.stream_port))["t"] == "open_ok", "netns: stream over tc tbf")
    await c.wait_ctl(lambda j: j.get("t") == "close" and j.get("id") == 2, 30)
    dt = time.monotonic() - t0
    subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=True)
    got = c.ch[2].hash.hexdigest()
    mbit = c.ch[2].rx * 8 / dt / 1e6
    check(c.ch[2].rx == len(BANNER) + length and got == want and mbit <= rate_bit / 1e6,
          "netns: 1 MiB through a %d Mbit/s tbf link byte-exact at %.1f Mbit/s (both legs "
          "share the link)" % (rate_bit // 1000000, mbit))
    figure("netns_halfopen", "detection %.0f ms (bound %.0f ms); tbf %d Mbit/s: 1 MiB in "
           "%.2f s" % (det, bound_ms, rate_bit // 1000000, dt))
    await c.close()


@scenario
async def halfopen_target(env):
    proxy = FaultProxy(env.stream_port, seed=22, max_cuts=0)
    pport = await proxy.start()
    env.proxy_slot.upstream_port = pport  # the gateway allows the slot port, which forwards here
    c = Client(env.gw_port, env.sub("htarget"))
    await c.attach()
    check((await c.open(1, env.slot_port))["t"] == "open_ok",
          "halfopen_target: channel to a stream target through the proxy")
    await c.wait_rx(1, 256 << 10, timeout=10)
    proxy.freeze("hold")
    await asyncio.sleep(0.3)
    rx0 = c.ch[1].rx
    # Also push client->target bytes into the frozen link, up to the credit the gateway gave.
    sent = 0
    for _ in range(int(WINDOW / 16384)):
        await c.send(1, b"u" * 16384)
        sent += 16384
    gw = env.gw_proc.pid
    cpu0, rss0 = cpu_s(gw), rss_kib(gw)
    await asyncio.sleep(2.0)
    cpu1, rss1 = cpu_s(gw), rss_kib(gw)
    m = metrics(env.gw_port)
    buffered = int(m.get("mana_buffered_bytes_max", 0))
    bound = 2097152 + 1048576
    check(c.ch[1].rx - rx0 < 64 << 10, "halfopen_target: nothing flows while frozen")
    check(cpu1 - cpu0 < 0.3 * SCALE, "halfopen_target: gateway CPU %.2f s over a 2 s freeze "
          "(< %.1f)" % (cpu1 - cpu0, 0.3 * SCALE))
    check(buffered <= bound and rss1 - rss0 < 8192,
          "halfopen_target: buffered %d bytes (<= %d), RSS %+d KiB" % (buffered, bound,
                                                                       rss1 - rss0))
    await c.ping_ok()
    proxy.thaw()
    rx1 = c.ch[1].rx
    await c.wait_rx(1, rx1 + (128 << 10), timeout=10)
    check(True, "halfopen_target: after the thaw the stream flows again")
    figure("halfopen_target", "CPU %.3f s in 2 s, %d bytes pushed, buffered max %d, RSS %+d KiB"
           % (cpu1 - cpu0, sent, buffered, rss1 - rss0))
    await c.close()
    await proxy.stop()


async def resuming_download(c, cid, expected_len, expected_hash, deadline, on_attach=None):
    """Keeps resuming `c` until channel `cid` closed with eof; returns transports used."""
    transports = 1
    while True:
        ch = c.ch[cid]
        if ch.closed is not None:
            break
        if time.monotonic() > deadline:
            raise Failure("stream incomplete: %d of %d bytes" % (ch.rx, expected_len))
        lost = asyncio.ensure_future(c.lost.wait())
        await asyncio.wait([lost], timeout=0.2)
        lost.cancel()
        if c.lost.is_set() and ch.closed is None:
            if c.closed and c.closed[0] in (4011, 1001, 4003):
                raise Failure("final close %r during the stream" % (c.closed,))
            while time.monotonic() < deadline:
                try:
                    await c.attach(resume=True)
                    transports += 1
                    break
                except Failure:
                    raise
                except Exception:  # noqa: BLE001 - link down: retry
                    await asyncio.sleep(0.05)
    return transports


@scenario
async def flapping(env):
    length, rate = 6 << 20, 800e3
    sp, sport = env.start_target("flap-stream", "stream", 31, length, rate)
    env.proxy_slot.upstream_port = sport
    data = seeded_stream(31, length)
    want = hashlib.sha256(BANNER + data).hexdigest()
    proxy = FaultProxy(env.gw_port, seed=32, max_cuts=0)
    pport = await proxy.start()
    c = Client(pport, env.sub("flap"))
    await c.attach()
    check((await c.open(1, env.slot_port))["t"] == "open_ok", "flapping: stream channel open")
    stop = asyncio.Event()
    outages = [0]

    async def flap():
        rst = True
        while not stop.is_set():
            await asyncio.sleep(1.2)
            if stop.is_set():
                break
            proxy.down = True
            proxy.cut(rst=rst)
            outages[0] += 1
            rst = not rst
            await asyncio.sleep(0.3)
            proxy.down = False

    f = asyncio.ensure_future(flap())
    t0 = time.monotonic()
    try:
        transports = await resuming_download(c, 1, len(BANNER) + length, want, t0 + 60)
    finally:
        stop.set()
        await f
    dt = time.monotonic() - t0
    ch = c.ch[1]
    got = ch.hash.hexdigest()
    check(ch.closed.get("reason") == "eof", "flapping: stream ended with eof")
    check(ch.rx == len(BANNER) + length and got == want,
          "flapping: %d bytes, SHA-256 %s after %d outages (%d cuts, %d refused connects), "
          "%d transports" % (ch.rx, "matches" if got == want else "DIFFERS", outages[0],
                              proxy.cuts, proxy.refused, transports))
    check(proxy.cuts >= 5, "flapping: at least 5 forced drops (%d)" % proxy.cuts)
    env.drops += proxy.cuts
    figure("flapping", "%d bytes in %.1f s, %d drops, 0 lost, 0 duplicated" %
           (ch.rx, dt, proxy.cuts))
    await c.close()
    await proxy.stop()
    sp.kill()


@scenario
async def random_cuts(env):
    length = 24 << 20
    sp, sport = env.start_target("cuts-stream", "stream", 51, length, 50e6)
    env.proxy_slot.upstream_port = sport
    want = hashlib.sha256(BANNER + seeded_stream(51, length)).hexdigest()
    proxy = FaultProxy(env.gw_port, seed=52, min_bytes=16 << 10, max_bytes=160 << 10,
                       max_cuts=200)
    pport = await proxy.start()
    c = Client(pport, env.sub("cuts"))
    await c.attach()
    check((await c.open(1, env.slot_port))["t"] == "open_ok", "random_cuts: stream channel open")
    t0 = time.monotonic()
    transports = await resuming_download(c, 1, len(BANNER) + length, want, t0 + 90)
    dt = time.monotonic() - t0
    got = c.ch[1].hash.hexdigest()
    check(c.ch[1].rx == len(BANNER) + length and got == want,
          "random_cuts: %d bytes, SHA-256 %s through %d cuts at random byte offsets (RST or FIN)"
          % (c.ch[1].rx, "matches" if got == want else "DIFFERS", proxy.cuts))
    check(proxy.cuts >= 150, "random_cuts: at least 150 forced drops (%d)" % proxy.cuts)
    env.drops += proxy.cuts
    figure("random_cuts", "%d bytes in %.1f s, %d drops, %d transports, 0 lost, 0 duplicated"
           % (c.ch[1].rx, dt, proxy.cuts, transports))
    await c.close()
    await proxy.stop()
    sp.kill()


async def partition_during_resume(env, lost):
    length, rate = 2 << 20, 1e6
    sp, sport = env.start_target("part-stream-%d" % lost, "stream", 41, length, rate)
    env.proxy_slot.upstream_port = sport
    want = hashlib.sha256(BANNER + seeded_stream(41, length)).hexdigest()
    c = Client(env.gw_port, env.sub("part"))
    await c.attach()
    check((await c.open(1, env.slot_port))["t"] == "open_ok", "resume_partition: stream open")
    await c.wait_rx(1, 300 << 10)
    c.abort()
    await c.lost.wait()
    old = c.token
    # The resume hello goes out, then the link dies before anything comes back.
    # (150 ms: the gateway has certainly processed the hello and sent hello_ok.)
    for _ in range(lost):
        ws = await c.attach(resume=True, send_only=True)
        await asyncio.sleep(0.15)
        ws.transport.abort()
        await asyncio.sleep(0.05)
    check(c.token == old, "resume_partition: %d resume hello(s) answered into a dead link"
          % lost)
    try:
        ok = await c.attach(resume=True)
    except Exception as e:  # noqa: BLE001
        raise Failure("resume_partition: the next resume with the same token failed: %r (%r)"
                      % (e, c.closed))
    check(ok["resume"]["token"] != old, "resume_partition: the next resume with the same token "
          "is accepted, token rotated")
    transports = await resuming_download(c, 1, len(BANNER) + length, want, time.monotonic() + 20)
    got = c.ch[1].hash.hexdigest()
    check(c.ch[1].rx == len(BANNER) + length and got == want,
          "resume_partition: %d bytes, SHA-256 %s" % (c.ch[1].rx,
                                                      "matches" if got == want else "DIFFERS"))
    env.drops += 1 + lost
    figure("resume_partition", "%d drops (%d during the resume handshake), %d transports after"
           % (1 + lost, lost, transports))
    await c.close()
    sp.kill()


@scenario
async def resume_partition(env):
    await partition_during_resume(env, 1)


@scenario
async def resume_partition_twice(env):
    await partition_during_resume(env, 2)


@scenario
async def sigterm(env):
    proc, port, _ = env.gateway("gw-term", [env.echo_port])
    clients = []
    for i in range(3):
        c = Client(port, env.sub("term"))
        await c.attach()
        if (await c.open(1, env.echo_port))["t"] != "open_ok":
            raise Failure("sigterm: channel to echo refused")
        clients.append(c)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    for c in clients:
        await asyncio.wait_for(c.lost.wait(), GRACE_MS / 1000 + 2)
    codes = [c.closed[0] for c in clients]
    check(all(code == 1001 for code in codes), "sigterm: every client got 1001 (%s)" % codes)
    rc = None
    while time.monotonic() - t0 < GRACE_MS / 1000 + 2 and rc is None:
        rc = proc.poll()
        await asyncio.sleep(0.02)
    dt = (time.monotonic() - t0) * 1e3
    check(rc == 0 and dt <= GRACE_MS + 300 * SCALE,
          "sigterm: gateway exited %s after %.0f ms (shutdown_grace_ms %d)" % (rc, dt, GRACE_MS))
    figure("sigterm", "3 clients closed 1001, exit after %.0f ms" % dt)


@scenario
async def sigkill(env):
    proc, port, _ = env.gateway("gw-kill", [env.echo_port])
    c = Client(port, env.sub("kill"))
    await c.attach()
    check((await c.open(1, env.echo_port))["t"] == "open_ok", "sigkill: session with a channel")
    proc.kill()
    proc.wait()
    await asyncio.wait_for(c.lost.wait(), 3)
    t0 = time.monotonic()
    proc2, _, _ = env.gateway("gw-kill2", [env.echo_port], port=port)
    served = None
    while time.monotonic() - t0 < 5 and served is None:
        try:
            n = Client(port, env.sub("kill-new"))
            await n.attach()
            served = (time.monotonic() - t0) * 1e3
            await n.close()
        except Exception:  # noqa: BLE001
            await asyncio.sleep(0.05)
    check(served is not None, "sigkill: new session served %.0f ms after restart (<= 5000)"
          % (served or -1))
    code = None
    try:
        await c.attach(resume=True)
    except websockets.exceptions.ConnectionClosed as e:
        code, reason = e.code, e.reason
    check(code == 4011, "sigkill: resume against the restarted gateway -> close %s %r (4011)"
          % (code, reason if code else None))
    figure("sigkill", "restart to first hello_ok %.0f ms" % served)


@scenario
async def fd_exhaustion(env):
    def lim():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    proc, port, log = env.gateway(
        "gw-fd", [env.echo_port], preexec=lim,
        server={"http_timeout_ms": 20000, "max_http_connections": 4096,
                "max_http_connections_per_ip": 4096},
    )
    base_fds = len(os.listdir("/proc/%d/fd" % proc.pid))
    socks = []
    for _ in range(120):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    await asyncio.sleep(0.5)
    fds = len(os.listdir("/proc/%d/fd" % proc.pid))
    cpu0 = cpu_s(proc.pid)
    await asyncio.sleep(2.0)
    cpu1 = cpu_s(proc.pid)
    log_lines = sum(1 for _ in open(log))
    check(proc.poll() is None, "fd_exhaustion: gateway alive with 120 connections at "
          "RLIMIT_NOFILE 64 (%d fds open, %d at start)" % (fds, base_fds))
    figure("fd_exhaustion", "CPU %.2f s over 2 s at the fd limit, %d log lines"
           % (cpu1 - cpu0, log_lines))
    busy = cpu1 - cpu0
    for s in socks:
        s.close()
    t0 = time.monotonic()
    served = None
    while time.monotonic() - t0 < 10 and served is None:
        try:
            n = Client(port, env.sub("fd-new"))
            await n.attach()
            served = (time.monotonic() - t0) * 1e3
            await n.close()
        except Exception:  # noqa: BLE001
            await asyncio.sleep(0.1)
    check(served is not None, "fd_exhaustion: serves again %.0f ms after the excess went away"
          % (served or -1))
    check(busy < 0.5 * SCALE, "fd_exhaustion: no busy loop at the fd limit (CPU %.2f s in 2 s, "
          "< %.1f)" % (busy, 0.5 * SCALE))
    proc.kill()


def set_wall_offset(path, seconds):
    """Steps the wall clock of every process under the clock_step shim reading `path`."""
    with open(path + ".new", "w") as f:
        f.write("%d\n" % seconds)
    os.replace(path + ".new", path)


async def hello_result(port, tok, local_ip=None):
    """'ok' if the gateway answers `hello` with hello_ok, else its close code."""
    ws = await connect("ws://127.0.0.1:%d/" % port, local_ip=local_ip, ping_interval=None)
    try:
        await ws.send(hello(tok))
        while True:
            j = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if j.get("t") == "hello_ok":
                return "ok"
    except websockets.exceptions.ConnectionClosed as e:
        return e.code
    finally:
        ws.transport.abort()


async def silent_session(port, sub, exp_in, armed):
    """Authenticates, then never sends again; returns (s from hello to the close, close code)."""
    ws = await connect("ws://127.0.0.1:%d/" % port, ping_interval=None)
    t0 = time.monotonic()
    await ws.send(hello(token(sub=sub, exp_in=exp_in)))
    first = None
    try:
        while True:
            m = await asyncio.wait_for(ws.recv(), 20)
            if first is None:
                first = json.loads(m).get("t")
                if first != "hello_ok":
                    raise Failure("silent session: expected hello_ok, got %r" % m)
                armed.set()
    except websockets.exceptions.ConnectionClosed as e:
        return time.monotonic() - t0, e.code


async def ttl_probe(port, echo_port, sub, exp_in, armed):
    """Detached session with a channel; returns s from the transport loss to the target freed."""
    c = Client(port, sub, exp_in=exp_in)
    await c.attach()
    if (await c.open(1, echo_port))["t"] != "open_ok":
        raise Failure("ttl probe: channel refused")
    await c.wait_rx(1, len(BANNER))
    base = established_to(echo_port)
    c.abort()
    t0 = time.monotonic()
    armed.set()
    end = t0 + (TTL_MS + 3000) / 1000 * SCALE
    while time.monotonic() < end:
        if established_to(echo_port) < base:
            return time.monotonic() - t0
        await asyncio.sleep(0.01)
    raise Failure("ttl probe: target socket not freed within TTL + 3 s")


async def resume_probe(port, echo_port, sub, exp_in, resume_exp_in, armed):
    """Detaches, waits 0.7 x TTL, resumes (token minted for the stepped clock) and echoes."""
    c = Client(port, sub, exp_in=exp_in)
    await c.attach()
    if (await c.open(1, echo_port))["t"] != "open_ok":
        raise Failure("resume probe: channel refused")
    await c.wait_rx(1, len(BANNER))
    c.abort()
    armed.set()
    await asyncio.sleep(TTL_MS * 0.7 / 1000)
    c.exp_in = resume_exp_in
    await c.attach(resume=True)
    rx = c.ch[1].rx
    await c.send(1, b"resumed-after-step")
    await c.wait_rx(1, rx + 18)
    await c.close()
    return True


def log_offsets(path, start):
    """Wall-clock offsets (log ts - real now, s) of the JSON log lines after byte `start`."""
    import datetime
    now = time.time()
    out = []
    with open(path, errors="replace") as f:
        f.seek(start)
        for line in f:
            try:
                ts = datetime.datetime.strptime(json.loads(line)["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
            except (ValueError, KeyError):
                continue
            out.append(ts.replace(tzinfo=datetime.timezone.utc).timestamp() - now)
    return out


async def drain_pings(c, n):
    for _ in range(n):
        await c.ping_ok()


@scenario
async def clock_step(env):
    """Wall clock +1 h, then -2 h under live sessions: timers and limits use the monotonic clock."""
    shim = env.args.clock_shim
    if not os.path.exists(shim):
        raise Failure("clock_step: fault shim %s not built (target mana_clock_step_shim)" % shim)
    offset_file = os.path.join(env.tmp, "wall_offset")
    set_wall_offset(offset_file, 0)
    asan = os.environ.get("ASAN_OPTIONS", "")
    shim_env = {"LD_PRELOAD": os.path.abspath(shim), "MANA_FAKE_CLOCK_STEP_FILE": offset_file,
                # the shim is not instrumented: let an ASan gateway load it first
                "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
    _, ttl_echo = env.start_target("clock-ttl-echo", "echo")
    ping_rate, ping_burst = 2, 10
    conf_a = env.config()
    conf_a["rate"].update(ping_rate=ping_rate, ping_burst=ping_burst)
    idle_ms = 1000
    conf_b = env.config()
    conf_b["session"].update(heartbeat_ms=5000, heartbeat_misses=3, idle_timeout_ms=idle_ms)
    check(conf_a["rate"]["ping_burst"] == ping_burst and "idle_timeout_ms" in conf_b["session"],
          "clock_step: gateway configs (ping_rate %d/s burst %d; idle_timeout_ms %d)"
          % (ping_rate, ping_burst, idle_ms))
    _, port_a, log_a = env.gateway("gw-clock-a", [env.echo_port, ttl_echo], env_vars=shim_env,
                                   config=conf_a)
    _, port_b, _ = env.gateway("gw-clock-b", [env.echo_port], env_vars=shim_env, config=conf_b)

    live = Client(port_a, env.sub("clock-live"), exp_in=600)
    await live.attach()
    check((await live.open(1, env.echo_port))["t"] == "open_ok", "clock_step: live session")
    await live.wait_rx(1, len(BANNER))
    t_live = time.monotonic()

    phases = [("baseline", None), ("+1 h", 3600), ("-2 h", -3600)]
    results = {}
    offset = 0
    for name, step_to in phases:
        exp_in = max(offset, 0) + 600        # valid for the gateway's clock before the step
        after_exp_in = max(step_to if step_to is not None else offset, 0) + 600
        armed = [asyncio.Event() for _ in range(4)]
        tasks = [asyncio.ensure_future(silent_session(port_a, env.sub("clock-silent"), exp_in,
                                                      armed[0])),
                 asyncio.ensure_future(silent_session(port_b, env.sub("clock-idle"), exp_in,
                                                      armed[1])),
                 asyncio.ensure_future(ttl_probe(port_a, ttl_echo, env.sub("clock-ttl"), exp_in,
                                                 armed[2])),
                 asyncio.ensure_future(resume_probe(port_a, env.echo_port,
                                                    env.sub("clock-resume"), exp_in,
                                                    after_exp_in, armed[3]))]
        rl = Client(port_a, env.sub("clock-rate"), local_ip="127.0.0.%d" % (5 + len(results)),
                    exp_in=exp_in)
        await rl.attach()
        await drain_pings(rl, ping_burst)   # the ping bucket of this address is now empty
        await asyncio.wait_for(asyncio.gather(*[a.wait() for a in armed]), 5)
        await asyncio.sleep(0.2)            # every timer is running: now step the wall clock
        log_pos = os.path.getsize(log_a)
        if step_to is not None:
            set_wall_offset(offset_file, step_to)
            offset = step_to
            await asyncio.sleep(0.05)       # the shim re-reads the file every 20 ms
        # Rate limit: refills at ping_rate per monotonic second whatever the wall clock did.
        rate_note = ""
        if step_to is not None and step_to > 0:
            # A wall-clock bucket would now be full; a monotonic one holds < 1 token.
            try:
                for _ in range(4):
                    await rl.ping_ok(2)
            except (Failure, websockets.exceptions.ConnectionClosed):
                pass
            await asyncio.wait_for(rl.lost.wait(), 3)
            code = rl.closed[0] if rl.closed else None
            check(code == 4004, "clock_step %s: an empty ping bucket stays empty across the "
                  "step (4 pings at once -> close %s, want 4004)" % (name, code))
            rate_note = "4 pings right after the step -> 4004"
        elif step_to is not None:
            # A wall-clock bucket would see time go backwards and refill nothing.
            await asyncio.sleep(1.6)
            for _ in range(2):
                await rl.ping_ok(2)
            check(rl.closed is None, "clock_step %s: the ping bucket refills at %d/s across the "
                  "step (2 pings 1.6 s later answered)" % (name, ping_rate))
            rate_note = "2 pings 1.6 s after the step answered"
        silent, idle, ttl, _resumed = await asyncio.wait_for(
            asyncio.gather(*tasks), (TTL_MS + 6000) / 1000 * SCALE)
        results[name] = (silent, idle, ttl)
        check(silent[1] == 4012 and idle[1] == 4012 and _resumed,
              "clock_step %s: silent peer closed 4012 after %.0f ms (heartbeat), idle session "
              "4012 after %.0f ms (idle_timeout_ms %d), unresumed target freed %.0f ms after "
              "the loss, a resume at 0.7 x TTL echoes%s"
              % (name, silent[0] * 1e3, idle[0] * 1e3, idle_ms, ttl * 1e3,
                 "; " + rate_note if rate_note else ""))
        # JWT exp / nbf are wall-clock claims: checked against the stepped clock at hello.
        real = int(time.time())
        if step_to is not None and step_to > 0:
            r_old = await hello_result(port_a, token(sub=env.sub("clock-jwt"), exp_in=600))
            r_new = await hello_result(port_a, token(sub=env.sub("clock-jwt"), exp_in=4200))
            check(r_old == 4003 and r_new == "ok", "clock_step %s: new hello with exp = now + "
                  "10 min -> %s (4003: expired on the gateway's clock), exp = now + 70 min -> %s"
                  % (name, r_old, r_new))
        elif step_to is not None:
            r_ok = await hello_result(port_a, token(sub=env.sub("clock-jwt"), exp_in=600))
            r_nbf = await hello_result(port_a, token(sub=env.sub("clock-jwt"), exp_in=4200,
                                                     nbf=real))
            check(r_ok == "ok" and r_nbf == 4003, "clock_step %s: new hello with exp = now + "
                  "10 min -> %s, nbf = now -> %s (4003: an hour ahead of the gateway's clock)"
                  % (name, r_ok, r_nbf))
        if step_to is not None:
            offs = log_offsets(log_a, log_pos)
            check(offs and all(abs(o - step_to) < 10 for o in offs),
                  "clock_step %s: the gateway's log timestamps moved by %+.0f s (%d lines): the "
                  "step reached the gateway" % (name, sum(offs) / max(len(offs), 1), len(offs)))
        rx = live.ch[1].rx
        await live.send(1, b"live-%d" % len(results))
        await live.wait_rx(1, rx + 6)
        check(live.closed is None, "clock_step %s: the established session (token minted before "
              "the step) still relays" % name)
        await rl.close()
    base = results["baseline"]
    tol = 0.3 * SCALE  # a wall-clock timer would be off by the whole step (1 h)
    for name in ("+1 h", "-2 h"):
        r = results[name]
        check(abs(r[0][0] - base[0][0]) <= tol and abs(r[1][0] - base[1][0]) <= tol and
              abs(r[2] - base[2]) <= tol,
              "clock_step %s: heartbeat / idle / TTL expiry %.0f / %.0f / %.0f ms vs %.0f / %.0f /"
              " %.0f ms without a step (tolerance %.0f ms)"
              % (name, r[0][0] * 1e3, r[1][0] * 1e3, r[2] * 1e3, base[0][0] * 1e3,
                 base[1][0] * 1e3, base[2] * 1e3, tol * 1e3))
    check(base[0][0] * 1e3 <= 2.5 * HEARTBEAT_MS * SCALE + 200 and
          0.9 * idle_ms <= base[1][0] * 1e3 <= idle_ms + 500 * SCALE and
          0.9 * TTL_MS <= base[2] * 1e3 <= TTL_MS + 500 * SCALE,
          "clock_step: baseline timers within their bounds")
    gaps = [b - a for a, b in zip(live.ping_times, live.ping_times[1:])]
    held = time.monotonic() - t_live
    check(live.closed is None and gaps and max(gaps) <= 2.5 * HEARTBEAT_MS / 1000 * SCALE,
          "clock_step: live session held %.1f s across both steps, %d heartbeat pings, largest "
          "gap %.0f ms (heartbeat_ms %d)" % (held, len(live.ping_times), max(gaps) * 1e3,
                                             HEARTBEAT_MS))
    figure("clock_step", "heartbeat close %s ms, idle close %s ms, TTL expiry %s ms (baseline, "
           "+1 h, -2 h); ping gap max %.0f ms over %.1f s"
           % ("/".join("%.0f" % (results[n][0][0] * 1e3) for n, _ in phases),
              "/".join("%.0f" % (results[n][1][0] * 1e3) for n, _ in phases),
              "/".join("%.0f" % (results[n][2] * 1e3) for n, _ in phases), max(gaps) * 1e3,
              held))
    await live.close()


class Slot:
    """A fixed allowlisted port that forwards to a port chosen later (targets started late)."""

    def __init__(self):
        self.upstream_port = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, r, w):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except (OSError, TypeError):
            w.transport.abort()
            return

        async def pump(a, b):
            try:
                while True:
                    d = await a.read(65536)
                    if not d:
                        break
                    b.write(d)
                    await b.drain()
                if b.can_write_eof():
                    b.write_eof()
            except (ConnectionError, OSError):
                b.transport.abort()
        await asyncio.gather(pump(r, uw), pump(ur, w), return_exceptions=True)
        w.close()
        uw.close()


async def run(env, only, skip):
    env.proxy_slot = Slot()
    env.slot_port = await env.proxy_slot.start()
    env.gw_proc, env.gw_port, env.gw_log = env.gateway(
        "gw", [env.ssh_port, env.echo_port, env.blackhole_port, env.closed_port,
               env.slot_port, env.vanish_port])
    failures = []
    for fn in SCENARIOS:
        if (only and fn.__name__ not in only) or fn.__name__ in skip:
            if fn.__name__ in skip:
                print("# scenario %s skipped (--skip)" % fn.__name__)
            continue
        print("# scenario", fn.__name__)
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(fn(env), 90)
        except Exception as e:  # noqa: BLE001
            print("FAIL - %s: %s" % (fn.__name__, e))
            failures.append(fn.__name__)
        print("# %s took %.1f s" % (fn.__name__, time.monotonic() - t0))
    return failures


def run_netns_child(env):
    rc = 1
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        _, env.echo_port = env.start_target("echo", "echo")
        _, env.stream_port = env.start_target("stream", "stream", 61, 1 << 20, 1e9)
        env.gw_proc, env.gw_port, env.gw_log = env.gateway("gw-netns",
                                                           [env.echo_port, env.stream_port])
        asyncio.run(asyncio.wait_for(netns_child(env), 30))
        rc = 0
    except Exception as e:  # noqa: BLE001
        print("FAIL - %s" % e)
    finally:
        stop_all(env.procs)
        shutil.rmtree(env.tmp, ignore_errors=True)
    return rc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--sshd", default=shutil.which("sshd") or "/usr/sbin/sshd")
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="", help="scenarios not to run (known gateway bugs)")
    ap.add_argument("--clock-shim", default=None,
                    help="the clock_step fault shim (default: <gateway dir>/../lib/"
                         "libmana_clock_step_shim.so)")
    ap.add_argument("--timing-scale", type=float, default=1.0,
                    help="multiply upper time and CPU bounds (e.g. 3 for an ASan gateway)")
    ap.add_argument("--netns-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    global SCALE
    SCALE = args.timing_scale
    if args.clock_shim is None:
        args.clock_shim = os.path.join(os.path.dirname(os.path.abspath(args.gateway)), "..",
                                       "lib", "libmana_clock_step_shim.so")
    only = [s for s in args.only.split(",") if s]
    env_skip = [s for s in args.skip.split(",") if s]
    tmp = tempfile.mkdtemp(prefix="mana-rel-")
    env = Env(args, tmp)
    env.drops = 0
    failures = ["setup"]
    t0 = time.monotonic()
    if args.netns_child:
        return run_netns_child(env)
    try:
        env.sshd, env.ssh_port = start_sshd(tmp, args.sshd)
        env.procs.append(env.sshd)
        _, env.echo_port = env.start_target("echo", "echo")
        _, env.stream_port = env.start_target("stream", "stream", 7, 64 << 20, 4e6)
        _, env.blackhole_port = env.start_target("blackhole", "blackhole")
        env.closed_port = free_port()
        env.vanish_port = free_port()
        failures = asyncio.run(run(env, only, env_skip))
    except Exception as e:  # noqa: BLE001
        print("FAIL - setup: %s" % e)
    finally:
        stop_all(env.procs)
    if failures:
        for name in os.listdir(tmp):
            if name.endswith(".log") and name.startswith("gw"):
                print("--- %s (tail)" % name)
                print(open(os.path.join(tmp, name)).read()[-1500:])
    shutil.rmtree(tmp, ignore_errors=True)
    figure("total", "%d forced transport drops survived, %.1f s wall" %
           (env.drops, time.monotonic() - t0))
    if failures:
        print("FAILED scenarios: %s" % ", ".join(failures))
        return 1
    print("all reliability scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
