#!/usr/bin/python3
"""Load: N idle authenticated WebSockets held against mana-gateway (issue #8, CI tier).

Starts mana-gateway (test config raising the connection caps) and, in a separate process (the
load generator: `idle_load_test.py --generate ...`, asyncio + python3-websockets), opens N
WebSockets spread over 127.0.0.2.. source addresses, each authenticated with its own HS256 JWT
(hello -> hello_ok). They are held for --hold seconds answering the gateway's heartbeats; any
close during the hold is a spurious close and fails the test. The gateway's RSS and CPU are
recorded before, after the connects and after the hold; RSS per idle session is printed.
Usage: idle_load_test.py --gateway PATH [--sessions 2000] [--hold 60]
"""
import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets  # noqa: E402

from fixture import (ORIGIN, Failure, check, connect, hello, metrics, start_gateway,  # noqa: E402
                     stop_all, token, write_secret)
from rel_support import cpu_s, fd_count, rss_kib  # noqa: E402

PER_IP = 100


async def generate(port, n, hold):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = "ws://127.0.0.1:%d/" % port
    closes = []
    pings = [0]
    sem = asyncio.Semaphore(32)

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
        return ws

    async def hold_one(i, ws, stop):
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

    t0 = time.monotonic()
    socks = await asyncio.gather(*[one(i) for i in range(n)])
    print("READY %d %.2f" % (len(socks), time.monotonic() - t0), flush=True)
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(hold_one(i, ws, stop)) for i, ws in enumerate(socks)]
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
    ap.add_argument("--generate", type=int, help="(internal) load generator against this port")
    args = ap.parse_args()
    if args.generate:
        return asyncio.run(generate(args.generate, args.sessions, args.hold))

    tmp = tempfile.mkdtemp(prefix="mana-idle-")
    procs = []
    rc = 1
    try:
        write_secret(tmp)
        n = args.sessions
        cap = n + 100
        gw, port, log = start_gateway(
            tmp, args.gateway, "gw",
            'max_http_connections = %d\nmax_http_connections_per_ip = %d\nlog_level = "warn"\n'
            '[origins]\nallow = ["%s"]\n[auth]\njwt_secret_file = "secret"\n'
            '[limits]\nmax_connections = %d\nmax_connections_per_ip = %d\n'
            '[session]\nheartbeat_ms = 20000\nidle_timeout_ms = 60000\n'
            % (cap, cap, ORIGIN, cap, cap))
        procs.append(gw)
        time.sleep(0.3)
        rss0, cpu0, fd0 = rss_kib(gw.pid), cpu_s(gw.pid), fd_count(gw.pid)
        t0 = time.monotonic()
        gen = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--generate",
                                str(port), "--sessions", str(n), "--hold", str(args.hold)],
                               stdout=subprocess.PIPE, text=True)
        procs.append(gen)
        line = gen.stdout.readline()
        if not line.startswith("READY"):
            raise Failure("load generator failed before READY: %r" % line)
        t_conn = time.monotonic() - t0
        time.sleep(1.0)
        rss1, cpu1, fd1 = rss_kib(gw.pid), cpu_s(gw.pid), fd_count(gw.pid)
        m = metrics(port)
        active = int(m.get("mana_connections_active", m.get("mana_sessions_active", -1)))
        check(fd1 - fd0 >= n, "%d sessions connected and authenticated in %.1f s (gateway fds "
              "%d -> %d, active metric %d)" % (n, t_conn, fd0, fd1, active))
        line = gen.stdout.readline()
        rc_gen = gen.wait(timeout=60)
        rss2, cpu2, fd2 = rss_kib(gw.pid), cpu_s(gw.pid), fd_count(gw.pid)
        check(line.startswith("HELD") and " closes 0 " in line and rc_gen == 0,
              "%d idle WebSockets held %.0f s with 0 spurious closes (%s)"
              % (n, args.hold, line.strip()))
        per = (rss2 - rss0) * 1024 / n
        print("figure - idle_load: %d sessions, gateway RSS %d KiB idle -> %d KiB connected -> "
              "%d KiB after %.0f s (%.0f bytes per idle session, user-space only); CPU %.2f s "
              "for the connects, %.2f s over the hold; fds %d -> %d -> %d"
              % (n, rss0, rss1, rss2, args.hold, per, cpu1 - cpu0, cpu2 - cpu1, fd0, fd1, fd2))
        check(gw.poll() is None, "gateway still running")
        rc = 0
    except Exception as e:  # noqa: BLE001
        print("FAIL -", e)
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
