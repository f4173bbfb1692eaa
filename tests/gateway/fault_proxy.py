#!/usr/bin/python3
"""Fault-injecting loopback TCP proxy (a fault injector for tests, not a product part).

Forwards each accepted connection to an upstream port on 127.0.0.1 and injects faults. Two ways
to drive it, both seeded (`seed`) so that a run can be repeated:

1. Random cuts (the original mode, used by ssh_proxy_test.py): each connection is cut after a
   random number of bytes (counted in both directions, between `min_bytes` and `max_bytes`), in
   the middle of whatever is in flight: WebSocket frames, protocol messages, SSH packets. Half of
   the cuts are abortive (RST, unsent data discarded), half are a plain FIN without a WebSocket
   close frame. After `max_cuts` cuts it forwards without cutting. Optionally, connections
   accepted after the first cut go to another upstream (`redirect_after_cut`), which lets a test
   make a resume impossible.

2. Scripted faults: `script` is a list of `Fault` (connection k gets script[k], connections
   beyond the list get `Fault()` = plain forwarding unless random cuts apply) or a callable
   `script(index, rng) -> Fault`. A Fault combines:
     cut_at=N, rst=True|False  cut both sockets after N bytes (both directions counted), RST or FIN
     truncate_at=N, direction  deliver N bytes in that direction, then FIN that direction and
                               discard the rest (the other direction keeps working)
     freeze_at=N, freeze_mode  after N bytes stop forwarding but keep both sockets open: "drop"
                               (read and discard: a black hole, each side sees a live but silent
                               peer) or "hold" (stop reading: TCP back-pressure fills the buffers)
     throttle_bps=R            pace each direction to R bytes/s
     delay_ms=D                wait D ms before forwarding each chunk
     chunk=1                   forward in chunks of this many bytes (1 = one byte per write)
   Faults can also be applied at run time to live connections: `freeze()`, `thaw()`, `cut()`,
   and `down = True` makes new connections fail at once (accepted, then reset), as a link that is
   down would.

While a connection is frozen in "drop" mode, the proxy records when each side closed its end
(`Conn.eof_at["c2u"|"u2c"]`, monotonic seconds): a test measures dead-peer detection with it,
because the proxy never passes that close on.

Usage as a library:
    proxy = FaultProxy(upstream_port, seed=1, min_bytes=256 << 10, max_bytes=2 << 20,
                       max_cuts=40)
    port = await proxy.start()
    ...
    proxy.cuts   # cuts made so far

`local_ip` (e.g. "127.0.0.12") is the source address of the upstream connections: behind a
balancer that hands the client's address on (PROXY protocol), each proxy is a client address.
"""
import asyncio
import random
import socket
import struct
import time


class Fault:
    def __init__(self, cut_at=None, rst=True, truncate_at=None, direction="u2c", freeze_at=None,
                 freeze_mode="drop", throttle_bps=None, delay_ms=0, chunk=None):
        if freeze_mode not in ("drop", "hold") or direction not in ("c2u", "u2c"):
            raise ValueError("bad fault parameters")
        if chunk is not None and chunk < 1:
            raise ValueError("chunk must be >= 1")
        self.cut_at, self.rst = cut_at, rst
        self.truncate_at, self.direction = truncate_at, direction
        self.freeze_at, self.freeze_mode = freeze_at, freeze_mode
        self.throttle_bps, self.delay_ms, self.chunk = throttle_bps, delay_ms, chunk


class Conn:
    """One proxied connection: its sockets, counters and fault state."""

    def __init__(self, index, fault):
        self.index = index
        self.fault = fault
        self.bytes = {"c2u": 0, "u2c": 0}
        self.frozen = None          # None, "drop" or "hold"
        self.thawed = asyncio.Event()
        self.eof_at = {}            # direction -> monotonic time its source closed
        self.frozen_at = None
        self.done = asyncio.Event()
        self.writers = []
        self.budget = [None]        # random-cut mode: bytes left before the cut (None: no cut)

    def total(self):
        return self.bytes["c2u"] + self.bytes["u2c"]


