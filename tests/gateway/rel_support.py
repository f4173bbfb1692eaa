# SPDX-License-Identifier: Apache-2.0
"""Helpers for reliability_test.py, idle_load_test.py and soak_test.py: a resuming client,
process figures, and the banner those tests give their targets. Debian's /usr/bin/python3 only
(python3-websockets 10.x).

The targets (echo, stream SEED LEN RATE, blackhole, source) are the dev harness's
(tools/devkit/targets.py: start_target(), seeded_stream()), each its own process so that a test
can kill it for real.
"""
import asyncio
import hashlib
import json
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets  # noqa: E402

from fixture import Failure, connect, hello, token  # noqa: E402
from devkit.targets import seeded_stream, start_target  # noqa: E402,F401 - for the tests

BANNER = b"SSH-2.0-mana_reliability_target\r\n"
WINDOW = 262144


# ---- process figures -------------------------------------------------------------------------

def cpu_s(pid):
    """utime + stime of a process in seconds."""
    stat = open("/proc/%d/stat" % pid).read()
    f = stat[stat.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    for ln in open("/proc/%d/status" % pid).read().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def children(pid):
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % e).read()
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                out.append(int(e))
        except (OSError, ValueError):
            continue
    return out


# ---- a resuming protocol client --------------------------------------------------------------

class Chan:
    def __init__(self, cid):
        self.cid = cid
        self.rx = 0
        self.limit = WINDOW
        self.granted = 0
        self.hash = hashlib.sha256()
        self.head = b""          # first bytes kept (banner checks)
        self.closed = None       # the server's close message
        self.open = True
        self.acked = False       # open_ok received (PROTOCOL 9.4: only these are resumed)
        self.messages = 0        # data messages received

    def view(self):
        """This side's state of the channel (no payload bytes)."""
        return {"id": self.cid, "open": self.open, "closed_by_server": self.closed,
                "acked": self.acked, "received": self.rx, "limit": self.limit,
                "granted_up_to": self.granted, "data_messages": self.messages}


