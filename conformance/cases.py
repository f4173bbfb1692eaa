"""The conformance cases. Each is tagged MUST or SHOULD and cites the PROTOCOL.md section it tests.

A case is an async function of a Context. It passes by returning (optionally a detail string),
fails by raising Fail (or client.Violation: the server broke a rule on the way), and is skipped by
raising Skip (a skipped case is never counted as passed). Each case opens its own connections,
so one failure does not cascade.
"""
import asyncio
import json
import os
import re
import time

import websockets

from . import profiles
from .client import MAXINT, SUBPROTOCOL, Channel, Closed, Conn, Violation
from .echo_target import BANNER as ECHO_BANNER  # what the echo target sends first
from .echo_target import EOF_MARK  # after it, the echo target closes its side (EOF)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class Case:
    def __init__(self, name, level, section, summary, fn, only=None):
        self.name = name
        self.level = level
        self.section = section
        self.summary = summary
        self.fn = fn
        self.only = only  # profile ids this case applies to (None: all)


CASES = []


def case(name, level, section, summary, only=None):
    def reg(fn):
        CASES.append(Case(name, level, section, summary, fn, only))
        return fn
    return reg


class Context:
    def __init__(self, opts, profile_id):
        self.opts = opts
        self.profile_id = profile_id
        self.profile = profiles.get(profile_id)
        self.conns = []

    def conn(self):
        c = Conn(self.opts, self.profile_id)
        self.conns.append(c)
        return c

    async def ready(self, **hello_kw):
        """A new connection after a successful handshake."""
        c = self.conn()
        try:
            await c.handshake(**hello_kw)
        except Closed as e:
            raise Fail("handshake refused: close %s %r" % (e.code, e.reason))
        return c

    async def cleanup(self):
        for c in self.conns:
            await c.close()
        self.conns = []

    def echo(self):
        if not self.opts.echo_target:
            raise Skip("needs --echo-target")
        return self.opts.echo_target

    async def echo_channel(self, c, cid=1, window=None, auto_grant=True):
        """Open channel `cid` to the echo target and read its banner."""
        host, port = self.echo()
        m = await c.open(cid, host, port, window=window, auto_grant=auto_grant)
        if m.get("t") != "open_ok" or m.get("id") != cid:
            raise Fail("open of the echo target %s:%d answered %s" % (host, port, json.dumps(m)))
        got = await c.read_until(cid, len(ECHO_BANNER))
        if not got.startswith(ECHO_BANNER):
            raise Fail("the echo target did not send %r first (got %r): see docs/conformance.md"
                       % (ECHO_BANNER, got[:40]))
        return c.channels[cid]


async def expect_close(c, codes, what):
    code = await c.expect_close()
    if code is None:
        raise Fail("%s: no close within %ss (expected %s)" % (what, c.opts.timeout, codes))
    if code not in codes:
        raise Fail("%s: closed with %s, expected %s" % (what, code, " or ".join(map(str, codes))))
    return "closed %d" % code


async def pump_echo(c, cid, payload, timeout=None):
    """Send `payload` within client->server credit while reading the echo; check it comes back."""
    ch = c.channels[cid]
    base = len(ch.data)
    want = base + len(payload)
    loop = asyncio.get_running_loop()
    end = loop.time() + (timeout or c.opts.timeout * 3)
    off = 0
    while len(ch.data) < want:
        if loop.time() > end:
            raise Fail("echo incomplete: %d of %d bytes back" % (len(ch.data) - base, len(payload)))
        room = ch.tx_limit - ch.tx if c.bidi else len(payload)
        if off < len(payload) and room > 0:
            n = min(room, len(payload) - off)
            await c.send_data(cid, payload[off:off + n])
            off += n
        try:
            await c.recv_frame(0.2 if off < len(payload) else end - loop.time())
        except asyncio.TimeoutError:
            pass
    got = bytes(ch.data[base:want])
    if got != payload or len(ch.data) != want:
        raise Fail("echoed bytes differ from what was sent (%d vs %d bytes)"
                   % (len(ch.data) - base, len(payload)))


# --- handshake (§2, §3, §5.1, §5.2, §6.1) ------------------------------------------------

@case("handshake.hello_ok", "MUST", "§2, §3.1, §5.2, §6.1",
      "hello -> hello_ok as the first message (text JSON), subprotocol mana.ssh.v1, "
      "profileAccepted = requested profile")
async def _hello_ok(ctx):
    c = await ctx.ready()
    caps = c.caps
    if not isinstance(c.hello_ok.get("server"), str):
        raise Fail("hello_ok.server missing or not a string")
    if caps.get("profileAccepted") != ctx.profile_id:
        raise Fail("profileAccepted %r != requested %r" % (caps.get("profileAccepted"),
                                                           ctx.profile_id))
    # The profile is in force after hello_ok: a ping must be answered in it.
    await c.send_control({"t": "ping", "ts": 7})
    m = await c.recv_control(("pong",))
    if m.get("ts") != 7:
        raise Fail("pong after hello_ok carries ts %r" % m.get("ts"))
    return "server %r" % c.hello_ok.get("server")


@case("handshake.caps", "MUST", "§5.2",
      "hello_ok.caps carries maxFrame, bidi, heartbeatMs, idleTimeoutMs, maxChannels, window in range")
async def _caps(ctx):
    c = await ctx.ready()
    caps = c.caps
    ranges = {"maxFrame": (1024, 16777216), "heartbeatMs": (1, 2**32 - 1),
              "idleTimeoutMs": (1, 2**32 - 1), "maxChannels": (1, 2**32 - 1),
              "window": (1024, 2**30)}
    for k, (lo, hi) in ranges.items():
        v = caps.get(k)
        if not profiles.is_int(v) or not lo <= v <= hi:
            raise Fail("caps.%s = %r (required integer %d..%d)" % (k, v, lo, hi))
    if not isinstance(caps.get("bidi"), bool):
        raise Fail("caps.bidi missing or not a bool")
    return ", ".join("%s=%s" % (k, caps[k]) for k in ranges)


