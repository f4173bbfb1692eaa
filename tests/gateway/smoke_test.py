#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Smoke test of mana-gateway against a real OpenSSH server.

Starts its own sshd (own config and host key, loopback, random port, no PAM) and mana-gateway
(random port, own config and JWT secret) in a temporary directory, then checks over raw
WebSockets (python3-websockets):
  /healthz and /metrics; Origin refused (403) and subprotocol missing (400) before any 101;
  bad JWT -> 4003; hello with a JWT -> hello_ok; a channel to sshd relays the SSH banner and
  the client's bytes reach sshd (its KEXINIT comes back); denied targets -> open_err
  policy_denied (metadata address, private address, odd spellings); resume after an abrupt
  transport loss; SIGTERM -> exit 0.
Usage: smoke_test.py --gateway PATH [--sshd PATH]
"""
import asyncio
import json
import os
import signal
import sys
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (SECRET, Failure, check, connect, data_frame, hello,  # noqa: E402
                     loopback, read_channel, recv_json, start_gateway, start_sshd,
                     token)


async def scenarios(gw_port, ssh_port, metrics_url):
    url = "ws://127.0.0.1:%d/" % gw_port

    # Health and metrics.
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % gw_port, timeout=5) as r:
        check(r.status == 200, "/healthz answers 200")

    # Origin refused before any 101.
    try:
        await connect(url, origin="http://evil.example")
        raise Failure("disallowed origin was upgraded")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 403, "disallowed Origin -> HTTP 403")

    # Subprotocol required.
    try:
        await connect(url, subprotocols=())
        raise Failure("upgrade without subprotocol succeeded")
    except websockets.exceptions.InvalidStatusCode as e:
        check(e.status_code == 400, "missing subprotocol -> HTTP 400")

    # Bad JWT -> 4003.
    ws = await connect(url)
    check(ws.subprotocol == "mana.ssh.v1", "server selects mana.ssh.v1")
    await ws.send(hello(token(sub="x", exp_in=60, key="wrong-key" * 4)))
    try:
        await asyncio.wait_for(ws.recv(), 5)
        raise Failure("bad token got an answer")
    except websockets.exceptions.ConnectionClosed as e:
        check(e.code == 4003, "bad JWT signature -> close 4003 (got %s)" % e.code)

    # Expired JWT -> 4003.
    ws = await connect(url)
    await ws.send(hello(token(exp_in=-3600)))
    try:
        await asyncio.wait_for(ws.recv(), 5)
        raise Failure("expired token got an answer")
    except websockets.exceptions.ConnectionClosed as e:
        check(e.code == 4003, "expired JWT -> close 4003")

    # Good session.
    ws = await connect(url)
    await ws.send(hello(token()))
    ok = await recv_json(ws)
    check(ok.get("t") == "hello_ok" and "resume" in ok, "hello with JWT -> hello_ok with token")
    resume_token = ok["resume"]["token"]

    await ws.send(json.dumps({"t": "open", "id": 1, "target": {"host": "127.0.0.1",
                                                                "port": ssh_port}}))
    m = await recv_json(ws)
    check(m.get("t") == "open_ok" and m.get("id") == 1, "open to the test sshd -> open_ok")
    banner, _ = await read_channel(ws, 1, lambda b: b"\n" in b)
    check(banner.startswith(b"SSH-2.0-"), "SSH banner relayed: %r" % banner.split(b"\r")[0])
    rx = len(banner)

    # Client bytes reach sshd: send our identification, sshd answers with KEXINIT (msg 20).
    await ws.send(data_frame(1, b"SSH-2.0-mana_smoke\r\n"))
    more, _ = await read_channel(ws, 1, lambda b: len(b) >= 6)
    check(len(more) >= 6 and more[5] == 20, "client bytes reached sshd (KEXINIT came back)")
    rx += len(more)

    # Denied targets: open_err policy_denied, the session stays up.
    denied = [("169.254.169.254", ssh_port), ("10.0.0.1", ssh_port), ("127.0.0.1", 22),
              ("0.0.0.0", ssh_port), ("[::ffff:169.254.169.254]", ssh_port),
              ("2852039166", ssh_port)]
    cid = 10
    for host, port in denied:
        await ws.send(json.dumps({"t": "open", "id": cid, "target": {"host": host, "port": port}}))
        m = await recv_json(ws)
        check(m.get("t") == "open_err" and m.get("code") == "policy_denied",
              "target %s:%d -> open_err policy_denied" % (host, port))
        cid += 1
    # A name no rule allows and that does not resolve (offline): refused, no connection.
    await ws.send(json.dumps({"t": "open", "id": cid, "target": {"host": "evil.invalid",
                                                                  "port": ssh_port}}))
    m = await recv_json(ws)
    check(m.get("t") == "open_err" and m.get("code") in ("policy_denied", "target_unreachable"),
          "unresolvable evil.invalid -> open_err %s" % m.get("code"))
    cid += 1
    # Odd spellings of an allowed address resolve to what they are (127.0.0.1): allowed.
    for host in ["127.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"]:
        await ws.send(json.dumps({"t": "open", "id": cid, "target": {"host": host,
                                                                      "port": ssh_port}}))
        m = await recv_json(ws)
        check(m.get("t") == "open_ok", "odd spelling %s resolves to 127.0.0.1 -> allowed" % host)
        await ws.send(json.dumps({"t": "close", "id": cid}))
        cid += 1

    # Resume after an abrupt loss (no close frame).
    ws.transport.abort()
    await asyncio.sleep(0.3)
    ws2 = await connect(url)
    await ws2.send(hello(token(), resume={"token": resume_token, "channels": [
        {"id": 1, "rx": rx, "credit": 262144 - rx}]}))
    ok2 = await recv_json(ws2)
    check(ok2.get("t") == "hello_ok" and ok2["resume"]["token"] != resume_token,
          "resume accepted, token rotated")
    check(any(c["id"] == 1 for c in ok2["resume"]["channels"]), "channel 1 survived the resume")

    # The spent token cannot be reused once the new transport was used.
    await ws2.send(json.dumps({"t": "ping", "ts": 1}))
    ws3 = await connect(url)
    await ws3.send(hello(token(), resume={"token": resume_token, "channels": []}))
    try:
        while True:
            await asyncio.wait_for(ws3.recv(), 5)
    except websockets.exceptions.ConnectionClosed as e:
        check(e.code == 4011 and e.reason == "resume rejected", "reused token -> 4011")
    ws4 = await connect(url)
    await ws4.send(hello(token(), resume={"token": "A" * 22, "channels": []}))
    try:
        while True:
            await asyncio.wait_for(ws4.recv(), 5)
    except websockets.exceptions.ConnectionClosed as e:
        check(e.code == 4011 and e.reason == "resume rejected", "unknown token -> same 4011")

    with urllib.request.urlopen(metrics_url, timeout=5) as r:
        text = r.read().decode()
    check("mana_connections_total" in text and 'mana_resumes_total{outcome="accepted"} 1' in text,
          "/metrics reports connections and resumes")
    await ws2.close()


def run(args, tmp, procs):
    sshd, ssh_port = start_sshd(tmp, args.sshd)
    procs.append(sshd)
    gw, gw_port, gw_log_path = start_gateway(
        tmp, args.gateway, "gateway", {"session": {"resume_ttl_ms": 10000}},
        targets=loopback(ssh_port))
    procs.append(gw)
    asyncio.run(scenarios(gw_port, ssh_port, "http://127.0.0.1:%d/metrics" % gw_port))

    gw.send_signal(signal.SIGTERM)
    code = gw.wait(timeout=10)
    check(code == 0, "SIGTERM -> gateway exits 0 (got %s)" % code)
    log = open(os.path.join(tmp, "gateway.log")).read()
    check(token() not in log and SECRET not in log and "SSH-2.0" not in log,
          "gateway log holds no token, secret or payload")
    for line in log.splitlines():
        json.loads(line)
    check(True, "every gateway log line is JSON")


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-smoke-", logs=("gateway.log",)))
