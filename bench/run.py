#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""`make bench`: every peer, interleaved, in one invocation; writes build/bench/report.json.

Peers: direct loopback TCP and a socat copy relay (baselines), websockify (Debian), a minimal Node
`ws` relay (bench/node_ws_relay.mjs) and mana-gateway; for SSH streams direct OpenSSH and OpenSSH
through each WebSocket relay (ProxyCommand `mana-bench stdio` for the raw relays, `mana-proxy` for
mana-gateway); HAProxy in front of mana-gateway and 1 vs 2 gateway processes (bench/lb.py). The
load comes from `mana-bench` (bench/mana_bench.cpp) in separate processes:
`mana-bench target` is the sink/source/echo behind every relay, `mana-bench client` drives them.

Every metric runs R rounds (R = 5); in every round each metric runs once per peer, the peers in an
order shuffled per round with a printed seed. Medians and min-max are reported together with the
ratio to the baseline measured in the same run. Every stream is checked byte-exact (hashes of
mana-bench, positional comparison for SSH streams); any mismatch makes the run exit 1 after the
report was written with the failure in it. Every subprocess has a timeout and the whole run a
budget (full 30 min, quick 5 min). Everything listens on 127.0.0.1 (idle sessions also use
127.0.0.2-254 as source addresses) on ephemeral ports; every process started is killed at the end.

Usage: bench/run.py [--quick] [--rounds N] [--seed S] [--out DIR] [--bin DIR] [--docs FILE]
                    [--no-docs] [--only GROUP[,GROUP]]
Internal helpers used on both ends of the SSH streams:
       bench/run.py _source --bytes N --seed S    writes the pattern stream to stdout
       bench/run.py _sink --bytes N --seed S      checks it from stdin, prints one JSON line
