#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""SIGHUP reload of the configuration, the TLS certificate and the JWT keys (issue #18 section 2).

One wss:// gateway (tools/devkit launcher) with certificate ONE (signed by a test CA the client
trusts through SSL_CERT_FILE), a JWKS holding ES256 key k1 and the launcher's HS256 secret, an
echo target (tools/devkit/targets.py). Checks:
  before: a new connection sees certificate ONE; a k1 token gets hello_ok, a k2 token 4003;
  a session (HS256) echoes 1 MiB byte-exact; then the files are replaced (certificate TWO, a
  JWKS holding k2 only, a config that adds an Origin and changes [rate] open_rate) and SIGHUP:
  after: mana_config_reloads_total{outcome="ok"} 1, the log's `reload` event names the ignored
  restart-only section `rate`; the running session was not touched and echoes another 1 MiB
  byte-exact; a new connection sees certificate TWO; a k2 token gets hello_ok, a k1 token 4003;
  the added Origin is allowed;
  broken: a config file that does not parse, then a certificate file that is not PEM, each with
  SIGHUP: outcome="error" counted twice, `reload_failed` logged with the reason, the old
  configuration, certificate and keys stay (TWO, k2 accepted), the session still echoes.
Usage: reload_test.py --gateway PATH [--keep]
"""
import asyncio
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import (ORIGIN, SECRET, Failure, check, connect, expect_close, hello,  # noqa: E402
                     launch_gateway, loopback, metrics, recv_json)
from devkit import tokens  # noqa: E402 - fixture put tools/ on sys.path
from rel_support import BANNER, WINDOW, Client, seeded_stream, start_target  # noqa: E402

MiB = 1 << 20
NEW_ORIGIN = "https://new.example.test"


def cmd(*a):
    subprocess.run(a, check=True, capture_output=True)


def make_ca(tmp):
    key, crt = os.path.join(tmp, "ca.key"), os.path.join(tmp, "ca.pem")
    cmd("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=mana reload test CA")
    return key, crt


def make_cert(tmp, ca, name):
    """A certificate for 127.0.0.1 signed by `ca`: (cert path, key path, DER bytes)."""
    key, csr, crt = (os.path.join(tmp, name + s) for s in (".key", ".csr", ".pem"))
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    cmd("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=" + name)
    cmd("openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return crt, key, der


def peer_cert(port):
    ctx = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert(binary_form=True)


def ec_token(key, kid, sub):
    return tokens.mint(key, {"sub": sub}, "ES256", kid=kid)


async def hello_result(url, tok, origin=ORIGIN):
    """'hello_ok' or the close code the gateway answered `tok` with."""
    ws = await connect(url, origin=origin)
    await ws.send(hello(tok))
    try:
        m = await recv_json(ws)
    except Exception:  # noqa: BLE001 - closed before an answer
        code, _ = await expect_close(ws)
        return code
    await ws.close()
    return m.get("t")


async def transfer(c, cid, seed, n):
    data = seeded_stream(seed, n)
    ch = c.ch[cid]
    base = ch.rx
    sent = 0
    while sent < len(data):
        if c.lost.is_set():
            raise Failure("the session lost its transport: %r" % (c.closed,))
        if sent - (ch.rx - base) + 16384 > WINDOW // 2:
            await asyncio.sleep(0.002)
            continue
        await c.send(cid, data[sent:sent + 16384])
        sent += 16384
    await c.wait_rx(cid, base + len(data), timeout=60)
    return data


def log_events(gw, name):
    out = []
    for line in gw.logs().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == name:
            out.append(e)
    return out


async def sighup(gw, outcome, want):
    key = 'mana_config_reloads_total{outcome="%s"}' % outcome
    gw._signal(signal.SIGHUP)
    end = time.monotonic() + 5
    while metrics(gw.port, "https").get(key, 0) < want and time.monotonic() < end:
        await asyncio.sleep(0.05)
    check(metrics(gw.port, "https").get(key, 0) == want, "/metrics: %s = %d" % (key, want))


def replace(path, src):
    tmp = path + ".new"
    shutil.copyfile(src, tmp)
    os.replace(tmp, path)


async def scenario(gw, tmp, echo_port, certs, keys, sent):
    url = gw.url
    one, two = certs
    k1, k2 = keys
    check(peer_cert(gw.port) == one[2], "before: a new connection sees certificate ONE")
    check(await hello_result(url, ec_token(k1, "k1", "eve")) == "hello_ok", "before: k1 accepted")
    check(await hello_result(url, ec_token(k2, "k2", "eve")) == 4003, "before: k2 refused (4003)")

    c = Client(gw.port, "alice")
    c.url = url
    await c.attach()
    check((await c.open(1, echo_port)).get("t") == "open_ok", "session: channel open")
    await c.wait_rx(1, len(BANNER))
    data = BANNER + await transfer(c, 1, 1, MiB)

    replace(os.path.join(tmp, "gw.pem"), two[0])
    replace(os.path.join(tmp, "gw.key"), two[1])
    tokens.write_jwks(os.path.join(tmp, "jwks.json"), {"k2": k2})
    text = gw.config_text.replace('allow = ["%s"]' % ORIGIN, 'allow = ["%s", "%s"]'
                                  % (ORIGIN, NEW_ORIGIN)).replace("open_rate = 10",
                                                                  "open_rate = 20")
    check(text != gw.config_text and NEW_ORIGIN in text, "config rewritten")
    with open(gw.config_path + ".new", "w") as f:
        f.write(text)
    os.replace(gw.config_path + ".new", gw.config_path)
    await sighup(gw, "ok", 1)
    ev = log_events(gw, "reload")
    check(ev and ev[-1].get("result") == "ok" and "rate" in ev[-1].get("ignored", []),
          "log: reload ok, restart-only section `rate` ignored (%r)" % (ev[-1:],))

    check(not c.lost.is_set(), "the running session kept its transport across the reload")
    data += await transfer(c, 1, 2, MiB)
    check(c.ch[1].hash.hexdigest() == hashlib.sha256(data).hexdigest(),
          "the running session echoed 1 MiB before and 1 MiB after the reload byte-exact")
    check(peer_cert(gw.port) == two[2], "after: a new connection sees certificate TWO")
    check(await hello_result(url, ec_token(k2, "k2", "eve")) == "hello_ok", "after: k2 accepted")
    check(await hello_result(url, ec_token(k1, "k1", "eve")) == 4003,
          "after: the removed k1 refused (4003)")
    check(await hello_result(url, ec_token(k2, "k2", "eve"), origin=NEW_ORIGIN) == "hello_ok",
          "after: the added Origin allowed")

    with open(gw.config_path, "w") as f:
        f.write("[server]\nlisen = \"oops\"\n")
    await sighup(gw, "error", 1)
    bad = log_events(gw, "reload_failed")
    check(bad and "server.lisen" in bad[-1].get("error", ""),
          "log: reload_failed names the bad key (%r)" % (bad[-1:],))
    with open(gw.config_path, "w") as f:
        f.write(text)
    with open(os.path.join(tmp, "gw.pem"), "w") as f:
        f.write("not a certificate\n")
    await sighup(gw, "error", 2)
    check(len(log_events(gw, "reload_failed")) == 2, "log: the bad certificate's reload_failed")
    check(gw.poll() is None, "still running after two failed reloads")
    check(peer_cert(gw.port) == two[2], "failed reloads: still certificate TWO")
    check(await hello_result(url, ec_token(k2, "k2", "eve")) == "hello_ok",
          "failed reloads: k2 still accepted")
    data += await transfer(c, 1, 3, 256 * 1024)
    check(c.ch[1].hash.hexdigest() == hashlib.sha256(data).hexdigest() and not c.lost.is_set(),
          "the session still echoes byte-exact after the failed reloads")
    await c.close()
    sent.append(len(data))


def run(args, tmp, procs):
    ca = make_ca(tmp)
    os.environ["SSL_CERT_FILE"] = ca[1]  # the default contexts below trust the test CA
    one = make_cert(tmp, ca, "one")
    two = make_cert(tmp, ca, "two")
    shutil.copyfile(one[0], os.path.join(tmp, "gw.pem"))
    shutil.copyfile(one[1], os.path.join(tmp, "gw.key"))
    k1, k2 = tokens.new_keypair("ES256"), tokens.new_keypair("ES256")
    tokens.write_jwks(os.path.join(tmp, "jwks.json"), {"k1": k1})
    echo = start_target("echo", banner=BANNER)
    procs.append(echo)
    gw = launch_gateway(args.gateway, tmp, "reload", origins=(ORIGIN,),
                        targets=loopback(echo.port), secret=SECRET,
                        config={"tls": {"cert_file": "gw.pem", "key_file": "gw.key"},
                                "auth": {"jwks_file": "jwks.json"},
                                "rate": {"open_rate": 10}})
    procs.append(gw)
    sent = []
    asyncio.run(scenario(gw, tmp, echo.port, (one, two), (k1, k2), sent))
    check("eyJ" not in gw.logs(), "log: no JWT")
    print("reload_test: all checks passed (%d bytes echoed through the reloads)" % sent[0])


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-reload-", logs=("reload.log",)))
