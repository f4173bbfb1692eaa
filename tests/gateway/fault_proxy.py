#!/usr/bin/python3
"""Fault-injecting loopback TCP proxy (a fault injector for tests, not a product part).

Forwards each accepted connection to an upstream port and cuts it after a random number of
bytes (counted in both directions), in the middle of whatever is in flight: WebSocket frames,
protocol messages, SSH packets. Half of the cuts are abortive (RST, unsent data discarded),
half are a plain FIN without a WebSocket close frame. After `max_cuts` cuts it forwards
without cutting. Optionally, connections accepted after the first cut go to another upstream
(`redirect_after_cut`), which lets a test make a resume impossible.

Usage as a library:
    proxy = FaultProxy(upstream_port, seed=1, min_bytes=256 << 10, max_bytes=2 << 20,
                       max_cuts=40)
    port = await proxy.start()
    ...
    proxy.cuts   # cuts made so far
"""
import asyncio
import random
import socket
import struct


class FaultProxy:
    def __init__(self, upstream_port, seed=1, min_bytes=256 << 10, max_bytes=2 << 20,
                 max_cuts=40, redirect_after_cut=None):
        self.upstream_port = upstream_port
        self.rng = random.Random(seed)
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.max_cuts = max_cuts
        self.redirect_after_cut = redirect_after_cut
        self.cuts = 0
        self.connections = 0
        self.bytes = 0
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @staticmethod
    def _kill(writer, rst):
        sock = writer.get_extra_info("socket")
        if rst and sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    async def _serve(self, creader, cwriter):
        self.connections += 1
        port = self.upstream_port
        if self.redirect_after_cut is not None and self.cuts > 0:
            port = self.redirect_after_cut
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            cwriter.transport.abort()
            return
        cutting = self.cuts < self.max_cuts
        budget = [self.rng.randint(self.min_bytes, self.max_bytes) if cutting else None]
        rst = self.rng.random() < 0.5
        done = asyncio.Event()

        async def pump(reader, writer):
            try:
                while not done.is_set():
                    data = await reader.read(65536)
                    if not data:
                        break
                    self.bytes += len(data)
                    if budget[0] is not None:
                        if len(data) >= budget[0]:
                            # Deliver a prefix, then cut both sockets mid-stream.
                            writer.write(data[:budget[0]])
                            budget[0] = 0
                            if not done.is_set():
                                self.cuts += 1
                                done.set()
                            break
                        budget[0] -= len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            done.set()

        tasks = [asyncio.ensure_future(pump(creader, uwriter)),
                 asyncio.ensure_future(pump(ureader, cwriter))]
        await done.wait()
        for w in (cwriter, uwriter):
            self._kill(w, rst)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