"""
import argparse
import json
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from devkit import tokens  # noqa: E402
from devkit.gateway import start_gateway as launch_gateway  # noqa: E402
from devkit.net import free_port  # noqa: E402 - socat and websockify need a port up front
from devkit.sshd import start_sshd as launch_sshd  # noqa: E402
import lb  # noqa: E402 - bench/ is sys.path[0]: the groups that live in their own modules
import memory  # noqa: E402
from memory import SLOW_CHANNELS_PER_CONN  # noqa: E402
from procs import (ORIGIN, THIRD_PARTY, BenchError, Proc, Registry, fmt_num,  # noqa: E402
                   fmt_signed, md_table, raise_nofile, run, summary, tree_cpu_s, wait_listening)
MIB = 1 << 20
GIB = 1 << 30
BLOCK = MIB
CIPHERS = ("aes128-ctr", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")
OPENSSL_EVP = {"aes128-ctr": "aes-128-ctr", "aes256-gcm@openssh.com": "aes-256-gcm",
               "chacha20-poly1305@openssh.com": "chacha20-poly1305"}
GATEWAY_WINDOW = 2 * MIB
GATEWAY_MAX_WINDOW = 8 * MIB
GATEWAY_READ_CHUNK = 256 * 1024  # the gateway default

# Sizes per mode. Rounds stay at 5 in both modes (the issue asks for >= 5). SSH streams are 256 MiB
# in the full run (24 streams per round; 1 GiB would not fit the 30 min on 2 cores), 32 MiB in the
# quick one. budget_s is the hard bound of the whole run (the browser part has its own): the goal is
# 30 min full and 5 min quick on an otherwise idle 2-core machine; quick is bounded at 10 min
# because on a loaded machine its 120 SSH logins alone can take more than 5.
FULL = {"relay_bytes": GIB, "ssh_bytes": 256 * MIB, "echo_samples": 1000, "connect_samples": 50,
        "streams_n": 100, "streams_bytes": 8 * MIB, "idle_ns": (1000, 5000, 9000),
        "slow_n": 100, "slow_bytes": 256 * MIB, "slow_rate": 64 * 1024, "slow_ms": 5000,
        "resume_bytes": 256 * MIB, "budget_s": 30 * 60, "openssl_s": 1,
        "lb_streams": 8, "lb_stream_bytes": 64 * MIB}
QUICK = {"relay_bytes": 64 * MIB, "ssh_bytes": 32 * MIB, "echo_samples": 1000,
         "connect_samples": 20, "streams_n": 100, "streams_bytes": MIB, "idle_ns": (1000,),
         "slow_n": 100, "slow_bytes": 64 * MIB, "slow_rate": 64 * 1024, "slow_ms": 2000,
         "resume_bytes": 32 * MIB, "budget_s": 10 * 60, "openssl_s": 1,
         "lb_streams": 8, "lb_stream_bytes": 16 * MIB}
GROUPS = ("openssl", "relay", "ssh", "echo", "connect", "streams", "idle", "slow", "resume",
          "lb", "browser")


# --- internal stream helpers (both ends of the SSH streams) --------------------------------------

def pattern_block(seed):
    """The 1 MiB block the SSH stream repeats (seeded, not compressible)."""
    return random.Random(seed).randbytes(BLOCK)


def grow_pipe(fd):
    """1 MiB pipe buffer (fewer wake-ups); ignored when fd is not a pipe."""
    try:
        import fcntl
        fcntl.fcntl(fd, 1031, BLOCK)  # F_SETPIPE_SZ
    except OSError:
        pass


def cmd_source(args):
    """Writes --bytes of the repeated pattern block to stdout in 1 MiB writes."""
    block = memoryview(pattern_block(args.seed))
    left = args.bytes
    fd = sys.stdout.fileno()
    grow_pipe(fd)
    while left > 0:
        view = block[:min(left, BLOCK)]
        while len(view):
            n = os.write(fd, view)
            view = view[n:]
            left -= n
    return 0


def cmd_sink(args):
    """Reads stdin to EOF, compares every byte with the pattern, prints one JSON line.

    seconds = first byte received .. EOF, so connection setup is not part of the throughput."""
    block = pattern_block(args.seed)
    doubled = block + block
    got = 0
    ok = True
    first = None
    fd = sys.stdin.fileno()
    grow_pipe(fd)
    while True:
        chunk = os.read(fd, BLOCK)
        if not chunk:
            break
        if first is None:
            first = time.monotonic()
        p = got % BLOCK
        if ok and doubled[p:p + len(chunk)] != chunk:
            ok = False
        got += len(chunk)
    end = time.monotonic()
    seconds = end - first if first is not None else 0.0
    ok = ok and got == args.bytes
    print(json.dumps({"bytes": got, "expected": args.bytes, "ok": ok, "seconds": seconds,
                      "mbps": got / seconds / 1e6 if seconds > 0 else 0.0}), flush=True)
    return 0



# --- the bench -----------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.cfg = dict(QUICK if args.quick else FULL)
        self.rounds = args.rounds
        self.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
        self.rng = random.Random(self.seed)
        self.out_dir = os.path.abspath(args.out)
        self.bin = os.path.abspath(args.bin)
        self.mana_bench = os.path.join(self.bin, "mana-bench")
        self.gateway_bin = os.path.join(self.bin, "mana-gateway")
        self.proxy_bin = os.path.join(self.bin, "mana-proxy")
        self.tmp = tempfile.mkdtemp(prefix="mana-bench-")
        self.logs = os.path.join(self.out_dir, "logs")
        self.reg = Registry()
        self.started = time.time()
        self.deadline = time.monotonic() + self.cfg["budget_s"]
        self.values = {}   # (name, peer) -> list
        self.extra = {}    # (name, peer) -> dict of extra info
        self.meta = {}     # name -> {unit, group, baseline, ...}
        self.failures = []
        self.peer_defects = []
        self.streams_checked = 0
        self.notes = []
        self.skipped = []
        self.browser = None
        self.group_seconds = {}
        self.lb = lb.LbGroup(self)

    # -- bookkeeping --

    def log(self, msg):
        el = time.time() - self.started
        print("[bench %6.1fs] %s" % (el, msg), flush=True)

    def left(self):
        return self.deadline - time.monotonic()

    def bound(self, want):
        """A timeout for one step: at most `want`, never past the run's budget."""
        left = self.left()
        if left <= 1:
            raise BenchError("time budget of %d s exhausted" % self.cfg["budget_s"])
        return min(want, left)

    def define(self, name, unit, group, baseline=None, better="higher", label=None,
               added=False, baselines=()):
        self.meta[name] = {"unit": unit, "group": group, "baseline": baseline, "better": better,
                           "label": label or name, "added": added,
                           "extra_baselines": list(baselines)}

    def record(self, name, peer, value, **extra):
        self.values.setdefault((name, peer), []).append(value)
        if extra:
            self.extra.setdefault((name, peer), {}).update(extra)

    def fail(self, what):
        self.log("FAIL: " + what)
        self.failures.append(what)

    def stream_error(self, peer, what):
        """A stream step that ended without a result: through a third-party peer a stream that
        did not complete is a finding about the peer (counted like a stream that was not
        byte-exact); otherwise a failure of the run."""
        if peer in THIRD_PARTY:
            self.streams_checked += 1
            self.log("peer defect: " + what)
            self.peer_defects.append(what)
        else:
            self.fail(what)

    def check_stream(self, ok, what, peer=None):
        """Counts one stream; a stream that is not byte-exact fails the run, except through a
        third-party peer (websockify, socat), where it is a finding about that peer: listed in
        the report as a peer defect, its measurement left out of the statistics."""
        self.streams_checked += 1
        if not ok:
            if peer in THIRD_PARTY:
                self.log("peer defect: " + what)
                self.peer_defects.append(what)
            else:
                self.fail("stream not byte-exact: " + what)
        return ok

    # -- setup --

    def tool_versions(self):
        def first_line(argv):
            try:
                rc, out, err = run(argv, 10, check=False)
                return (out or err).strip().splitlines()[0]
            except (BenchError, OSError, IndexError):
                return "unknown"

        def dpkg(pkg):
            return first_line(["dpkg-query", "-W", "-f=${Version}", pkg])

        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
        debian = "unknown"
        if os.path.exists("/etc/debian_version"):
            debian = open("/etc/debian_version").read().strip()
        ws_version = "missing"
        ws_pkg = os.path.join(ROOT, "bench", "node_modules", "ws", "package.json")
        if os.path.exists(ws_pkg):
            ws_version = json.load(open(ws_pkg))["version"]
        compiler, build_type = "unknown", "unknown"
        cache = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(
            self.gateway_bin))), "CMakeCache.txt")
        if os.path.exists(cache):
            text = open(cache).read()
            m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", text, re.M)
            if m:
                compiler = first_line([m.group(1), "--version"])
            m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", text, re.M)
            if m:
                build_type = m.group(1)
        return {
            "cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release,
            "memory_bytes": mem, "debian": debian,
            "openssh": first_line(["ssh", "-V"]), "websockify": dpkg("websockify"),
            "socat": dpkg("socat"), "node": first_line(["node", "--version"]), "ws": ws_version,
            "openssl": first_line(["openssl", "version"]), "compiler": compiler,
            "gateway_build_type": build_type, "python": sys.version.split()[0],
        }

    def start_target(self, name, mode, nbytes=None):
        argv = [self.mana_bench, "target", "--listen", "127.0.0.1:0", "--mode", mode]
        if nbytes is not None:
            argv += ["--bytes", str(nbytes)]
        p = Proc(self.reg, name, argv, self.logs)
        line = p.wait_prefix("PORT ", 15)
        p.port = int(line.split()[1])
        return p

    def start_socat(self, name, target_port):
        for _ in range(5):
            port = free_port()
            p = Proc(self.reg, name, [
                "socat", "-b", "262144",
                "TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,backlog=4096" % port,
                "TCP4:127.0.0.1:%d" % target_port], self.logs, capture=False)
            try:
                wait_listening(port, p)
                p.port = port
                return p
            except BenchError:
                p.stop()
        raise BenchError("socat did not start: " + p.log_tail())

    def start_websockify(self, name, target_port):
        for _ in range(5):
            port = free_port()
            p = Proc(self.reg, name, ["websockify", "127.0.0.1:%d" % port,
                                      "127.0.0.1:%d" % target_port], self.logs, capture=False)
            try:
                wait_listening(port, p)
                p.port = port
                return p
            except BenchError:
                p.stop()
        raise BenchError("websockify did not start: " + p.log_tail())

    def start_node(self, name, target_port):
        p = Proc(self.reg, name, ["node", os.path.join(ROOT, "bench", "node_ws_relay.mjs"),
                                  "--listen", "127.0.0.1:0", "--target",
                                  "127.0.0.1:%d" % target_port], self.logs)
        p.port = int(p.wait_prefix("PORT ", 15).split()[1])
        return p

    def gateway_config(self):
        """Every key of the bench gateway besides listen, origins, key and targets."""
        return {
            "server": {"metrics": True, "http_timeout_ms": 60000,
                       "max_http_connections": 20000, "max_http_connections_per_ip": 20000},
            "session": {"window": GATEWAY_WINDOW, "max_window": GATEWAY_MAX_WINDOW,
                        "handshake_timeout_ms": 60000, "idle_timeout_ms": 600000,
                        "resume_ttl_ms": 60000,
                        # The echo groups are back-to-back 1-byte round trips: by the budget's
                        # definition a flood of messages that move no payload (closed 4004 at
                        # the defaults, 1 000 burst + 100/s). Raised so latency is measured.
                        "free_message_rate": 1000000, "free_message_burst": 1000000},
            "limits": {"max_connections": 20000, "max_connections_per_ip": 20000,
                       "max_sessions_per_principal": 1000000},
            "rate": {"open_rate": 1000000, "open_burst": 1000000, "ping_rate": 1000000,
                     "ping_burst": 1000000},
            "relay": {"read_chunk": GATEWAY_READ_CHUNK},
        }

    def start_gateway(self, name, target_ports):
        """mana-gateway (tools/devkit/gateway.py: the port from its `listening` line) in its own
        process group, stderr to <logs>/<name>.log; stopped with the other peers."""
        try:
            gw = launch_gateway(
                self.gateway_bin, self.tmp, name, origins=[ORIGIN], allow_missing_origin=True,
                targets=[{"host": "127.0.0.1", "ports": sorted(set(target_ports))}],
                config=self.gateway_config(), log_level="warn", secret=self.secret,
                log_path=os.path.join(self.logs, name + ".log"), preexec_fn=raise_nofile,
                start_new_session=True)
        except Exception as e:  # noqa: BLE001 - the launcher's error carries the log tail
            raise BenchError(str(e)) from None
        self.reg.add(gw)
        return gw

    def start_sshd(self):
        """OpenSSH (tools/devkit/sshd.py) for this user, the bench's ciphers, in its own process
        group; the user key and a known_hosts line for HostKeyAlias mana-bench-sshd."""
        self.ssh_user = pwd.getpwuid(os.getuid()).pw_name
        try:
            sshd = launch_sshd(
                os.path.join(self.tmp, "sshd"), user=self.ssh_user,
                extra_config="\n".join([
                    "Ciphers %s" % ",".join(CIPHERS), "Compression no",
                    "MaxStartups 200:30:400", "MaxSessions 200", "LogLevel ERROR"]),
                log_path=os.path.join(self.logs, "sshd.log"), start_new_session=True,
                preexec_fn=raise_nofile, timeout=15)
        except Exception as e:  # noqa: BLE001 - the launcher's error carries the log tail
            raise BenchError(str(e)) from None
        self.reg.add(sshd)
        self.ssh_key = sshd.user_key["path"]
        self.known_hosts = sshd.known_hosts(os.path.join(self.tmp, "known_hosts"),
                                            "mana-bench-sshd")
        return sshd

    def setup(self):
        for path in (self.mana_bench, self.gateway_bin, self.proxy_bin):
            if not os.access(path, os.X_OK):
                raise BenchError("%s is missing (make bench builds it)" % path)
        shutil.rmtree(self.logs, ignore_errors=True)
        os.makedirs(self.logs, exist_ok=True)
        raise_nofile()
        rc, out, err = run([self.mana_bench, "selftest"], 60, check=False)
        if rc != 0:
            raise BenchError("mana-bench selftest failed: " + (out + err)[-800:])
        self.log("mana-bench selftest ok")
        self.secret = tokens.new_secret()
        self.token_path = tokens.write_secret(os.path.join(self.tmp, "token"), tokens.mint(
            self.secret, {"sub": "bench"}, exp_in=4 * 3600))

        c = self.cfg
        self.targets = {
            "sink": self.start_target("target-sink", "sink"),
            "source": self.start_target("target-source", "source", c["relay_bytes"]),
            "echo": self.start_target("target-echo", "echo"),
            "streams": self.start_target("target-streams", "source", c["streams_bytes"]),
            "resume": self.start_target("target-resume", "source", c["resume_bytes"]),
        }
        self.sshd = self.start_sshd()
        ports = {k: t.port for k, t in self.targets.items()}
        ports["ssh"] = self.sshd.port
        self.relays = {"socat": {}, "websockify": {}, "node-ws": {}}
        for key, tport in ports.items():
            if key == "resume":
                continue  # mana only
            if key != "ssh":
                self.relays["socat"][key] = self.start_socat("socat-" + key, tport)
            self.relays["websockify"][key] = self.start_websockify("websockify-" + key, tport)
            self.relays["node-ws"][key] = self.start_node("node-ws-" + key, tport)
        self.gateway = self.start_gateway("mana-gateway", ports.values())
        self.target_ports = ports
        self.log("peers up: sshd %d, gateway %d, targets %s" % (
            self.sshd.port, self.gateway.port, ports))

    # -- client invocations --

    def client_argv(self, peer, key, op, *opts):
        """mana-bench client for `peer` towards target `key` (sink/source/echo/streams)."""
        base = [self.mana_bench, "client"]
        if peer == "tcp":
            base += ["--proto", "tcp", "--connect", "127.0.0.1:%d" % self.target_ports[key]]
        elif peer == "socat":
            base += ["--proto", "tcp", "--connect",
                     "127.0.0.1:%d" % self.relays["socat"][key].port]
        elif peer in ("websockify", "node-ws"):
            base += ["--proto", "raw", "--connect",
                     "ws://127.0.0.1:%d/" % self.relays[peer][key].port]
        elif peer == "mana-gateway":
            base += ["--proto", "mana", "--connect", "ws://127.0.0.1:%d/" % self.gateway.port,
                     "--target", "127.0.0.1:%d" % self.target_ports[key],
                     "--token-file", self.token_path, "--origin", ORIGIN]
        else:
            raise ValueError(peer)
        return base + ["--op", op] + [str(o) for o in opts]

    def client(self, argv, timeout):
        """Runs one mana-bench client op; returns its JSON. A client that printed its JSON and
        exited 1 (verification failed) returns it with ok = false; one that printed none raises."""
        t = self.bound(timeout)
        rc, out, err = run(argv + ["--timeout-ms", str(int(t * 1000))], t + 10, check=False)
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if not lines:
            raise BenchError("client %s exited %d: %s" % (" ".join(argv[2:8]), rc,
                                                         (err or out).strip()[-600:]))
        r = json.loads(lines[-1])
        if rc != 0:
            r["ok"] = False
            r["exit"] = rc
            r["stderr"] = err.strip()[-300:]
        return r

    def relay_pid(self, peer, key):
        if peer == "mana-gateway":
            return self.gateway.pid
        if peer in self.relays:
            return self.relays[peer][key].pid
        return None

    # -- metric groups (one round each) --

    def round_openssl(self):
        for cipher in self.shuffled(CIPHERS):
            evp = OPENSSL_EVP[cipher]
            rc, out, err = run(["openssl", "speed", "-evp", evp, "-bytes", "65536", "-seconds",
                                str(self.cfg["openssl_s"]), "-mr"], self.bound(60))
            m = re.search(r"^\+F:\d+:[^:]+:([0-9.]+)", out, re.M)
            if not m:
                raise BenchError("openssl speed %s: unparsed output" % evp)
            self.record("openssl_" + cipher, "openssl", float(m.group(1)) / 1e6)

    def round_relay(self, peers):
        n = self.cfg["relay_bytes"]
        for peer in self.shuffled(peers):
            for direction in self.shuffled(("up", "down")):
                key = "sink" if direction == "up" else "source"
                tgt = self.targets[key]
                tgt.drain()
                pid = self.relay_pid(peer, key)
                cpu0 = tree_cpu_s(pid) if pid else None
                name = "relay_" + direction
                try:
                    if direction == "up":
                        r = self.client(self.client_argv(peer, key, "up", "--bytes", n,
                                                         "--frame", 65536), 600)
                        t = tgt.next_json(self.bound(20))
                        ok = (r.get("ok", True) is True and r.get("bytes") == n and
                              t.get("bytes_in") == n and t.get("hash_in") == r.get("hash"))
                        self.check_stream(ok, "%s up: sent %s bytes, target received %s (hash "
                                          "%s, sent %s)" % (peer, r.get("bytes"),
                                                            t.get("bytes_in"), t.get("hash_in"),
                                                            r.get("hash")), peer)
                    else:
                        r = self.client(self.client_argv(peer, key, "down", "--bytes", n), 600)
                        t = tgt.next_json(self.bound(20))
                        ok = (r.get("ok") is True and r.get("bytes") == n and
                              r.get("eof_after_data", True) is True)
                        self.check_stream(ok, "%s down: target sent %s bytes, client received "
                                          "%s (hash %s, expected %s, end %s)" % (
                                              peer, t.get("bytes_out"), r.get("bytes"),
                                              r.get("hash"), r.get("expected_hash"),
                                              r.get("end")), peer)
                except BenchError as e:
                    if "budget" in str(e):
                        self.fail("%s %s: %s" % (name, peer, e))
                    else:
                        self.stream_error(peer, "%s %s: %s" % (name, peer, e))
                    self.record(name, peer, None)
                    continue
                self.record(name, peer, r.get("mbps") if ok else None)
                if pid and ok:
                    time.sleep(0.05)  # let a forking relay reap its child
                    cpu = tree_cpu_s(pid) - cpu0
                    self.record("cpu_" + direction, peer, cpu / (n / 1e9))

    def ssh_argv(self, peer, cipher, remote):
        argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-i", self.ssh_key, "-o", "UserKnownHostsFile=" + self.known_hosts,
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "HostKeyAlias=mana-bench-sshd", "-o", "LogLevel=ERROR",
                "-o", "Compression=no", "-o", "ConnectTimeout=30", "-c", cipher]
        if peer == "websockify" or peer == "node-ws":
            argv += ["-o", "ProxyCommand=%s stdio --connect ws://127.0.0.1:%d/" % (
                self.mana_bench, self.relays[peer]["ssh"].port)]
        elif peer == "mana-gateway":
            argv += ["-o", "ProxyCommand=%s --url ws://127.0.0.1:%d/ --token-file %s "
                     "--origin %s %%h %%p" % (self.proxy_bin, self.gateway.port,
                                              self.token_path, ORIGIN)]
        return argv + ["-p", str(self.sshd.port), "-T", "%s@127.0.0.1" % self.ssh_user, remote]

    def ssh_stream(self, peer, cipher, direction, n, seed):
        """One SSH stream of n bytes; returns the sink's JSON (bytes, ok, seconds, mbps)."""
        me = "%s %s" % (sys.executable, os.path.abspath(__file__))
        timeout = self.bound(max(60, n / 20e6))
        if direction == "up":
            src = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_source",
                                    "--bytes", str(n), "--seed", str(seed)],
                                   stdout=subprocess.PIPE, start_new_session=True)
            try:
                ssh = subprocess.Popen(
                    self.ssh_argv(peer, cipher, "%s _sink --bytes %d --seed %d" % (me, n, seed)),
                    stdin=src.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    start_new_session=True)
                src.stdout.close()
                try:
                    out, err = ssh.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(ssh.pid, signal.SIGKILL)
                    ssh.communicate()
                    raise BenchError("ssh up timeout after %.0f s" % timeout) from None
            finally:
                try:
                    os.killpg(src.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                src.wait()
        else:
            ssh = subprocess.Popen(
                self.ssh_argv(peer, cipher, "%s _source --bytes %d --seed %d" % (me, n, seed)),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True)
            sink = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_sink",
                                     "--bytes", str(n), "--seed", str(seed)],
                                    stdin=ssh.stdout, stdout=subprocess.PIPE,
                                    start_new_session=True)
            ssh.stdout.close()
            try:
                out, _ = sink.communicate(timeout=timeout)
                ssh.wait(10)
                err = ssh.stderr.read()
            except subprocess.TimeoutExpired:
                for p in (ssh, sink):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                sink.communicate()
                ssh.wait()
                raise BenchError("ssh down timeout after %.0f s" % timeout) from None
        if ssh.returncode != 0:
            raise BenchError("ssh exited %d: %s" % (ssh.returncode,
                                                    err.decode(errors="replace")[-600:]))
        lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
        if not lines:
            raise BenchError("ssh %s: sink printed nothing" % direction)
        return json.loads(lines[-1])

    def round_ssh(self, peers):
        n = self.cfg["ssh_bytes"]
        for cipher in self.shuffled(CIPHERS):
            for peer in self.shuffled(peers):
                for direction in self.shuffled(("up", "down")):
                    name = "ssh_%s_%s" % (direction, cipher)
                    seed = self.rng.randrange(1 << 30)
                    try:
                        r = self.ssh_stream(peer, cipher, direction, n, seed)
                    except BenchError as e:
                        if "budget" in str(e):
                            self.fail("%s %s: %s" % (name, peer, e))
                        else:
                            self.stream_error(peer, "%s %s: %s" % (name, peer, e))
                        self.record(name, peer, None)
                        continue
                    ok = self.check_stream(r.get("ok") is True and r.get("bytes") == n,
                                           "%s %s: %s" % (name, peer, r), peer)
                    self.record(name, peer, r["mbps"] if ok else None)

    def round_echo(self, peers):
        for peer in self.shuffled(peers):
            try:
                r = self.client(self.client_argv(peer, "echo", "echo", "--samples",
                                                 self.cfg["echo_samples"], "--warmup", 50), 120)
            except BenchError as e:
                self.fail("echo %s: %s" % (peer, e))
                continue
            for q in ("p50", "p90", "p99"):
                self.record("echo_" + q, peer, r.get(q + "_us"))
            self.targets["echo"].drain()

    def round_connect(self, peers):
        for peer in self.shuffled(peers):
            try:
                r = self.client(self.client_argv(peer, "echo", "connect", "--samples",
                                                 self.cfg["connect_samples"]), 120)
            except BenchError as e:
                self.fail("connect %s: %s" % (peer, e))
                continue
            self.record("connect_p50", peer, r.get("p50_us"))
            self.record("connect_p90", peer, r.get("p90_us"))
            self.targets["echo"].drain()

    def round_streams(self, peers):
        c = self.cfg
        for peer in self.shuffled(peers):
            tgt = self.targets["streams"]
            tgt.drain()
            try:
                r = self.client(self.client_argv(peer, "streams", "streams", "--n", c["streams_n"],
                                                 "--bytes", c["streams_bytes"]), 600)
            except BenchError as e:
                if "budget" in str(e):
                    self.fail("streams %s: %s" % (peer, e))
                else:
                    self.stream_error(peer, "streams %s: %s" % (peer, e))
                self.record("streams_aggregate", peer, None)
                continue
            ok = self.check_stream(r.get("ok") is True and r.get("n") == c["streams_n"],
                                   "streams %s: %s" % (peer, {k: v for k, v in r.items()
                                                              if k != "per_stream_mbps"}), peer)
            self.record("streams_aggregate", peer, r.get("aggregate_mbps") if ok else None)
            self.record("streams_jain", peer, r.get("jain") if ok else None)

    def round_resume(self):
        try:
            r = self.client(self.client_argv("mana-gateway", "resume", "resume", "--bytes",
                                             self.cfg["resume_bytes"]), 300)
        except BenchError as e:
            self.fail("resume: %s" % e)
            self.record("resume", "mana-gateway", None)
            return
        ok = self.check_stream(r.get("ok") is True and r.get("bytes") == self.cfg["resume_bytes"],
                               "resume: %s" % r)
        self.record("resume", "mana-gateway", r.get("resume_us") if ok else None)
        self.targets["resume"].drain()

    def shuffled(self, items):
        items = list(items)
        self.rng.shuffle(items)
        return items

    # -- browser hook --

    def run_browser(self):
        """The single browser hook: `make bench-browser` (bench/browser/, Chromium) writes
        build/bench/browser.json, whose metrics and sizes are merged into this report. A missing
        hook or output file is a "not run" row, never a number."""
        out = os.path.join(ROOT, "build", "bench", "browser.json")
        try:
            makefile = open(os.path.join(ROOT, "Makefile")).read()
        except OSError:
            makefile = ""
        if not re.search(r"^bench-browser:", makefile, re.M):
            self.skipped.append({"group": "browser",
                                 "reason": "not run: the Makefile has no bench-browser target"})
            return
        if os.path.exists(out):
            os.unlink(out)
        argv = ["make", "-C", ROOT, "bench-browser"]
        if self.args.quick:
            argv.append("BENCH_QUICK=1")
        env = dict(os.environ, MANA_GATEWAY=self.gateway_bin)
        try:
            # its own bound (make bench-browser has one too), outside the budget of the rest
            rc, so, se = run(argv, 240 if self.args.quick else 540, check=False, env=env)
        except BenchError as e:
            self.skipped.append({"group": "browser", "reason": "not run: %s" % e})
            self.fail("browser: %s" % e)
            return
        with open(os.path.join(self.logs, "browser.log"), "w") as f:
            f.write(so + se)
        if rc != 0 or not os.path.exists(out):
            reason = "make bench-browser exit %d: %s" % (rc, (se or so).strip()[-300:])
            self.skipped.append({"group": "browser", "reason": "not run: " + reason})
            self.fail("browser: " + reason)
            return
        self.browser = json.load(open(out))
        for m in self.browser.get("metrics", []):
            if not isinstance(m, dict) or "name" not in m:
                continue
            name = "browser_" + m["name"]
            if name not in self.meta:
                self.define(name, m.get("unit", ""), "browser", label=m["name"])
            for v in m.get("values") or [m.get("median")]:
                self.record(name, "mana-gateway (Chromium)", v)
        for key, size in sorted((self.browser.get("sizes") or {}).items()):
            if not isinstance(size, dict):
                continue
            for kind in ("raw", "gzip", "brotli"):
                if kind in size:
                    name = "size_" + kind
                    if name not in self.meta:
                        self.define(name, "bytes", "sizes", better="lower", label=kind)
                    self.record(name, key, size[kind])

    # -- main --

    def define_all(self):
        for cipher in CIPHERS:
            self.define("openssl_" + cipher, "MB/s", "openssl", label=cipher)
        self.define("relay_up", "MB/s", "relay", baseline="tcp", baselines=("socat",),
                    label="client→server")
        self.define("relay_down", "MB/s", "relay", baseline="tcp", baselines=("socat",),
                    label="server→client")
        self.define("cpu_up", "CPU s/GB", "relay_cpu", baseline="socat", better="lower",
                    label="client→server")
        self.define("cpu_down", "CPU s/GB", "relay_cpu", baseline="socat", better="lower",
                    label="server→client")
        for cipher in CIPHERS:
            for d, label in (("up", "→server"), ("down", "→client")):
                self.define("ssh_%s_%s" % (d, cipher), "MB/s", "ssh", baseline="openssh-direct",
                            label="%s %s" % (cipher.split("@")[0], label))
        for q in ("p50", "p90", "p99"):
            self.define("echo_" + q, "µs", "echo", baseline="tcp", better="lower", label=q,
                        added=True)
        self.define("connect_p50", "µs", "connect", baseline="tcp", better="lower", label="p50",
                    added=True)
        self.define("connect_p90", "µs", "connect", baseline="tcp", better="lower", label="p90",
                    added=True)
        self.define("streams_aggregate", "MB/s", "streams", baseline="tcp", label="aggregate")
        self.define("streams_jain", "", "streams", label="Jain fairness")
        for n in self.cfg["idle_ns"]:
            for part in ("user", "kernel", "total"):
                self.define("idle_%d_%s" % (n, part), "bytes/session", "idle", better="lower",
                            baseline=None, label="%d: %s" % (n, part))
        self.define("slow_pss_per_session", "bytes/session", "slow", better="lower",
                    label="peer memory growth / session")
        self.define("slow_gateway_buffered_max", "bytes", "slow", better="lower",
                    label="gateway buffered, largest session")
        self.define("slow_gateway_buffered_avg", "bytes", "slow", better="lower",
                    label="gateway buffered / session")
        self.define("resume", "µs", "resume", better="lower", label="drop → resumed")
        lb.define(self)

    def wanted(self, group):
        return not self.args.only or group in self.args.only

    def timed(self, group, fn):
        """Run one step and add its wall time to its group's total (report: group_seconds)."""
        t0 = time.monotonic()
        try:
            return fn()
        finally:
            self.group_seconds[group] = self.group_seconds.get(group, 0.0) + time.monotonic() - t0

    def main(self):
        self.log("mode %s, rounds %d, seed %d, budget %d s" % (
            "quick" if self.args.quick else "full", self.rounds, self.seed, self.cfg["budget_s"]))
        self.machine = self.tool_versions()
        self.define_all()
        try:
            self.setup()
            relay_peers = ("tcp", "socat", "websockify", "node-ws", "mana-gateway")
            ssh_peers = ("openssh-direct", "websockify", "node-ws", "mana-gateway")
            for r in range(1, self.rounds + 1):
                self.log("round %d/%d" % (r, self.rounds))
                steps = [("openssl", self.round_openssl),
                         ("relay", lambda: self.round_relay(relay_peers)),
                         ("ssh", lambda: self.round_ssh(ssh_peers)),
                         ("echo", lambda: self.round_echo(relay_peers)),
                         ("connect", lambda: self.round_connect(relay_peers)),
                         ("streams", lambda: self.round_streams(relay_peers)),
                         ("resume", self.round_resume),
                         ("lb", self.lb.round)]
                for group, fn in self.shuffled(steps):
                    if self.wanted(group):
                        self.log("  %s" % group)
                        self.timed(group, fn)
            if self.wanted("idle") or self.wanted("slow"):
                # the shared peers are stopped first: idle and slow measure fresh processes
                self.reg.stop_all()
                self.relays = {}
            if self.wanted("slow"):
                memory.run_slow(self)
            if self.wanted("idle"):
                self.timed("idle", lambda: memory.phase_idle(
                    self, ("tcp", "websockify", "node-ws", "mana-gateway")))
            if self.wanted("browser"):
                self.log("browser")
                self.timed("browser", self.run_browser)
        except BenchError as e:
            self.fail(str(e))
        finally:
            self.reg.stop_all()
        return self.finish()

    # -- report --

    def metrics_list(self):
        out = []
        for (name, peer), values in sorted(self.values.items()):
            meta = self.meta.get(name, {})
            med, lo, hi = summary(values)
            base_peer = meta.get("baseline")
            ratio = added = None
            ratios = {}
            if base_peer and base_peer != peer:
                bmed = summary(self.values.get((name, base_peer), []))[0]
                if bmed and med is not None:
                    ratio = med / bmed
                    if meta.get("added"):
                        added = med - bmed
            for other in meta.get("extra_baselines", []):
                omed = summary(self.values.get((name, other), []))[0]
                if omed and med is not None and other != peer:
                    ratios[other] = med / omed
            entry = {"name": name, "group": meta.get("group"), "unit": meta.get("unit"),
                     "peer": peer, "values": values, "median": med, "min": lo, "max": hi,
                     "baseline": base_peer if base_peer != peer else None, "ratio": ratio,
                     "ok": med is not None and None not in values}
            if added is not None:
                entry["added"] = added
            if ratios:
                entry["ratios"] = ratios
            if (name, peer) in self.extra:
                entry.update(self.extra[(name, peer)])
            out.append(entry)
        return out

    def targets_table(self, metrics):
        def med(name, peer):
            for m in metrics:
                if m["name"] == name and m["peer"] == peer:
                    return m
            return None

        rows = []

        def row(text, m, value, ok):
            rows.append({"target": text, "measured": value, "met": ok if m else None})

        up = med("relay_up", "mana-gateway")
        wsu = med("relay_up", "websockify")
        v = up["median"] if up else None
        x = (v / wsu["median"]) if up and wsu and wsu["median"] and v else None
        row("Gateway relay ≥ 1 GB/s client→server and ≥ 5× websockify", up,
            "%s MB/s, %s× websockify" % (fmt_num(v), fmt_num(x)),
            bool(v and v >= 1000 and x and x >= 5))
        dn = med("relay_down", "mana-gateway")
        v = dn["median"] if dn else None
        row("Gateway relay ≥ 1.5 GB/s server→client", dn, "%s MB/s" % fmt_num(v),
            bool(v and v >= 1500))
        ratios = [m["ratio"] for m in metrics if m["group"] == "ssh" and
                  m["peer"] == "mana-gateway"]
        worst = min([r for r in ratios if r is not None], default=None)
        row("SSH through gateway ≥ 0.90× direct OpenSSH, both directions, every cipher",
            ratios or None, "worst %s×" % fmt_num(worst),
            bool(ratios and None not in ratios and worst >= 0.9))
        e50, e99 = med("echo_p50", "mana-gateway"), med("echo_p99", "mana-gateway")
        a50 = e50.get("added") if e50 else None
        a99 = e99.get("added") if e99 else None
        row("Added echo latency ≤ 100 µs p50, ≤ 500 µs p99", e50,
            "%s µs p50, %s µs p99" % (fmt_signed(a50), fmt_signed(a99)),
            a50 is not None and a99 is not None and a50 <= 100 and a99 <= 500)
        c50 = med("connect_p50", "mana-gateway")
        a = c50.get("added") if c50 else None
        row("Added connect time ≤ 10 ms", c50, "%s µs p50" % fmt_signed(a),
            a is not None and a <= 10000)
        n = self.cfg["idle_ns"][-1]
        idle = med("idle_%d_total" % n, "mana-gateway")
        v = idle["median"] if idle else None
        row("Idle session ≤ 16 KiB including kernel (at %d sessions)" % n, idle,
            "%s bytes" % fmt_num(v), v is not None and v <= 16 * 1024)
        sb = med("slow_gateway_buffered_max", "mana-gateway")
        v = sb["median"] if sb else None
        # a slow session has SLOW_CHANNELS_PER_CONN channels, each with its own credit window
        bound = SLOW_CHANNELS_PER_CONN * GATEWAY_WINDOW + GATEWAY_READ_CHUNK
        row("Buffered bytes per slow session ≤ its credit windows (%d channels) + one frame (%d)"
            % (SLOW_CHANNELS_PER_CONN, bound), sb,
            "%s bytes (largest session)" % fmt_num(v), v is not None and v <= bound)
        plain = med("browser_mana_channel_download", "mana-gateway (Chromium)")
        plain_v = plain["median"] if plain else None
        for m in metrics:
            if m["group"] != "browser" or m["median"] is None:
                continue
            if ("download" in m["name"] and "chacha20" in m["name"]
                    and not m["name"].startswith("browser_devtools_")):
                # ≥ 100 MB/s or ≥ 0.9× the plain mana channel of the same run, whichever is lower
                want = 100.0 if plain_v is None else min(100.0, 0.9 * plain_v)
                row("Browser: SSH download ≥ min(100 MB/s, 0.9× plain channel) (%s)"
                    % m["name"][8:], m, "%s MB/s (target %s)" % (fmt_num(m["median"]),
                                                                fmt_num(want)),
                    m["median"] >= want)
            elif m["name"] in ("browser_keystroke_glyph_p95",
                               "browser_flood_worker_keystroke_glyph_p95"):
                row("Browser: keystroke→glyph p95 ≤ 20 ms (%s)" % m["name"][8:], m,
                    "%s ms" % fmt_num(m["median"]), m["median"] <= 20)
        for key, limit, text in (("ssh-bundle-total", 350 * 1024, "wasm+JS ≤ 350 KiB brotli"),
                                 ("js-served-total", 50 * 1024,
                                  "JS glue ≤ 50 KiB brotli, minified as served")):
            m = med("size_brotli", key)
            if m is not None:
                row("Browser: %s (%s)" % (text, key), m, "%s bytes" % fmt_num(m["median"]),
                    m["median"] <= limit)
        rs = med("resume", "mana-gateway")
        v = rs["median"] if rs else None
        row("Resume 0 bytes lost or duplicated (and its time)", rs,
            "%s µs, byte-exact %s" % (fmt_num(v), "yes" if rs and rs["ok"] else "no"),
            bool(rs and rs["ok"]))
        return rows

    def markdown(self, report):
        m = report["machine"]
        lines = []
        total = ""
        if report.get("make_seconds"):
            total = " (`make bench` from its start, installs and builds included: %.0f s)" % (
                report["make_seconds"])
        lines.append("Run of %s UTC, %s mode, %d rounds, seed %d, %.0f s wall time%s." % (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(self.started)),
            "quick" if report["quick"] else "full", report["rounds"], report["seed"],
            report["seconds"], total))
        if report.get("group_seconds"):
            lines.append("")
            lines.append("Time per group: %s." % ", ".join(
                "%s %.0f s" % (k, v) for k, v in report["group_seconds"].items()))
        lines.append("")
        lines.append("Machine: %s, %d cores, %.1f GiB, Linux %s, Debian %s. %s; websockify %s; "
                     "socat %s; Node %s, ws %s; %s; %s; gateway build %s." % (
                         m["cpu"], m["cores"], m["memory_bytes"] / GIB, m["kernel"], m["debian"],
                         m["openssh"], m["websockify"], m["socat"], m["node"], m["ws"],
                         m["openssl"], m["compiler"], m["gateway_build_type"]))
        lines.append("")
        lines.append("Sizes: relay streams %s, SSH streams %s, %d echo samples, %d connects, "
                     "%d streams × %s, idle at %s sessions, %d slow readers at %d B/s." % (
                         human(self.cfg["relay_bytes"]), human(self.cfg["ssh_bytes"]),
                         self.cfg["echo_samples"], self.cfg["connect_samples"],
                         self.cfg["streams_n"], human(self.cfg["streams_bytes"]),
                         "/".join(str(x) for x in self.cfg["idle_ns"]), self.cfg["slow_n"],
                         self.cfg["slow_rate"]))
        lines.append("")
        lines.append("Streams checked byte-exact: %d; not byte-exact through a third-party peer: "
                     "%d; failures: %d." % (report["streams_checked"],
                                            len(report["peer_defects"]),
                                            len(report["failures"])))
        lines.append("")
        titles = {"openssl": "openssl speed (64 KiB blocks, one core)",
                  "relay": "Relay throughput (64 KiB frames)",
                  "relay_cpu": "Relay CPU per GB relayed (relay process tree)",
                  "ssh": "SSH stream throughput (OpenSSH client → sshd, default MACs)",
                  "echo": "1-byte echo round trip",
                  "connect": "Connect time (TCP + upgrade + hello/open until the banner)",
                  "streams": "Concurrent streams (server→client)",
                  "idle": "Idle sessions: bytes per session (PSS + kernel socket memory)",
                  "slow": "Slow readers: buffering per session",
                  "resume": "Resume after a forced drop (mana-gateway)",
                  "browser": "Browser (Chromium, bench/browser/)",
                  "sizes": "wasm / JS sizes (bench/browser/)"}
        by_group = {}
        for e in report["metrics"]:
            by_group.setdefault(e["group"], []).append(e)
        for group in ("openssl", "relay", "relay_cpu", "ssh", "echo", "connect", "streams",
                      "idle", "slow", "resume", "lb", "lb_scale", "browser", "sizes"):
            entries = by_group.get(group)
            if not entries:
                continue
            if group in lb.TITLES:  # transposed: one row per metric
                lines += lb.table(self, group, entries, report["machine"], {
                    "relay": human(self.cfg["relay_bytes"]), "echo": self.cfg["echo_samples"],
                    "lb_streams": self.cfg["lb_streams"],
                    "lb_stream": human(self.cfg["lb_stream_bytes"])})
                continue
            names = [n for n in self.meta if self.meta[n]["group"] == group and
                     any(e["name"] == n for e in entries)]
            peers = []
            for e in entries:
                if e["peer"] not in peers:
                    peers.append(e["peer"])
            order = ["openssl", "tcp", "openssh-direct", "socat", "websockify", "node-ws",
                     "mana-gateway"]
            peers.sort(key=lambda p: order.index(p) if p in order else len(order))
            lines.append("### %s" % titles.get(group, group))
            lines.append("")
            head = ["peer"]
            for n in names:
                meta = self.meta[n]
                head.append("%s (%s)" % (meta["label"], meta["unit"]) if meta["unit"]
                            else meta["label"])
                if meta["baseline"]:
                    head.append("+ µs" if meta["added"] else "× %s" % meta["baseline"])
                for other in meta["extra_baselines"]:
                    head.append("× %s" % other)
            rows = []
            for peer in peers:
                cells = [peer]
                for n in names:
                    meta = self.meta[n]
                    e = next((x for x in entries if x["name"] == n and x["peer"] == peer), None)
                    if e is None:
                        cells.append("—")
                    elif e["median"] is None:
                        cells.append("failed")
                    elif e["min"] == e["max"] or len(e["values"]) == 1:
                        cells.append(fmt_num(e["median"]) + ("" if e["ok"] else " (failed runs)"))
                    else:
                        cells.append("%s (%s–%s)%s" % (fmt_num(e["median"]), fmt_num(e["min"]),
                                                      fmt_num(e["max"]),
                                                      "" if e["ok"] else " failed runs"))
                    if meta["baseline"]:
                        if e is None:
                            cells.append("—")
                        elif meta["added"]:
                            cells.append(fmt_signed(e["added"]) if "added" in e else "—")
                        else:
                            cells.append(fmt_num(e["ratio"]) if e.get("ratio") else "—")
                    for other in meta["extra_baselines"]:
                        r = (e or {}).get("ratios", {}).get(other)
                        cells.append(fmt_num(r) if r else "—")
                rows.append(cells)
            lines += md_table(head, rows)
            lines.append("")
        for s in report["skipped"]:
            lines.append("- %s: %s" % (s["group"], s["reason"]))
        for note in report["notes"]:
            lines.append("- " + note)
        if report["skipped"] or report["notes"]:
            lines.append("")
        lines.append("### Targets")
        lines.append("")
        lines.append("| target | measured (mana-gateway) | |")
        lines.append("|---|---|---|")
        for t in report["targets"]:
            state = "not measured" if t["met"] is None else ("met" if t["met"] else "missed")
            lines.append("| %s | %s | %s |" % (t["target"], t["measured"], state))
        lines.append("")
        if report["peer_defects"]:
            lines.append("### Streams a third-party peer did not deliver byte-exact")
            lines.append("")
            lines.append("Left out of the statistics above (a cell with fewer rounds, or "
                         "\"failed\"); not a failure of the run.")
            lines.append("")
            for f in report["peer_defects"]:
                lines.append("- " + f.replace("\n", " ")[:400])
            lines.append("")
        if report["failures"]:
            lines.append("### Failures")
            lines.append("")
            for f in report["failures"]:
                lines.append("- " + f.replace("\n", " ")[:400])
            lines.append("")
        return "\n".join(lines)

    def finish(self):
        seconds = time.time() - self.started
        metrics = self.metrics_list()
        report = {
            "machine": self.machine,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": seconds, "quick": bool(self.args.quick), "rounds": self.rounds,
            "seed": self.seed, "sizes": {k: v for k, v in self.cfg.items()},
            "group_seconds": {k: round(v, 1) for k, v in sorted(self.group_seconds.items())},
            "make_seconds": (time.time() - self.args.started_at) if self.args.started_at else None,
            "gateway": {"window": GATEWAY_WINDOW, "max_window": GATEWAY_MAX_WINDOW,
                        "read_chunk": GATEWAY_READ_CHUNK},
            "metrics": metrics, "streams_checked": self.streams_checked,
            "failures": self.failures, "peer_defects": self.peer_defects, "skipped": self.skipped, "notes": self.notes,
        }
        report["targets"] = self.targets_table(metrics)
        if self.browser is not None:
            report["browser"] = self.browser
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
        md = self.markdown(report)
        with open(os.path.join(self.out_dir, "report.md"), "w") as f:
            f.write(md + "\n")
        if not self.args.no_docs:
            update_docs(self.args.docs, md)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.log("wrote %s/report.json and report.md (%.0f s, %d streams checked, %d failures)" % (
            self.out_dir, seconds, self.streams_checked, len(self.failures)))
        for f in self.failures:
            print("FAILURE: " + f, file=sys.stderr)
        return 1 if self.failures else 0