class Client:
    """mana.v1 client over python3-websockets: answers pings, grants credit, resumes."""

    def __init__(self, port, sub, local_ip=None, origin=None, exp_in=600):
        self.url = "ws://127.0.0.1:%d/" % port
        self.sub = sub
        self.exp_in = exp_in     # JWT lifetime from this machine's wall clock (s)
        self.ping_times = []     # monotonic arrival time of every gateway ping
        self.local_ip = local_ip
        self.origin = origin
        self.ws = None
        self.token = None
        self.ch = {}
        self.ctl = []
        self.ctl_event = asyncio.Event()
        self.lost = asyncio.Event()
        self.closed = None       # (code, reason, monotonic time)
        self.reader = None
        self.resumes = 0
        self.transports = 0
        self.last_resume_sent = None     # the resume entries of the last resume hello
        self.last_resume_answer = None   # the gateway's entries in the hello_ok that answered it

    async def attach(self, resume=False, send_only=False):
        kw = {} if self.origin is None else {"origin": self.origin}
        ws = await connect(self.url, local_ip=self.local_ip, **kw)
        res = None
        if resume:
            res = {"token": self.token, "channels": [
                {"id": c.cid, "rx": c.rx, "credit": c.limit - c.rx}
                for c in self.ch.values() if c.open and c.acked]}
            self.last_resume_sent = res["channels"]
            self.last_resume_answer = None
        await ws.send(hello(token(sub=self.sub, exp_in=self.exp_in), resume=res))
        if send_only:
            return ws
        while True:
            m = await asyncio.wait_for(ws.recv(), 5)
            if isinstance(m, str):
                ok = json.loads(m)
                if ok.get("t") in ("ping", "pong"):
                    continue
                break
        if ok.get("t") != "hello_ok":
            raise Failure("expected hello_ok, got %r" % ok)
        self.token = ok["resume"]["token"]
        self.transports += 1
        if resume:
            self.resumes += 1
            self.last_resume_answer = ok["resume"]["channels"]
            listed = {c["id"] for c in ok["resume"]["channels"]}
            for c in self.ch.values():
                if c.open and c.acked and c.cid not in listed:
                    c.open = False
        self.ws = ws
        self.closed = None
        self.lost.clear()
        self.reader = asyncio.ensure_future(self._read(ws))
        return ok

    async def _read(self, ws):
        try:
            while True:
                m = await ws.recv()
                if isinstance(m, bytes):
                    _, cid = struct.unpack(">BI", m[:5])
                    c = self.ch.get(cid)
                    if c is None:
                        continue
                    payload = m[5:]
                    c.rx += len(payload)
                    c.messages += 1
                    c.hash.update(payload)
                    if len(c.head) < 4096:
                        c.head += payload[:4096 - len(c.head)]
                    if c.rx - c.granted >= WINDOW // 2:
                        n = c.rx - c.granted
                        c.granted = c.rx
                        c.limit += n
                        await ws.send(json.dumps({"t": "flow", "id": cid, "credit": n,
                                                  "rx": c.rx}))
                    continue
                j = json.loads(m)
                t = j.get("t")
                if t == "ping":
                    self.ping_times.append(time.monotonic())
                    await ws.send(json.dumps({"t": "pong", "ts": j["ts"]}))
                    continue
                if t == "close" and j.get("id") in self.ch:
                    c = self.ch[j["id"]]
                    if c.open:
                        c.open = False
                        c.closed = j
                        await ws.send(json.dumps({"t": "close", "id": c.cid}))
                self.ctl.append(j)
                self.ctl_event.set()
        except websockets.exceptions.ConnectionClosed as e:
            self.closed = (e.code, e.reason, time.monotonic())
        except Exception as e:  # noqa: BLE001 - any transport error is a loss
            self.closed = (1006, repr(e), time.monotonic())
        self.lost.set()

    def view(self):
        """The client's view of the session and its channels, for a failure report (never the
        token)."""
        return {"sub": self.sub, "transports": self.transports, "resumes": self.resumes,
                "transport": "lost %r" % (self.closed,) if self.lost.is_set() else "attached",
                "pause_reasons": [],  # this client never withholds credit
                "last_resume_sent": self.last_resume_sent,
                "last_resume_answer": self.last_resume_answer,
                "channels": [c.view() for c in self.ch.values()]}

    async def wait_ctl(self, pred, timeout=5):
        end = time.monotonic() + timeout
        while True:
            for i, j in enumerate(self.ctl):
                if pred(j):
                    return self.ctl.pop(i)
            left = end - time.monotonic()
            if left <= 0:
                raise Failure("no matching control message within %.1fs (have %r)"
                              % (timeout, self.ctl[-5:]))
            self.ctl_event.clear()
            try:
                await asyncio.wait_for(self.ctl_event.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def open(self, cid, port, host="127.0.0.1", reattach=None):
        """Opens channel `cid`. With `reattach` (an async callable that resumes this client), a
        transport lost before open_ok is resumed and the open sent again (PROTOCOL 9.5 step 4:
        the server freed the unacknowledged channel); without it the wait just times out."""
        self.ch[cid] = Chan(cid)
        msg = json.dumps({"t": "open", "id": cid, "target": {"host": host, "port": port}})
        try:
            await self.ws.send(msg)
        except websockets.exceptions.ConnectionClosed:
            # Cut between hello_ok and this open (the reader may not have noticed yet): with
            # `reattach` the loop below resumes and sends the open again.
            if reattach is None:
                raise
        want = (lambda j: j.get("id") == cid and j.get("t") in ("open_ok", "open_err"))
        end = time.monotonic() + 5
        while True:
            try:
                m = await self.wait_ctl(want, timeout=0.2 if reattach else 5)
                break
            except Failure:
                if reattach is None or time.monotonic() > end:
                    raise
                if self.lost.is_set():
                    await reattach()
                    end = time.monotonic() + 5
                    try:
                        await self.ws.send(msg)
                    except websockets.exceptions.ConnectionClosed:
                        pass
        if m["t"] == "open_err":
            del self.ch[cid]
        else:
            self.ch[cid].acked = True
        return m

    async def send(self, cid, data):
        await self.ws.send(struct.pack(">BI", 1, cid) + data)

    async def wait_rx(self, cid, n, timeout=10):
        end = time.monotonic() + timeout
        while self.ch[cid].rx < n:
            if time.monotonic() > end:
                raise Failure("channel %d: %d bytes after %.1fs, wanted %d"
                              % (cid, self.ch[cid].rx, timeout, n))
            await asyncio.sleep(0.01)

    async def ping_ok(self, timeout=3):
        ts = int(time.monotonic() * 1e6)
        await self.ws.send(json.dumps({"t": "ping", "ts": ts}))
        await self.wait_ctl(lambda j: j.get("t") == "pong" and j.get("ts") == ts, timeout)

    def abort(self):
        if self.ws is not None:
            self.ws.transport.abort()

    async def close(self):
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except Exception:  # noqa: BLE001
                pass
        if self.reader is not None:
            self.reader.cancel()