class FaultProxy:
    READ = 65536

    def __init__(self, upstream_port, seed=1, min_bytes=256 << 10, max_bytes=2 << 20,
                 max_cuts=40, redirect_after_cut=None, script=None, local_ip=None):
        self.upstream_port = upstream_port
        self.local_ip = local_ip    # the upstream connections' source address (127.x.y.z)
        self.rng = random.Random(seed)
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.max_cuts = max_cuts
        self.redirect_after_cut = redirect_after_cut
        self.script = script
        self.cuts = 0
        self.connections = 0
        self.bytes = 0
        self.refused = 0
        self.down = False
        self.live = []              # Conn objects not yet finished
        self.all = []               # every Conn, in accept order (bounded by the test's run)
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.cut(rst=True)

    # ---- run-time faults on live connections ---------------------------------------------

    def freeze(self, mode="drop"):
        now = time.monotonic()
        for c in self.live:
            c.frozen, c.frozen_at = mode, now
            c.thawed.clear()

    def thaw(self):
        for c in self.live:
            c.frozen = None
            c.thawed.set()

    def disarm(self):
        """Random-cut mode: the live connections keep running without the cut each was given
        when it was accepted (set max_cuts = cuts to give none to new ones)."""
        for c in self.live:
            c.budget[0] = None

    def cut(self, rst=True):
        """Kills every live connection (RST or FIN); returns how many."""
        n = 0
        for c in list(self.live):
            if not c.done.is_set():
                c.fault.rst = rst
                c.done.set()
                self.cuts += 1
                n += 1
        return n

    # ---- internals -------------------------------------------------------------------------

    @staticmethod
    def _kill(writer, rst):
        sock = writer.get_extra_info("socket")
        if rst and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    def _fault_for(self, index):
        if callable(self.script):
            return self.script(index, self.rng)
        if self.script is not None:
            return self.script[index] if index < len(self.script) else Fault()
        return None

    async def _serve(self, creader, cwriter):
        index = self.connections
        self.connections += 1
        if self.down:
            self.refused += 1
            self._kill(cwriter, True)
            return
        port = self.upstream_port
        if self.redirect_after_cut is not None and self.cuts > 0:
            port = self.redirect_after_cut
        try:
            ureader, uwriter = await asyncio.open_connection(
                "127.0.0.1", port,
                local_addr=(self.local_ip, 0) if self.local_ip is not None else None)
        except OSError:
            cwriter.transport.abort()
            return
        for w in (cwriter, uwriter):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fault = self._fault_for(index)
        budget = [None]
        if fault is None:
            # Random-cut mode: the same rng calls in the same order as before (seeds repeat).
            cutting = self.cuts < self.max_cuts
            budget[0] = self.rng.randint(self.min_bytes, self.max_bytes) if cutting else None
            fault = Fault(rst=self.rng.random() < 0.5)
        conn = Conn(index, fault)
        conn.budget = budget
        conn.thawed.set()
        self.live.append(conn)
        self.all.append(conn)
        if fault.cut_at is not None:
            budget[0] = fault.cut_at
        if fault.freeze_at == 0:
            conn.frozen, conn.frozen_at = fault.freeze_mode, time.monotonic()
            conn.thawed.clear()

        async def forward(writer, data):
            step = fault.chunk or len(data)
            for i in range(0, len(data), step):
                part = data[i:i + step]
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                writer.write(part)
                await writer.drain()
                if fault.throttle_bps:
                    await asyncio.sleep(len(part) / fault.throttle_bps)

        async def pump(reader, writer, direction):
            truncated = False
            try:
                while not conn.done.is_set():
                    if conn.frozen == "hold":
                        await conn.thawed.wait()
                        continue
                    data = await reader.read(self.READ)
                    if not data:
                        if conn.frozen == "drop":
                            conn.eof_at[direction] = time.monotonic()
                            return  # half-open: the close is not passed on
                        break
                    self.bytes += len(data)
                    if conn.frozen == "drop":
                        continue
                    if fault.freeze_at is not None and conn.frozen is None and \
                            conn.total() + len(data) >= fault.freeze_at and \
                            conn.frozen_at is None:
                        keep = max(0, fault.freeze_at - conn.total())
                        conn.bytes[direction] += keep
                        await forward(writer, data[:keep])
                        conn.frozen, conn.frozen_at = fault.freeze_mode, time.monotonic()
                        conn.thawed.clear()
                        continue
                    if truncated:
                        continue
                    if fault.truncate_at is not None and direction == fault.direction and \
                            conn.bytes[direction] + len(data) >= fault.truncate_at:
                        keep = fault.truncate_at - conn.bytes[direction]
                        conn.bytes[direction] += keep
                        await forward(writer, data[:keep])
                        if writer.can_write_eof():
                            writer.write_eof()
                        truncated = True
                        continue
                    if budget[0] is not None:
                        if len(data) >= budget[0]:
                            # Deliver a prefix, then cut both sockets mid-stream.
                            writer.write(data[:budget[0]])
                            budget[0] = 0
                            if not conn.done.is_set():
                                self.cuts += 1
                                conn.done.set()
                            break
                        budget[0] -= len(data)
                    conn.bytes[direction] += len(data)
                    await forward(writer, data)
            except (ConnectionError, OSError):
                pass
            conn.done.set()

        tasks = [asyncio.ensure_future(pump(creader, uwriter, "c2u")),
                 asyncio.ensure_future(pump(ureader, cwriter, "u2c"))]
        done_wait = asyncio.ensure_future(conn.done.wait())
        await asyncio.wait(tasks + [done_wait], return_when=asyncio.FIRST_COMPLETED)
        # A frozen "drop" pump returns on EOF without ending the connection: wait for both, or
        # for a run-time cut.
        while not conn.done.is_set() and not all(t.done() for t in tasks):
            pending = [t for t in tasks if not t.done()]
            await asyncio.wait(pending + [done_wait], return_when=asyncio.FIRST_COMPLETED)
        done_wait.cancel()
        for w in (cwriter, uwriter):
            self._kill(w, fault.rst)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if conn in self.live:
            self.live.remove(conn)
