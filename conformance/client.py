"""A raw mana.ssh.v1 client for the conformance cases (python3-websockets 10.x, asyncio).

It speaks just enough of docs/PROTOCOL.md to drive a server, and it checks what the server sends
on every message: the wire profile decodes strictly (§3), no message exceeds the maxFrame the
client announced (§3.5), and no channel receives more stdout+stderr bytes than the client granted
(§8.1). A breach raises Violation, which fails the running case.
"""
import asyncio
import json
import re
import time
import urllib.parse

import websockets
from websockets.frames import Frame, Opcode

from . import profiles

SUBPROTOCOL = "mana.ssh.v1"
MAXINT = 2**53 - 1
ROUTE_RE = re.compile(r"^[a-z0-9-]{1,32}\Z")  # hello_ok.route (§9.8)


def route_url(url, route):
    """`url` with the query parameter route=<route> added or replaced (§9.8); the rest of the
    URL is kept as it is. The resume token never goes into a URL."""
    if not ROUTE_RE.match(route):
        raise ValueError("not a route id: %r" % (route,))
    parts = urllib.parse.urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != "route"]
    query = "&".join(kept + ["route=" + route])
    return urllib.parse.urlunsplit(parts._replace(path=parts.path or "/", query=query))


class Violation(Exception):
    """The server broke a rule of PROTOCOL.md."""


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__("closed %s %r" % (code, reason))
        self.code = code
        self.reason = reason


class Channel:
    """Client-side state of one channel: server->client credit (rx/limit) and client->server."""

    def __init__(self, cid, window):
        self.id = cid
        self.window = window        # server->client window we grant
        self.rx = 0                 # stdout+stderr bytes received
        self.limit = window         # server->client limit
        self.data = bytearray()     # everything received, in order
        self.tx = 0                 # bytes sent
        self.tx_limit = 0           # client->server limit (bidi)
        self.sent = bytearray()     # everything sent (our replay buffer)
        self.open_ok = None
        self.closed_by_peer = False
        self.auto_grant = True


