#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Load: N idle authenticated WebSockets held against mana-gateway (issue #8, CI and soak tiers).

Starts mana-gateway (test config raising the connection caps) and, in separate processes (the
load generators: `idle_load_test.py --generate ...`, asyncio + python3-websockets, each with its
own fd budget), opens N WebSockets spread over 127.0.0.2.. source addresses (100 per address),
each authenticated with its own HS256 JWT (hello -> hello_ok). --generators G splits the N
sessions over G processes. Every session answers the gateway's heartbeats from its hello_ok on;
once all generators are connected they are held together for --hold seconds. Any close is a
spurious close and fails the test. The gateway's RSS, CPU and fds are recorded before, after the
connects and after the hold; RSS per idle session is printed; --max-rss-mib fails the test when
the gateway's RSS exceeds it; --json prints the figures as one line prefixed "JSON ".
Usage: idle_load_test.py --gateway PATH [--sessions 2000] [--hold 60] [--generators 1]
                         [--max-rss-mib M] [--json]
"""
import argparse
import asyncio
import json
import os
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets  # noqa: E402

from fixture import (Failure, check, connect, hello, metrics, start_gateway,  # noqa: E402
                     stop_all, token)
from rel_support import cpu_s, fd_count, rss_kib  # noqa: E402

PER_IP = 100


def read_line(proc, timeout):
    """One line of a generator's stdout, or "" after `timeout` seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


