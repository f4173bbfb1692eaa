#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Real OpenSSH through mana-proxy and mana-gateway to a real sshd.

Starts its own sshd and mana-gateway (test config: only that sshd, JWT auth) through the dev
harness (tools/devkit: sshd.py with its own config, host and user key, no PAM; gateway.py), then
runs Debian's `ssh` with
  ProxyCommand=mana-proxy --url ws://127.0.0.1:GW/ --token-file FILE %h %p
and checks:
  a command's output and exit status; interactive echo (line by line without a pty, and a
  pty round trip); 64 MiB down and 64 MiB up compared by SHA-256; the same two transfers
  through a fault-injecting proxy that cuts the WebSocket at random byte offsets (>= 50 cuts
  in total) with the SSH session surviving byte-exact; mana-proxy's exits with a clear message
  and non-zero status for a bad token, a denied target and an impossible resume.
Usage: ssh_proxy_test.py --gateway PATH --proxy PATH [--sshd PATH] [--mib N] [--cuts N]
"""
import asyncio
import getpass
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import FaultProxy  # noqa: E402
import fixture  # noqa: E402
from fixture import (SECRET, Failure, check, free_port, loopback, metrics,  # noqa: E402
                     start_gateway, stop_all, token)
from devkit.sshd import start_sshd as launch_sshd  # noqa: E402

MIB = 1 << 20


class Loop:
    """An asyncio loop in a background thread (runs the fault proxies)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Fixture:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.procs = []
        self.user = getpass.getuser()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def start_sshd(self):
        """sshd (tools/devkit/sshd.py) for this user with a generated key, in tmp/sshd."""
        sshd = launch_sshd(self.path("sshd"), user=self.user, sshd_path=self.args.sshd)
        self.procs.append(sshd.proc)
        self.ssh_port = sshd.port
        self.ssh_key = sshd.user_key["path"]
        sshd.known_hosts(self.path("known_hosts"), "mana-test-sshd")

    def make_tls_files(self):
        """A test CA and a server certificate for 127.0.0.1 (openssl CLI)."""
        def run(*a):
            subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", self.path("ca.key"), "-out", self.path("ca.pem"), "-days", "2",
            "-subj", "/CN=mana test CA")
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", self.path("server.key"), "-out", self.path("server.csr"),
            "-subj", "/CN=127.0.0.1")
        with open(self.path("san.ext"), "w") as f:
            f.write("subjectAltName = IP:127.0.0.1\n")
        run("x509", "-req", "-in", self.path("server.csr"), "-CA", self.path("ca.pem"),
            "-CAkey", self.path("ca.key"), "-CAcreateserial", "-out", self.path("server.pem"),
            "-days", "2", "-extfile", self.path("san.ext"))

    def start_gateway(self, name="gw", tls=False):
        config = {"session": {"resume_ttl_ms": 30000}}
        if tls:
            config["tls"] = {"cert_file": "server.pem", "key_file": "server.key"}
        proc, port, _ = start_gateway(self.tmp, self.args.gateway, name, config,
                                      allow_missing_origin=True, targets=loopback(self.ssh_port))
        self.procs.append(proc)
        return port, proc

    def write_token(self, name, tok):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(tok + "\n")
        os.chmod(p, 0o600)
        return p

    def proxy_cmd(self, gw_port, token_file, extra=""):
        return ("%s --url ws://127.0.0.1:%d/ --token-file %s --reconnect-min-ms 20 "
                "--reconnect-max-ms 200 %s %%h %%p" % (self.args.proxy, gw_port, token_file, extra))

    def ssh_argv(self, gw_port, token_file, remote, tty=False, extra=""):
        argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-i", self.ssh_key, "-o", "UserKnownHostsFile=" + self.path("known_hosts"),
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "HostKeyAlias=mana-test-sshd", "-o", "LogLevel=ERROR",
                "-o", "ProxyCommand=" + self.proxy_cmd(gw_port, token_file, extra),
                "-p", str(self.ssh_port), "-tt" if tty else "-T",
                "%s@127.0.0.1" % self.user, remote]
        return argv

    def stop(self):
        stop_all(self.procs)


