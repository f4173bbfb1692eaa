#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""JWT verification with asymmetric keys from a JWKS, against the real mana-gateway binary.

Keys come from tools/devkit/tokens.py (new_keypair, write_jwks), tokens from tokens.mint, and
three more keys and tokens from its twin tokens.mjs (run with node); the gateway
(tools/devkit/gateway.py) reads one [auth] jwks_file holding all six public keys, with issuer
and audience set, next to its HS256 secret. Checks:
  RS256, ES256 and EdDSA tokens (each with its kid, from both minters) -> hello_ok with their
  sub, and a channel to a real sshd (tools/devkit/sshd.py) relays its SSH banner; the HS256
  token still works;
  refused with close 4003 and the reason in the log: an unknown kid, an HS256 token HMAC'd with
  the RSA public key PEM naming the RSA kid (algorithm confusion), an RS256 signature under the
  EC kid, an ES256 token of another key, a wrong `aud`; the log holds none of the tokens; the
  `listening` line counts 6 keys; a JWKS holding a private key stops startup with its message.
Usage: jwks_test.py --gateway PATH [--sshd PATH]
"""
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fixture  # noqa: E402
from fixture import (ORIGIN, Failure, check, connect, hello, loopback,  # noqa: E402
                     read_channel, recv_json)
from devkit import tokens  # noqa: E402 - fixture put tools/ on sys.path
from devkit.gateway import StartError, start_gateway  # noqa: E402
from devkit.sshd import start_sshd  # noqa: E402

ISS = "https://idp.example.test"
AUD = "mana-gateway-test"
TOKENS_MJS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools", "devkit",
                          "tokens.mjs")
# tokens.mjs: three key pairs, their JWKS (argv[1]) and a token per kid with the claims argv[2].
JS_MINT = """
import { mintJwt, newKeyPair, writeJwks } from %s;
const keys = { 'js-rsa': newKeyPair('RS256'), 'js-ec': newKeyPair('ES256'),
               'js-ed': newKeyPair('EdDSA') };
writeJwks(process.argv[1], keys);
const out = {};
for (const [kid, k] of Object.entries(keys))
  out[kid] = mintJwt(k, { ...JSON.parse(process.argv[2]), sub: `user-${kid}` }, { kid });
