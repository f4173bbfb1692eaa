#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Drain of one gateway ([server] drain_timeout_ms, SIGTERM; issue #18 section 2).

Against the real gateway and an echo target (tools/devkit launchers):
  drain_until_idle  SIGTERM with drain_timeout_ms = 20 s: /healthz turns 503 at once (/metrics
                    still answers); a running session keeps transferring byte-exact (2 MiB echoed
                    by SHA-256 during the drain); a second session loses its transport and
                    resumes (accepted); a fresh hello is refused with 4010 "server draining"
                    (counted as mana_policy_rejections_total{reason="draining"}); when the last
                    two sessions end (client close 1000) the gateway logs `drained` and exits 0,
                    long before the timeout.
  drain_timeout     SIGTERM with drain_timeout_ms = 1.5 s and one idle session: the session is
                    closed with the final 1001 "server shutdown: drain timeout" no earlier than
                    the timeout and within 2 s after it; the gateway exits 0.
  second_signal     a second SIGTERM during a drain stops at once: 1001 "server shutdown".
Usage: drain_test.py --gateway PATH [--keep]
"""
import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (ORIGIN, SECRET, Failure, check, connect, expect_close, hello,  # noqa: E402
                     launch_gateway, loopback, metrics, token)
from rel_support import BANNER, WINDOW, Client, seeded_stream, start_target  # noqa: E402

MiB = 1 << 20


def healthz(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def transfer(c, cid, seed, n):
    """Echo n bytes through channel `cid`, at most half a window in flight."""
    data = seeded_stream(seed, n)
    ch = c.ch[cid]
    base = ch.rx
    sent = 0
    step = 16384
    while sent < len(data):
        if c.lost.is_set():
            raise Failure("%s lost its transport during the transfer: %r" % (c.sub, c.closed))
        if sent - (ch.rx - base) + step > WINDOW // 2:
            await asyncio.sleep(0.002)
            continue
        await c.send(cid, data[sent:sent + step])
        sent += step
    await c.wait_rx(cid, base + len(data), timeout=60)
    return data


async def wait_exit(gw, timeout):
    end = time.monotonic() + timeout
    while gw.poll() is None and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return gw.poll()


def log_events(gw, name):
    out = []
    for line in gw.logs().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == name:
            out.append(e)
    return out


async def drain_until_idle(gw, echo_port):
    a = Client(gw.port, "alice")
    await a.attach()
    check((await a.open(1, echo_port)).get("t") == "open_ok", "session A: channel open")
    await a.wait_rx(1, len(BANNER))
    d1 = await transfer(a, 1, 1, MiB)
    b = Client(gw.port, "bob")
    await b.attach()
    check(healthz(gw.port) == (200, "ok\n"), "/healthz 200 before the drain")

    gw._signal(signal.SIGTERM)
    deadline = time.monotonic() + 3
    while healthz(gw.port)[0] != 503 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    check(healthz(gw.port) == (503, "draining\n"), "/healthz 503 \"draining\" after SIGTERM")
    check("mana_connections_active" in metrics(gw.port), "/metrics still answers while draining")

    d2 = await transfer(a, 1, 2, 2 * MiB)
    check(a.ch[1].hash.hexdigest() == hashlib.sha256(BANNER + d1 + d2).hexdigest(),
          "session A: 1 MiB before and 2 MiB during the drain echoed byte-exact")

    b.abort()
    await asyncio.wait_for(b.lost.wait(), 5)
    ok = await b.attach(resume=True)
    check(ok.get("t") == "hello_ok" and b.resumes == 1, "session B: resume during the drain accepted")
    check(await b.ping_ok() is None, "session B: answers pings after the resume")

    before = metrics(gw.port).get('mana_policy_rejections_total{reason="draining"}', 0)
    ws = await connect(gw.url)
    await ws.send(hello(token(sub="carol")))
    code, reason = await expect_close(ws)
    check((code, reason) == (4010, "server draining"),
          "a fresh hello during the drain: closed 4010 \"server draining\" (got %s %r)"
          % (code, reason))
    after = metrics(gw.port).get('mana_policy_rejections_total{reason="draining"}', 0)
    check(after - before == 1, "/metrics: the refusal counted as reason=\"draining\"")
    check(gw.poll() is None, "still running while sessions A and B are open")

    d3 = await transfer(a, 1, 3, 256 * 1024)
    check(a.ch[1].hash.hexdigest() == hashlib.sha256(BANNER + d1 + d2 + d3).hexdigest(),
          "session A: still byte-exact after the resume and the refusal")
    t0 = time.monotonic()
    await a.close()
    await b.close()
    status = await wait_exit(gw, 10)
    took = time.monotonic() - t0
    check(status == 0, "exit status 0 after the last session ended (got %r)" % status)
    check(took < 5, "exited %.2f s after the last session ended (drain_timeout 20 s)" % took)
    check(log_events(gw, "drain") and log_events(gw, "drained"),
          "log: `drain` and `drained` events")
    check(not log_events(gw, "drain_timeout"), "log: no drain_timeout")


async def drain_timeout(gw, timeout_s):
    a = Client(gw.port, "alice")
    await a.attach()
    t0 = time.monotonic()
    gw._signal(signal.SIGTERM)
    await asyncio.wait_for(a.lost.wait(), timeout_s + 5)
    took = time.monotonic() - t0
    code, reason, _ = a.closed
    check((code, reason) == (1001, "server shutdown: drain timeout"),
          "idle session closed with 1001 \"server shutdown: drain timeout\" (got %s %r)"
          % (code, reason))
    check(timeout_s - 0.1 <= took <= timeout_s + 2,
          "closed %.2f s after SIGTERM (drain_timeout %.1f s)" % (took, timeout_s))
    status = await wait_exit(gw, 10)
    check(status == 0, "exit status 0 after the drain timeout (got %r)" % status)


async def second_signal(gw):
    a = Client(gw.port, "alice")
    await a.attach()
    gw._signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    check(not a.lost.is_set(), "first SIGTERM: the session keeps running")
    t0 = time.monotonic()
    gw._signal(signal.SIGTERM)
    await asyncio.wait_for(a.lost.wait(), 5)
    code, reason, _ = a.closed
    check((code, reason) == (1001, "server shutdown"),
          "second SIGTERM: closed 1001 \"server shutdown\" after %.2f s (got %s %r)"
          % (time.monotonic() - t0, code, reason))
    check(await wait_exit(gw, 10) == 0, "exit status 0 after the second SIGTERM")


def run(args, tmp, procs):
    echo = start_target("echo", banner=BANNER)
    procs.append(echo)
    gws = []

    def gateway(name, drain_ms):
        gw = launch_gateway(args.gateway, tmp, name, origins=(ORIGIN,),
                            targets=loopback(echo.port), secret=SECRET,
                            config={"server": {"drain_timeout_ms": drain_ms}})
        procs.append(gw)
        gws.append(gw)
        return gw

    print("# drain_until_idle")
    asyncio.run(drain_until_idle(gateway("drain-idle", 20000), echo.port))
    print("# drain_timeout")
    asyncio.run(drain_timeout(gateway("drain-timeout", 1500), 1.5))
    print("# second_signal")
    asyncio.run(second_signal(gateway("drain-twice", 20000)))
    for gw in gws:
        check("eyJ" not in gw.logs(), "%s log: no JWT" % gw.name)
    print("drain_test: all checks passed")


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-drain-",
                          logs=("drain-idle.log", "drain-timeout.log", "drain-twice.log")))