def seeded_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def download(fx, gw_port, token_file, data_path, size, timeout):
    """ssh `cat FILE`: hash what arrives on ssh's stdout."""
    argv = fx.ssh_argv(gw_port, token_file, "cat " + data_path)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        got, digest = drain_hash(p.stdout)
        err = p.stderr.read().decode(errors="replace")
        rc = p.wait()
    finally:
        timer.cancel()
    return rc, got, digest, err


def drain_hash(stream):
    """Reads `stream` to EOF: (byte count, SHA-256 hex)."""
    h = hashlib.sha256()
    got = 0
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            return got, h.hexdigest()
        h.update(chunk)
        got += len(chunk)


def upload(fx, gw_port, token_file, data, timeout):
    """ssh `sha256sum`: feed `data` on ssh's stdin, read the remote digest."""
    argv = fx.ssh_argv(gw_port, token_file, "sha256sum")
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(input=data, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def run_proxy_direct(fx, gw_port, token_file, host, port, stdin_data=b"", timeout=15):
    argv = [fx.args.proxy, "--url", "ws://127.0.0.1:%d/" % gw_port, "--token-file", token_file,
            host, str(port)]
    p = subprocess.run(argv, input=stdin_data, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def metric_values(gw_port):
    m = metrics(gw_port)
    return {"to_client": int(m.get('mana_payload_bytes_total{direction="to_client"}', 0)),
            "buffered_max": int(m.get("mana_buffered_bytes_max", 0))}


def proxy_rss_kib(ssh_pid):
    """VmRSS of ssh's ProxyCommand child (mana-proxy), in KiB."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % entry).read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != ssh_pid or b"mana-proxy" not in open("/proc/%s/cmdline" % entry, "rb").read():
                continue
            for ln in open("/proc/%s/status" % entry).read().splitlines():
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return None


def scenarios(fx, loop, gw_port, gw_log_path):
    args = fx.args
    size = args.mib * MIB
    tok = fx.write_token("token", token(exp_in=3600))

    # --help documents the options.
    h = subprocess.run([args.proxy, "--help"], capture_output=True, text=True)
    check(h.returncode == 0 and all(o in h.stdout for o in (
        "--url", "--token-file", "--origin", "--profile", "--ca-file", "--reconnect-timeout-ms")),
        "mana-proxy --help documents its options")
    bad = subprocess.run([args.proxy, "--url", "ws://u:p@127.0.0.1:1/", "h", "22"],
                         capture_output=True, text=True)
    check(bad.returncode == 2 and "user info" in bad.stderr,
          "credentials in the URL are refused (exit 2)")

    # 1. A command: output and exit status.
    r = subprocess.run(fx.ssh_argv(gw_port, tok, "echo hello-from-$(whoami); exit 7"),
                       capture_output=True, timeout=60)
    check(r.returncode == 7 and r.stdout == ("hello-from-%s\n" % fx.user).encode(),
          "ssh via mana-proxy runs a command: output %r, exit status %d"
          % (r.stdout, r.returncode))

    # Every profile carries the session.
    for profile in ("json-base64.v1", "lenpfx.v1"):
        r = subprocess.run(fx.ssh_argv(gw_port, tok, "echo profile-ok",
                                       extra="--profile " + profile),
                           capture_output=True, timeout=60)
        check(r.returncode == 0 and r.stdout == b"profile-ok\n",
              "profile %s: command output and status" % profile)

    # 2. Interactive echo without a pty: one line at a time through `cat`.
    p = subprocess.Popen(fx.ssh_argv(gw_port, tok, "cat"), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    times = []
    for i in range(51):
        line = ("line %d %s\n" % (i, "x" * i)).encode()
        t0 = time.perf_counter()
        p.stdin.write(line)
        got = b""
        while len(got) < len(line):
            part = p.stdout.read(len(line) - len(got))
            if not part:
                break
            got += part
        if i > 0:  # line 0 also waits for the SSH handshake
            times.append(time.perf_counter() - t0)
        if got != line:
            raise Failure("echo line %d came back as %r" % (i, got))
    p.stdin.close()
    p.wait(timeout=20)
    times.sort()
    check(p.returncode == 0, "interactive echo: 51 lines came back in order (p50 %.2f ms, "
          "max %.2f ms)" % (times[len(times) // 2] * 1e3, times[-1] * 1e3))

    # Interactive with a pty: the remote shell reads a line typed on the terminal.
    p = subprocess.Popen(fx.ssh_argv(gw_port, tok, "read x; echo \"got:$x\"", tty=True),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = p.communicate(b"typed-text\r", timeout=30)
    check(b"got:typed-text" in out, "pty: typed line reached the remote shell (%r)" % out[-40:])

    # 3. 64 MiB each way, byte-exact.
    data = seeded_bytes(size, 1)
    digest = hashlib.sha256(data).hexdigest()
    data_path = fx.path("payload.bin")
    with open(data_path, "wb") as f:
        f.write(data)
    t0 = time.time()
    rc, got, dig, err = download(fx, gw_port, tok, data_path, size, timeout=180)
    dt = time.time() - t0
    check(rc == 0 and got == size and dig == digest,
          "download %d MiB: %d bytes, SHA-256 %s (%.1f s, %.0f MB/s) %s"
          % (args.mib, got, "matches" if dig == digest else "DIFFERS", dt, got / dt / 1e6, err))
    t0 = time.time()
    rc, out, err = upload(fx, gw_port, tok, data, timeout=180)
    dt = time.time() - t0
    check(rc == 0 and out.split()[:1] == [digest],
          "upload %d MiB: remote SHA-256 matches (%.1f s, %.0f MB/s) %s"
          % (args.mib, dt, size / dt / 1e6, err))

    # Backpressure: ssh's stdout is not read for 3 s while the remote side streams. The stall
    # must reach the gateway (it stops reading sshd), and neither the gateway nor mana-proxy
    # may buffer more than a credit window (+ one frame) meanwhile.
    idle = subprocess.Popen(fx.ssh_argv(gw_port, tok, "echo up; sleep 3"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    idle.stdout.readline()  # logged in, session idle
    rss_idle = proxy_rss_kib(idle.pid)
    idle.wait(timeout=30)
    before = metric_values(gw_port)
    p = subprocess.Popen(fx.ssh_argv(gw_port, tok, "cat " + data_path), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Wait (SSH login included) until the relayed count has been still for 1 s.
    end = time.time() + 30
    mid1 = metric_values(gw_port)
    while True:
        time.sleep(1.0)
        mid2 = metric_values(gw_port)
        if mid2["to_client"] - before["to_client"] > 256 << 10 and mid2 == mid1:
            break
        if time.time() > end:
            break
        mid1 = mid2
    rss = proxy_rss_kib(p.pid)
    got, stalled_digest = drain_hash(p.stdout)
    p.wait(timeout=120)
    sent1 = mid1["to_client"] - before["to_client"]
    sent2 = mid2["to_client"] - before["to_client"]
    bound = 2097152 + 1048576  # max_window + max_frame of the test config (defaults)
    check(mid2["buffered_max"] <= bound and sent2 == sent1 and sent2 < size // 4,
          "stalled stdout: gateway stopped at %d bytes relayed (%d a second earlier), buffers "
          "%d bytes for the session (<= window + frame = %d)"
          % (sent2, sent1, mid2["buffered_max"], bound))
    check(rss is not None and rss_idle is not None and rss - rss_idle < 16 * 1024,
          "stalled stdout: mana-proxy RSS %s KiB vs %s KiB for an idle session (< +16 MiB)"
          % (rss, rss_idle))
    check(p.returncode == 0 and got == size and stalled_digest == digest,
          "after the stall the stream completes byte-exact")

    # 4. The same through a fault-injecting proxy: >= args.cuts cuts in total.
    per = (args.cuts + 1) // 2
    fp_down = FaultProxy(gw_port, seed=11, min_bytes=128 << 10, max_bytes=max(size // per, 256 << 10),
                         max_cuts=per)
    port = loop.run(fp_down.start())
    rc, got, dig, err = download(fx, port, tok, data_path, size, timeout=300)
    check(rc == 0 and got == size and dig == digest,
          "download %d MiB through %d cuts: SHA-256 %s %s"
          % (args.mib, fp_down.cuts, "matches" if dig == digest else "DIFFERS", err))
    fp_up = FaultProxy(gw_port, seed=12, min_bytes=128 << 10, max_bytes=max(size // per, 256 << 10),
                       max_cuts=per)
    port = loop.run(fp_up.start())
    rc, out, err = upload(fx, port, tok, data, timeout=300)
    check(rc == 0 and out.split()[:1] == [digest],
          "upload %d MiB through %d cuts: remote SHA-256 matches %s" % (args.mib, fp_up.cuts, err))
    total = fp_down.cuts + fp_up.cuts
    check(total >= args.cuts, "%d forced drops in total (>= %d), %d WebSocket connections"
          % (total, args.cuts, fp_down.connections + fp_up.connections))
    loop.run(fp_down.stop())
    loop.run(fp_up.stop())

    # 5. Clear failures.
    rc, out, err = run_proxy_direct(fx, gw_port, fx.write_token("bad", token(exp_in=3600, key="x" * 40)),
                                    "127.0.0.1", fx.ssh_port)
    check(rc == 1 and "4003" in err, "bad token: mana-proxy exits 1 naming close 4003 (%s)"
          % err.strip())
    rc, out, err = run_proxy_direct(fx, gw_port, tok, "169.254.169.254", 22)
    check(rc == 1 and "policy_denied" in err,
          "denied target: mana-proxy exits 1 naming policy_denied (%s)" % err.strip())
    rc, out, err = run_proxy_direct(fx, free_port(), tok, "127.0.0.1", fx.ssh_port)
    check(rc == 1 and "cannot connect" in err,
          "no gateway: mana-proxy exits 1 (%s)" % err.strip())

    # Resume impossible: after a cut, connections go to a second gateway that never saw the
    # session, which rejects the resume token. ssh's session ends; mana-proxy says why.
    gw2_port, _ = fx.start_gateway("gw2")
    fp = FaultProxy(gw_port, seed=13, min_bytes=256 << 10, max_bytes=512 << 10, max_cuts=1,
                    redirect_after_cut=gw2_port)
    port = loop.run(fp.start())
    rc, got, dig, err = download(fx, port, tok, data_path, size, timeout=120)
    check(rc != 0 and got < size and "resume" in err and "4011" in err,
          "resume impossible: ssh ends (status %d) and mana-proxy says why: %s"
          % (rc, err.strip()[-160:]))
    loop.run(fp.stop())

    # wss://: certificate and host name verified against --ca-file; refused without it.
    fx.make_tls_files()
    tls_port, _ = fx.start_gateway("gw-tls", tls=True)
    r = subprocess.run([a.replace("ws://", "wss://") for a in fx.ssh_argv(
        tls_port, tok, "echo over-tls", extra="--ca-file " + fx.path("ca.pem"))],
        capture_output=True, timeout=60)
    check(r.returncode == 0 and r.stdout == b"over-tls\n",
          "wss:// with --ca-file: command output and status (%s)" % r.stderr.decode().strip())
    argv = [args.proxy, "--url", "wss://127.0.0.1:%d/" % tls_port, "--token-file", tok,
            "127.0.0.1", str(fx.ssh_port)]
    p = subprocess.run(argv, input=b"", capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 1 and "TLS" in err and "certificate" in err,
          "wss:// without the CA: TLS verification fails, exit 1 (%s)" % err.strip())

    n_acc = int(metrics(gw_port).get('mana_resumes_total{outcome="accepted"}', 0))
    check(n_acc >= total, "gateway counted %d accepted resumes (>= %d cuts)" % (n_acc, total))


def run(args, tmp, procs):
    fx = Fixture(args, tmp)
    loop = Loop()
    try:
        fx.start_sshd()
        gw_port, gw = fx.start_gateway()
        scenarios(fx, loop, gw_port, fx.path("gw.log"))
        gw.send_signal(signal.SIGTERM)
        check(gw.wait(timeout=15) == 0, "gateway exits 0 on SIGTERM")
        log = open(fx.path("gw.log")).read()
        check(SECRET not in log and "SSH-2.0" not in log, "gateway log holds no secret or payload")
    finally:
        fx.stop()
        loop.close()


def add_args(ap):
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--cuts", type=int, default=50)


if __name__ == "__main__":
    sys.exit(fixture.main(run, "mana-sshproxy-", logs=("gw.log", "sshd/sshd.log"),
                          add_args=add_args))
