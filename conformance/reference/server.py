#!/usr/bin/python3
"""Reference scripted server for the json-base64.v1 and lenpfx.v1 wire profiles.

A small, readable mana.ssh.v1 server (docs/PROTOCOL.md) for authors to compare against. It does
not relay to TCP: every channel it opens is an echo channel with the behaviour of
conformance/echo_target.py built in (it sends b"SSH-2.0-mana-echo\\r\\n", then echoes the client's
bytes; after the end-of-file mark echo_target.EOF_MARK it "closes its side", and the channel ends
with close{reason:"eof"}, §7.1). Only targets on 127.0.0.1 / localhost are "allowed"; any other
open gets open_err policy_denied.

Implemented: hello/hello_ok with profile negotiation, bearer auth against --token-file,
open/open_ok/open_err, close, credit in both directions (bidi), flow, ping/pong, heartbeats and
the 3 x heartbeat / idle timeouts (4012), the control rate limit, size limits, strict decoding
with the close codes of §11, and resume (§9): a 128-bit token from `secrets`, rotated on every
hello_ok, looked up by a keyed hash and compared with hmac.compare_digest, bound to the Origin
and the bearer token, kept --resume-ttl-ms after the transport is lost, one transport at a time
(a newer resume closes the old one with 4011 "superseded"), and a per-channel replay buffer of
the bytes the client has not acknowledged (bounded by the window, §9.1). hello_ok carries the
route id --route (§9.8; the query string of the upgrade URL is ignored).

--violate credit: ignore the client's credit and send all echoed data at once (for the test that
proves the kit's flow.server_respects_credit case fails against such a server).

Usage: server.py --profile json-base64.v1|lenpfx.v1 [--listen 127.0.0.1:0] [--token-file F]
                 [--heartbeat-ms 1000] [--idle-timeout-ms 60000] [--resume-ttl-ms 60000]
                 [--route ID] [--violate credit]
"""
import argparse
import asyncio
import hashlib
import hmac
import os
import re
import secrets
import sys
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from conformance import profiles  # noqa: E402
from conformance.echo_target import BANNER, EOF_MARK  # noqa: E402

MAXINT = 2**53 - 1
MAX_ID = 2**31 - 1
MAX_FRAME = 131072
WINDOW = 65536
MAX_WINDOW = 2097152           # §8.4: a window never grows beyond max(initial, 2 MiB)
MAX_CHANNELS = 4
CLIENT_TYPES = {"open", "resize", "signal", "close", "flow", "ping", "pong"}
RESUMABLE = {1001, 1006, 4010, 4012}  # transport ends that detach the session (§9.3)
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")

# The resume table: keyed hash of a token -> (token, Session). The key is per process, so the
# dict lookup leaks nothing about the token; the stored token is then compared in constant time.
TABLE_KEY = secrets.token_bytes(32)
TABLE = {}


def table_key(token):
    return hmac.new(TABLE_KEY, token.encode("ascii"), hashlib.sha256).digest()


def lookup(token):
    entry = TABLE.get(table_key(token))
    if entry is None or not hmac.compare_digest(entry[0].encode(), token.encode()):
        return None
    return entry[1]


class ProtocolError(Exception):
    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Superseded(Exception):
    """This transport is no longer the session's (a resume moved the session elsewhere)."""


def need_int(obj, key, lo=0, hi=MAXINT, required=True, code=4014):
    if key not in obj:
        if not required:
            return None
        raise ProtocolError(code, "missing " + key)
    v = obj[key]
    if not profiles.is_int(v):
        raise ProtocolError(code, "wrong type " + key)
    if not lo <= v <= hi:
        raise ProtocolError(code, "out of range " + key)
    return v