@case("handshake.resume_offer", "MUST", "§5.2, §9.2",
      "when resume is offered: caps.resumeTtlMs and resume{token, channels:[]} with a "
      "base64url token of >= 22 characters")
async def _resume_offer(ctx):
    c = await ctx.ready()
    res = c.hello_ok.get("resume")
    if res is None:
        raise Skip("server does not offer resume")
    if not c.bidi:
        raise Fail("resume offered without caps.bidi (§5.2)")
    ttl = c.caps.get("resumeTtlMs")
    if not profiles.is_int(ttl) or not 1 <= ttl <= 2**32 - 1:
        raise Fail("caps.resumeTtlMs = %r" % ttl)
    tok = res.get("token")
    if not isinstance(tok, str) or not TOKEN_RE.match(tok) or len(tok) < 22:
        raise Fail("resume.token %r is not >= 22 chars of [A-Za-z0-9_-]" % tok)
    if res.get("channels") != []:
        raise Fail("fresh session: resume.channels must be [] (got %r)" % res.get("channels"))


@case("handshake.default_profile", "MUST", "§3.6",
      "hello without caps.profile gets mana.v1", only=("mana.v1",))
async def _default_profile(ctx):
    c = await ctx.ready(caps={"bidi": True})
    if c.caps.get("profileAccepted") != "mana.v1":
        raise Fail("profileAccepted %r, expected \"mana.v1\"" % c.caps.get("profileAccepted"))


@case("handshake.unsupported_profile", "MUST", "§3.6, §12 #30",
      "a profile the server does not offer -> close 4001")
async def _unsupported_profile(ctx):
    c = await ctx.conn().connect()
    await c.send_hello(profile="example.nope.v9")
    return await expect_close(c, (4001,), "hello with profile example.nope.v9")


@case("handshake.bad_proto", "MUST", "§5.1, §6.1, §12 #29", "hello with proto 2 -> close 4002")
async def _bad_proto(ctx):
    c = await ctx.conn().connect()
    h = c.hello_msg(token=ctx.opts.token)
    h["proto"] = 2
    await c.send_raw(json.dumps(h))
    return await expect_close(c, (4002,), "proto 2")


@case("handshake.not_hello_first", "MUST", "§6.1, §12 #24",
      "a first message that is not hello (ping) -> close 4002")
async def _not_hello(ctx):
    c = await ctx.conn().connect()
    await c.send_raw('{"t":"ping","ts":1}')
    return await expect_close(c, (4002,), "ping as first message")


@case("handshake.binary_first", "MUST", "§3.1, §6.1, §12 #24",
      "a binary first message -> close 4002")
async def _binary_first(ctx):
    c = await ctx.conn().connect()
    await c.send_raw(b"\x01\x00\x00\x00\x01hi")
    return await expect_close(c, (4002,), "binary first message")


@case("handshake.bad_json", "MUST", "§6.1, §12 #7", "invalid JSON as hello -> close 4002")
async def _bad_json_hello(ctx):
    c = await ctx.conn().connect()
    await c.send_raw('{"t":"hello","proto":1,')
    return await expect_close(c, (4002,), "truncated hello JSON")


@case("handshake.bad_field", "MUST", "§3.6, §4.1",
      "hello with caps.profile not a string -> close 4002")
async def _bad_field(ctx):
    c = await ctx.conn().connect()
    h = c.hello_msg(token=ctx.opts.token)
    h["caps"]["profile"] = 7
    await c.send_raw(json.dumps(h))
    return await expect_close(c, (4002,), "caps.profile = 7")


@case("handshake.bad_auth", "MUST", "§6.1, §11",
      "hello with a bearer token the host rejects -> close 4003")
async def _bad_auth(ctx):
    if not ctx.opts.token:
        raise Skip("needs --token-file (a server that authenticates)")
    c = await ctx.conn().connect()
    await c.send_raw(json.dumps(c.hello_msg(token="invalid." + ctx.opts.token[::-1][:40])))
    return await expect_close(c, (4003,), "bad bearer token")


@case("handshake.silent_before_hello", "MUST", "§6.1",
      "the server sends nothing before the client's hello, then hello_ok first")
async def _silent(ctx):
    c = await ctx.conn().connect()
    try:
        m = await c._recv(0.5)
        raise Fail("server sent %r before hello" % (m[:60],))
    except asyncio.TimeoutError:
        pass
    await c.send_hello()
    await c.recv_hello_ok()


@case("handshake.second_hello", "MUST", "§6.1, §12 #27", "a second hello -> close 4009")
async def _second_hello(ctx):
    c = await ctx.ready()
    await c.send_control(json.dumps(c.hello_msg(token=ctx.opts.token)))
    return await expect_close(c, (4009,), "second hello")


@case("handshake.open_before_hello_ok", "MUST", "§6.1 rules 2, 3, 5",
      "hello and an open in ONE TCP write: nothing answers the open before hello_ok; the server "
      "closes with 4009, or (reading one message at a time, after it sent hello_ok) handles it")
