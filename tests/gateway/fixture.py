# SPDX-License-Identifier: Apache-2.0
"""Shared fixture code for the gateway tests (smoke_test.py, bad_input_test.py, ...).

Starts a real OpenSSH server and mana-gateway processes with test configurations through the dev
harness (tools/devkit: sshd.py, gateway.py, tokens.py), and offers small helpers for raw WebSocket
clients (python3-websockets 10.x). Debian's /usr/bin/python3 only.

SECRET, the gateway's HS256 key, comes from the CSPRNG once per test run and reaches the child
processes a test starts (load generators, re-executed scenarios) through the environment
(MANA_TEST_JWT_SECRET); it is written only to the gateways' key files (mode 0600), never logged.
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools"))
from devkit import tokens  # noqa: E402
from devkit.gateway import start_gateway as launch_gateway  # noqa: E402
from devkit.net import free_port, wait_port  # noqa: E402,F401 - re-exported for the tests
from devkit.sshd import start_sshd as launch_sshd  # noqa: E402

SECRET_ENV = "MANA_TEST_JWT_SECRET"
SECRET = os.environ.get(SECRET_ENV) or tokens.new_secret()
os.environ[SECRET_ENV] = SECRET
ORIGIN = "http://localhost:8080"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok -", what)


def token(sub="alice", exp_in=300, key=SECRET, algorithm="HS256", **extra):
    """A JWT (tools/devkit/tokens.py) for the test gateways; `key`/`algorithm` make bad ones."""
    claims = {"sub": sub, "exp": int(time.time()) + exp_in}
    claims.update(extra)
    return tokens.mint(key, claims, algorithm)


def hello(tok, resume=None, profile="mana.v1"):
    h = {"t": "hello", "proto": 1, "auth": {"scheme": "bearer", "token": tok},
         "caps": {"profile": profile, "bidi": True, "resume": True}}
    if resume is not None:
        h["resume"] = resume
    return json.dumps(h)


def data_frame(cid, payload, stream=1):
    return struct.pack(">BI", stream, cid) + payload


async def recv_json(ws, timeout=5, skip=("close", "flow", "ping", "pong")):
    """Next control message, skipping channel data and the housekeeping types in `skip`."""
    end = time.time() + timeout
    while True:
        m = await asyncio.wait_for(ws.recv(), max(0.01, end - time.time()))
        if isinstance(m, str):
            j = json.loads(m)
            if j.get("t") in skip:
                continue
            return j


async def connect(url, origin=ORIGIN, subprotocols=("mana.ssh.v1",), local_ip=None, **kw):
    if local_ip is not None:
        kw["local_addr"] = (local_ip, 0)
    return await websockets.connect(url, origin=origin, subprotocols=list(subprotocols),
                                    compression=None, max_size=2**21, open_timeout=5, **kw)


async def read_channel(ws, cid, want, timeout=10):
    """Collect data of channel `cid` until `want(buf)` is true; returns (buf, control msgs)."""
    buf = b""
    ctl = []
    end = time.time() + timeout
    while not want(buf):
        left = end - time.time()
        if left <= 0:
            raise Failure("timeout waiting for channel data (got %r)" % buf[:80])
        m = await asyncio.wait_for(ws.recv(), left)
        if isinstance(m, bytes):
            stream, mid = struct.unpack(">BI", m[:5])
            if mid == cid:
                buf += m[5:]
        else:
            ctl.append(json.loads(m))
    return buf, ctl


async def expect_close(ws, timeout=5):
    """Reads until the server closes; returns (code, reason)."""
    end = time.time() + timeout
    try:
        while True:
            left = end - time.time()
            if left <= 0:
                raise Failure("no close within %.1fs" % timeout)
            await asyncio.wait_for(ws.recv(), left)
    except websockets.exceptions.ConnectionClosed as e:
        return e.code, e.reason
    except asyncio.TimeoutError:
        raise Failure("no close within %.1fs" % timeout)


# A PROXY protocol v2 header with the LOCAL command (the balancer's own health checks: the
# gateway keeps the TCP peer's address). A gateway with [server] proxy_protocol = "v2" answers
# a direct request from a trusted peer only after it.
PROXY_V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0x00, 0x00])


def http_get(port, path, preface=b"", timeout=5):
    """GET http://127.0.0.1:port<path> on a raw socket, `preface` (a PROXY header) first:
    (status, body text). For what urllib cannot send."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(preface + ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                             % path).encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    if not m:
        raise Failure("GET %s on port %d: no HTTP answer (%r)" % (path, port, head[:60]))
    return int(m.group(1)), body.decode(errors="replace")


