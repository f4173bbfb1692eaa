#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The echo target of the conformance kit.

A tiny TCP server: on every connection it first sends the line b"SSH-2.0-mana-echo\\r\\n" (so a
server with an SSH banner gate, like mana-gateway, lets the channel through), then echoes every
byte it receives, unchanged and in order, until the peer closes. When the bytes it received
contain the end-of-file mark EOF_MARK, it echoes up to and including the mark, then closes its
sending side (TCP FIN) and discards whatever else arrives until the peer closes (the kit's
channel.target_eof case). The kit's echo cases expect exactly this behaviour
(docs/conformance.md).

Usage: echo_target.py [--listen HOST:PORT]   (port 0 picks a free port; the port is printed as
"listening HOST:PORT" on stdout)
"""
import argparse
import asyncio

BANNER = b"SSH-2.0-mana-echo\r\n"
EOF_MARK = b"\x00mana-echo:eof\x00"  # 15 bytes; random test payloads never contain it


def make_handler(banner=BANNER):
    """The connection handler of the echo target, greeting with `banner` (the dev harness's
    echo target, tools/devkit/targets.py, is this handler with its own banner)."""
    async def handler(reader, writer):
        await _echo(banner, reader, writer)
    return handler


async def handle(reader, writer):
    await _echo(BANNER, reader, writer)


async def _echo(banner, reader, writer):
    try:
        writer.write(banner)
        await writer.drain()
        tail = b""  # the last bytes received, so that a mark split across reads is found
        while True:
            data = await reader.read(65536)
            if not data:
                break
            at = (tail + data).find(EOF_MARK)
            if at >= 0:
                writer.write(data[:at + len(EOF_MARK) - len(tail)])
                await writer.drain()
                writer.write_eof()
                while await reader.read(65536):
                    pass
                break
            tail = (tail + data)[-(len(EOF_MARK) - 1):]
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def serve(host, port, ready=None):
    server = await asyncio.start_server(handle, host, port)
    addr = server.sockets[0].getsockname()
    if ready is not None:
        ready(addr[1])
    print("listening %s:%d" % (addr[0], addr[1]), flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    try:
        asyncio.run(serve(host, int(port)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