class Conn:
    def __init__(self, opts, profile_id):
        self.opts = opts
        self.profile_id = profile_id
        self.profile = profiles.get(profile_id)
        self.ws = None
        self.hello_ok = None
        self.url = None             # the URL of the last connect()
        self.channels = {}
        self.max_frame = opts.client_max_frame  # what we announce and enforce
        self.server_max_frame = profiles.DEFAULT_MAX_FRAME
        self.auto_pong = True
        self.pings = []           # ts of server pings received
        self.controls = []        # every control message received after hello_ok
        self.messages = 0         # WebSocket messages received
        self.last_rx = time.monotonic()
        self.close_reason = None
        self.empty_data = 0       # empty data frames received (SHOULD NOT be sent)

    # --- transport -----------------------------------------------------------------------
    @property
    def route(self):
        """hello_ok.route of this connection (§9.8), or None."""
        return (self.hello_ok or {}).get("route")

    async def connect(self, route=None):
        """Opens the WebSocket; `route` (a resume's reconnect, §9.8) adds ?route=<id>."""
        kw = {}
        if self.opts.origin:
            kw["origin"] = self.opts.origin
        self.url = route_url(self.opts.url, route) if route else self.opts.url
        self.ws = await websockets.connect(
            self.url, subprotocols=[SUBPROTOCOL], compression=None, max_size=None,
            max_queue=None, open_timeout=self.opts.timeout, ping_interval=None,
            close_timeout=2, **kw)
        if self.ws.subprotocol != SUBPROTOCOL:
            raise Violation("§2: server did not select subprotocol mana.ssh.v1 (got %r)"
                            % self.ws.subprotocol)
        return self

    def abort(self):
        """Drop the transport without a close frame (the server sees 1006)."""
        if self.ws is not None:
            self.ws.transport.abort()

    async def close(self, code=1000):
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(code), 3)
            except (asyncio.TimeoutError, OSError, websockets.exceptions.WebSocketException):
                self.abort()

    async def send_raw(self, data):
        await self.ws.send(data)

    def write_together(self, encoded):
        """Writes several (mtype, bytes) messages as masked frames in ONE transport write, so the
        server receives them together (handshake.open_before_hello_ok)."""
        out = b"".join(
            Frame(Opcode.TEXT if mtype == profiles.TEXT else Opcode.BINARY, msg).serialize(
                mask=True)
            for mtype, msg in encoded)
        self.ws.transport.write(out)

    # --- bootstrap -----------------------------------------------------------------------
    def hello_msg(self, token=None, profile=None, resume=None, caps=None, auth=None):
        caps_obj = {"profile": profile or self.profile_id, "maxFrame": self.max_frame,
                    "bidi": True, "resume": True}
        if caps is not None:
            caps_obj = caps
        h = {"t": "hello", "proto": 1, "caps": caps_obj}
        if auth is not None:
            h["auth"] = auth
        elif token is not None:
            h["auth"] = {"scheme": "bearer", "token": token}
        else:
            h["auth"] = {"scheme": "none"}
        if resume is not None:
            h["resume"] = resume
        return h

    async def send_hello(self, **kw):
        await self.ws.send(json.dumps(self.hello_msg(token=self.opts.token, **kw)))

    async def handshake(self, **kw):
        """connect + hello + hello_ok (checked); returns hello_ok."""
        await self.connect()
        await self.send_hello(**kw)
        return await self.recv_hello_ok()

    async def recv_hello_ok(self):
        m = await self._recv(self.opts.timeout)
        if not isinstance(m, str):
            raise Violation("§3.1/§6.1: first server message is binary, not the hello_ok text")
        try:
            ok = json.loads(m)
        except ValueError:
            raise Violation("§3.1: hello_ok is not JSON")
        if not isinstance(ok, dict) or ok.get("t") != "hello_ok":
            raise Violation("§6.1: server sent %r before hello_ok"
                            % (ok.get("t") if isinstance(ok, dict) else ok))
        caps = ok.get("caps")
        if not isinstance(caps, dict) or caps.get("flow") != "credit":
            raise Violation("§5.2: hello_ok.caps.flow must be \"credit\"")
        route = ok.get("route")
        if route is not None and not (isinstance(route, str) and ROUTE_RE.match(route)):
            raise Violation("§5.2/§9.8: hello_ok.route %r is not 1..32 characters of [a-z0-9-]"
                            % (route,))
        self.hello_ok = ok
        mf = caps.get("maxFrame", profiles.DEFAULT_MAX_FRAME)
        self.server_max_frame = mf if profiles.is_int(mf) else profiles.DEFAULT_MAX_FRAME
        return ok

    @property
    def caps(self):
        return (self.hello_ok or {}).get("caps", {})

    @property
    def bidi(self):
        return self.caps.get("bidi") is True

    @property
    def heartbeat_ms(self):
        return self.caps.get("heartbeatMs", 20000)

    # --- receive -------------------------------------------------------------------------
    async def _recv(self, timeout):
        try:
            m = await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.exceptions.ConnectionClosed as e:
            rcvd = e.rcvd
            raise Closed(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")
        self.messages += 1
        self.last_rx = time.monotonic()
        if len(m) > self.max_frame:
            raise Violation("§3.5: server sent a %d-byte message; client maxFrame is %d"
                            % (len(m), self.max_frame))
        return m

    async def recv_frame(self, timeout=None):
        """Next decoded frame after hello_ok: profiles.Control (with .obj) or profiles.Data.

        Server pings are answered here when auto_pong is set; data is credit-checked and
        stored in the channel; flow grants from the server raise the client->server limit."""
        timeout = self.opts.timeout if timeout is None else timeout
        m = await self._recv(timeout)
        mtype = profiles.TEXT if isinstance(m, str) else profiles.BINARY
        raw = m.encode("utf-8") if isinstance(m, str) else m
        try:
            frame = self.profile.decode(mtype, raw, profiles.Limits(self.max_frame))
        except profiles.DecodeError as e:
            raise Violation("§3: server message does not decode in %s: %s"
                            % (self.profile_id, e))
        if isinstance(frame, profiles.Data):
            ch = self.channels.get(frame.id)
            if ch is None:
                raise Violation("§7.2: data for channel %d, which is not open" % frame.id)
            if not frame.payload:
                self.empty_data += 1
            ch.rx += len(frame.payload)
            if ch.rx > ch.limit:
                raise Violation("§8.1: server sent beyond credit on channel %d "
                                "(received %d bytes, granted %d)" % (frame.id, ch.rx, ch.limit))
            ch.data += frame.payload
            if ch.auto_grant:
                await self.maybe_grant(ch)
            return frame
        try:
            obj = profiles.parse_json(frame.text)
        except profiles.DecodeError as e:
            raise Violation("§4.1: server control message is not valid JSON: %s" % e)
        if not isinstance(obj, dict) or not isinstance(obj.get("t"), str):
            raise Violation("§4.1: server control message has no string \"t\"")
        self.controls.append(obj)
        t = obj["t"]
        if t == "ping":
            self.pings.append(obj.get("ts"))
            if self.auto_pong:
                await self.send_control({"t": "pong", "ts": obj.get("ts")})
        elif t == "flow":
            ch = self.channels.get(obj.get("id"))
            if ch is not None and profiles.is_int(obj.get("credit")):
                ch.tx_limit += obj["credit"]
        elif t == "open_ok":
            ch = self.channels.get(obj.get("id"))
            if ch is not None:
                ch.open_ok = obj
                w = obj.get("window", self.caps.get("window", 262144))
                ch.tx_limit = w if self.bidi else MAXINT
        elif t == "close":
            ch = self.channels.get(obj.get("id"))
            if ch is not None:
                ch.closed_by_peer = True
        return ControlMsg(obj)

    async def recv_control(self, want=None, timeout=None):
        """Next control message whose "t" is in `want` (any if None); skips data, ping, pong, flow."""
        end = time.monotonic() + (self.opts.timeout if timeout is None else timeout)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            f = await self.recv_frame(left)
            if isinstance(f, ControlMsg):
                t = f.obj["t"]
                if want is None and t in ("ping", "pong", "flow"):
                    continue
                if want is None or t in want:
                    return f.obj

    async def expect_close(self, timeout=None):
        """Reads (and checks) until the server closes: returns the close code, or None on timeout."""
        end = time.monotonic() + (self.opts.timeout if timeout is None else timeout)
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                try:
                    await self.recv_frame(left)
                except Violation:
                    continue  # the server may legitimately be mid-way; the close code matters
        except Closed as e:
            self.close_reason = e.reason
            return e.code
        except asyncio.TimeoutError:
            return None

    # --- send ----------------------------------------------------------------------------
    async def send_control(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        await self.send_encoded(self.profile.encode_control(text))

    async def send_encoded(self, encoded):
        mtype, msg = encoded
        await self.ws.send(msg.decode("utf-8") if mtype == profiles.TEXT else msg)

    async def send_data(self, cid, payload, check_credit=True, stream="stdout"):
        """Send payload split to the server's maxFrame; with check_credit, stay within credit."""
        ch = self.channels[cid]
        if check_credit and self.bidi and ch.tx + len(payload) > ch.tx_limit:
            raise RuntimeError("kit bug: send beyond credit")
        for enc in self.profile.encode_data_split(stream, cid, payload, self.server_max_frame):
            await self.send_encoded(enc)
        ch.tx += len(payload)
        ch.sent += payload

    async def open(self, cid, host, port, window=None, wait=True, auto_grant=True):
        w = window or self.caps.get("window", 262144)
        ch = Channel(cid, w)
        ch.auto_grant = auto_grant
        self.channels[cid] = ch
        msg = {"t": "open", "id": cid, "kind": "tcp", "target": {"host": host, "port": port}}
        if window:
            msg["window"] = window
        await self.send_control(msg)
        if not wait:
            return None
        return await self.recv_control(("open_ok", "open_err"))

    async def grant(self, ch, credit):
        ch.limit += credit
        await self.send_control({"t": "flow", "id": ch.id, "credit": credit, "rx": ch.rx})

    async def maybe_grant(self, ch):
        """§8.3: grant when half the window was consumed; raise the limit to consumed + window."""
        if ch.limit - ch.rx <= ch.window // 2:
            await self.grant(ch, ch.rx + ch.window - ch.limit)

    async def read_until(self, cid, nbytes, timeout=None):
        """Read frames until channel `cid` holds `nbytes` bytes (or more)."""
        end = time.monotonic() + (self.opts.timeout if timeout is None else timeout)
        ch = self.channels[cid]
        while len(ch.data) < nbytes:
            left = end - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            await self.recv_frame(left)
        return bytes(ch.data)

    async def drain(self, seconds):
        """Read (and check) everything that arrives for `seconds`."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                await self.recv_frame(left)
            except asyncio.TimeoutError:
                return


class ControlMsg:
    def __init__(self, obj):
        self.obj = obj