class Chan:
    """One echo channel. Server->client offsets: the output stream (banner + echo) is sent from
    `out`; `replay` holds the sent bytes the client has not acknowledged, so it covers the stream
    offsets [sent - len(replay), sent)."""

    def __init__(self, cid, window):
        self.id = cid
        self.out = bytearray(BANNER)  # output not yet sent
        self.sent = 0                 # server->client bytes sent
        self.high = 0                 # the largest `sent` so far (a resume can rewind `sent`)
        self.limit = window           # server->client limit (the client's credit)
        self.replay = bytearray()     # sent, not yet acknowledged by flow.rx (§9.1)
        self.replay_cap = max(window, MAX_WINDOW)
        self.rx = 0                   # client->server bytes received
        self.rx_limit = WINDOW        # client->server limit we granted
        self.tail = b""               # the last bytes received, to find EOF_MARK across frames
        self.eof_at = None            # the output offset after which the "target" sent EOF
        self.close_sent = False

    def entry(self):
        """This channel's resume entry (§5.1): what we received, and what the client may send."""
        return {"id": self.id, "rx": self.rx, "credit": self.rx_limit - self.rx, "closed": False}


class Session:
    """A session outlives its transport when resume is offered: `ws` is the attached transport
    (None while detached)."""

    def __init__(self, args, profile, hello, origin):
        self.args = args
        self.profile = profiles.get(profile)
        self.origin = origin
        self.principal = hello["auth"].get("token")
        self.bidi = hello["caps"].get("bidi") is True
        self.resume = self.bidi and (hello["caps"].get("resume") is True or "resume" in hello)
        self.chans = {}
        self.ws = None
        self.tokens = []      # valid tokens: [newest] or [newest, the one the resume used]
        self.expiry = None    # the TTL timer while detached
        self.ended = False

    # --- transport attachment and tokens (§9.2) ---------------------------------------------
    def attach(self, ws, hello):
        old, self.ws = self.ws, ws
        if old is not None:  # one transport at a time: the newest wins
            asyncio.ensure_future(old.close(4011, "superseded"))
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        self.client_max_frame = hello["caps"].get("maxFrame", profiles.DEFAULT_MAX_FRAME)
        self.rate = 100.0  # control rate: 50/s, burst 100 per connection (§10.4)
        self.rate_at = time.monotonic()
        self.last_tx = self.last_rx = time.monotonic()
        if self.resume:  # rotate: keep only the token this resume used (grace) and a new one
            used = hello.get("resume", {}).get("token")
            for t in self.tokens:
                if t != used:
                    TABLE.pop(table_key(t), None)
            token = secrets.token_urlsafe(16)  # 128 bits, unpadded base64url: 22 characters
            TABLE[table_key(token)] = (token, self)
            self.tokens = [token] + ([used] if used in self.tokens else [])

    def spend_grace_token(self):
        """The first client message on a resumed transport spends the token the resume used."""
        for t in self.tokens[1:]:
            TABLE.pop(table_key(t), None)
        del self.tokens[1:]

    def transport_lost(self, ws, code):
        if ws is not self.ws or self.ended:
            return
        self.ws = None
        if not self.resume or code not in RESUMABLE:
            self.end()
            return
        self.expiry = asyncio.get_running_loop().call_later(self.args.resume_ttl_ms / 1000,
                                                            self.end)

    def end(self):
        """Final: channels, buffers and tokens are released (TTL expiry or a final close)."""
        self.ended = True
        self.chans = {}
        for t in self.tokens:
            TABLE.pop(table_key(t), None)
        self.tokens = []
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None

    def hello_ok(self):
        caps = {"flow": "credit", "maxFrame": MAX_FRAME, "profileAccepted": self.profile.id,
                "bidi": self.bidi, "heartbeatMs": self.args.heartbeat_ms,
                "idleTimeoutMs": self.args.idle_timeout_ms, "maxChannels": MAX_CHANNELS,
                "window": WINDOW}
        msg = {"t": "hello_ok", "server": "mana-reference", "route": self.args.route, "caps": caps}
        if self.resume:
            caps["resumeTtlMs"] = self.args.resume_ttl_ms
            msg["resume"] = {"token": self.tokens[0],
                             "channels": [ch.entry() for ch in self.chans.values()]}
        return profiles.compact(msg)

    # --- resume (§9.4, §9.5) --------------------------------------------------------------
    def check_offsets(self, entries):
        for e in entries:
            ch = self.chans.get(e["id"])
            if ch is None:
                continue  # the client lists a channel we no longer have: ignored (§9.5)
            start = ch.sent - len(ch.replay)
            if not start <= e["rx"] <= ch.sent or e["rx"] + e["credit"] < ch.sent:
                raise ProtocolError(4011, "resume offset out of range")

    def apply_resume(self, entries):
        listed = {e["id"]: e for e in entries}
        for cid in list(self.chans):
            if cid not in listed:  # the client no longer has it: freed without a message
                del self.chans[cid]
        for cid, ch in self.chans.items():
            e = listed[cid]
            # Drop what the client has, then put [rx, sent) back in front of the output: the
            # pump retransmits it first, under the credit the client announced.
            del ch.replay[:e["rx"] - (ch.sent - len(ch.replay))]
            ch.out[0:0] = ch.replay
            ch.replay = bytearray()
            ch.sent = e["rx"]
            ch.limit = e["rx"] + e["credit"]
            if ch.close_sent and not e.get("closed"):
                ch.close_sent = False  # the client has not seen our close: send it again

    # --- sending --------------------------------------------------------------------------
    async def send(self, ws, encoded):
        if ws is not self.ws:
            raise Superseded()
        mtype, msg = encoded
        self.last_tx = time.monotonic()
        await ws.send(msg.decode("utf-8") if mtype == profiles.TEXT else msg)

    async def send_control(self, ws, obj):
        await self.send(ws, self.profile.encode_control(profiles.compact(obj)))

    async def pump(self, ws):
        """Output under credit (§8), into the replay buffer first, then onto the transport."""
        for ch in list(self.chans.values()):
            if ws is not self.ws:
                raise Superseded()
            room = ch.limit - ch.sent if self.args.violate != "credit" else len(ch.out)
            room = min(room, ch.replay_cap - len(ch.replay))  # bounded even without acks
            n = min(room, len(ch.out))
            if n > 0:
                chunk = bytes(ch.out[:n])
                del ch.out[:n]
                ch.replay += chunk
                ch.sent += n
                ch.high = max(ch.high, ch.sent)
                for enc in self.profile.encode_data_split("stdout", ch.id, chunk,
                                                          self.client_max_frame):
                    await self.send(ws, enc)
            if ch.eof_at is not None and not ch.out and not ch.close_sent:
                ch.close_sent = True  # the target sent EOF and all its data is out (§7.1)
                await self.send_control(ws, {"t": "close", "id": ch.id, "reason": "eof"})
            # grant client credit for what the echo consumed (§8.3): half a window at a time
            consumed = min(ch.rx, max(0, ch.high - len(BANNER)))
            if self.bidi and not ch.close_sent and ch.rx_limit - consumed <= WINDOW // 2:
                credit = consumed + WINDOW - ch.rx_limit
                ch.rx_limit += credit
                await self.send_control(ws, {"t": "flow", "id": ch.id, "credit": credit,
                                             "rx": ch.rx})

    # --- messages after hello_ok --------------------------------------------------------------
    async def on_message(self, ws, m):
        mtype = profiles.TEXT if isinstance(m, str) else profiles.BINARY
        raw = m.encode("utf-8") if isinstance(m, str) else m
        try:
            frame = self.profile.decode(mtype, raw, profiles.Limits(MAX_FRAME))
        except profiles.DecodeError as e:
            raise ProtocolError(e.close_code, e.errc)
        if isinstance(frame, profiles.Data):
            self.on_data(frame)
        else:
            try:
                obj = profiles.parse_json(frame.text)
            except profiles.DecodeError as e:
                raise ProtocolError(4014, e.errc)
            await self.on_control(ws, obj)

    def on_data(self, f):
        if f.stream != profiles.STDOUT:
            raise ProtocolError(4014, "stderr from client")
        ch = self.chans.get(f.id)
        if ch is None:
            raise ProtocolError(4014, "unknown channel")
        ch.rx += len(f.payload)
        if self.bidi and ch.rx > ch.rx_limit:
            raise ProtocolError(4007, "credit overrun")
        if ch.close_sent or ch.eof_at is not None:
            return  # counted, then discarded (§7.3): the target no longer sends
        # the built-in echo "consumes" the bytes; EOF_MARK ends its output (echo_target.py)
        seen = ch.tail + f.payload
        at = seen.find(EOF_MARK)
        if at < 0:
            ch.out += f.payload
            ch.tail = seen[-(len(EOF_MARK) - 1):]
        else:
            ch.out += f.payload[:at + len(EOF_MARK) - len(ch.tail)]
            ch.eof_at = ch.sent + len(ch.out)

    async def on_control(self, ws, obj):
        if not isinstance(obj, dict):
            raise ProtocolError(4014, "not an object")
        t = obj.get("t")
        if not isinstance(t, str):
            raise ProtocolError(4014, "missing t")
        if t not in CLIENT_TYPES:
            raise ProtocolError(4009, "unexpected message")
        if t not in ("flow", "pong"):  # flow and pong are exempt (§10.4)
            now = time.monotonic()
            self.rate = min(100.0, self.rate + (now - self.rate_at) * 50)
            self.rate_at = now
            if self.rate < 1:
                raise ProtocolError(4004, "rate limited")
            self.rate -= 1
        if t == "ping":
            await self.send_control(ws, {"t": "pong", "ts": need_int(obj, "ts")})
        elif t == "pong":
            need_int(obj, "ts")
        elif t == "open":
            await self.on_open(ws, obj)
        else:
            ch = self.chans.get(need_int(obj, "id", 1, MAX_ID))
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
                if rx is not None:  # trim the replay buffer below rx (stale rx: no-op)
                    del ch.replay[:max(0, rx - (ch.sent - len(ch.replay)))]
            elif t == "close":
                del self.chans[ch.id]  # free: both closes are sent once ours goes out
                if not ch.close_sent:
                    await self.send_control(ws, {"t": "close", "id": ch.id})
            # resize and signal: no pty here, validated only

    async def on_open(self, ws, obj):
        cid = need_int(obj, "id", 1, MAX_ID)
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
            await self.send_control(ws, {"t": "open_err", "id": cid, "code": "policy_denied",
                                         "msg": "target not allowed"})
            return
        self.chans[cid] = Chan(cid, window)
        await self.send_control(ws, {"t": "open_ok", "id": cid, "window": WINDOW})

    # --- one attached transport -----------------------------------------------------------
    async def serve(self, ws, resumed):
        hb = self.args.heartbeat_ms / 1000
        dead = min(self.args.idle_timeout_ms / 1000, 3 * hb)  # §10.1 (3 x H), §10.2 (idle)
        while True:
            await self.pump(ws)
            now = time.monotonic()
            if now - self.last_rx >= dead:
                raise ProtocolError(4012, "timeout")
            wait = min(self.last_tx + hb, self.last_rx + dead) - now
            try:
                m = await asyncio.wait_for(ws.recv(), max(0.01, wait))
            except asyncio.TimeoutError:
                if time.monotonic() - self.last_tx >= hb:
                    await self.send_control(ws, {"t": "ping", "ts": int(time.monotonic() * 1e6)})
                continue
            self.last_rx = time.monotonic()
            if resumed:
                self.spend_grace_token()
                resumed = False
            await self.on_message(ws, m)