def metrics(port, scheme="http", context=None, preface=None):
    """Scrapes /metrics into {"name{labels}": float}; with `preface` (e.g. PROXY_V2_LOCAL) on a
    raw socket that sends it first."""
    if preface is not None:
        status, text = http_get(port, "/metrics", preface)
        if status != 200:
            raise Failure("GET /metrics on port %d: %d" % (port, status))
    else:
        with urllib.request.urlopen("%s://127.0.0.1:%d/metrics" % (scheme, port), timeout=5,
                                    context=context) as r:
            text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+)\s+(\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def debug_sessions(port, principal):
    """GET /debug/sessions?principal=... ([server] debug_sessions = true, loopback only): the
    gateway's view of that principal's sessions, or {"error": ...}."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/debug/sessions?principal=%s"
                                    % (port, principal), timeout=5) as r:
            return json.loads(r.read().decode())
    except Exception as e:  # noqa: BLE001 - a report must not fail the report
        return {"error": repr(e)}


def start_sshd(tmp, sshd_path):
    """A real sshd on a loopback port (tools/devkit/sshd.py, in tmp/sshd): returns (Popen, port)."""
    s = launch_sshd(os.path.join(tmp, "sshd"), sshd_path=sshd_path)
    return s.proc, s.port


def start_gateway(tmp, gateway_path, name, config=None, origins=(ORIGIN,), targets=(), **kw):
    """mana-gateway (tools/devkit/gateway.py) with SECRET, allowing `origins` and `targets`, plus
    `config` ({section: {key: value}}); tmp/<name>.toml, tmp/<name>.log. Returns
    (Popen, port, log path); keywords go to the launcher (env, preexec_fn, allow_missing_origin,
    log_level)."""
    gw = launch_gateway(gateway_path, tmp, name, origins=origins, targets=targets, config=config,
                        secret=SECRET, **kw)
    return gw.proc, gw.port, gw.log_path


def loopback(*ports):
    """The [[targets]] entry allowing `ports` on 127.0.0.1."""
    return [{"host": "127.0.0.1", "ports": list(ports)}]


def stop_all(procs):
    """Stops everything in `procs`, newest first, and waits for each: a Popen is killed; a
    launcher's object (tools/devkit: Gateway, Target, Sshd, Haproxy) is stopped by its kill()
    (SIGKILL to the process or its group) or, lacking one, its stop() (SIGTERM, then SIGKILL
    after a grace time), both of which wait. One that fails does not keep the others running."""
    for p in reversed(procs):
        try:
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    p.kill()
                p.wait()
            elif hasattr(p, "kill"):
                p.kill()
            else:
                p.stop()
        except Exception as e:  # noqa: BLE001 - stop the rest anyway
            print("# could not stop %r: %s" % (p, e))


def established_to(port):
    """Established TCP connections whose remote port is `port` (from /proc/net/tcp)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            rem_port = int(f[2].split(":")[1], 16)
            if rem_port == port and f[3] == "01":
                n += 1
    return n


def main(run, prefix, logs=(), add_args=None):
    """The command line and frame of a gateway test: --gateway (required), --sshd and whatever
    add_args(parser) adds. Calls run(args, tmp, procs) with a fresh temporary directory (named
    after `prefix`) and an empty list for the processes it starts (Popen objects or the
    launchers' objects, see stop_all); a pass is a return, a failure an exception: "FAIL -", the
    error and the tail of each file of `logs` (relative to tmp) are printed. Afterwards every
    process in procs is stopped and waited for (stop_all), and tmp is removed unless --keep was
    given. Returns the exit status (0 passed, 1 failed) for sys.exit."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--sshd", default=shutil.which("sshd") or "/usr/sbin/sshd")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    if add_args is not None:
        add_args(ap)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix=prefix)
    procs = []
    try:
        run(args, tmp, procs)
        return 0
    except Exception as e:  # noqa: BLE001 - report any failure
        print("FAIL -", type(e).__name__, e)
        for name in logs:
            try:
                with open(os.path.join(tmp, name), errors="replace") as f:
                    print("--- %s (tail)\n%s" % (name, f.read()[-3000:]))
            except OSError:
                pass
        return 1
    finally:
        stop_all(procs)
        if args.keep:
            print("# kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
