#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The real client address behind reverse proxies (issue #18 section 3), against the real gateway.

Loopback only. The "balancer" is a client bound to 127.0.0.2 (the only trusted proxy); an
untrusted client binds 127.0.0.3. Three gateways from tools/devkit:
  P  [server] proxy_protocol = "any", per-IP caps of 2 WebSockets and 2 HTTP-phase connections,
     http_timeout_ms 1500:
     - PROXY v1 and v2 clients are counted under the address the header names: the 3rd WebSocket
       of one real address gets 4010 while another real address behind the same balancer still
       gets hello_ok; IPv6 sources share a /64 ([limits] ipv6_prefix), a second /64 does not;
     - the HTTP-phase cap counts the real address too (the 3rd idle connection for one address
       gets 503 after its PROXY header, another address is still accepted);
     - a malformed header, a request without a header, a header from an untrusted peer and a
       header that never completes (http_timeout_ms) close that connection with no answer, the
       held WebSockets keep working, /metrics counts each;
     - the `connect` log line names the real address.
  X  no PROXY protocol, forwarded_header x-forwarded-for, the same caps:
     - X-Forwarded-For from the trusted peer is honoured (3rd WebSocket of one forwarded address:
       4010, another forwarded address: hello_ok), whatever the client forged left of it;
     - from an untrusted peer it is ignored: distinct forged addresses still count as the peer
       (its 3rd WebSocket gets 4010) and never reach the logs;
     - idle connections from the balancer are not capped per IP before their request names the
       client (3 of them accepted at a cap of 2); the untrusted peer's 3rd gets 503.
  F  forwarded_header = "forwarded" (RFC 7239): honoured from the trusted peer; an
     X-Forwarded-For there is not read.
  T  wss with proxy_protocol = "v2": the PROXY header and the TLS ClientHello in one segment,
     the handshake completes with the bytes read past the header.
Usage: proxy_address_test.py --gateway PATH
"""
import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import struct
import sys
import tempfile
import time

import websockets

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import (ORIGIN, Failure, check, expect_close, hello,  # noqa: E402
                     recv_json, start_gateway, stop_all, token)

BALANCER = "127.0.0.2"
UNTRUSTED = "127.0.0.3"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CAPS = {"max_connections_per_ip": 2}
HTTP_TIMEOUT_MS = 1500


def proxy_v1(src, sport=40000, dst=None, dport=443):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = dst or ("2001:db8::1" if fam == "TCP6" else "192.0.2.1")
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def proxy_v2(src, sport=40000, dst=None, dport=443, tlvs=b""):
    s = ipaddress.ip_address(src)
    if s.version == 4:
        d = ipaddress.ip_address(dst or "192.0.2.1")
        block = s.packed + d.packed + struct.pack(">HH", sport, dport)
        fam = 0x11
    else:
        d = ipaddress.ip_address(dst or "2001:db8::1")
        block = s.packed + d.packed + struct.pack(">HH", sport, dport)
        fam = 0x21
    block += tlvs
    return V2_SIG + bytes([0x21, fam]) + struct.pack(">H", len(block)) + block


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def raw(port, local_ip, first=b""):
    """A TCP connection from `local_ip` that has sent `first`."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((local_ip, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    if first:
        s.sendall(first)
    return s


async def ws_connect(port, local_ip, preface=b"", headers=None):
    """A WebSocket from `local_ip` whose TCP stream starts with `preface` (a PROXY header)."""
    s = raw(port, local_ip, preface)
    s.setblocking(False)
    return await websockets.connect("ws://127.0.0.1:%d/" % port, sock=s, origin=ORIGIN,
                                    subprotocols=["mana.ssh.v1"], compression=None,
                                    open_timeout=5, extra_headers=headers or {})


async def session_ok(ws, what):
    await ws.send(hello(token(sub="pa%d" % (time.monotonic_ns() % 10**9))))
    m = await recv_json(ws)
    check(m.get("t") == "hello_ok", "%s: hello_ok (%r)" % (what, m.get("t")))


async def refused_4010(ws, what):
    code, _ = await expect_close(ws)
    check(code == 4010, "%s: closed with 4010 (got %s)" % (what, code))


def closed_without_answer(s, what, within):
    """The gateway closes `s` without writing a byte, within `within` seconds."""
    s.settimeout(within)
    t0 = time.monotonic()
    try:
        data = s.recv(4096)
    except socket.timeout:
        raise Failure("%s: still open after %.1fs" % (what, within))
    except ConnectionResetError:
        data = b""
    finally:
        s.close()
    check(data == b"", "%s: closed without an answer in %.2fs (got %r)"
          % (what, time.monotonic() - t0, data[:40]))


