"""Shared fixture code for the gateway tests (smoke_test.py, bad_input_test.py).

Starts a real OpenSSH server (own config and host key, loopback, random port, no PAM) and
mana-gateway processes with test configurations, and offers small helpers for raw WebSocket
clients (python3-websockets 10.x, python3-jwt). Debian's /usr/bin/python3 only.
"""
import asyncio
import json
import os
import re
import socket
import struct
import subprocess
import time
import urllib.request

import jwt
import websockets

SECRET = "smoke-test-secret-0123456789abcdefghij"
ORIGIN = "http://localhost:8080"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok -", what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def token(sub="alice", exp_in=300, key=SECRET, algorithm="HS256", **extra):
    claims = {"sub": sub, "exp": int(time.time()) + exp_in}
    claims.update(extra)
    t = jwt.encode(claims, key, algorithm=algorithm)
    return t if isinstance(t, str) else t.decode()


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


def metrics(port, scheme="http", context=None):
    """Scrapes /metrics into {"name{labels}": float}."""
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
    """A real sshd on a loopback port: returns (Popen, port)."""
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd privilege separation
    key = os.path.join(tmp, "host_ed25519")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    port = free_port()
    conf = os.path.join(tmp, "sshd_config")
    with open(conf, "w") as f:
        f.write("ListenAddress 127.0.0.1:%d\nHostKey %s\nPidFile %s/sshd.pid\n"
                "UsePAM no\nStrictModes no\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nAuthorizedKeysFile none\n"
                "MaxStartups 100:30:200\n" % (port, key, tmp))
    log = open(os.path.join(tmp, "sshd.log"), "w")
    proc = subprocess.Popen([sshd_path, "-D", "-e", "-f", conf], stdout=subprocess.DEVNULL,
                            stderr=log)
    if not wait_port(port):
        proc.kill()
        raise Failure("sshd did not start: " + open(os.path.join(tmp, "sshd.log")).read())
    return proc, port


def write_secret(tmp):
    path = os.path.join(tmp, "secret")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    return path


def start_gateway(tmp, gateway_path, name, toml_body, port=None):
    """mana-gateway with `toml_body` (its [server] listen is added): returns (Popen, port, log)."""
    port = port or free_port()
    conf = os.path.join(tmp, name + ".toml")
    with open(conf, "w") as f:
        f.write('[server]\nlisten = "127.0.0.1:%d"\n' % port + toml_body)
    log_path = os.path.join(tmp, name + ".log")
    proc = subprocess.Popen([gateway_path, "--config", conf], stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "w"))
    if not wait_port(port):
        proc.kill()
        raise Failure("gateway %s did not start: %s" % (name, open(log_path).read()[-2000:]))
    return proc, port, log_path


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


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