# --- bootstrap (§3.1, §5.1, §6.1, §9.4) ----------------------------------------------------
def parse_hello(first):
    """The first message as a hello (§5.1); every failure except size is 4002."""
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
    hello.setdefault("caps", {})
    hello.setdefault("auth", {"scheme": "none"})
    caps, auth = hello["caps"], hello["auth"]
    if not isinstance(caps, dict) or not isinstance(auth, dict):
        raise ProtocolError(4002, "bad hello")
    if not isinstance(caps.get("profile", ""), str):
        raise ProtocolError(4002, "bad hello")
    need_int(caps, "maxFrame", 1024, 16777216, required=False, code=4002)
    if "resume" in hello:
        res = hello["resume"]
        if (not isinstance(res, dict) or not isinstance(res.get("token"), str)
                or not TOKEN_RE.match(res["token"]) or not isinstance(res.get("channels"), list)
                or len(res["channels"]) > 256):
            raise ProtocolError(4002, "bad hello")
        for e in res["channels"]:
            if not isinstance(e, dict) or not isinstance(e.get("closed", False), bool):
                raise ProtocolError(4002, "bad hello")
            need_int(e, "id", 1, MAX_ID, code=4002)
            if need_int(e, "rx", code=4002) + need_int(e, "credit", code=4002) > MAXINT:
                raise ProtocolError(4002, "bad hello")
        if len({e["id"] for e in res["channels"]}) != len(res["channels"]):
            raise ProtocolError(4002, "bad hello")
    return hello