async def generate(port, first, n, hold):
    """Sessions first .. first+n-1: connect, authenticate, hold after "GO" on stdin."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = "ws://127.0.0.1:%d/" % port
    closes = []
    pings = [0]
    sem = asyncio.Semaphore(32)
    stop = asyncio.Event()
    tasks = []

    async def hold_one(i, ws):
        try:
            while not stop.is_set():
                m = await ws.recv()
                if isinstance(m, str):
                    j = json.loads(m)
                    if j.get("t") == "ping":
                        pings[0] += 1
                        await ws.send(json.dumps({"t": "pong", "ts": j["ts"]}))
        except websockets.exceptions.ConnectionClosed as e:
            if not stop.is_set():
                closes.append((i, e.code, e.reason))
        except asyncio.CancelledError:
            pass

    async def one(i):
        ip = "127.0.0.%d" % (2 + i // PER_IP)
        async with sem:
            for attempt in range(3):
                try:
                    ws = await connect(url, local_ip=ip, ping_interval=None)
                    break
                except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidStatusCode):
                    if attempt == 2:
                        raise
                    await asyncio.sleep(0.2)
            await ws.send(hello(token(sub="idle-%d" % i, exp_in=3600)))
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if m.get("t") == "hello_ok":
                    break
                if m.get("t") == "ping":
                    await ws.send(json.dumps({"t": "pong", "ts": m["ts"]}))
        # Heartbeats are answered from here on, also while other sessions still connect.
        tasks.append(asyncio.ensure_future(hold_one(i, ws)))
        return ws

    t0 = time.monotonic()
    socks = await asyncio.gather(*[one(i) for i in range(first, first + n)])
    print("READY %d %.2f" % (len(socks), time.monotonic() - t0), flush=True)
    # The hold starts once every generator is ready (the caller bounds this wait).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(hold)
    print("HELD %d closes %d pings %d %s" % (n, len(closes), pings[0], closes[:5]), flush=True)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for ws in socks:
        ws.transport.abort()
    return 0 if not closes else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway")
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--hold", type=float, default=60)
    ap.add_argument("--generators", type=int, default=1)
    ap.add_argument("--max-rss-mib", type=float, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--generate", type=int, help="(internal) load generator against this port")
    ap.add_argument("--first", type=int, default=0, help="(internal) first session index")
    args = ap.parse_args()
    if args.generate:
        return asyncio.run(generate(args.generate, args.first, args.sessions, args.hold))

    tmp = tempfile.mkdtemp(prefix="mana-idle-")
    procs = []
    rc = 1
    try:
        n = args.sessions
        cap = n + 100
        gw, port, log = start_gateway(
            tmp, args.gateway, "gw", {
                "server": {"max_http_connections": cap, "max_http_connections_per_ip": cap},
                "limits": {"max_connections": cap, "max_connections_per_ip": cap},
                "session": {"heartbeat_ms": 20000, "idle_timeout_ms": 60000}},
            log_level="warn")
        procs.append(gw)
        time.sleep(0.3)
        rss0, cpu0, fd0 = rss_kib(gw.pid), cpu_s(gw.pid), fd_count(gw.pid)
        t0 = time.monotonic()
        gens = []
        share = [n // args.generators + (1 if g < n % args.generators else 0)
                 for g in range(args.generators)]
        first = 0
        for k in share:
            gen = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--generate",
                                    str(port), "--first", str(first), "--sessions", str(k),
                                    "--hold", str(args.hold)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            first += k
            procs.append(gen)
            gens.append(gen)
        connect_bound = 60 + n / 50.0   # s; 10 000 sessions: 260 s
        for gen in gens:
            line = read_line(gen, max(1.0, t0 + connect_bound - time.monotonic()))
            if not line.startswith("READY"):
                raise Failure("load generator failed before READY: %r" % line)
        t_conn = time.monotonic() - t0
        time.sleep(1.0)
        rss1, cpu1, fd1 = rss_kib(gw.pid), cpu_s(gw.pid), fd_count(gw.pid)
        m = metrics(port)
        active = int(m.get("mana_connections_active", m.get("mana_sessions_active", -1)))
        check(fd1 - fd0 >= n, "%d sessions connected and authenticated in %.1f s by %d "
              "generator(s) (gateway fds %d -> %d, active metric %d)"
              % (n, t_conn, len(gens), fd0, fd1, active))
        t_hold = time.monotonic()
        for gen in gens:
            gen.stdin.write("GO\n")
            gen.stdin.flush()
        rss_peak = rss1
        held = []
        for gen in gens:
            while True:
                line = read_line(gen, 5.0)
                rss_peak = max(rss_peak, rss_kib(gw.pid))
                if line or time.monotonic() > t_hold + args.hold + 60:
                    break
            held.append(line.strip())
        rc_gen = [gen.wait(timeout=60) for gen in gens]
        rss2, cpu2, fd2 = rss_kib(gw.pid), cpu_s(gw.pid), fd_count(gw.pid)
        rss_peak = max(rss_peak, rss2)
        check(all(h.startswith("HELD") and " closes 0 " in h for h in held) and
              rc_gen == [0] * len(gens),
              "%d idle WebSockets held %.0f s with 0 spurious closes (%s)"
              % (n, args.hold, "; ".join(held)))
        pings = sum(int(h.split()[5]) for h in held)
        per = (rss2 - rss0) * 1024 / n
        print("figure - idle_load: %d sessions, gateway RSS %d KiB idle -> %d KiB connected -> "
              "%d KiB after %.0f s (%.0f bytes per idle session, user-space only); CPU %.2f s "
              "for the connects, %.2f s over the hold; fds %d -> %d -> %d"
              % (n, rss0, rss1, rss2, args.hold, per, cpu1 - cpu0, cpu2 - cpu1, fd0, fd1, fd2))
        check(gw.poll() is None, "gateway still running")
        if args.max_rss_mib is not None:
            check(rss_peak <= args.max_rss_mib * 1024, "gateway RSS peak %.1f MiB <= %.0f MiB"
                  % (rss_peak / 1024, args.max_rss_mib))
        if args.json:
            print("JSON " + json.dumps({
                "sessions": n, "generators": len(gens), "hold_s": args.hold,
                "connect_s": round(t_conn, 2), "spurious_closes": 0, "pings_answered": pings,
                "rss_kib_idle": rss0, "rss_kib_connected": rss1, "rss_kib_after_hold": rss2,
                "rss_kib_peak": rss_peak, "bytes_per_session": round(per),
                "cpu_s_connects": round(cpu1 - cpu0, 2), "cpu_s_hold": round(cpu2 - cpu1, 2),
                "fds": [fd0, fd1, fd2]}), flush=True)
        rc = 0
    except Exception as e:  # noqa: BLE001
        print("FAIL -", e)
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