async def _open_before_hello_ok(ctx):
    c = await ctx.conn().connect()
    host, port = ctx.opts.echo_target or ("127.0.0.1", 9)
    hello = json.dumps(c.hello_msg(token=ctx.opts.token)).encode("utf-8")
    opn = {"t": "open", "id": 1, "kind": "tcp", "target": {"host": host, "port": port},
           "window": 65536}
    c.channels[1] = Channel(1, 65536)  # so that whatever comes for it is checked
    c.write_together([(profiles.TEXT, hello),
                      ctx.profile.encode_control(json.dumps(opn, separators=(",", ":")))])
    try:
        await c.recv_hello_ok()  # Violation if anything else comes first (rule 3)
    except Closed as e:
        if e.code != 4009:
            raise Fail("closed with %s %r before hello_ok, expected 4009" % (e.code, e.reason))
        return "closed 4009 before hello_ok"
    except asyncio.TimeoutError:
        raise Fail("neither hello_ok nor a close within %ss" % ctx.opts.timeout)
    try:
        m = await c.recv_control(("open_ok", "open_err", "close"))
    except Closed as e:
        if e.code != 4009:
            raise Fail("closed with %s %r after hello_ok, expected 4009" % (e.code, e.reason))
        return "hello_ok, then closed 4009"
    except asyncio.TimeoutError:
        raise Fail("after hello_ok: neither a close 4009 nor an answer to the open within %ss"
                   % ctx.opts.timeout)
    if m.get("t") == "close" or m.get("id") != 1:
        raise Fail("after hello_ok the server sent %s" % json.dumps(m))
    return "read after hello_ok: answered %s" % m["t"]


@case("handshake.no_deflate", "SHOULD", "§2",
      "permessage-deflate is not negotiated even when the client offers it")
async def _no_deflate(ctx):
    opts = ctx.opts
    kw = {"origin": opts.origin} if opts.origin else {}
    ws = await websockets.connect(opts.url, subprotocols=[SUBPROTOCOL], open_timeout=opts.timeout,
                                  ping_interval=None, close_timeout=2, **kw)
    try:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
    finally:
        await ws.close()
    if "permessage-deflate" in ext.lower():
        raise Fail("server negotiated %r" % ext)


@case("handshake.max_frame_floor", "SHOULD", "§3.5",
      "the server announces caps.maxFrame >= 65545 (room for a 64 KiB control message)")
async def _max_frame_floor(ctx):
    c = await ctx.ready()
    if c.server_max_frame < 65545:
        raise Fail("caps.maxFrame %d < 65545" % c.server_max_frame)


# --- control messages (§4) ------------------------------------------------------------------

@case("message.unknown_type", "MUST", "§4.1, §12 #11", "unknown \"t\" -> close 4009")
async def _unknown_type(ctx):
    c = await ctx.ready()
    await c.send_control({"t": "reset"})
    return await expect_close(c, (4009,), "{\"t\":\"reset\"}")


@case("message.wrong_direction", "MUST", "§4.4, §12 #28",
      "a server-to-client type sent by the client (open_ok) -> close 4009")
async def _wrong_direction(ctx):
    c = await ctx.ready()
    await c.send_control({"t": "open_ok", "id": 1})
    return await expect_close(c, (4009,), "open_ok from the client")


@case("message.unknown_field_ignored", "MUST", "§4.1",
      "unknown fields are ignored (ping with an extra member is answered)")
async def _unknown_field(ctx):
    c = await ctx.ready()
    await c.send_control({"t": "ping", "ts": 5, "x-future": {"a": [1]}})
    m = await c.recv_control(("pong",))
    if m.get("ts") != 5:
        raise Fail("pong ts %r" % m.get("ts"))


# --- channels (§5.3-§5.5, §7) ---------------------------------------------------------------

@case("channel.open_ok", "MUST", "§5.4, §7.1",
      "open to the echo target -> open_ok with the id; the target's bytes arrive on the channel")
async def _open_ok(ctx):
    c = await ctx.ready()
    ch = await ctx.echo_channel(c)
    w = ch.open_ok.get("window")
    if c.bidi and w is not None and (not profiles.is_int(w) or not 1024 <= w <= 2**30):
        raise Fail("open_ok.window %r out of range" % w)


@case("channel.open_err", "MUST", "§5.5, §7.1",
      "open to a refused target (192.0.2.1:9) -> open_err{id, code, msg}; the connection stays")
async def _open_err(ctx):
    c = await ctx.ready()
    m = await c.open(3, "192.0.2.1", 9)
    if m.get("t") != "open_err":
        raise Fail("expected open_err, got %s" % json.dumps(m))
    if m.get("id") != 3 or not isinstance(m.get("code"), str) or not isinstance(m.get("msg"), str):
        raise Fail("open_err needs id, code and msg: %s" % json.dumps(m))
    await c.send_control({"t": "ping", "ts": 9})
    await c.recv_control(("pong",))
    return "code %s" % m["code"]


@case("channel.duplicate_id", "MUST", "§7.2, §12 #21", "open with an id in use -> close 4013")
async def _dup(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c, 5)
    host, port = ctx.echo()
    await c.send_control({"t": "open", "id": 5, "target": {"host": host, "port": port}})
    return await expect_close(c, (4013,), "second open of id 5")


@case("channel.limit", "MUST", "§7.2, §12 #22", "open beyond caps.maxChannels -> close 4006")
async def _limit(ctx):
    c = await ctx.ready()
    n = c.caps.get("maxChannels", 4)
    if n > 64:
        raise Skip("maxChannels %d is too large to probe" % n)
    host, port = ctx.echo()
    for i in range(n):
        m = await c.open(10 + i, host, port)
        if m.get("t") != "open_ok":
            raise Fail("open %d of %d answered %s" % (i + 1, n, json.dumps(m)))
    await c.send_control({"t": "open", "id": 10 + n, "target": {"host": host, "port": port}})
    return await expect_close(c, (4006,), "open number %d with maxChannels %d" % (n + 1, n))


@case("channel.close", "MUST", "§5.8, §7.3",
      "client close -> the server answers with close for the id; the id can be opened again")
async def _close(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c, 2)
    await c.send_control({"t": "close", "id": 2})
    m = await c.recv_control(("close",))
    if m.get("id") != 2:
        raise Fail("close answered for id %r" % m.get("id"))
    await ctx.echo_channel(c, 2)


@case("channel.target_eof", "MUST", "§5.8, §7.1, §7.3",
      "the echo target closes its side (EOF): the server sends all remaining data, then "
      "close{id, reason:\"eof\"} (an exit, if any, before it); after the client's close "
      "nothing more comes for the id and the connection stays up")