async def handshake(ws, args):
    """Reads hello, runs the checks of §6.1 in order, sends hello_ok; returns (session, resumed)."""
    hello = parse_hello(await asyncio.wait_for(ws.recv(), 10))
    profile = hello["caps"].get("profile", "mana.v1")
    if profile != args.profile:
        raise ProtocolError(4001, "unsupported profile")
    auth = hello["auth"]
    if args.token is not None and (auth.get("scheme") != "bearer" or
                                   not hmac.compare_digest(str(auth.get("token")), args.token)):
        raise ProtocolError(4003, "auth failed")
    # §6.1 rule 5: anything the client sent after hello, before our hello_ok, is 4009. (The
    # websockets library has already queued every complete message that arrived with hello.)
    if ws.messages:
        raise ProtocolError(4009, "message before hello_ok")
    origin = ws.request_headers.get("Origin")
    if "resume" not in hello:
        s = Session(args, profile, hello, origin)
        s.attach(ws, hello)
        await ws.send(s.hello_ok())
        return s, False
    res = hello["resume"]
    s = lookup(res["token"])
    if s is None or s.ended or s.origin != origin or s.principal != auth.get("token"):
        raise ProtocolError(4011, "resume rejected")  # unknown, expired, spent: one answer
    s.check_offsets(res["channels"])  # on failure the session and its token stay as they are
    s.attach(ws, hello)
    s.apply_resume(res["channels"])
    await ws.send(s.hello_ok())
    return s, True


async def handler(ws, args):
    s = None
    try:
        s, resumed = await handshake(ws, args)
        await s.serve(ws, resumed)
    except Superseded:
        pass  # the resume that took the session over closes this transport with 4011
    except ProtocolError as e:
        if s is not None:
            s.transport_lost(ws, e.code)  # 4012 detaches, every other code ends the session
        await ws.close(e.code, e.reason)
    except asyncio.TimeoutError:
        await ws.close(4012, "timeout")  # no hello within 10 s (§6.1)
    except websockets.exceptions.ConnectionClosed as e:
        if s is not None:
            s.transport_lost(ws, e.rcvd.code if e.rcvd else 1006)


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
    ap.add_argument("--idle-timeout-ms", type=int, default=60000)
    ap.add_argument("--resume-ttl-ms", type=int, default=60000)
    ap.add_argument("--route", default="reference", help="hello_ok.route (§9.8)")
    ap.add_argument("--violate", choices=["credit"])
    args = ap.parse_args()
    args.token = open(args.token_file).read().strip() if args.token_file else None
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