console.log(JSON.stringify(out));
"""


def js_keys_and_tokens(tmp):
    """({kid: public JWK}, {kid: token}) made by tokens.mjs."""
    node = shutil.which("node")
    if node is None:
        raise Failure("node not found: the tokens.mjs half of this test cannot run")
    path = os.path.join(tmp, "js-jwks.json")
    out = subprocess.run([node, "--input-type=module", "-e", JS_MINT % json.dumps(TOKENS_MJS),
                          path, json.dumps({"iss": ISS, "aud": AUD})],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return json.load(open(path))["keys"], json.loads(out)


async def session(url, tok, ssh_port=None):
    """hello with `tok`: ("hello_ok", banner or None) or (close code, None)."""
    ws = await connect(url)
    try:
        await ws.send(hello(tok))
        m = await recv_json(ws)
        if m.get("t") != "hello_ok" or ssh_port is None:
            return m.get("t"), None
        await ws.send(json.dumps({"t": "open", "id": 1,
                                  "target": {"host": "127.0.0.1", "port": ssh_port}}))
        m = await recv_json(ws)
        if m.get("t") != "open_ok":
            return m.get("t"), None
        banner, _ = await read_channel(ws, 1, lambda b: b"\n" in b)
        return "hello_ok", banner
    except websockets.exceptions.ConnectionClosed as e:
        return e.code, None
    finally:
        await ws.close()


def tokens_header(tok):
    head = tok.split(".")[0]
    return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))


def claims(sub, **extra):
    c = {"sub": sub, "iss": ISS, "aud": AUD}
    c.update(extra)
    return c


def run(args, tmp, procs):
    keys = {"rsa-1": tokens.new_keypair("RS256"), "ec-1": tokens.new_keypair("ES256"),
            "ed-1": tokens.new_keypair("EdDSA")}
    jwks = tokens.write_jwks(os.path.join(tmp, "jwks.json"), keys)
    js_jwks, js_tokens = js_keys_and_tokens(tmp)
    doc = json.load(open(jwks))
    doc["keys"] += js_jwks
    with open(jwks, "w") as f:
        json.dump(doc, f)
    sshd = start_sshd(os.path.join(tmp, "sshd"), sshd_path=args.sshd)
    gw = None
    try:
        gw = start_gateway(args.gateway, tmp, "gw-jwks", origins=[ORIGIN],
                           targets=loopback(sshd.port),
                           config={"auth": {"jwks_file": "jwks.json", "issuer": ISS,
                                            "audience": AUD}})
        listening = [json.loads(line) for line in gw.logs().splitlines()
                     if '"listening"' in line][0]
        check(listening.get("jwks_keys") == 6 and listening.get("jwt") is True,
              "listening line: jwks_keys %s" % listening.get("jwks_keys"))
        minted = []

        def mint(key, c, alg, kid=None):
            t = tokens.mint(key, c, alg, kid=kid)
            minted.append(t)
            return t

        for kid, alg in (("rsa-1", "RS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA")):
            tok = mint(keys[kid], claims("user-" + kid), alg, kid)
            t0 = time.monotonic()
            res, banner = asyncio.run(session(gw.url, tok, sshd.port))
            check(res == "hello_ok" and banner is not None and banner.startswith(b"SSH-2.0-"),
                  "%s token (kid %s) -> hello_ok, channel relays %r in %.0f ms"
                  % (alg, kid, (banner or b"").split(b"\r")[0], (time.monotonic() - t0) * 1e3))
        for kid, tok in js_tokens.items():
            minted.append(tok)
            res, banner = asyncio.run(session(gw.url, tok, sshd.port))
            check(res == "hello_ok" and banner is not None and banner.startswith(b"SSH-2.0-"),
                  "tokens.mjs %s token (kid %s) -> hello_ok, channel relays the banner"
                  % (json.loads(tokens_header(tok))["alg"], kid))
        log = gw.logs()
        for kid in list(keys) + list(js_tokens):
            check('"principal":"user-%s"' % kid in log.replace(" ", ""),
                  "log: principal user-%s authenticated" % kid)
        hs = mint(gw.secret, claims("hs-user"), "HS256")
        check(asyncio.run(session(gw.url, hs))[0] == "hello_ok", "HS256 token still -> hello_ok")

        pem = tokens.public_pem(keys["rsa-1"])
        other_ec = tokens.new_keypair("ES256")
        refused = [
            ("unknown kid", mint(keys["rsa-1"], claims("x"), "RS256", "rsa-2"),
             "jwt unknown kid"),
            ("HS256 HMAC'd with the RSA public key PEM, kid rsa-1 (alg confusion)",
             mint(pem, claims("x"), "HS256", "rsa-1"),
             "jwt alg does not match the key (RS256 key)"),
            ("RS256 signature under the EC key's kid", mint(keys["rsa-1"], claims("x"), "RS256",
                                                              "ec-1"),
             "jwt alg does not match the key (ES256 key)"),
            ("ES256 token signed by another EC key", mint(other_ec, claims("x"), "ES256", "ec-1"),
             "jwt bad signature"),
            ("EdDSA token with a wrong aud", mint(keys["ed-1"], claims("x", aud="other"),
                                                  "EdDSA", "ed-1"),
             "jwt aud missing or wrong"),
        ]
        for what, tok, reason in refused:
            before = gw.logs().count(reason)
            res = asyncio.run(session(gw.url, tok))
            check(res[0] == 4003, "%s -> close %s" % (what, res[0]))
            check(gw.logs().count(reason) == before + 1, "%s: log reason %r" % (what, reason))
        log = gw.logs()
        leaked = [t for t in minted if t in log or t.split(".")[2] in log]
        check(not leaked, "the log holds none of the %d tokens" % len(minted))
        code = gw.stop()
        check(code == 0, "gateway stopped, exit status %s" % code)

        # A JWKS with a private key in it stops startup (the message names the key).
        bad = json.load(open(jwks))
        bad["keys"][1]["d"] = "AAAA"
        with open(os.path.join(tmp, "bad-jwks.json"), "w") as f:
            json.dump(bad, f)
        try:
            start_gateway(args.gateway, tmp, "gw-bad", origins=[ORIGIN],
                          config={"auth": {"jwks_file": "bad-jwks.json"}}, timeout=10)
            raise Failure("a JWKS with a private key was accepted")
        except StartError as e:
            check("holds a private key" in str(e) and "kid ec-1" in str(e),
                  "JWKS with a private key: startup refused (%s)"
                  % str(e).strip().splitlines()[-1])
    finally:
        if gw is not None:
            gw.kill()
        sshd.stop()


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-jwks-", logs=("gw-jwks.log", "gw-bad.log")))