def http_answer(s, request, what, within=3.0):
    """Sends `request`; the status code of the answer (0: closed without one)."""
    if request:
        s.sendall(request)
    s.settimeout(within)
    buf = b""
    try:
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        raise Failure("%s: no answer within %.1fs" % (what, within))
    except ConnectionResetError:
        pass
    finally:
        s.close()
    line = buf.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else 0


def still_idle(s, what, wait=0.3):
    s.settimeout(wait)
    try:
        data = s.recv(1)
    except socket.timeout:
        print("ok -", what)
        return
    raise Failure("%s: the gateway answered or closed (%r)" % (what, data))


def proxied_metrics(port):
    """/metrics through the balancer (a v2 LOCAL header): {"name{labels}": float}."""
    s = raw(port, BALANCER, V2_SIG + bytes([0x20, 0x00, 0, 0]) +
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    out = {}
    for line in buf.split(b"\r\n\r\n", 1)[-1].decode().splitlines():
        f = line.split()
        if len(f) == 2 and not line.startswith("#"):
            out[f[0]] = float(f[1])
    return out


def log_lines(path, event):
    out = []
    with open(path) as f:
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("event") == event:
                out.append(j)
    return out


async def gateway_proxy(port, log_path):
    m0 = proxied_metrics(port)
    # PROXY v1: two WebSockets for 203.0.113.7 fill its cap; the third is refused. Another real
    # address behind the same balancer, by v2 with TLVs, still gets in.
    a1 = await ws_connect(port, BALANCER, proxy_v1("203.0.113.7", 40001))
    a2 = await ws_connect(port, BALANCER, proxy_v2("203.0.113.7", 40002))
    held = [a1, a2]
    await session_ok(a1, "v1 client 203.0.113.7 #1")
    await session_ok(a2, "v2 client 203.0.113.7 #2")
    await refused_4010(await ws_connect(port, BALANCER, proxy_v1("203.0.113.7", 40003)),
                       "3rd WebSocket of 203.0.113.7 (cap 2)")
    b = await ws_connect(port, BALANCER, proxy_v2(
        "198.51.100.9", 40004, tlvs=tlv(0x01, b"http/1.1") + tlv(0x02, b"gw.example") +
        tlv(0x04, b"\0" * 40)))
    held.append(b)
    await session_ok(b, "v2 client 198.51.100.9 behind the same balancer (TLVs skipped)")
    # IPv6 sources share their /64.
    for i, src in enumerate(("2001:db8:1:2::1", "2001:db8:1:2:ffff::2")):
        ws = await ws_connect(port, BALANCER, proxy_v2(src, 41000 + i))
        held.append(ws)
        await session_ok(ws, "IPv6 client %s" % src)
    await refused_4010(await ws_connect(port, BALANCER, proxy_v1("2001:db8:1:2::3")),
                       "3rd WebSocket of 2001:db8:1:2::/64")
    ws = await ws_connect(port, BALANCER, proxy_v1("2001:db8:1:3::1"))
    held.append(ws)
    await session_ok(ws, "IPv6 client in the next /64")
    # A v2 LOCAL header (the balancer's own health check) is the balancer itself.
    s = raw(port, BALANCER, V2_SIG + bytes([0x20, 0x00, 0, 0]))
    st = http_answer(s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "LOCAL health check")
    check(st == 200, "v2 LOCAL then GET /healthz: 200 (got %d)" % st)

    # Broken or missing headers close only that connection.
    tlv_past_end = (V2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", 15) + bytes(12) +
                    b"\x04\x00\x09")  # a NOOP TLV announcing 9 bytes, none left
    for what, peer, first in (
            ("malformed v1 header", BALANCER, b"PROXY TCP4 203.0.113.300 192.0.2.1 1 2\r\n"),
            ("v2 header with a TLV past its end", BALANCER, tlv_past_end),
            ("plain HTTP without a header", BALANCER, b"GET /healthz HTTP/1.1\r\n\r\n"),
            ("v1 line over 107 bytes", BALANCER, b"PROXY UNKNOWN " + b"x" * 120),
            ("a valid header from an untrusted peer", UNTRUSTED, proxy_v1("203.0.113.9"))):
        closed_without_answer(raw(port, peer, first), what, 3.0)
    s = raw(port, BALANCER, b"PROXY TCP4 203.0.113.10 ")
    t0 = time.monotonic()
    closed_without_answer(s, "a header that never completes (http_timeout_ms %d)"
                          % HTTP_TIMEOUT_MS, HTTP_TIMEOUT_MS / 1000 + 2)
    check(time.monotonic() - t0 >= HTTP_TIMEOUT_MS / 1000 - 0.2,
          "... not before the HTTP-phase deadline")
    for ws in held:  # everyone else is unaffected
        await ws.ping()
    check(True, "the %d held WebSockets still answer after the refusals" % len(held))
    await session_ok(await ws_connect(port, BALANCER, proxy_v1("203.0.113.11")),
                     "a new client after the refusals")

    # HTTP-phase cap (2 per real address): the 3rd idle connection of one address gets 503 once
    # its header names it; another address is accepted.
    idle = [raw(port, BALANCER, proxy_v1("203.0.113.20", 42000 + i)) for i in range(2)]
    time.sleep(0.3)
    st = http_answer(raw(port, BALANCER, proxy_v1("203.0.113.20", 42003)), b"",
                     "3rd HTTP-phase connection of 203.0.113.20")
    check(st == 503, "3rd HTTP-phase connection of 203.0.113.20: 503 (got %d)" % st)
    other = raw(port, BALANCER, proxy_v1("203.0.113.21"))
    still_idle(other, "an HTTP-phase connection of 203.0.113.21 is accepted meanwhile")
    for s in idle + [other]:
        s.close()

    m1 = proxied_metrics(port)
    rejects = {r: m1.get('mana_http_rejects_total{reason="%s"}' % r, 0) -
               m0.get('mana_http_rejects_total{reason="%s"}' % r, 0)
               for r in ("proxy_header", "proxy_untrusted", "proxy_timeout",
                         "max_http_connections_per_ip")}
    check(rejects["proxy_header"] == 4, "/metrics: 4 proxy_header rejects (%r)" % rejects)
    check(rejects["proxy_untrusted"] == 1, "/metrics: 1 proxy_untrusted reject")
    check(rejects["proxy_timeout"] == 1, "/metrics: 1 proxy_timeout reject")
    check(rejects["max_http_connections_per_ip"] == 1,
          "/metrics: 1 max_http_connections_per_ip reject")
    for ws in held:
        await ws.close()
    ips = {line.get("ip") for line in log_lines(log_path, "connect")}
    check({"203.0.113.7", "198.51.100.9", "2001:db8:1:2::/64"} <= ips and
          BALANCER not in ips, "connect log lines name the real addresses (%s)" % sorted(ips))
    pol = [line for line in log_lines(log_path, "policy")
           if line.get("reason") == "max_connections_per_ip"]
    check(any(line.get("ip") == "203.0.113.7" for line in pol),
          "the 4010 policy line names 203.0.113.7")


async def gateway_xff(port, log_path, header):
    name = "Forwarded" if header == "forwarded" else "X-Forwarded-For"

    def fwd(addr):
        if header == "forwarded":
            v = '"[%s]"' % addr if ":" in addr else addr
            return {"Forwarded": "for=%s;proto=http" % v}
        return {"X-Forwarded-For": addr}

    # Trusted peer: the client forged its own header, the balancer appended the real address.
    forged = "1.2.3.4"
    held = []
    for i in range(2):
        h = fwd(forged)
        h[name] = h[name] + ", " + list(fwd("203.0.113.30").values())[0]
        ws = await ws_connect(port, BALANCER, headers=h)
        held.append(ws)
        await session_ok(ws, "%s 203.0.113.30 from the balancer #%d" % (name, i + 1))
    await refused_4010(await ws_connect(port, BALANCER, headers=fwd("203.0.113.30")),
                       "3rd WebSocket of forwarded 203.0.113.30")
    ws = await ws_connect(port, BALANCER, headers=fwd("203.0.113.31"))
    held.append(ws)
    await session_ok(ws, "forwarded 203.0.113.31 behind the same balancer")
    if header == "forwarded":
        # This gateway reads Forwarded only: an X-Forwarded-For is the client's, never read.
        ws = await ws_connect(port, BALANCER, headers={"X-Forwarded-For": "203.0.113.30"})
        held.append(ws)
        await session_ok(ws, "X-Forwarded-For ignored where Forwarded is configured")
        for ws in held:
            await ws.close()
        return
    # Untrusted peer: forged addresses are ignored, it is counted as itself.
    spoof = []
    for i in range(2):
        ws = await ws_connect(port, UNTRUSTED, headers=fwd("198.51.100.%d" % (50 + i)))
        spoof.append(ws)
        await session_ok(ws, "untrusted peer with a forged %s #%d" % (name, i + 1))
    await refused_4010(await ws_connect(port, UNTRUSTED, headers=fwd("198.51.100.99")),
                       "untrusted peer's 3rd WebSocket despite a new forged address")
    ips = {line.get("ip") for line in log_lines(log_path, "connect")}
    check(UNTRUSTED in ips and not any(i.startswith("198.51.100.") for i in ips),
          "forged addresses never reach the logs (%s)" % sorted(ips))
    # HTTP-phase cap: connections from the balancer are not counted per IP before their request
    # names the client (everyone's address would be the balancer's); the untrusted peer's are.
    idle = [raw(port, BALANCER) for _ in range(3)]
    time.sleep(0.3)
    for i, s in enumerate(idle):
        still_idle(s, "idle HTTP-phase connection %d of 3 from the balancer accepted" % (i + 1),
                   0.1)
    mine = [raw(port, UNTRUSTED) for _ in range(2)]
    time.sleep(0.3)
    st = http_answer(raw(port, UNTRUSTED), b"", "3rd idle connection of the untrusted peer")
    check(st == 503, "3rd idle HTTP-phase connection of the untrusted peer: 503 (got %d)" % st)
    for s in idle + mine:
        s.close()
    for ws in held + spoof:
        await ws.close()


def tls_through_proxy(port, tmp):
    """wss behind a PROXY v2 balancer: the header and the ClientHello in one segment (the
    gateway hands the bytes it read past the header to the TLS handshake), then GET /healthz."""
    ctx = ssl.create_default_context(cafile=os.path.join(tmp, "gw_tls.crt"))
    ctx.check_hostname = False
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_side=False)
    s = raw(port, BALANCER)
    first = True
    request_sent = False
    answer = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if not request_sent:
                tls.do_handshake()
                tls.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                request_sent = True
            answer += tls.read(4096)
            if b"\r\n\r\n" in answer:
                break
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        pending = out.read()
        if pending:
            s.sendall((proxy_v2("203.0.113.77") if first else b"") + pending)
            first = False
            continue
        data = s.recv(65536)
        if not data:
            break
        inc.write(data)
    s.close()
    check(answer.startswith(b"HTTP/1.1 200"),
          "wss behind PROXY v2, header and ClientHello in one segment: /healthz 200 (%r)"
          % answer[:40])