def human(n):
    if n >= GIB and n % GIB == 0:
        return "%d GiB" % (n // GIB)
    if n >= MIB:
        return "%d MiB" % (n // MIB)
    return "%d B" % n


BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def update_docs(path, md):
    """Replaces the text between the markers in docs/benchmarks.md (appends them if absent)."""
    try:
        text = open(path).read()
    except FileNotFoundError:
        text = "# Benchmarks\n\n"
    block = "%s\n%s\n%s" % (BEGIN, md.rstrip("\n"), END)
    if BEGIN in text and END in text:
        pre = text[:text.index(BEGIN)]
        post = text[text.index(END) + len(END):]
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("_source", "_sink"):
        ap = argparse.ArgumentParser()
        ap.add_argument("cmd")
        ap.add_argument("--bytes", type=int, required=True)
        ap.add_argument("--seed", type=int, required=True)
        a = ap.parse_args()
        return cmd_source(a) if a.cmd == "_source" else cmd_sink(a)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 MiB streams, 1000 idle sessions")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "native-release", "bin"))
    ap.add_argument("--docs", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--started-at", type=float, default=None,
                    help="epoch seconds when `make bench` started (report: make_seconds)")
    ap.add_argument("--only", type=lambda s: s.split(","),
                    help="comma-separated groups: " + ",".join(GROUPS))
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    bench = Bench(args)

    def on_signal(signum, _frame):
        bench.reg.stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return bench.main()


if __name__ == "__main__":
    sys.exit(main())
