#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The dev harness's Python launchers (tools/devkit) against the real programs.

  gateway.py  at log_level "warn" the port still comes from the `listening` line (the gateway
              writes it at every level) and the gateway serves on it; the key file has mode 0600
              and neither key nor token reaches the log; gw.token() is accepted (hello_ok), a
              token of another key is refused (4003); two gateways started at once get two
              ports; a config the gateway refuses fails the launch within its bound, with the
              gateway's own message in the error; stop() ends it with status 0
  tokens.py   mint(): header {"alg": "HS256", "typ": "JWT"}, the default exp, exp=None leaves
              it out, the signature is HMAC-SHA-256 over the first two parts
  targets.py  echo: the banner, then the bytes back; stream: the banner, then exactly
              seeded_stream(SEED, LEN), then FIN; stop() ends the process
  sshd.py     answers with an OpenSSH banner; host key fingerprint as `ssh-keygen -l` prints it;
              stop() ends sshd and the session processes it forked
Usage: devkit_test.py --gateway PATH [--sshd PATH]
"""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))
import websockets  # noqa: E402

import fixture  # noqa: E402
from fixture import ORIGIN, Failure, check, connect, hello, recv_json  # noqa: E402
from devkit import tokens  # noqa: E402
from devkit.gateway import StartError, start_gateway  # noqa: E402
from devkit.sshd import start_sshd  # noqa: E402
from devkit.targets import seeded_stream, start_target  # noqa: E402


def b64decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def recv_exactly(sock, n, timeout=10):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        d = sock.recv(n - len(buf))
        if not d:
            break
        buf += d
    return buf


def test_tokens():
    t = tokens.mint("k" * 40, {"sub": "alice"})
    head, body, sig = t.split(".")
    check(json.loads(b64decode(head)) == {"alg": "HS256", "typ": "JWT"}, "tokens: HS256 header")
    claims = json.loads(b64decode(body))
    check(claims["sub"] == "alice" and abs(claims["exp"] - (time.time() + 300)) < 5,
          "tokens: claims with the default exp (now + 300 s)")
    want = hmac.new(b"k" * 40, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    check(b64decode(sig) == want, "tokens: HMAC-SHA-256 signature over header.claims")
    check("exp" not in json.loads(b64decode(tokens.mint("k" * 40, {"sub": "a", "exp": None})
                                            .split(".")[1])), "tokens: exp=None leaves exp out")
    a, b = tokens.new_secret(), tokens.new_secret()
    check(len(a) == 48 and a != b, "tokens: new_secret() gives 48 characters, fresh each time")


async def hello_result(gw, tok):
    ws = await connect(gw.url)
    try:
        await ws.send(hello(tok))
        return (await recv_json(ws))["t"]
    except websockets.exceptions.ConnectionClosed as e:
        return e.code
    finally:
        await ws.close()


def test_gateway(args, tmp):
    gws = []
    try:
        gw = start_gateway(args.gateway, tmp, "gw-warn", origins=[ORIGIN], log_level="warn",
                           timeout=10)
        gws.append(gw)
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % gw.port, timeout=5) as r:
            check(r.status == 200, "gateway: log_level warn, port %d from the `listening` line "
                  "serves /healthz" % gw.port)
        mode = stat.S_IMODE(os.stat(os.path.join(tmp, "gw-warn.jwt-secret")).st_mode)
        check(mode == 0o600, "gateway: key file mode %o" % mode)
        tok = gw.token(sub="devkit")
        check(asyncio.run(hello_result(gw, tok)) == "hello_ok", "gateway: gw.token() -> hello_ok")
        other = tokens.mint(tokens.new_secret(), {"sub": "devkit"})
        check(asyncio.run(hello_result(gw, other)) == 4003,
              "gateway: a token of another key -> close 4003")
        gw2 = start_gateway(args.gateway, tmp, "gw-second")
        gws.append(gw2)
        check(gw2.port != gw.port and gw2.alive(), "gateway: a second one gets its own port")
        t0 = time.monotonic()
        try:
            start_gateway(args.gateway, tmp, "gw-bad", config={"session": {"no_such_key": 1}},
                          timeout=10)
            raise Failure("a config the gateway refuses was launched")
        except StartError as e:
            check("no_such_key" in str(e) and time.monotonic() - t0 < 10,
                  "gateway: a refused config fails the launch in %.1f s with the gateway's "
                  "message (%s)" % (time.monotonic() - t0, str(e).strip().splitlines()[-1]))
        code = gw.stop()
        check(code == 0, "gateway: stop() -> SIGTERM, exit status %s" % code)
        log = gw.logs()
        check(gw.secret not in log and tok not in log and "listening" in log,
              "gateway: the log holds the listening line, not the key or the token")
    finally:
        for g in gws:
            g.kill()


def test_targets(tmp):
    echo = start_target("echo", banner=b"SSH-2.0-devkit-echo\r\n",
                        log_path=os.path.join(tmp, "echo.log"))
    length = 300000
    stream = start_target("stream", 5, length, 1e9)
    try:
        with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as s:
            banner = recv_exactly(s, 21)
            s.sendall(b"ping-1234")
            back = recv_exactly(s, 9)
        check(banner == b"SSH-2.0-devkit-echo\r\n" and back == b"ping-1234",
              "targets: echo on the reported port %d: banner, then the bytes back" % echo.port)
        with socket.create_connection(("127.0.0.1", stream.port), timeout=5) as s:
            s.settimeout(10)
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        want = b"SSH-2.0-mana-dev-target\r\n" + seeded_stream(5, length)
        check(data == want, "targets: stream: default banner, then seeded_stream(5, %d), then "
              "FIN (%d bytes)" % (length, len(data)))
    finally:
        echo.stop()
        stream.stop()
    check(echo.poll() is not None and stream.poll() is not None, "targets: stop() ends them")


def test_sshd(args, tmp):
    sshd = start_sshd(os.path.join(tmp, "sshd"), sshd_path=args.sshd)
    try:
        with socket.create_connection(("127.0.0.1", sshd.port), timeout=5) as s:
            banner = recv_exactly(s, 16)
        check(banner.startswith(b"SSH-2.0-OpenSSH"), "sshd: OpenSSH banner on port %d"
              % sshd.port)
        k = sshd.host_keys["ed25519"]
        out = subprocess.run(["ssh-keygen", "-l", "-f", k["path"] + ".pub"], check=True,
                             capture_output=True, text=True).stdout
        check(out.split()[1] == k["fingerprint"], "sshd: host key fingerprint %s"
              % k["fingerprint"])
        kh = sshd.known_hosts(os.path.join(tmp, "known_hosts"), "devkit-alias")
        check(open(kh).read().startswith("devkit-alias ssh-ed25519 "),
              "sshd: known_hosts line for the alias")
    finally:
        sshd.stop()
    check(not sshd.alive(), "sshd: stop() ends it")


def run(args, tmp, procs):
    test_tokens()
    test_gateway(args, tmp)
    test_targets(tmp)
    test_sshd(args, tmp)


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-devkit-"))
