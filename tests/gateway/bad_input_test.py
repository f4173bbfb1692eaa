#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Bad-input, policy, flood, timeout and resume scenarios against mana-gateway.

Starts a real sshd, a few tiny TCP targets (a "ticker" and a bulk streamer that send an SSH
banner and then bytes, a non-SSH server, a silent server, a listener on a denied port that must
never see a connection), gateway A (plain ws://, short timeouts and small limits) and gateway B
(wss:// with a self-signed certificate made by the openssl CLI, short idle timeout).

Every scenario asserts the exact HTTP status, WebSocket close code or open_err code. A healthy
session (another client IP, 127.0.0.2) keeps a channel to sshd and a channel to the ticker
open all along; after every scenario it must still get ticker data and answer to a ping.
Floods and caps come from their own client addresses (127.0.0.x), so per-IP limits are tested
for isolation too.
Usage: bad_input_test.py --gateway PATH [--sshd PATH]
"""
import asyncio
import json
import os
import signal
import ssl
import struct
import subprocess
import sys
import time
import warnings

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (ORIGIN, Failure, check, connect, data_frame, established_to,  # noqa: E402
                     expect_close, free_port, hello, metrics, read_channel, recv_json,
                     start_gateway, start_sshd, token)

ORIGIN2 = "http://127.0.0.1:8080"
WINDOW = 65536          # [session] window (the client's default window too, see hello caps)
MAX_FRAME = 65545       # [session] max_frame (the smallest allowed)
READ_CHUNK = 16384      # [relay] read_chunk
HEALTHY_IP = "127.0.0.2"

RESULTS = []            # (name, ok)
_sub_counter = [0]


def uniq_sub():
    _sub_counter[0] += 1
    return "user%d" % _sub_counter[0]


class Targets:
    """Tiny asyncio TCP servers used as channel targets."""

    def __init__(self):
        self.denied_accepts = 0
        self.bulk_sent = 0
        self.ticker_conns = 0
        self.ticker_open = 0

    async def ticker(self, reader, writer):
        # SSH banner, then 64 bytes every 50 ms; input is read and dropped.
        self.ticker_conns += 1
        self.ticker_open += 1
        drain = asyncio.ensure_future(self._drain(reader))
        try:
            writer.write(b"SSH-2.0-test\r\n")
            while not reader.at_eof():
                writer.write(b"t" * 64)
                await writer.drain()
                await asyncio.sleep(0.05)
        except (ConnectionError, OSError):
            pass
        finally:
            self.ticker_open -= 1
            drain.cancel()
            writer.close()

    async def bulk(self, reader, writer):
        # SSH banner, then bytes as fast as TCP takes them (backpressure stops us).
        drain = asyncio.ensure_future(self._drain(reader))
        try:
            writer.write(b"SSH-2.0-test\r\n")
            chunk = b"b" * 16384
            while not reader.at_eof():
                writer.write(chunk)
                await writer.drain()
                self.bulk_sent += len(chunk)
        except (ConnectionError, OSError):
            pass
        finally:
            drain.cancel()
            writer.close()

    async def not_ssh(self, reader, writer):
        writer.write(b"HTTP/1.1 400 Bad Request\r\n" + b"X-Pad: " + b"x" * 400 + b"\r\n\r\n")
        try:
            await writer.drain()
            await reader.read(1 << 16)
        except (ConnectionError, OSError):
            pass
        writer.close()

    async def silent(self, reader, writer):
        try:
            await reader.read(1 << 16)
        except (ConnectionError, OSError):
            pass
        writer.close()

    async def denied(self, reader, writer):
        self.denied_accepts += 1
        writer.close()

    @staticmethod
    async def _drain(reader):
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass


class Healthy:
    """A session that must keep working while every scenario runs."""

    def __init__(self, url, ssh_port, ticker_port):
        self.url, self.ssh_port, self.ticker_port = url, ssh_port, ticker_port
        self.ticker_rx = 0
        self.granted_rx = 0
        self.pongs = set()
        self.closed = None
        self.ts = 1000
        self.pongs.add(self.ts)
        self.last_ping = 0.0

    async def start(self):
        self.ws = await connect(self.url, local_ip=HEALTHY_IP)
        await self.ws.send(hello(token(sub="healthy")))
        ok = await recv_json(self.ws)
        check(ok.get("t") == "hello_ok", "healthy session: hello_ok")
        await self.ws.send(json.dumps({"t": "open", "id": 1, "target": {
            "host": "127.0.0.1", "port": self.ssh_port}}))
        m = await recv_json(self.ws)
        check(m.get("t") == "open_ok", "healthy session: channel to sshd open")
        banner, _ = await read_channel(self.ws, 1, lambda b: b"\n" in b)
        check(banner.startswith(b"SSH-2.0-OpenSSH"), "healthy session: sshd banner relayed")
        await self.ws.send(data_frame(1, b"SSH-2.0-mana_healthy\r\n"))
        kex, _ = await read_channel(self.ws, 1, lambda b: len(b) >= 6)
        check(kex[5] == 20, "healthy session: sshd answered with KEXINIT")
        await self.ws.send(json.dumps({"t": "open", "id": 2, "target": {
            "host": "127.0.0.1", "port": self.ticker_port}}))
        m = await recv_json(self.ws)
        check(m.get("t") == "open_ok", "healthy session: channel to the ticker open")
        self.reader = asyncio.ensure_future(self._read())
        self.keepalive = asyncio.ensure_future(self._keepalive())

    async def _read(self):
        try:
            while True:
                m = await self.ws.recv()
                if isinstance(m, bytes):
                    _, cid = struct.unpack(">BI", m[:5])
                    if cid == 2:
                        self.ticker_rx += len(m) - 5
                        if self.ticker_rx - self.granted_rx >= WINDOW // 4:
                            n = self.ticker_rx - self.granted_rx
                            self.granted_rx = self.ticker_rx
                            await self.ws.send(json.dumps(
                                {"t": "flow", "id": 2, "credit": n, "rx": self.ticker_rx}))
                    continue
                j = json.loads(m)
                if j.get("t") == "ping":
                    await self.ws.send(json.dumps({"t": "pong", "ts": j["ts"]}))
                elif j.get("t") == "pong":
                    self.pongs.add(j["ts"])
        except websockets.exceptions.ConnectionClosed as e:
            self.closed = (e.code, e.reason)

    async def _keepalive(self):
        # Heartbeat in the test config is 600 ms x 3: stay chatty (flow acks are not rate-limited).
        while self.closed is None:
            await asyncio.sleep(0.35)
            try:
                await self.ws.send(json.dumps({"t": "flow", "id": 2, "credit": 0,
                                               "rx": self.ticker_rx}))
            except websockets.exceptions.ConnectionClosed:
                return

    async def check(self, after):
        if self.closed is not None:
            raise Failure("healthy session closed %r after %s" % (self.closed, after))
        rx0 = self.ticker_rx
        # Ping at most every 0.3 s (the per-IP ping limit applies to this session too); the
        # ticker data must advance on every check.
        ts = self.ts
        if time.time() - self.last_ping >= 0.3:
            self.ts += 1
            ts = self.ts
            self.last_ping = time.time()
            await self.ws.send(json.dumps({"t": "ping", "ts": ts}))
        end = time.time() + 5
        while (ts not in self.pongs or self.ticker_rx <= rx0) and time.time() < end:
            await asyncio.sleep(0.02)
        if ts not in self.pongs or self.ticker_rx <= rx0:
            raise Failure("healthy session stalled after %s (pong %s, rx %d -> %d, closed %r)"
                          % (after, ts in self.pongs, rx0, self.ticker_rx, self.closed))


class Ctx:
    pass


SCENARIOS = []


def scenario(name):
    def deco(fn):
        SCENARIOS.append((name, fn))
        return fn
    return deco


# ---- helpers ------------------------------------------------------------------------------

async def fresh(c, sub=None, origin=ORIGIN, local_ip="127.0.0.1", profile="mana.v1", url=None):
    ws = await connect(url or c.url, origin=origin, local_ip=local_ip)
    await ws.send(hello(token(sub=sub or uniq_sub()), profile=profile))
    ok = await recv_json(ws)
    if ok.get("t") != "hello_ok":
        raise Failure("expected hello_ok, got %r" % ok)
    return ws, ok


async def close_code_after(c, msgs, code, *, ready=True, local_ip="127.0.0.1", reason=None,
                           timeout=5, profile="mana.v1"):
    if ready:
        ws, _ = await fresh(c, local_ip=local_ip, profile=profile)
    else:
        ws = await connect(c.url, local_ip=local_ip)
    for m in msgs:
        try:
            await ws.send(m)
        except websockets.exceptions.ConnectionClosed:
            break
    got, why = await expect_close(ws, timeout)
    if got != code or (reason is not None and reason not in why):
        raise Failure("expected close %s%s, got %s %r" % (
            code, "" if reason is None else " (%s)" % reason, got, why))
    return why


async def open_result(ws, cid, host, port, **extra):
    msg = {"t": "open", "id": cid, "target": {"host": host, "port": port}}
    msg.update(extra)
    await ws.send(json.dumps(msg))
    return await recv_json(ws, timeout=5)


async def raw_http(c, request, local_ip="127.0.0.1", port=None):
    r, w = await asyncio.open_connection("127.0.0.1", port or c.port, local_addr=(local_ip, 0))
    w.write(request)
    await w.drain()
    data = await asyncio.wait_for(r.read(4096), 5)
    w.close()
    if not data:
        return None
    return int(data.split(b" ", 2)[1])


def upgrade_request(path="/", origin=ORIGIN, extra=b"", proto=b"mana.ssh.v1"):
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n")
    if proto:
        req += b"Sec-WebSocket-Protocol: " + proto + b"\r\n"
    if origin is not None:
        req += b"Origin: " + origin.encode() + b"\r\n"
    return req + extra + b"\r\n"


def expect(cond, what):
    if not cond:
        raise Failure(what)


async def settle(c, metric, want, timeout=5):
    end = time.time() + timeout
    v = None
    while time.time() < end:
        v = metrics(c.port).get(metric, 0)
        if v == want:
            return v
        await asyncio.sleep(0.05)
    raise Failure("%s stayed %s (wanted %s)" % (metric, v, want))


# ---- HTTP phase ----------------------------------------------------------------------------

@scenario("disallowed Origin -> HTTP 403")
async def s_origin(c):
    try:
        await connect(c.url, origin="http://evil.example")
        raise Failure("upgraded")
    except websockets.exceptions.InvalidStatusCode as e:
        expect(e.status_code == 403, "status %s" % e.status_code)


@scenario("missing Origin (allow_missing = false) -> HTTP 403")
async def s_origin_missing(c):
    expect(await raw_http(c, upgrade_request(origin=None)) == 403, "not 403")


@scenario("Origin differing only in case -> HTTP 403")
async def s_origin_case(c):
    expect(await raw_http(c, upgrade_request(origin="http://LOCALHOST:8080")) == 403, "not 403")


@scenario("two Origin headers -> HTTP 403")
async def s_origin_twice(c):
    st = await raw_http(c, upgrade_request(extra=b"Origin: http://evil.example\r\n"))
    expect(st == 403, "got %s" % st)


@scenario("no mana.ssh.v1 subprotocol -> HTTP 400")
async def s_subproto(c):
    expect(await raw_http(c, upgrade_request(proto=b"chat, superchat")) == 400, "not 400")


@scenario("wrong path -> HTTP 404")
async def s_path(c):
    expect(await raw_http(c, upgrade_request(path="/other")) == 404, "not 404")


@scenario("plain GET on the endpoint -> HTTP 426")
async def s_not_upgrade(c):
    st = await raw_http(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(st == 426, "got %s" % st)


@scenario("header block over max_header_bytes -> HTTP 431")
async def s_header_big(c):
    st = await raw_http(c, upgrade_request(extra=b"X-Big: " + b"a" * 5000 + b"\r\n"))
    expect(st == 431, "got %s" % st)


@scenario("more header fields than max_header_count -> HTTP 431")
async def s_header_count(c):
    extra = b"".join(b"X-H%d: 1\r\n" % i for i in range(40))
    st = await raw_http(c, upgrade_request(extra=extra))
    expect(st == 431, "got %s" % st)


@scenario("HTTP-phase cap per IP: the 5th idle TCP connection -> HTTP 503")
async def s_http_cap_ip(c):
    held = []
    try:
        for _ in range(4):
            held.append(await asyncio.open_connection("127.0.0.1", c.port,
                                                      local_addr=("127.0.0.20", 0)))
        await asyncio.sleep(0.1)
        r, w = await asyncio.open_connection("127.0.0.1", c.port, local_addr=("127.0.0.20", 0))
        data = await asyncio.wait_for(r.read(4096), 5)
        w.close()
        expect(data.startswith(b"HTTP/1.1 503"), "got %r" % data[:40])
        # Another address is not affected.
        expect(await raw_http(c, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                              local_ip="127.0.0.21") == 200, "healthz from another IP")
    finally:
        for _, w in held:
            w.close()


@scenario("HTTP-phase global cap: the 9th idle TCP connection -> HTTP 503")
async def s_http_cap_global(c):
    held = []
    try:
        # The /metrics scrape is itself a connection in the HTTP phase: it reads as 1.
        await settle(c, "mana_http_connections_active", 1)
        for i in range(7):
            held.append(await asyncio.open_connection(
                "127.0.0.1", c.port, local_addr=("127.0.0.%d" % (22 + i // 4), 0)))
        await settle(c, "mana_http_connections_active", 8)
        held.append(await asyncio.open_connection("127.0.0.1", c.port,
                                                  local_addr=("127.0.0.24", 0)))
        await asyncio.sleep(0.1)
        r, w = await asyncio.open_connection("127.0.0.1", c.port, local_addr=("127.0.0.25", 0))
        data = await asyncio.wait_for(r.read(4096), 5)
        w.close()
        expect(data.startswith(b"HTTP/1.1 503"), "got %r" % data[:40])
    finally:
        for _, w in held:
            w.close()


@scenario("HTTP-phase timeout: a silent TCP connection is closed after http_timeout_ms")
async def s_http_timeout(c):
    r, w = await asyncio.open_connection("127.0.0.1", c.port, local_addr=("127.0.0.26", 0))
    w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # slowloris: never finishes the headers
    t0 = time.time()
    data = await asyncio.wait_for(r.read(4096), 5)
    took = time.time() - t0
    w.close()
    expect(data == b"" and 0.7 <= took <= 3.0, "got %r after %.2fs" % (data[:40], took))


# ---- authentication ------------------------------------------------------------------------

async def auth_fails(c, tok):
    ws = await connect(c.url)
    await ws.send(hello(tok))
    code, _ = await expect_close(ws)
    expect(code == 4003, "close %s" % code)


@scenario("JWT signed with the wrong key -> 4003")
async def s_jwt_key(c):
    await auth_fails(c, token(key="wrong-key" * 5))


@scenario("expired JWT -> 4003")
async def s_jwt_exp(c):
    await auth_fails(c, token(exp_in=-3600))


@scenario("JWT with nbf in the future -> 4003")
async def s_jwt_nbf(c):
    await auth_fails(c, token(nbf=int(time.time()) + 3600))


@scenario("JWT with alg HS512 -> 4003")
async def s_jwt_alg(c):
    await auth_fails(c, token(algorithm="HS512"))


@scenario("JWT with alg none -> 4003")
async def s_jwt_none(c):
    import base64
    b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa
    await auth_fails(c, b({"alg": "none", "typ": "JWT"}) + "." +
                     b({"sub": "x", "exp": int(time.time()) + 60}) + ".")


@scenario("JWT without sub -> 4003")
async def s_jwt_nosub(c):
    from fixture import SECRET, tokens
    await auth_fails(c, tokens.mint(SECRET, {"exp": int(time.time()) + 60}))


@scenario("auth scheme none while allow_none = false -> 4003")
async def s_auth_none(c):
    ws = await connect(c.url)
    await ws.send(json.dumps({"t": "hello", "proto": 1, "auth": {"scheme": "none"},
                              "caps": {"bidi": True}}))
    code, _ = await expect_close(ws)
    expect(code == 4003, "close %s" % code)


# ---- bootstrap / framing -------------------------------------------------------------------

@scenario("bad JSON as the first message -> 4002")
async def s_boot_json(c):
    await close_code_after(c, ['{"t":"hello",'], 4002, ready=False)


@scenario("open before hello -> 4002")
async def s_boot_open(c):
    await close_code_after(c, [json.dumps({"t": "open", "id": 1, "target": {
        "host": "127.0.0.1", "port": c.ssh_port}})], 4002, ready=False)


@scenario("binary data before hello -> 4002")
async def s_boot_data(c):
    await close_code_after(c, [data_frame(1, b"x")], 4002, ready=False)


@scenario("hello with proto 2 -> 4002")
async def s_boot_proto(c):
    await close_code_after(c, [json.dumps({"t": "hello", "proto": 2})], 4002, ready=False)


@scenario("hello with an unknown profile -> 4001")
async def s_boot_profile(c):
    await close_code_after(c, [hello(token(sub=uniq_sub()), profile="x.v9")], 4001, ready=False)


@scenario("bad JSON after hello_ok -> 4014")
async def s_bad_json(c):
    await close_code_after(c, ['{"t":"ping",'], 4014)


@scenario("unknown message type -> 4009")
async def s_unknown_type(c):
    await close_code_after(c, ['{"t":"reset"}'], 4009)


@scenario("JSON that is not an object -> 4014")
async def s_not_object(c):
    await close_code_after(c, ['[1,2]'], 4014)


@scenario("JSON nested deeper than 8 -> 4014")
async def s_too_deep(c):
    await close_code_after(c, ['{"t":"ping","ts":1,"x":' + "[" * 10 + "]" * 10 + "}"], 4014)


@scenario("missing required field (flow without credit) -> 4014")
async def s_missing_field(c):
    await close_code_after(c, ['{"t":"flow","id":1}'], 4014)


@scenario("wrong field type (id as a string) -> 4014")
async def s_wrong_type(c):
    await close_code_after(c, ['{"t":"open","id":"1","target":{"host":"h","port":22}}'], 4014)


@scenario("out-of-range value (port 0) -> 4014")
async def s_range(c):
    await close_code_after(c, ['{"t":"open","id":1,"target":{"host":"h","port":0}}'], 4014)


@scenario("open kind udp -> 4014")
async def s_kind_udp(c):
    await close_code_after(c, [json.dumps({"t": "open", "id": 1, "kind": "udp", "target": {
        "host": "127.0.0.1", "port": c.ssh_port}})], 4014)


@scenario("message over max_frame -> 1009 (Beast enforces the limit)")
async def s_oversize(c):
    await close_code_after(c, [data_frame(1, b"x" * (MAX_FRAME + 100))], 1009)


@scenario("control JSON over 64 KiB (under max_frame) -> 4008")
async def s_control_big(c):
    msg = '{"t":"ping","ts":1,"pad":"' + "p" * 65510 + '"}'
    expect(65536 < len(msg) <= MAX_FRAME, "size %d" % len(msg))
    await close_code_after(c, [msg], 4008)


@scenario("truncated binary frame (3 bytes) -> 4014")
async def s_truncated(c):
    await close_code_after(c, [b"\x01\x00\x00"], 4014)


@scenario("reserved stream byte 0x00 -> 4014")
async def s_stream0(c):
    await close_code_after(c, [data_frame(1, b"x", stream=0)], 4014)


@scenario("stderr (stream 2) from the client -> 4014")
async def s_stream2(c):
    ws, _ = await fresh(c)
    m = await open_result(ws, 1, "127.0.0.1", c.ticker_port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    await ws.send(data_frame(1, b"x", stream=2))
    code, _ = await expect_close(ws)
    expect(code == 4014, "close %s" % code)


@scenario("data for an unknown channel -> 4014")
async def s_unknown_channel(c):
    await close_code_after(c, [data_frame(77, b"hello")], 4014)


@scenario("resize for a channel never opened -> 4014")
async def s_unknown_resize(c):
    await close_code_after(c, ['{"t":"resize","id":5,"cols":80,"rows":24}'], 4014)


@scenario("credit overrun (window + 1 bytes) -> 4007")
async def s_credit_overrun(c):
    ws, ok = await fresh(c)
    m = await open_result(ws, 1, "127.0.0.1", c.ticker_port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    window = m.get("window", ok["caps"]["window"])
    await ws.send(data_frame(1, b"o" * (window + 1)))
    code, _ = await expect_close(ws)
    expect(code == 4007, "close %s (window %s)" % (code, window))


@scenario("duplicate channel id -> 4013")
async def s_duplicate(c):
    ws, _ = await fresh(c)
    m = await open_result(ws, 1, "127.0.0.1", c.ticker_port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    await ws.send(json.dumps({"t": "open", "id": 1, "target": {"host": "127.0.0.1",
                                                               "port": c.ticker_port}}))
    code, _ = await expect_close(ws)
    expect(code == 4013, "close %s" % code)


@scenario("second hello -> 4009")
async def s_second_hello(c):
    await close_code_after(c, [hello(token())], 4009)


@scenario("client sends exit (wrong direction) -> 4009")
async def s_exit(c):
    await close_code_after(c, ['{"t":"exit","id":1,"code":0}'], 4009)


@scenario("lenpfx.v1: length field disagrees with the message size -> 4014")
async def s_lenpfx_len(c):
    bad = struct.pack(">IB", 100, 0x10) + b'{"t":"ping","ts":1}'
    await close_code_after(c, [bad], 4014, profile="lenpfx.v1")


@scenario("lenpfx.v1: text message after hello_ok -> 4014")
async def s_lenpfx_text(c):
    await close_code_after(c, ['{"t":"ping","ts":1}'], 4014, profile="lenpfx.v1")


@scenario("json-base64.v1: base64 with non-zero trailing bits -> 4014")
async def s_b64(c):
    await close_code_after(c, ['{"kind":"data","stream":"stdout","id":1,"payload":"aGl="}'],
                           4014, profile="json-base64.v1")


@scenario("json-base64.v1: binary message -> 4014")
async def s_b64_binary(c):
    await close_code_after(c, [b"\x01\x00\x00\x00\x01x"], 4014, profile="json-base64.v1")


# ---- targets -------------------------------------------------------------------------------

def denied_target(host, port_attr):
    async def run(c):
        port = getattr(c, port_attr)
        ws, _ = await fresh(c)
        before = c.targets.denied_accepts
        m = await open_result(ws, 3, host, port)
        expect(m.get("t") == "open_err" and m.get("code") == "policy_denied",
               "got %r" % m)
        await asyncio.sleep(0.05)
        expect(c.targets.denied_accepts == before, "the denied listener saw a connection")
        # The session stays usable after open_err.
        await ws.send(json.dumps({"t": "ping", "ts": 7}))
        p = await recv_json(ws, skip=("close", "flow", "ping"))
        expect(p.get("t") == "pong", "no pong after open_err")
        await ws.close()
    return run


for _host in ["127.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0",
              "localhost.", "LOCALHOST", "127.0.0.2"]:
    scenario("denied target %s:<denied listener> -> open_err policy_denied, no SYN" % _host)(
        denied_target(_host, "denied_port"))
for _host, _attr in [("169.254.169.254", "ssh_port"), ("10.0.0.1", "ssh_port"),
                     ("172.16.0.1", "ssh_port"), ("192.168.1.1", "ssh_port"),
                     ("100.64.0.1", "ssh_port"), ("[::1]", "ssh_port"),
                     ("[fe80::1]", "ssh_port"), ("[fc00::1]", "ssh_port"),
                     ("127.0.0.1", "unlisted_port")]:
    scenario("denied target %s -> open_err policy_denied" % _host)(denied_target(_host, _attr))


@scenario("token targets claim excludes sshd -> open_err policy_denied")
async def s_claim(c):
    ws = await connect(c.url)
    await ws.send(hello(token(sub=uniq_sub(), targets=["127.0.0.1:%d" % c.ticker_port])))
    ok = await recv_json(ws)
    expect(ok.get("t") == "hello_ok", "hello %r" % ok)
    m = await open_result(ws, 1, "127.0.0.1", c.ssh_port)
    expect(m.get("t") == "open_err" and m.get("code") == "policy_denied", "got %r" % m)
    m = await open_result(ws, 2, "127.0.0.1", c.ticker_port)
    expect(m.get("t") == "open_ok", "claimed target refused: %r" % m)
    await ws.close()


@scenario("allowed port with nothing listening -> open_err target_unreachable")
async def s_unreachable(c):
    ws, _ = await fresh(c)
    m = await open_result(ws, 1, "127.0.0.1", c.closed_port)
    expect(m.get("t") == "open_err" and m.get("code") == "target_unreachable", "got %r" % m)
    await ws.close()


@scenario("open kind ssh -> open_err unsupported_kind")
async def s_kind_ssh(c):
    ws, _ = await fresh(c)
    m = await open_result(ws, 1, "127.0.0.1", c.ssh_port, kind="ssh")
    expect(m.get("t") == "open_err" and m.get("code") == "unsupported_kind", "got %r" % m)
    await ws.close()


async def banner_gate(c, port):
    ws, _ = await fresh(c)
    m = await open_result(ws, 1, "127.0.0.1", port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    buf = b""
    end = time.time() + 5
    got = None
    while time.time() < end and got is None:
        msg = await asyncio.wait_for(ws.recv(), end - time.time())
        if isinstance(msg, bytes):
            buf += msg[5:]
            continue
        j = json.loads(msg)
        if j.get("t") == "close" and j.get("id") == 1:
            got = j
    expect(got is not None and got.get("reason") == "not_ssh", "got %r" % got)
    expect(buf == b"", "target bytes reached the client before a banner: %r" % buf[:40])
    await ws.close()


@scenario("non-SSH target (HTTP answer) -> channel close not_ssh, no byte relayed")
async def s_not_ssh(c):
    await banner_gate(c, c.notssh_port)


@scenario("silent target -> channel close not_ssh after banner_timeout_ms")
async def s_silent(c):
    await banner_gate(c, c.silent_port)


# ---- caps ----------------------------------------------------------------------------------

@scenario("5th channel on one connection (max_channels 4) -> 4006")
async def s_channel_cap(c):
    ws, _ = await fresh(c, local_ip="127.0.0.40")
    for i in range(1, 5):
        m = await open_result(ws, i, "127.0.0.1", c.ticker_port)
        expect(m.get("t") == "open_ok", "open %d: %r" % (i, m))
    await ws.send(json.dumps({"t": "open", "id": 5, "target": {"host": "127.0.0.1",
                                                               "port": c.ticker_port}}))
    code, _ = await expect_close(ws)
    expect(code == 4006, "close %s" % code)


@scenario("5th WebSocket from one IP (max_connections_per_ip 4) -> 4010")
async def s_conn_ip(c):
    held = [await connect(c.url, local_ip="127.0.0.41") for _ in range(4)]
    try:
        ws = await connect(c.url, local_ip="127.0.0.41")
        code, _ = await expect_close(ws)
        expect(code == 4010, "close %s" % code)
        for h in held:  # the first four are fine
            await h.send(hello(token(sub=uniq_sub())))
            ok = await recv_json(h)
            expect(ok.get("t") == "hello_ok", "held connection: %r" % ok)
    finally:
        for h in held:
            await h.close()


@scenario("4th session of one principal (max_sessions_per_principal 3) -> 4010")
async def s_principal(c):
    held = []
    try:
        for _ in range(3):
            ws, _ = await fresh(c, sub="capuser", local_ip="127.0.0.42")
            held.append(ws)
        ws = await connect(c.url, local_ip="127.0.0.43")
        await ws.send(hello(token(sub="capuser")))
        code, _ = await expect_close(ws)
        expect(code == 4010, "close %s" % code)
    finally:
        for h in held:
            await h.close()


@scenario("global connection cap (max_connections 10) -> 4010")
async def s_conn_global(c):
    await asyncio.sleep(0.3)
    active = int(metrics(c.port)["mana_connections_active"])
    held = []
    try:
        for i in range(10 - active):
            held.append(await connect(c.url, local_ip="127.0.0.%d" % (50 + i // 3)))
        ws = await connect(c.url, local_ip="127.0.0.59")
        code, _ = await expect_close(ws)
        expect(code == 4010, "close %s (active before: %d)" % (code, active))
    finally:
        for h in held:
            await h.close()
    await asyncio.sleep(0.2)


# ---- floods --------------------------------------------------------------------------------

@scenario("control flood (resize x 60, control_burst 40) -> 4004")
async def s_flood_control(c):
    ws, _ = await fresh(c, local_ip="127.0.0.60")
    m = await open_result(ws, 1, "127.0.0.1", c.ticker_port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    for _ in range(60):
        try:
            await ws.send('{"t":"resize","id":1,"cols":80,"rows":24}')
        except websockets.exceptions.ConnectionClosed:
            break
    code, _ = await expect_close(ws)
    expect(code == 4004, "close %s" % code)


@scenario("open flood from one IP (open_burst 15) -> 4004, metric rate_opens")
async def s_flood_open(c):
    before = metrics(c.port).get('mana_policy_rejections_total{reason="rate_opens"}', 0)
    ws, _ = await fresh(c, local_ip="127.0.0.61")
    # One open at a time (each answered with open_err), so the channel cap never trips.
    answered = 0
    for i in range(1, 25):
        try:
            m = await open_result(ws, i, "10.0.0.1", c.ssh_port)
        except websockets.exceptions.ConnectionClosed:
            break
        expect(m.get("code") == "policy_denied", "open %d: %r" % (i, m))
        answered += 1
    expect(answered == 15, "%d opens answered before the close (open_burst 15)" % answered)
    code, _ = await expect_close(ws)
    expect(code == 4004, "close %s" % code)
    after = metrics(c.port).get('mana_policy_rejections_total{reason="rate_opens"}', 0)
    expect(after == before + 1, "rate_opens %s -> %s" % (before, after))


@scenario("ping flood from one IP (ping_burst 15) -> 4004, metric rate_pings")
async def s_flood_ping(c):
    before = metrics(c.port).get('mana_policy_rejections_total{reason="rate_pings"}', 0)
    ws, _ = await fresh(c, local_ip="127.0.0.62")
    for i in range(30):
        try:
            await ws.send(json.dumps({"t": "ping", "ts": i}))
        except websockets.exceptions.ConnectionClosed:
            break
    code, _ = await expect_close(ws)
    expect(code == 4004, "close %s" % code)
    after = metrics(c.port).get('mana_policy_rejections_total{reason="rate_pings"}', 0)
    expect(after == before + 1, "rate_pings %s -> %s" % (before, after))


@scenario("ping limit is per IP: a second connection from the flooding IP is refused too")
async def s_flood_ping_ip(c):
    ws, _ = await fresh(c, local_ip="127.0.0.62")
    await ws.send(json.dumps({"t": "ping", "ts": 1}))
    code, _ = await expect_close(ws)
    expect(code == 4004, "close %s" % code)


@scenario("resume-failure flood from one IP (resume_fail_burst 8) -> 4011 x 8, then 4004")
async def s_flood_resume(c):
    codes = []
    for i in range(10):
        ws = await connect(c.url, local_ip="127.0.0.63")
        await ws.send(hello(token(sub="guesser"), resume={"token": "G%021d" % i,
                                                          "channels": []}))
        code, _ = await expect_close(ws)
        codes.append(code)
    expect(codes[:8] == [4011] * 8 and codes[8:] == [4004, 4004], "codes %s" % codes)


# ---- timeouts ------------------------------------------------------------------------------

@scenario("no hello within handshake_timeout_ms -> 4012")
async def s_hs_timeout(c):
    ws = await connect(c.url)
    t0 = time.time()
    code, _ = await expect_close(ws, timeout=5)
    expect(code == 4012 and time.time() - t0 < 3, "close %s after %.2fs" % (
        code, time.time() - t0))


@scenario("silent client after hello_ok -> 4012 (heartbeat 600 ms x 3)")
async def s_heartbeat(c):
    ws, _ = await fresh(c)
    t0 = time.time()
    # Never answer the gateway's pings.
    code, reason = await expect_close(ws, timeout=6)
    took = time.time() - t0
    expect(code == 4012 and "heartbeat" in reason and 1.5 <= took <= 5,
           "close %s %r after %.2fs" % (code, reason, took))


@scenario("client answering pings only -> RTT histogram in /metrics gets samples")
async def s_rtt(c):
    before = metrics(c.port).get("mana_rtt_seconds_count", 0)
    ws, _ = await fresh(c)
    end = time.time() + 2.0  # the gateway pings after 600 ms of its own silence
    while time.time() < end:
        try:
            m = await asyncio.wait_for(ws.recv(), end - time.time())
        except asyncio.TimeoutError:
            break
        j = json.loads(m)
        if j.get("t") == "ping":
            await ws.send(json.dumps({"t": "pong", "ts": j["ts"]}))
    await ws.close()
    m = metrics(c.port)
    expect(m.get("mana_rtt_seconds_count", 0) >= before + 2 and
           m.get('mana_rtt_seconds_bucket{le="+Inf"}') == m.get("mana_rtt_seconds_count"),
           "rtt count %s -> %s" % (before, m.get("mana_rtt_seconds_count")))


@scenario("idle client on gateway B (wss, idle_timeout_ms 700) -> 4012 idle timeout")
async def s_idle(c):
    ws = await connect(c.url_b, ssl=c.tls_client)
    await ws.send(hello(token(sub=uniq_sub())))
    ok = await recv_json(ws)
    expect(ok.get("t") == "hello_ok", "hello %r" % ok)
    t0 = time.time()
    code, reason = await expect_close(ws, timeout=5)
    took = time.time() - t0
    expect(code == 4012 and "idle" in reason and 0.5 <= took <= 3,
           "close %s %r after %.2fs" % (code, reason, took))


# ---- TLS -----------------------------------------------------------------------------------

@scenario("wss: hello_ok and the sshd banner over TLS (self-signed CA)")
async def s_tls(c):
    ws = await connect(c.url_b, ssl=c.tls_client)
    await ws.send(hello(token(sub=uniq_sub())))
    ok = await recv_json(ws)
    expect(ok.get("t") == "hello_ok", "hello %r" % ok)
    m = await open_result(ws, 1, "127.0.0.1", c.ssh_port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    banner, _ = await read_channel(ws, 1, lambda b: b"\n" in b)
    expect(banner.startswith(b"SSH-2.0-OpenSSH"), "banner %r" % banner[:30])
    await ws.close()


@scenario("wss: a client that does not trust the certificate fails the handshake")
async def s_tls_untrusted(c):
    try:
        await connect(c.url_b, ssl=ssl.create_default_context())
        raise Failure("connected")
    except ssl.SSLCertVerificationError:
        pass


@scenario("wss: TLS 1.1 is refused with a protocol_version alert")
async def s_tls11(c):
    warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1_1 is deprecated: that is the point
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(c.ca_file)
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as e:
        raise Failure("cannot build a TLS 1.1 client: %s" % e)
    try:
        await connect(c.url_b, ssl=ctx)
        raise Failure("TLS 1.1 connected")
    except ssl.SSLError as e:
        # The gateway (not our client) refuses: it answers with a protocol_version alert.
        expect("ALERT_PROTOCOL_VERSION" in str(e), "unexpected TLS error: %s" % e)


@scenario("plain ws:// to the wss listener -> no upgrade")
async def s_tls_plain(c):
    try:
        await connect("ws://127.0.0.1:%d/" % c.port_b)
        raise Failure("plain upgrade succeeded")
    except (websockets.exceptions.InvalidHandshake, ConnectionError, OSError,
            asyncio.TimeoutError, EOFError):
        pass


# ---- resume --------------------------------------------------------------------------------

async def detached_session(c, sub, origin=ORIGIN, channel_port=None):
    ws = await connect(c.url, origin=origin)
    await ws.send(hello(token(sub=sub)))
    ok = await recv_json(ws)
    expect(ok.get("t") == "hello_ok", "hello %r" % ok)
    rx = 0
    if channel_port:
        m = await open_result(ws, 1, "127.0.0.1", channel_port)
        expect(m.get("t") == "open_ok", "open %r" % m)
        banner, _ = await read_channel(ws, 1, lambda b: b"\n" in b)
        rx = len(banner)
    ws.transport.abort()
    await asyncio.sleep(0.2)
    return ok["resume"]["token"], rx


async def resume_code(c, sub, tok, channels=(), origin=ORIGIN):
    ws = await connect(c.url, origin=origin)
    await ws.send(hello(token(sub=sub), resume={"token": tok, "channels": list(channels)}))
    return await expect_close(ws)


@scenario("resume with an unknown token -> 4011 resume rejected")
async def s_res_unknown(c):
    code, why = await resume_code(c, "r1", "U" * 22)
    expect(code == 4011 and why == "resume rejected", "close %s %r" % (code, why))


@scenario("resume as another principal -> 4011 resume rejected")
async def s_res_foreign_sub(c):
    tok, _ = await detached_session(c, "r2")
    code, why = await resume_code(c, "mallory", tok)
    expect(code == 4011 and why == "resume rejected", "close %s %r" % (code, why))
    # The rejected attempt left the real session unchanged: its owner resumes it.
    ws = await connect(c.url)
    await ws.send(hello(token(sub="r2"), resume={"token": tok, "channels": []}))
    ok = await recv_json(ws)
    expect(ok.get("t") == "hello_ok" and ok["resume"]["token"] != tok, "owner resume %r" % ok)
    await ws.close()


@scenario("resume from another Origin -> 4011 resume rejected")
async def s_res_foreign_origin(c):
    tok, _ = await detached_session(c, "r3")
    code, why = await resume_code(c, "r3", tok, origin=ORIGIN2)
    expect(code == 4011 and why == "resume rejected", "close %s %r" % (code, why))


@scenario("resume with rx beyond what was sent -> 4011 resume offset out of range")
async def s_res_range(c):
    tok, rx = await detached_session(c, "r4", channel_port=c.ssh_port)
    code, why = await resume_code(c, "r4", tok, [{"id": 1, "rx": rx + 100000, "credit": 0}])
    expect(code == 4011 and why == "resume offset out of range", "close %s %r" % (code, why))


@scenario("reused (spent) resume token -> 4011 resume rejected")
async def s_res_reuse(c):
    tok, rx = await detached_session(c, "r5", channel_port=c.ssh_port)
    ws = await connect(c.url)
    await ws.send(hello(token(sub="r5"), resume={"token": tok, "channels": [
        {"id": 1, "rx": rx, "credit": WINDOW - rx}]}))
    ok = await recv_json(ws)
    expect(ok.get("t") == "hello_ok", "resume %r" % ok)
    await ws.send(json.dumps({"t": "ping", "ts": 1}))  # proves the rotated token arrived
    await recv_json(ws, skip=("close", "flow", "ping"))
    code, why = await resume_code(c, "r5", tok)
    expect(code == 4011 and why == "resume rejected", "close %s %r" % (code, why))
    await ws.close()


@scenario("resume while the old transport is attached -> old transport gets 4011 superseded")
async def s_supersede(c):
    ws = await connect(c.url)
    await ws.send(hello(token(sub="r6")))
    ok = await recv_json(ws)
    m = await open_result(ws, 1, "127.0.0.1", c.ssh_port)
    expect(m.get("t") == "open_ok", "open %r" % m)
    banner, _ = await read_channel(ws, 1, lambda b: b"\n" in b)
    ws2 = await connect(c.url)
    await ws2.send(hello(token(sub="r6"), resume={"token": ok["resume"]["token"], "channels": [
        {"id": 1, "rx": len(banner), "credit": WINDOW - len(banner)}]}))
    ok2 = await recv_json(ws2)
    expect(ok2.get("t") == "hello_ok", "resume %r" % ok2)
    code, why = await expect_close(ws)
    expect(code == 4011 and why == "superseded", "old transport: %s %r" % (code, why))
    await ws2.send(data_frame(1, b"SSH-2.0-mana_supersede\r\n"))
    kex, _ = await read_channel(ws2, 1, lambda b: len(b) >= 6)
    expect(kex[5] == 20, "new transport relays to sshd")
    await ws2.close()


@scenario("resume TTL expiry frees the target socket; the expired token -> 4011")
async def s_ttl(c):
    # Let the sessions the earlier resume scenarios left detached expire first.
    await settle(c, "mana_sessions_detached", 0, timeout=c.ttl_ms / 1000 + 2)
    base_est = established_to(c.ssh_port)
    m0 = metrics(c.port)
    tok, rx = await detached_session(c, "r7", channel_port=c.ssh_port)
    m1 = metrics(c.port)
    expect(m1["mana_sessions_detached"] >= 1 and
           m1["mana_channels_active"] == m0["mana_channels_active"] + 1,
           "detached %s, channels %s -> %s" % (m1["mana_sessions_detached"],
                                               m0["mana_channels_active"],
                                               m1["mana_channels_active"]))
    expect(established_to(c.ssh_port) == base_est + 1, "the sshd connection is held")
    await asyncio.sleep(c.ttl_ms / 1000 + 0.6)
    m2 = metrics(c.port)
    expect(m2["mana_channels_active"] == m0["mana_channels_active"] and
           m2["mana_sessions_detached"] == m1["mana_sessions_detached"] - 1,
           "after TTL: detached %s, channels %s" % (m2["mana_sessions_detached"],
                                                     m2["mana_channels_active"]))
    expect(established_to(c.ssh_port) == base_est, "sshd connection closed after the TTL")
    code, why = await resume_code(c, "r7", tok, [{"id": 1, "rx": rx, "credit": 1000}])
    expect(code == 4011 and why == "resume rejected", "expired token: %s %r" % (code, why))


# ---- memory bound --------------------------------------------------------------------------

@scenario("slow reader: buffered bytes stay <= window + one frame while the target streams")
async def s_slow(c):
    ws, _ = await fresh(c, local_ip="127.0.0.70")
    m = await open_result(ws, 1, "127.0.0.1", c.bulk_port, window=WINDOW)
    expect(m.get("t") == "open_ok", "open %r" % m)
    got = 0
    end = time.time() + 5
    while got < WINDOW and time.time() < end:
        msg = await asyncio.wait_for(ws.recv(), end - time.time())
        if isinstance(msg, bytes):
            got += len(msg) - 5
    expect(got == WINDOW, "received %d of the window %d" % (got, WINDOW))
    await asyncio.sleep(0.5)  # no credit granted: the target must be held back by TCP
    worst = 0
    for _ in range(5):
        mm = metrics(c.port)
        worst = max(worst, int(mm["mana_buffered_bytes_max"]))
        await asyncio.sleep(0.1)
    c.slow_worst = worst
    c.slow_target_sent = c.targets.bulk_sent
    stalls = metrics(c.port).get("mana_credit_stalls_total", 0)
    print("# slow reader: received %d, buffered max %d bytes, bound window + frame = %d, "
          "bulk target wrote %d bytes, credit stalls %d" % (
              got, worst, WINDOW + MAX_FRAME, c.targets.bulk_sent, stalls))
    expect(worst <= WINDOW + MAX_FRAME, "buffered %d > %d" % (worst, WINDOW + MAX_FRAME))
    expect(stalls >= 1, "no credit stall counted")
    # Granting credit lets the stream continue (the limit was credit, not a failure).
    await ws.send(json.dumps({"t": "flow", "id": 1, "credit": WINDOW, "rx": got}))
    more = 0
    end = time.time() + 5
    while more < WINDOW and time.time() < end:
        msg = await asyncio.wait_for(ws.recv(), end - time.time())
        if isinstance(msg, bytes):
            more += len(msg) - 5
    expect(more == WINDOW, "after the grant: %d" % more)
    await ws.close()


# ---- driver --------------------------------------------------------------------------------

async def run_all(c):
    t = c.targets
    servers = []
    for handler, attr in [(t.ticker, "ticker_port"), (t.bulk, "bulk_port"),
                          (t.not_ssh, "notssh_port"), (t.silent, "silent_port"),
                          (t.denied, "denied_port")]:
        srv = await asyncio.start_server(handler, "127.0.0.1", getattr(c, attr))
        servers.append(srv)
    c.healthy = Healthy(c.url, c.ssh_port, c.ticker_port)
    await c.healthy.start()
    failures = 0
    for name, fn in SCENARIOS:
        t0 = time.time()
        try:
            await asyncio.wait_for(fn(c), 20)
            await c.healthy.check(name)
            RESULTS.append((name, True))
            print("ok - %s (%.2fs)" % (name, time.time() - t0))
        except Exception as e:  # noqa: BLE001 - report and continue with the next scenario
            failures += 1
            RESULTS.append((name, False))
            print("not ok - %s: %s: %s" % (name, type(e).__name__, e))
            if c.healthy.closed is not None:
                break
    check(t.denied_accepts == 0, "the denied listener never saw a connection")
    await c.healthy.check("the end")
    m = metrics(c.port)
    check(m.get("mana_rtt_seconds_count", 0) > 0, "RTT histogram has samples")
    for k in ['reason="rate_opens"', 'reason="rate_pings"', 'reason="rate_resume_fail"',
              'reason="max_http_connections_per_ip"', 'reason="max_http_connections"']:
        check(m.get("mana_policy_rejections_total{%s}" % k, 0) >= 1,
              "policy rejections counted: %s" % k)
    await c.healthy.ws.close()
    for s in servers:
        s.close()
    return failures


def make_cert(tmp):
    ca_key, ca = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.pem")
    key, csr, crt = (os.path.join(tmp, n) for n in ("gw.key", "gw.csr", "gw.pem"))
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=mana test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def run(args, tmp, procs):
    t_start = time.time()
    c = Ctx()
    sshd, c.ssh_port = start_sshd(tmp, args.sshd)
    procs.append(sshd)
    c.targets = Targets()
    for attr in ["ticker_port", "bulk_port", "notssh_port", "silent_port", "denied_port",
                 "closed_port", "unlisted_port"]:
        setattr(c, attr, free_port())
    c.ttl_ms = 1500
    targets = [{"cidr": "127.0.0.1/32",
                "ports": [c.ssh_port, c.ticker_port, c.bulk_port, c.notssh_port,
                          c.silent_port, c.closed_port]},
               {"host": "localhost", "ports": [c.denied_port]}]
    gw_a, c.port, log_a = start_gateway(
        tmp, args.gateway, "gateway-a", {
            "server": {"max_header_bytes": 4096, "max_header_count": 32,
                       "http_timeout_ms": 1000, "max_http_connections": 8,
                       "max_http_connections_per_ip": 4},
            "session": {"max_frame": MAX_FRAME, "window": WINDOW, "max_window": WINDOW,
                        "max_channels": 4, "control_rate": 20, "control_burst": 40,
                        "heartbeat_ms": 600, "heartbeat_misses": 3,
                        "idle_timeout_ms": 30000, "handshake_timeout_ms": 1000,
                        "resume_ttl_ms": c.ttl_ms},
            "limits": {"max_connections": 10, "max_connections_per_ip": 4,
                       "max_sessions_per_principal": 3, "outbound_high_water": 131072,
                       "outbound_low_water": 32768, "outbound_max": 1048576},
            "rate": {"open_rate": 5, "open_burst": 15, "ping_rate": 5, "ping_burst": 15,
                     "resume_fail_rate": 1, "resume_fail_burst": 8},
            "relay": {"connect_timeout_ms": 1000, "banner_timeout_ms": 800,
                      "banner_max_bytes": 256, "read_chunk": READ_CHUNK}},
        origins=(ORIGIN, ORIGIN2), targets=targets)
    procs.append(gw_a)
    c.ca_file, crt, key = make_cert(tmp)
    gw_b, c.port_b, log_b = start_gateway(
        tmp, args.gateway, "gateway-b", {
            "tls": {"cert_file": "gw.pem", "key_file": "gw.key"},
            "session": {"idle_timeout_ms": 700, "heartbeat_ms": 5000}},
        origins=(ORIGIN, ORIGIN2), targets=targets)
    procs.append(gw_b)
    c.url = "ws://127.0.0.1:%d/" % c.port
    c.url_b = "wss://127.0.0.1:%d/" % c.port_b
    c.tls_client = ssl.create_default_context(cafile=c.ca_file)
    failures = asyncio.run(run_all(c))
    passed = sum(1 for _, ok in RESULTS if ok)
    print("# %d scenarios, %d passed, %d failed, %.1fs" % (
        len(RESULTS), passed, failures, time.time() - t_start))
    check(failures == 0 and len(RESULTS) == len(SCENARIOS) and len(SCENARIOS) >= 40,
          "all %d scenarios passed" % len(SCENARIOS))
    for p in (gw_a, gw_b):
        p.send_signal(signal.SIGTERM)
        code = p.wait(timeout=10)
        check(code == 0, "SIGTERM -> gateway exits 0 (got %s)" % code)
    from fixture import SECRET
    for path in (log_a, log_b):
        log = open(path).read()
        check(SECRET not in log and "SSH-2.0" not in log and "eyJ" not in log,
              "%s holds no token, secret or payload" % os.path.basename(path))
        for line in log.splitlines():
            json.loads(line)


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-badinput-", logs=("gateway-a.log", "gateway-b.log")))
