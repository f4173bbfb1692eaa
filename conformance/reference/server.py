#!/usr/bin/python3
"""Reference scripted server for the json-base64.v1 and lenpfx.v1 wire profiles.

A small, readable mana.ssh.v1 server (docs/PROTOCOL.md) for authors to compare against. It does
not relay to TCP: every channel it opens is an echo channel with the behaviour of
conformance/echo_target.py built in (it sends b"SSH-2.0-mana-echo\\r\\n", then echoes the client's
bytes). Only targets on 127.0.0.1 / localhost are "allowed"; any other open gets
open_err policy_denied.

Implemented: hello/hello_ok with profile negotiation, bearer auth against --token-file,
open/open_ok/open_err, close, credit in both directions (bidi), flow, ping/pong, heartbeats,
the control rate limit, size limits, strict decoding with the close codes of §11. Not implemented: resume (not offered).

--violate credit: ignore the client's credit and send all echoed data at once (for the test that
proves the kit's flow.server_respects_credit case fails against such a server).

Usage: server.py --profile json-base64.v1|lenpfx.v1 [--listen 127.0.0.1:0] [--token-file F]
                 [--heartbeat-ms 1000] [--violate credit]
"""
import argparse
import asyncio
import os
import sys
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from conformance import profiles  # noqa: E402

BANNER = b"SSH-2.0-mana-echo\r\n"
MAXINT = 2**53 - 1
MAX_FRAME = 131072
WINDOW = 65536
MAX_CHANNELS = 4
CLIENT_TYPES = {"open", "resize", "signal", "close", "flow", "ping", "pong"}
SERVER_TYPES = {"hello_ok", "open_ok", "open_err", "exit"}