async def _target_eof(ctx):
    c = await ctx.ready()
    ch = await ctx.echo_channel(c, 1)
    payload = os.urandom(3000) + EOF_MARK
    if c.bidi and payload and ch.tx + len(payload) > ch.tx_limit:
        raise Skip("open_ok.window %d is too small" % ch.tx_limit)
    await c.send_data(1, payload)
    exits = []
    while True:
        try:
            m = await c.recv_control(("close", "exit"))
        except asyncio.TimeoutError:
            raise Fail("no close for channel 1 within %ss after the target's EOF (%d of %d "
                       "bytes back)" % (c.opts.timeout, len(ch.data) - len(ECHO_BANNER),
                                        len(payload)))
        if m.get("id") != 1:
            raise Fail("%s for channel %r" % (m["t"], m.get("id")))
        if m["t"] == "close":
            break
        exits.append(m)
    if len(exits) > 1:
        raise Fail("%d exit messages before close (at most one, §5.9)" % len(exits))
    if bytes(ch.data) != ECHO_BANNER + payload:
        raise Fail("close arrived after %d of %d echoed bytes: the remaining data must come "
                   "first (§7.1)" % (len(ch.data) - len(ECHO_BANNER), len(payload)))
    if m.get("reason") != "eof":
        raise Fail("close reason %r, expected \"eof\" (§7.1)" % m.get("reason"))
    await c.send_control({"t": "close", "id": 1})
    await c.send_control({"t": "ping", "ts": 11})
    await c.recv_control(("pong",))
    await c.drain(0.3)
    late = [x for x in c.controls[c.controls.index(m) + 1:] if x.get("id") == 1]
    if late:
        raise Fail("after both closes the server sent %s for channel 1" % json.dumps(late[0]))
    return "%d bytes, then close eof%s" % (len(payload), " (with exit)" if exits else "")


@case("channel.unknown_data", "MUST", "§7.2, §12 #23", "data for an id never opened -> close 4014")
async def _unknown_data(ctx):
    c = await ctx.ready()
    await c.send_encoded(ctx.profile.encode_data("stdout", 99, b"x"))
    return await expect_close(c, (4014,), "data for channel 99")


# --- credit (§8) ------------------------------------------------------------------------------

@case("flow.server_respects_credit", "MUST", "§8.1, §8.2",
      "with open.window 1024 and no grant, the server sends at most 1024 stdout+stderr bytes")
async def _respects(ctx):
    c = await ctx.ready()
    ch = await ctx.echo_channel(c, 1, window=1024, auto_grant=False)
    n = min(8192, ch.tx_limit) if c.bidi else 8192
    await c.send_data(1, os.urandom(n - 1))
    await c.drain(1.0)  # the client raises Violation on the first byte beyond credit
    return "received %d of %d granted" % (ch.rx, ch.limit)


@case("flow.grants_honoured", "MUST", "§8.1, §8.3",
      "after window 1024 is used up, flow grants let the rest of the echo through, intact")
async def _grants(ctx):
    c = await ctx.ready()
    ch = await ctx.echo_channel(c, 1, window=1024, auto_grant=False)
    payload = os.urandom(min(8192, ch.tx_limit) if c.bidi else 8192)
    await c.send_data(1, payload)
    want = len(ECHO_BANNER) + len(payload)
    loop = asyncio.get_running_loop()
    end = loop.time() + c.opts.timeout
    while len(ch.data) < want:
        if loop.time() > end:
            raise Fail("only %d of %d bytes after grants" % (len(ch.data), want))
        if ch.rx == ch.limit:
            await c.grant(ch, 1024)
        try:
            await c.recv_frame(0.5)
        except asyncio.TimeoutError:
            pass
    if bytes(ch.data[len(ECHO_BANNER):]) != payload:
        raise Fail("echoed bytes differ")


@case("flow.client_overrun", "MUST", "§8.1, §12 #19",
      "client data beyond open_ok.window (bidi) -> close 4007")
async def _overrun(ctx):
    c = await ctx.ready()
    if not c.bidi:
        raise Skip("server did not enable bidi credit")
    ch = await ctx.echo_channel(c, 1)
    n = ch.tx_limit - ch.tx + 1
    if n + 64 > ctx.profile.max_payload(c.server_max_frame):
        await c.send_data(1, os.urandom(n), check_credit=False)  # split: a grant may race
    else:
        await c.send_encoded(ctx.profile.encode_data("stdout", 1, os.urandom(n)))
    return await expect_close(c, (4007,), "%d bytes with %d credit" % (n, n - 1))


@case("flow.credit_overflow", "MUST", "§5.10, §8.1, §12 #20",
      "a grant that raises the limit above 2^53-1 -> close 4007")
async def _overflow(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c, 1)
    await c.send_control({"t": "flow", "id": 1, "credit": MAXINT})
    return await expect_close(c, (4007,), "flow credit 2^53-1")


@case("flow.ack_beyond_sent", "MUST", "§5.10, §9.1, §12 #31",
      "flow.rx larger than the bytes the server sent -> close 4007")
async def _ack_beyond(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c, 1)
    await c.send_control({"t": "flow", "id": 1, "credit": 0, "rx": 1000000})
    return await expect_close(c, (4007,), "flow rx 1000000")


# --- data echo (§3.5, §7.1) -----------------------------------------------------------------

@case("echo.roundtrip", "MUST", "§7.1",
      "bytes sent on a tcp channel to the echo target come back unchanged")
async def _echo(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c)
    await pump_echo(c, 1, bytes(range(256)) * 16)


@case("echo.split_max_frame", "MUST", "§3.5",
      "payload > the server's maxFrame is split by the client; the server splits its data to "
      "the client's announced maxFrame 4096")