async def main_async(args, tmp):
    procs = []
    try:
        common = {"limits": dict(CAPS),
                  "server": {"max_http_connections_per_ip": 2,
                             "http_timeout_ms": HTTP_TIMEOUT_MS}}
        cfg_p = {"limits": dict(CAPS, ipv6_prefix=64),
                 "server": dict(common["server"], proxy_protocol="any",
                                trusted_proxies=[BALANCER + "/32"])}
        proc, port, log = start_gateway(tmp, args.gateway, "gw_proxy", config=cfg_p)
        procs.append(proc)
        print("# gateway P (proxy_protocol any) on", port)
        await gateway_proxy(port, log)

        cfg_x = {"limits": dict(CAPS),
                 "server": dict(common["server"], trusted_proxies=[BALANCER])}
        proc, port, log = start_gateway(tmp, args.gateway, "gw_xff", config=cfg_x)
        procs.append(proc)
        print("# gateway X (X-Forwarded-For) on", port)
        await gateway_xff(port, log, "x-forwarded-for")

        cfg_f = {"limits": dict(CAPS),
                 "server": dict(common["server"], trusted_proxies=["127.0.0.0/30"],
                                forwarded_header="forwarded")}
        proc, port, log = start_gateway(tmp, args.gateway, "gw_fwd", config=cfg_f)
        procs.append(proc)
        print("# gateway F (Forwarded) on", port)
        await gateway_xff(port, log, "forwarded")
        key, crt = os.path.join(tmp, "gw_tls.key"), os.path.join(tmp, "gw_tls.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "1", "-subj", "/CN=127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cfg_t = {"tls": {"cert_file": crt, "key_file": key},
                 "server": {"proxy_protocol": "v2", "trusted_proxies": [BALANCER]}}
        proc, port, log = start_gateway(tmp, args.gateway, "gw_tls", config=cfg_t)
        procs.append(proc)
        print("# gateway T (wss, proxy_protocol v2) on", port)
        tls_through_proxy(port, tmp)
        for p in procs:
            check(p.poll() is None, "gateway pid %d still running" % p.pid)
    finally:
        stop_all(procs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mana-proxy-address-")
    try:
        asyncio.run(main_async(args, tmp))
    except Failure as e:
        print("FAIL -", e)
        for name in ("gw_proxy", "gw_xff", "gw_fwd", "gw_tls"):
            p = os.path.join(tmp, name + ".log")
            if os.path.exists(p):
                print("# tail of", p)
                print("".join(open(p).readlines()[-25:]))
        sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print("proxy_address_test: all ok")


if __name__ == "__main__":
    main()