class ProtocolError(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def need_int(obj, key, lo=0, hi=MAXINT, required=True):
    v = obj.get(key)
    if v is None and not required and key not in obj:
        return None
    if key not in obj:
        raise ProtocolError(4014, "missing " + key)
    if not profiles.is_int(v):
        raise ProtocolError(4014, "wrong type " + key)
    if not lo <= v <= hi:
        raise ProtocolError(4014, "out of range " + key)
    return v


class Chan:
    def __init__(self, cid, window):
        self.id = cid
        self.out = bytearray(BANNER)  # bytes to send to the client (the echo)
        self.sent = 0                 # server->client bytes sent
        self.limit = window           # server->client limit (the client's credit)
        self.rx = 0                   # client->server bytes received
        self.rx_limit = WINDOW        # client->server limit we granted


class Session:
    def __init__(self, ws, args):
        self.ws = ws
        self.args = args
        self.profile = profiles.get(args.profile)
        self.client_max_frame = profiles.DEFAULT_MAX_FRAME
        self.chans = {}
        self.bidi = False
        self.last_tx = time.monotonic()
        self.tokens = 100.0  # control rate: 50/s, burst 100 (§10.4)
        self.tokens_at = time.monotonic()

    async def send_control(self, obj):
        await self.send(self.profile.encode_control(profiles.compact(obj)))

    async def send(self, encoded):
        mtype, msg = encoded
        self.last_tx = time.monotonic()
        await self.ws.send(msg.decode("utf-8") if mtype == profiles.TEXT else msg)

    # --- bootstrap (§3.1, §6.1) -------------------------------------------------------------
    async def handshake(self):
        first = await asyncio.wait_for(self.ws.recv(), 10)
        if len(first) > MAX_FRAME:
            raise ProtocolError(4008, "frame too large")
        if not isinstance(first, str):
            raise ProtocolError(4002, "bad hello")
        try:
            hello = profiles.parse_json(first.encode("utf-8"))
        except profiles.DecodeError:
            raise ProtocolError(4002, "bad hello")
        if not isinstance(hello, dict) or hello.get("t") != "hello" or hello.get("proto") != 1:
            raise ProtocolError(4002, "bad hello")
        caps = hello.get("caps", {})
        auth = hello.get("auth", {"scheme": "none"})
        if not isinstance(caps, dict) or not isinstance(auth, dict):
            raise ProtocolError(4002, "bad hello")
        profile = caps.get("profile", "mana.v1")
        if not isinstance(profile, str):
            raise ProtocolError(4002, "bad hello")
        mf = caps.get("maxFrame", profiles.DEFAULT_MAX_FRAME)
        if not profiles.is_int(mf) or not 1024 <= mf <= 16777216:
            raise ProtocolError(4002, "bad hello")
        if profile != self.profile.id:
            raise ProtocolError(4001, "unsupported profile")
        if self.args.token is not None:
            if auth.get("scheme") != "bearer" or auth.get("token") != self.args.token:
                raise ProtocolError(4003, "auth failed")
        self.client_max_frame = mf
        self.bidi = caps.get("bidi") is True
        await self.ws.send(profiles.compact({
            "t": "hello_ok", "server": "mana-reference",
            "caps": {"flow": "credit", "maxFrame": MAX_FRAME, "profileAccepted": profile,
                     "bidi": self.bidi, "heartbeatMs": self.args.heartbeat_ms,
                     "idleTimeoutMs": 60000, "maxChannels": MAX_CHANNELS, "window": WINDOW}}))
        self.last_tx = time.monotonic()

    # --- messages after hello_ok --------------------------------------------------------------
    async def on_message(self, m):
        mtype = profiles.TEXT if isinstance(m, str) else profiles.BINARY
        raw = m.encode("utf-8") if isinstance(m, str) else m
        try:
            frame = self.profile.decode(mtype, raw, profiles.Limits(MAX_FRAME))
        except profiles.DecodeError as e:
            raise ProtocolError(e.close_code, e.errc)
        if isinstance(frame, profiles.Data):
            await self.on_data(frame)
        else:
            try:
                obj = profiles.parse_json(frame.text)
            except profiles.DecodeError as e:
                raise ProtocolError(4014, e.errc)
            await self.on_control(obj)

    async def on_data(self, f):
        if f.stream != profiles.STDOUT:
            raise ProtocolError(4014, "stderr from client")
        ch = self.chans.get(f.id)
        if ch is None:
            raise ProtocolError(4014, "unknown channel")
        ch.rx += len(f.payload)
        if self.bidi and ch.rx > ch.rx_limit:
            raise ProtocolError(4007, "credit overrun")
        ch.out += f.payload  # the built-in echo "consumes" the bytes

    async def on_control(self, obj):
        if not isinstance(obj, dict):
            raise ProtocolError(4014, "not an object")
        t = obj.get("t")
        if not isinstance(t, str):
            raise ProtocolError(4014, "missing t")
        if t not in CLIENT_TYPES:
            raise ProtocolError(4009, "unexpected message")
        if t not in ("flow", "pong"):  # flow and pong are exempt (§10.4)
            now = time.monotonic()
            self.tokens = min(100.0, self.tokens + (now - self.tokens_at) * 50)
            self.tokens_at = now
            if self.tokens < 1:
                raise ProtocolError(4004, "rate limited")
            self.tokens -= 1
        if t == "ping":
            await self.send_control({"t": "pong", "ts": need_int(obj, "ts")})
        elif t == "pong":
            need_int(obj, "ts")
        elif t == "open":
            await self.on_open(obj)
        else:
            ch = self.chans.get(need_int(obj, "id", 1, 2**31 - 1))
            if ch is None:
                raise ProtocolError(4014, "unknown channel")
            if t == "flow":
                credit = need_int(obj, "credit")
                rx = need_int(obj, "rx", required=False)
                if rx is not None and rx > ch.sent:
                    raise ProtocolError(4007, "ack beyond sent")
                if ch.limit + credit > MAXINT:
                    raise ProtocolError(4007, "credit overflow")
                ch.limit += credit
            elif t == "close":
                del self.chans[ch.id]
                await self.send_control({"t": "close", "id": ch.id})
            # resize and signal: no pty here, validated only

    async def on_open(self, obj):
        cid = need_int(obj, "id", 1, 2**31 - 1)
        target = obj.get("target")
        if not isinstance(target, dict) or not isinstance(target.get("host"), str):
            raise ProtocolError(4014, "bad target")
        need_int(target, "port", 1, 65535)
        if obj.get("kind", "tcp") not in ("tcp", "ssh"):
            raise ProtocolError(4014, "bad kind")
        window = need_int(obj, "window", 1024, 2**30, required=False) or WINDOW
        if cid in self.chans:
            raise ProtocolError(4013, "duplicate channel id")
        if len(self.chans) >= MAX_CHANNELS:
            raise ProtocolError(4006, "channel limit")
        if target["host"] not in ("127.0.0.1", "localhost"):
            await self.send_control({"t": "open_err", "id": cid, "code": "policy_denied",
                                     "msg": "target not allowed"})
            return
        self.chans[cid] = Chan(cid, window)
        await self.send_control({"t": "open_ok", "id": cid, "window": WINDOW})

    # --- output under credit (§8) ----------------------------------------------------------
    async def pump(self):
        for ch in list(self.chans.values()):
            room = len(ch.out) if self.args.violate == "credit" else ch.limit - ch.sent
            n = min(room, len(ch.out))
            if n > 0:
                chunk, ch.out = bytes(ch.out[:n]), ch.out[n:]
                for enc in self.profile.encode_data_split("stdout", ch.id, chunk,
                                                          self.client_max_frame):
                    await self.send(enc)
                ch.sent += n
            # grant client credit for what the echo consumed (§8.3): half a window at a time
            consumed = max(0, ch.sent - len(BANNER))  # client bytes echoed on
            if self.bidi and ch.rx_limit - consumed <= WINDOW // 2:
                credit = consumed + WINDOW - ch.rx_limit
                ch.rx_limit += credit
                await self.send_control({"t": "flow", "id": ch.id, "credit": credit,
                                         "rx": ch.rx})

    async def run(self):
        await self.handshake()
        while True:
            await self.pump()
            idle = time.monotonic() - self.last_tx
            timeout = max(0.01, self.args.heartbeat_ms / 1000 - idle)
            try:
                m = await asyncio.wait_for(self.ws.recv(), timeout)
            except asyncio.TimeoutError:
                if time.monotonic() - self.last_tx >= self.args.heartbeat_ms / 1000:
                    await self.send_control({"t": "ping", "ts": int(time.monotonic() * 1e6)})
                continue
            await self.on_message(m)


async def handler(ws, args):
    try:
        await Session(ws, args).run()
    except ProtocolError as e:
        await ws.close(e.code, e.reason)
    except asyncio.TimeoutError:
        await ws.close(4012, "timeout")
    except websockets.exceptions.ConnectionClosed:
        pass


async def serve(args):
    host, _, port = args.listen.rpartition(":")
    async with websockets.serve(lambda ws, _path: handler(ws, args), host, int(port),
                                subprotocols=["mana.ssh.v1"], compression=None,
                                max_size=MAX_FRAME, ping_interval=None) as server:
        addr = server.sockets[0].getsockname()
        print("listening %s:%d" % (addr[0], addr[1]), flush=True)
        await asyncio.Future()


def main():
    ap = argparse.ArgumentParser(description="mana.ssh.v1 reference server (built-in echo)")
    ap.add_argument("--profile", required=True, choices=["json-base64.v1", "lenpfx.v1"])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--token-file")
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    ap.add_argument("--violate", choices=["credit"])
    args = ap.parse_args()
    args.token = open(args.token_file).read().strip() if args.token_file else None
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
