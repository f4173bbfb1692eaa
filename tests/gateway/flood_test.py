#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Floods of messages that move no payload against the real gateway (issue #18 section 4).

One mana-gateway with its default [session] free_message_* budget and an echo target (both from
tools/devkit), then:
  - a normal client (127.0.0.1): an echo transfer of 4 MiB checked by SHA-256, credit granted at
    half a window, a ping every 0.5 s (the browser's 20 s, scaled down) for the whole run, a
    second transfer after the floods; it must never be closed;
  - one flooding client at a time, each from its own address (the per-IP ping bucket must not
    bleed into the normal client): 1-byte flow grants, empty data messages, 1-byte data
    messages, protocol pings, unsolicited pongs, RFC 6455 ping frames. Each sends as fast as it
    can for up to FLOOD_S seconds and must be closed with 4004 within 1 s of starting, while
    the gateway's CPU time (utime + stime from /proc) stays below 0.25 s per wall second over
    max(1 s, time to the close);
  - /metrics counts mana_policy_rejections_total{reason="rate_free_messages"} once per flood the
    budget closed, the log has the policy event (limit free_messages, code 4004) and no token.
Usage: flood_test.py --gateway PATH
"""
import argparse
import asyncio
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import (ORIGIN, SECRET, Failure, check, connect, data_frame, hello,  # noqa: E402
                     launch_gateway, loopback, metrics, recv_json, token)
from rel_support import BANNER, WINDOW, Client, cpu_s, seeded_stream, start_target  # noqa: E402

FLOOD_S = 2.0           # a flood that is never closed stops after this long
CLOSE_WITHIN_S = 1.0
CPU_PER_WALL_S = 0.25
TRANSFER = 4 << 20
MASK = b"\x5a\x17\xc3\x81"


def ws_frame(opcode, payload):
    """One masked client frame (RFC 6455 section 5.2), FIN set."""
    n = len(payload)
    hdr = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126
                                     else bytes([0x80 | 126]) + struct.pack(">H", n))
    return hdr + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def text(obj):
    return ws_frame(0x1, json.dumps(obj, separators=(",", ":")).encode())


FLOODS = [
    # name, address, one frame, closed by the free-message budget
    ("1-byte flow grants", "127.0.0.11", text({"t": "flow", "id": 1, "credit": 1}), True),
    ("empty data messages", "127.0.0.12", ws_frame(0x2, data_frame(1, b"")), True),
    ("1-byte data messages", "127.0.0.13", ws_frame(0x2, data_frame(1, b"x")), True),
    ("pings", "127.0.0.14", text({"t": "ping", "ts": 1}), False),  # [rate] ping_burst first
    ("unsolicited pongs", "127.0.0.15", text({"t": "pong", "ts": 1}), True),
    ("RFC 6455 ping frames", "127.0.0.16", ws_frame(0x9, b""), True),
]


async def transfer(c, cid, seed):
    """Echo TRANSFER bytes through channel `cid`, at most half a window in flight."""
    data = seeded_stream(seed, TRANSFER)
    ch = c.ch[cid]
    base = ch.rx
    sent = 0
    step = 16384
    while sent < len(data):
        if c.lost.is_set():
            raise Failure("normal client lost its transport during the transfer: %r" % (c.closed,))
        if sent - (ch.rx - base) + step > WINDOW // 2:
            await asyncio.sleep(0.002)
            continue
        await c.send(cid, data[sent:sent + step])
        sent += step
    await c.wait_rx(cid, base + len(data), timeout=60)
    return data


async def pinger(c, stop, failures):
    while not stop.is_set():
        try:
            await c.ping_ok(timeout=3)
        except Failure as e:
            failures.append(str(e))
        except websockets.exceptions.ConnectionClosed:
            failures.append("closed")
            return
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def flood(url, gw_pid, echo_port, name, ip, frame):
    """Returns (close code, seconds to the close, CPU seconds per wall second, frames sent)."""
    ws = await connect(url, local_ip=ip)
    await ws.send(hello(token(sub="flood")))
    ok = await recv_json(ws)
    if ok.get("t") != "hello_ok":
        raise Failure("%s: expected hello_ok, got %r" % (name, ok))
    await ws.send(json.dumps({"t": "open", "id": 1, "target": {"host": "127.0.0.1",
                                                                "port": echo_port}}))
    m = await recv_json(ws)
    if m.get("t") != "open_ok":
        raise Failure("%s: open %r" % (name, m))
    closed = {}

    async def reader():
        try:
            while True:
                await ws.recv()
        except websockets.exceptions.ConnectionClosed as e:
            closed["at"] = time.monotonic()
            closed["code"] = e.code

    rd = asyncio.ensure_future(reader())
    await asyncio.sleep(0.2)  # the banner arrives; the gateway idles again
    blob = frame * max(1, 32768 // len(frame))
    per_blob = len(blob) // len(frame)
    frames = 0
    cpu0 = cpu_s(gw_pid)
    t0 = time.monotonic()
    while "at" not in closed and time.monotonic() - t0 < FLOOD_S:
        tr = ws.transport
        if tr.is_closing():
            break
        if tr.get_write_buffer_size() > 256 * 1024:
            await asyncio.sleep(0.0005)
            continue
        tr.write(blob)
        frames += per_blob
        await asyncio.sleep(0)
    try:
        await asyncio.wait_for(rd, 3)
    except asyncio.TimeoutError:
        rd.cancel()
    took = closed.get("at", time.monotonic()) - t0
    # CPU over at least one wall second from the start of the flood.
    left = t0 + max(1.0, took) - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)
    wall = time.monotonic() - t0
    cpu = cpu_s(gw_pid) - cpu0
    return closed.get("code"), took, cpu / wall, frames


async def run(gw, echo_port):
    url = gw.url
    before = metrics(gw.port)
    c = Client(gw.port, "normal", local_ip="127.0.0.1")
    await c.attach()
    m = await c.open(1, echo_port)
    check(m.get("t") == "open_ok", "normal client: channel to the echo target open")
    await c.wait_rx(1, len(BANNER))
    check(c.ch[1].head.startswith(BANNER), "normal client: banner relayed")
    stop = asyncio.Event()
    ping_failures = []
    pings = asyncio.ensure_future(pinger(c, stop, ping_failures))

    data = await transfer(c, 1, 7)
    check(c.ch[1].hash.hexdigest() == hashlib.sha256(BANNER + data).hexdigest(),
          "normal client: 4 MiB echoed intact before the floods")

    budget_closes = 0
    for name, ip, frame, by_budget in FLOODS:
        code, took, cpu_rate, frames = await flood(url, gw.proc.pid, echo_port, name, ip, frame)
        print("# %s: %d frames offered, close %s after %.3f s, gateway CPU %.3f s/s"
              % (name, frames, code, took, cpu_rate))
        check(code == 4004, "%s: closed with 4004 (got %s)" % (name, code))
        check(took < CLOSE_WITHIN_S, "%s: closed within %.1f s (%.3f s)"
              % (name, CLOSE_WITHIN_S, took))
        check(cpu_rate < CPU_PER_WALL_S, "%s: gateway CPU %.3f s per wall second < %.2f"
              % (name, cpu_rate, CPU_PER_WALL_S))
        check(c.closed is None, "normal client still attached after the %s flood" % name)
        budget_closes += 1 if by_budget else 0

    data2 = await transfer(c, 1, 8)
    check(c.ch[1].hash.hexdigest() == hashlib.sha256(BANNER + data + data2).hexdigest(),
          "normal client: another 4 MiB echoed intact after the floods")
    stop.set()
    await pings
    check(not ping_failures, "normal client: every ping answered (%d failures: %s)"
          % (len(ping_failures), ping_failures[:3]))
    check(c.closed is None and not c.lost.is_set(), "normal client never closed")
    await c.close()

    key = 'mana_policy_rejections_total{reason="rate_free_messages"}'
    after = metrics(gw.port)
    check(after.get(key, 0) - before.get(key, 0) == budget_closes,
          "/metrics: %s counts the %d budget closes (%s)" % (key, budget_closes, after.get(key)))


def check_log(gw):
    events = []
    for line in gw.logs().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    hits = [e for e in events if e.get("event") == "policy" and e.get("limit") == "free_messages"]
    check(hits and all(e.get("code") == 4004 and e.get("reason") == "rate_limited" for e in hits),
          "log: %d policy events (rate_limited, limit free_messages, code 4004)" % len(hits))
    check("eyJ" not in gw.logs(), "log: no JWT")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mana-flood-")
    echo = gw = None
    try:
        echo = start_target("echo", banner=BANNER)
        gw = launch_gateway(a.gateway, tmp, "flood", origins=(ORIGIN,),
                            targets=loopback(echo.port), secret=SECRET)
        asyncio.run(run(gw, echo.port))
        check_log(gw)
        print("flood_test: all checks passed")
        return 0
    except Failure as e:
        print("FAIL -", e)
        if gw is not None:
            print("gateway log tail:\n" + gw.logs()[-3000:])
        return 1
    finally:
        if gw is not None:
            gw.kill()
        if echo is not None:
            echo.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
