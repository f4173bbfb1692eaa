# SPDX-License-Identifier: Apache-2.0
"""The one launcher of loopback TCP targets for the Python tools (twin of targets.mjs): the
gateway's reliability, soak and idle tests and the conformance kit's driver. Each target is its
own process (so that a test can kill it for real), listens on 127.0.0.1 with a kernel-chosen port
and prints "listening 127.0.0.1:PORT" (no free-port race). It greets with an SSH banner line first
(the gateway's banner gate stays on; not in blackhole mode), then by mode:

  echo                 echoes what it receives (conformance/echo_target.py's handler: after the
                       end-of-file mark EOF_MARK it closes its sending side)
  stream SEED LEN RATE LEN bytes of seeded_stream(SEED, LEN) at RATE bytes/s, then FIN
  source               a 64 KiB seeded block over and over, as fast as the connection takes it,
                       until the peer goes away
  blackhole            accepts, reads and discards, never sends a byte

    from devkit.targets import start_target
    t = start_target("stream", 7, 1 << 20, 50e6, banner=b"SSH-2.0-x\\r\\n")   # t.port, t.proc
    t.stop()

Process: python3 -m devkit.targets MODE [ARGS...] [--banner TEXT] [--listen HOST:PORT]
"""
import argparse
import asyncio
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BANNER = b"SSH-2.0-mana-dev-target\r\n"
MODES = ("echo", "stream", "source", "blackhole")


def seeded_stream(seed, length):
    """The bytes of the stream mode: the same for the target and the test that checks them."""
    return random.Random(seed).randbytes(length)


class Target:
    def __init__(self, proc, port, mode):
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.mode = mode

    def alive(self):
        return self.proc.poll() is None

    def poll(self):
        return self.proc.poll()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def stop(self, grace=2.0):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        return self.kill()


def start_target(mode, *args, banner=None, listen=None, log_path=None, nice=0, timeout=15.0):
    """Starts a target process; returns a Target once it printed its port. `listen`
    ("127.0.0.1:PORT") only for a port fixed in advance (a target that comes and goes)."""
    if mode not in MODES:
        raise ValueError("start_target: mode %r" % mode)
    argv = [sys.executable, "-m", "devkit.targets", mode] + [str(a) for a in args]
    if banner is not None:
        text = banner.decode() if isinstance(banner, bytes) else banner
        argv += ["--banner", text.rstrip("\r\n")]
    if listen is not None:
        argv += ["--listen", listen]
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tools") + (
        ":" + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
        PYTHONDONTWRITEBYTECODE="1")
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=log, env=env, text=True,
                                preexec_fn=(lambda: os.nice(nice)) if nice else None)
    finally:
        if log_path:
            log.close()
    end = time.monotonic() + timeout
    line = ""
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line or line.startswith("listening "):
            break
    if not line.startswith("listening "):
        proc.kill()
        proc.wait()
        raise RuntimeError("target %s did not start (%r)" % (mode, line))
    proc.stdout.close()  # nothing more is printed
    return Target(proc, int(line.rsplit(":", 1)[1]), mode)


# ---- the target process ------------------------------------------------------------------------

async def _drain(reader):
    while await reader.read(65536):
        pass


def _stream(banner, seed, length, rate):
    data = seeded_stream(seed, length)

    async def serve(reader, writer):
        drain = asyncio.ensure_future(_drain(reader))
        try:
            writer.write(banner)
            step = 16384
            t0 = time.monotonic()
            for off in range(0, length, step):
                writer.write(data[off:off + step])
                await writer.drain()
                ahead = (off + step) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            writer.write_eof()
            await asyncio.wait_for(drain, 30)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            pass
        drain.cancel()
        writer.close()
    return serve


def _source(banner):
    block = seeded_stream(99, 65536)

    async def serve(reader, writer):
        drain = asyncio.ensure_future(_drain(reader))
        try:
            writer.write(banner)
            while not drain.done():
                writer.write(block)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        drain.cancel()
        writer.close()
    return serve


async def _blackhole(reader, writer):
    try:
        await _drain(reader)
    except (ConnectionError, OSError):
        pass
    writer.close()


def _handler(mode, banner, args):
    if mode == "echo":
        sys.path.insert(0, ROOT)
        from conformance.echo_target import make_handler
        return make_handler(banner)
    if mode == "stream":
        return _stream(banner, int(args[0]), int(args[1]), float(args[2]))
    if mode == "source":
        return _source(banner)
    return _blackhole


async def _serve(mode, banner, args, host, port):
    server = await asyncio.start_server(_handler(mode, banner, args), host, port)
    addr = server.sockets[0].getsockname()
    print("listening %s:%d" % (addr[0], addr[1]), flush=True)
    async with server:
        await server.serve_forever()


def main():
    ap = argparse.ArgumentParser(description="a loopback banner target of the dev harness")
    ap.add_argument("mode", choices=MODES)
    ap.add_argument("args", nargs="*")
    ap.add_argument("--banner", default=DEFAULT_BANNER.decode().rstrip("\r\n"))
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    host, _, port = a.listen.rpartition(":")
    banner = (a.banner + "\r\n").encode()
    try:
        asyncio.run(_serve(a.mode, banner, a.args, host, int(port)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