async def _split(ctx):
    c = ctx.conn()
    c.max_frame = 4096
    try:
        await c.handshake()
    except Closed as e:
        raise Fail("handshake with maxFrame 4096 refused: %s" % e.code)
    if c.server_max_frame > 4 * 1048576:
        raise Skip("server maxFrame %d is too large to split cheaply" % c.server_max_frame)
    await ctx.echo_channel(c)
    size = 2 * ctx.profile.max_payload(c.server_max_frame) + 123
    await pump_echo(c, 1, os.urandom(size), timeout=c.opts.timeout * 6)
    return "%d bytes" % size


@case("echo.no_empty_data", "SHOULD", "§3.2, §3.3",
      "the server sends no empty data frames (they carry nothing)")
async def _no_empty(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c)
    await pump_echo(c, 1, os.urandom(20000))
    if c.empty_data:
        raise Fail("%d empty data frames received" % c.empty_data)


# --- frame limits (§3.5) ----------------------------------------------------------------------

def _sized(profile, size):
    """A message of exactly `size` bytes in `profile` (a data frame for channel 1)."""
    mtype, m = profile.encode_data("stdout", 1, b"")
    if profile.id == "json-base64.v1":
        n = (size - len(m)) // 4 * 4
        mtype, m = profile.encode_data("stdout", 1, b"\0" * (n // 4 * 3))
        m = m[:-1] + b" " * (size - len(m)) + b"}"
        return mtype, m
    return profile.encode_data("stdout", 1, b"\0" * (size - len(m)))


@case("limits.message_too_large", "MUST", "§3.5, §12 #17",
      "a message one byte over the server's maxFrame -> close 4008 (or 1009 from the stack)")
async def _too_large(ctx):
    c = await ctx.ready()
    mtype, m = _sized(ctx.profile, c.server_max_frame + 1)
    assert len(m) == c.server_max_frame + 1
    await c.send_encoded((mtype, m))
    return await expect_close(c, (4008, 1009), "%d-byte message" % len(m))


def _ping_of(size):
    head = '{"t":"ping","ts":1,"pad":"'
    return head + "x" * (size - len(head) - 2) + '"}'


@case("limits.control_too_large", "MUST", "§3.5, §4.3, §12 #18",
      "a control JSON of 65537 bytes (within maxFrame) -> close 4008")
async def _control_large(ctx):
    c = await ctx.ready()
    text = _ping_of(65537)
    mtype, m = ctx.profile.encode_control(text)
    if len(m) > c.server_max_frame:
        raise Skip("server maxFrame %d cannot carry it" % c.server_max_frame)
    await c.send_encoded((mtype, m))
    return await expect_close(c, (4008,), "65537-byte control")


@case("limits.control_at_limit", "MUST", "§3.5, §4.1",
      "a control JSON of exactly 65536 bytes (unknown member) is accepted: ping -> pong")
async def _control_limit(ctx):
    c = await ctx.ready()
    mtype, m = ctx.profile.encode_control(_ping_of(65536))
    if len(m) > c.server_max_frame:
        raise Skip("server maxFrame %d cannot carry it" % c.server_max_frame)
    await c.send_encoded((mtype, m))
    await c.recv_control(("pong",))


@case("limits.control_rate", "SHOULD", "§10.4, §12 #33",
      "300 pings back to back (over the default 50/s, burst 100) -> close 4004")
async def _rate(ctx):
    c = await ctx.ready()
    for i in range(300):
        await c.send_control({"t": "ping", "ts": i})
    return await expect_close(c, (4004,), "300 pings at once")


@case("limits.flow_exempt", "MUST", "§10.4",
      "flow does not count against the control rate: 300 flow{credit:0} acknowledgements are "
      "accepted")
async def _flow_exempt(ctx):
    c = await ctx.ready()
    await ctx.echo_channel(c, 1)
    for _ in range(300):
        await c.send_control({"t": "flow", "id": 1, "credit": 0, "rx": 0})
    await pump_echo(c, 1, b"still-open")


# --- heartbeats (§10.1) -----------------------------------------------------------------------

@case("heartbeat.pong", "MUST", "§10.1", "ping{ts} -> pong with the same ts")
async def _pong(ctx):
    c = await ctx.ready()
    await c.send_control({"t": "ping", "ts": 9007199254740990})
    m = await c.recv_control(("pong",))
    if m.get("ts") != 9007199254740990:
        raise Fail("pong ts %r" % m.get("ts"))


@case("heartbeat.server_ping", "MUST", "§10.1",
      "a server that has sent nothing for caps.heartbeatMs sends ping{ts}")
async def _server_ping(ctx):
    c = await ctx.ready()
    h = c.heartbeat_ms
    wait = h * 1.5 / 1000 + 1.0
    if wait > ctx.opts.max_wait:
        raise Skip("heartbeatMs %d needs %.0fs; raise --max-wait (or drop --quick)" % (h, wait))
    c.auto_pong = False
    loop = asyncio.get_running_loop()
    end = loop.time() + wait
    while not c.pings:
        if loop.time() > end:
            raise Fail("no ping within %.1fs (heartbeatMs %d)" % (wait, h))
        try:
            await c.recv_frame(end - loop.time())
        except asyncio.TimeoutError:
            pass
    ts = c.pings[0]
    if not profiles.is_int(ts) or not 0 <= ts <= MAXINT:
        raise Fail("ping ts %r" % ts)
    await c.send_control({"t": "pong", "ts": ts})
    return "heartbeatMs %d" % h


@case("heartbeat.idle_timeout", "MUST", "§10.1, §10.2, §11",
      "a client that sends nothing (not even pong) is closed with 4012 after "
      "min(caps.idleTimeoutMs, 3 x caps.heartbeatMs), not earlier")
async def _idle_timeout(ctx):
    c = await ctx.ready()
    idle = c.caps.get("idleTimeoutMs", 60000)
    limit = min(idle, 3 * c.heartbeat_ms) / 1000
    wait = limit * 1.5 + 2.0
    if wait > ctx.opts.max_wait:
        raise Skip("the timeout %.1fs needs a %.0fs wait; raise --max-wait (or drop --quick)"
                   % (limit, wait))
    c.auto_pong = False
    t0 = asyncio.get_running_loop().time()  # hello was sent before: the silence started earlier
    code = await c.expect_close(timeout=wait)
    dt = asyncio.get_running_loop().time() - t0
    if code is None:
        raise Fail("still open after %.1fs of client silence (timeout %.1fs)" % (wait, limit))
    if code != 4012:
        raise Fail("closed with %s %r after %.1fs, expected 4012" % (code, c.close_reason, dt))
    if dt < limit * 0.9 - 0.1:
        raise Fail("closed 4012 after %.2fs, before the announced %.1fs" % (dt, limit))
    return "closed 4012 after %.2fs (timeout %.1fs)" % (dt, limit)


# --- resume (§9) ------------------------------------------------------------------------------

async def _resumable(ctx, data=b"resume-me"):
    """A session with resume, channel 1 to the echo target, `data` echoed; returns (conn, token)."""
    c = await ctx.ready()
    res = c.hello_ok.get("resume")
    if res is None:
        raise Skip("server does not offer resume")
    ctx.echo()
    await ctx.echo_channel(c, 1)
    await pump_echo(c, 1, data)
    return c, res["token"]


def _entries(c):
    return [{"id": ch.id, "rx": ch.rx, "credit": ch.limit - ch.rx} for ch in c.channels.values()]


async def _expect_rejected(c2, what, reason="resume rejected"):
    """§9.4: 4011; unknown, expired and spent tokens share the reason "resume rejected"."""
    code = await c2.expect_close()
    if code != 4011:
        raise Fail("%s: expected close 4011, got %s" % (what, code))
    if c2.close_reason != reason:
        raise Fail("%s: close 4011 with reason %r, expected %r" % (what, c2.close_reason, reason))
    return "closed 4011 %r" % reason


@case("resume.replay", "MUST", "§9.2, §9.4, §9.5",
      "after a transport loss, resume with rx offsets: new token, the channel is listed, the "
      "bytes not yet received are replayed exactly once, and the channel still echoes")
async def _replay(ctx):
    c, tok = await _resumable(ctx)
    ch = c.channels[1]
    # The echo of `more` is sent by the server but never read here: it must be replayed.
    more = os.urandom(3000)
    await c.send_data(1, more)
    await asyncio.sleep(0.3)
    c.abort()
    rx_at_cut = ch.rx
    c2 = ctx.conn()
    c2.channels = c.channels
    await c2.connect(route=c.route)
    await c2.send_hello(resume={"token": tok, "channels": _entries(c)})
    try:
        ok = await c2.recv_hello_ok()
    except Closed as e:
        raise Fail("resume refused: %s %r" % (e.code, e.reason))
    res = ok.get("resume")
    if not isinstance(res, dict):
        raise Fail("hello_ok after a resume has no resume member (§5.2)")
    if res.get("token") == tok:
        raise Fail("resume token was not rotated (§9.2)")
    ent = [e for e in res.get("channels", []) if e.get("id") == 1]
    if not ent:
        raise Fail("channel 1 missing from hello_ok.resume.channels")
    srx = ent[0].get("rx")
    if not profiles.is_int(srx) or srx > ch.tx:
        raise Fail("server rx %r beyond what the client sent (%d)" % (srx, ch.tx))
    ch.tx_limit = srx + ent[0].get("credit", 0)
    if srx < ch.tx:  # retransmit our own unacknowledged bytes (§9.5)
        resend = bytes(ch.sent[srx:])
        ch.tx, ch.sent = srx, ch.sent[:srx]
        await c2.send_data(1, resend)
    want = len(ECHO_BANNER) + len(b"resume-me") + len(more)
    try:
        await c2.read_until(1, want)
    except asyncio.TimeoutError:
        raise Fail("replay incomplete: %d of %d bytes" % (len(ch.data), want))
    await c2.drain(0.3)
    expect = ECHO_BANNER + b"resume-me" + more
    if bytes(ch.data) != expect:
        raise Fail("after resume the channel holds %d bytes, expected exactly %d (duplicates "
                   "or loss)" % (len(ch.data), len(expect)))
    await pump_echo(c2, 1, b"after-resume")
    return "%d bytes replayed" % (want - rx_at_cut)


@case("resume.unknown_token", "MUST", "§9.4", "resume with an unknown token -> close 4011")
async def _unknown_token(ctx):
    c = await ctx.ready()
    if c.hello_ok.get("resume") is None:
        raise Skip("server does not offer resume")
    c2 = await ctx.conn().connect()
    await c2.send_hello(resume={"token": "Z" * 22, "channels": []})
    return await _expect_rejected(c2, "unknown token")


@case("resume.reused_token", "MUST", "§9.2, §9.4",
      "a token spent by a resume (then used on the new transport) -> close 4011")
async def _reused(ctx):
    c, tok = await _resumable(ctx)
    c.abort()
    c2 = ctx.conn()
    c2.channels = c.channels
    await c2.connect(route=c.route)
    await c2.send_hello(resume={"token": tok, "channels": _entries(c)})
    try:
        await c2.recv_hello_ok()
    except Closed as e:
        raise Fail("resume refused: %s" % e.code)
    await c2.send_control({"t": "ping", "ts": 1})
    await c2.recv_control(("pong",))
    c3 = await ctx.conn().connect(route=c2.route)
    await c3.send_hello(resume={"token": tok, "channels": []})
    return await _expect_rejected(c3, "reused token")


@case("resume.offset_out_of_range", "MUST", "§9.4, §12 #32",
      "resume with rx beyond what the server sent -> close 4011")
async def _out_of_range(ctx):
    c, tok = await _resumable(ctx)
    c.abort()
    ents = _entries(c)
    ents[0]["rx"] += 100000
    c2 = await ctx.conn().connect(route=c.route)
    await c2.send_hello(resume={"token": tok, "channels": ents})
    return await _expect_rejected(c2, "rx beyond sent", "resume offset out of range")


@case("resume.out_of_range_keeps_session", "MUST", "§9.4",
      "after a 4011 for out-of-range offsets the session is unchanged and its token not spent: "
      "a correct resume with the same token succeeds")
async def _oor_keeps(ctx):
    c, tok = await _resumable(ctx)
    c.abort()
    ents = _entries(c)
    bad = [dict(e, rx=e["rx"] + 100000) for e in ents]
    c2 = await ctx.conn().connect(route=c.route)
    await c2.send_hello(resume={"token": tok, "channels": bad})
    await _expect_rejected(c2, "rx beyond sent", "resume offset out of range")
    c3 = ctx.conn()
    c3.channels = c.channels
    await c3.connect(route=c.route)
    await c3.send_hello(resume={"token": tok, "channels": ents})
    try:
        ok = await c3.recv_hello_ok()
    except Closed as e:
        raise Fail("correct resume after the rejected one refused: %s %r" % (e.code, e.reason))
    if not any(e.get("id") == 1 for e in ok.get("resume", {}).get("channels", [])):
        raise Fail("channel 1 lost after the rejected resume")
    await pump_echo(c3, 1, b"still-here")


@case("resume.supersede", "MUST", "§9.2",
      "a valid resume while the old transport is still attached: the new transport gets "
      "hello_ok, the old one is closed with 4011 \"superseded\"")
async def _supersede(ctx):
    c, tok = await _resumable(ctx)
    c2 = ctx.conn()
    await c2.connect(route=c.route)
    await c2.send_hello(resume={"token": tok, "channels": _entries(c)})
    try:
        await c2.recv_hello_ok()
    except Closed as e:
        raise Fail("resume with an attached transport refused: %s %r" % (e.code, e.reason))
    code = await c.expect_close()
    if code != 4011 or c.close_reason != "superseded":
        raise Fail("old transport: close %s %r, expected 4011 'superseded'"
                   % (code, c.close_reason))


@case("resume.expired", "MUST", "§9.2, §9.7",
      "resume after the TTL ran out -> close 4011 (needs --resume-ttl-ms)")
async def _expired(ctx):
    if ctx.opts.resume_ttl_ms is None:
        raise Skip("needs --resume-ttl-ms (the wait would be caps.resumeTtlMs)")
    c, tok = await _resumable(ctx)
    c.abort()
    wait = max(ctx.opts.resume_ttl_ms, c.caps.get("resumeTtlMs", 60000)) / 1000 + 0.5
    if wait > ctx.opts.max_wait:
        raise Skip("TTL wait %.0fs exceeds --max-wait" % wait)
    await asyncio.sleep(wait)
    c2 = await ctx.conn().connect(route=c.route)
    await c2.send_hello(resume={"token": tok, "channels": _entries(c)})
    return await _expect_rejected(c2, "expired token")


@case("resume.route", "MUST", "§5.2, §9.8",
      "hello_ok.route, when sent, is 1..32 of [a-z0-9-], the same on every hello_ok of the "
      "server, and a resume to the URL with ?route=<id> is accepted (the token stays out of it)")
async def _route(ctx):
    c, tok = await _resumable(ctx)
    route = c.route
    if route is None:
        raise Skip("the server sends no hello_ok.route (optional, §9.8)")
    other = await ctx.ready()
    if other.route != route:
        raise Fail("two sessions of one server got routes %r and %r" % (route, other.route))
    c.abort()
    c2 = ctx.conn()
    c2.channels = c.channels
    await c2.connect(route=route)
    if tok in c2.url or "route=" + route not in c2.url:
        raise Fail("reconnect URL %r" % c2.url)
    await c2.send_hello(resume={"token": tok, "channels": _entries(c)})
    try:
        ok = await c2.recv_hello_ok()
    except Closed as e:
        raise Fail("resume to ?route=%s refused: %s %r" % (route, e.code, e.reason))
    if ok.get("route") != route:
        raise Fail("the resume's hello_ok has route %r, the first had %r"
                   % (ok.get("route"), route))
    await pump_echo(c2, 1, b"routed")
    return "route %r" % route


@case("resume.route_not_owner", "MUST", "§9.4, §9.8",
      "a resume whose session this server does not hold (stale or forged ?route=) gets the "
      "uniform 4011 \"resume rejected\" at once; a fresh session on such a URL works")
async def _route_not_owner(ctx):
    c = await ctx.ready()
    if c.hello_ok.get("resume") is None:
        raise Skip("server does not offer resume")
    forged = "zz-not-" + (c.route or "a-server")[:20]
    t0 = time.monotonic()
    c2 = await ctx.conn().connect(route=forged)
    await c2.send_hello(resume={"token": "Q" * 22, "channels": []})
    got = await _expect_rejected(c2, "resume to ?route=%s" % forged)
    dt = time.monotonic() - t0
    if dt > 2.0:
        raise Fail("4011 took %.2fs (a client waits on it before starting fresh)" % dt)
    c3 = await ctx.conn().connect(route=forged)
    await c3.send_hello()
    try:
        await c3.recv_hello_ok()
    except Closed as e:
        raise Fail("fresh session on a ?route= URL refused: %s %r" % (e.code, e.reason))
    return "%s after %.0f ms" % (got, dt * 1000)


# --- malformed frames (§3, §4.1, §12) ------------------------------------------------------

def _malformed(name, section, summary, build, only=None, open_first=False):
    async def fn(ctx):
        c = await ctx.ready()
        if open_first:
            await ctx.echo_channel(c, 1)
        await c.send_encoded(build(ctx.profile))
        return await expect_close(c, (4014,), summary)
    case("malformed." + name, "MUST", section, summary + " -> close 4014", only)(fn)


_malformed("bad_json", "§4.1, §12 #7", "control text {\"t\":\"ping\",",
           lambda p: p.encode_control('{"t":"ping",'))
_malformed("not_object", "§4.1, §12 #8", "control text [1,2]",
           lambda p: p.encode_control("[1,2]"))
_malformed("missing_t", "§4.1, §12 #10", "control {\"ts\":1}",
           lambda p: p.encode_control('{"ts":1}'))
_malformed("missing_field", "§4.1, §12 #12", "ping without ts",
           lambda p: p.encode_control('{"t":"ping"}'))
_malformed("wrong_type", "§4.2, §12 #13", "ping with ts \"1\"",
           lambda p: p.encode_control('{"t":"ping","ts":"1"}'))
_malformed("fraction", "§4.2, §12 #13", "ping with ts 1.0",
           lambda p: p.encode_control('{"t":"ping","ts":1.0}'))
_malformed("too_deep", "§3.5, §12 #9", "ping with nesting depth 9",
           lambda p: p.encode_control('{"t":"ping","ts":1,"x":' + "[" * 8 + "]" * 8 + "}"))
_malformed("stderr_from_client", "§3.2, §3.3, §3.4, §12 #4", "stderr data from the client",
           lambda p: p.encode_data("stderr", 1, b"x"), open_first=True)
_malformed("truncated", "§3.2, §12 #1", "a 4-byte binary data message",
           lambda p: ("binary", b"\x01\x00\x00\x00"), only=("mana.v1",))
_malformed("reserved_stream", "§3.2, §12 #3", "data with stream byte 0x03",
           lambda p: ("binary", b"\x03\x00\x00\x00\x01x"), only=("mana.v1",))
_malformed("wrong_message_type", "§3.3, §12 #6", "a binary message in json-base64.v1",
           lambda p: ("binary", b"\x01\x00\x00\x00\x01x"), only=("json-base64.v1",))
_malformed("bad_base64", "§3.3, §12 #16", "payload \"aGl=\" (non-zero trailing bits)",
           lambda p: ("text", b'{"kind":"data","stream":"stdout","id":1,"payload":"aGl="}'),
           only=("json-base64.v1",), open_first=True)
_malformed("unknown_stream_name", "§3.3, §12 #3", "data with \"stream\":\"stdio\"",
           lambda p: ("text", b'{"kind":"data","stream":"stdio","id":1,"payload":""}'),
           only=("json-base64.v1",))
_malformed("not_data_kind", "§3.3", "an object without \"t\" whose kind is not \"data\"",
           lambda p: ("text", b'{"kind":"tcp","stream":"stdout","id":1,"payload":""}'),
           only=("json-base64.v1",))
_malformed("text_in_lenpfx", "§3.4, §12 #6", "a text message after hello_ok in lenpfx.v1",
           lambda p: ("text", b'{"t":"ping","ts":1}'), only=("lenpfx.v1",))
_malformed("bad_length", "§3.4, §12 #2", "length field 8 with 7 bytes following",
           lambda p: ("binary", bytes.fromhex("0000000801000000016869")), only=("lenpfx.v1",))
_malformed("short_length", "§3.4, §12 #1", "length field 4 (< 5)",
           lambda p: ("binary", bytes.fromhex("000000040100000000")), only=("lenpfx.v1",))
_malformed("control_id", "§3.4, §12 #5", "a control envelope with channel id 1",
           lambda p: ("binary", p.envelope(0x10, 1, b'{"t":"ping","ts":1}')),
           only=("lenpfx.v1",))
_malformed("reserved_kind", "§3.4, §12 #3", "an envelope of kind 0x11",
           lambda p: ("binary", p.envelope(0x11, 1, b"x")), only=("lenpfx.v1",))


VECTORS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors")


@case("malformed.golden_vectors", "MUST", "§3, §12",
      "every rejection vector of conformance/vectors/<profile>.json (default limits), sent after "
      "hello_ok on its own connection -> the vector's close code")
async def _golden(ctx):
    path = os.path.join(VECTORS_DIR, ctx.profile_id + ".json")
    if not os.path.exists(path):
        raise Skip("no vector file %s" % path)
    with open(path) as f:
        vectors = json.load(f)
    bad = []
    n = 0
    for v in vectors:
        exp = v["expect"]
        if "error" not in exp or "maxFrame" in v or "maxControlJson" in v:
            continue
        msg = bytes.fromhex(v["hex"])
        if v["messageType"] == "text":
            try:
                msg = msg.decode("utf-8")
            except UnicodeDecodeError:
                continue  # cannot be sent as a text message by this client (a stack sends 1007)
        n += 1
        c = await ctx.ready()
        await c.send_raw(msg)
        code = await c.expect_close()
        if code != exp["closeCode"]:
            bad.append("%s: %s" % (v["name"], code))
        await c.close()
    if bad:
        raise Fail("wrong close code for %d of %d vectors (expected per vector): %s"
                   % (len(bad), n, ", ".join(bad)))
    return "%d vectors" % n


def applicable(profile_id):
    return [c for c in CASES if c.only is None or profile_id in c.only]


async def run_case(c, ctx, timeout):
    """Returns (status, detail): status is PASS, FAIL or SKIP."""
    try:
        detail = await asyncio.wait_for(c.fn(ctx), timeout)
        return "PASS", detail or ""
    except Skip as e:
        return "SKIP", str(e)
    except Fail as e:
        return "FAIL", str(e)
    except Violation as e:
        return "FAIL", "violation: %s" % e
    except Closed as e:
        return "FAIL", "server closed the connection: %s %r" % (e.code, e.reason)
    except asyncio.TimeoutError:
        return "FAIL", "timed out"
    except (OSError, Exception) as e:  # noqa: BLE001 - any error fails the case, not the kit
        return "FAIL", "%s: %s" % (type(e).__name__, e)
    finally:
        try:
            await asyncio.wait_for(ctx.cleanup(), 10)
        except Exception:  # noqa: BLE001
            pass
