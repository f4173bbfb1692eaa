# SPDX-License-Identifier: Apache-2.0
"""`make bench`, group `lb` (issue #18 §8): what the balancer costs and what a second gateway
process buys on this machine. Two tables, each with its baseline measured in the same run and in
the same rounds as every other group (bench/run.py interleaves them):

- `lb`: relay throughput (one stream each way) and 1-byte echo latency through HAProxy (Debian
  2.6, gateway/examples/haproxy.cfg via tools/devkit/haproxy.py) in front of the bench's
  mana-gateway, against the same gateway alone. Same gateway process, same targets, same client.
- `lb_scale`: aggregate server→client throughput of two mana-bench client processes (N streams
  each, one session per stream) through 1 gateway (both clients on it), 2 gateway processes (one
  client each) and HAProxy over those 2 gateways; direct TCP to the same target (same two clients)
  is the ceiling of the machine without any relay. The target is one more process. Every one of
  them shares the machine's cores (os.cpu_count(), in the table), so the CPU each side used is
  reported next to the throughput: a second gateway can only help as far as a core is free.

`bench` is run.py's Bench (targets, the shared gateway, client argv, record/fail/check_stream).
"""
import os
import resource
import shutil
import sys
import threading
import time

from procs import ORIGIN, BenchError, fmt_num, fmt_signed, tree_cpu_s

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
from devkit.haproxy import start_haproxy  # noqa: E402

ALONE = "gateway alone"
BEHIND = "HAProxy + gateway"
TCP = "tcp, no relay"
ONE = "1 gateway"
TWO = "2 gateways"
TWO_LB = "HAProxy + 2 gateways"
SCALE_PEERS = (TCP, ONE, TWO, TWO_LB)
CLIENTS = 2  # client processes of the aggregate (fixed: equal client CPU in every variant)
# Fast health checks so that the servers are UP a moment after the start (the example's `rise 2`
# at 1 s would cost 2 s per HAProxy); everything else is the example as written.
DEFAULT_SERVER = "check inter 250ms fall 2 rise 1"


def define(bench):
    for d, label in (("up", "relay client→server"), ("down", "relay server→client")):
        bench.define("lb_relay_" + d, "MB/s", "lb", baseline=ALONE, label=label)
    for q in ("p50", "p90", "p99"):
        bench.define("lb_echo_" + q, "µs", "lb", baseline=ALONE, better="lower",
                     label="echo " + q, added=True)
    bench.define("lb_scale_mbps", "MB/s", "lb_scale", baseline=ONE, baselines=(TCP,),
                 label="aggregate server→client")
    for part, label in (("gateways", "gateway processes"), ("haproxy", "HAProxy"),
                        ("clients", "the %d clients" % CLIENTS), ("target", "the target")):
        bench.define("lb_scale_cpu_" + part, "cores", "lb_scale", better="lower",
                     label="CPU busy: " + label)


class LbGroup:
    """Its processes start at the first round (only when the group runs) and are stopped with
    every other peer (bench.reg)."""

    def __init__(self, bench):
        self.b = bench
        self.started = False

    # -- processes --

    def haproxy(self, name, servers):
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        try:
            hap = start_haproxy(self.b.tmp, servers, name=name, binary=binary,
                                default_server=DEFAULT_SERVER,
                                log_path=os.path.join(self.b.logs, name + ".log"))
        except Exception as e:  # noqa: BLE001 - the launcher's error carries the log tail
            raise BenchError("%s: %s" % (name, e)) from None
        self.b.reg.add(hap)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            states = hap.servers()
            if states and set(states.values()) == {"UP"}:
                return hap
            time.sleep(0.1)
        raise BenchError("%s: servers not UP after 10 s: %s" % (name, hap.servers()))

    def start(self):
        b = self.b
        c = b.cfg
        self.started = True
        # (a) HAProxy in front of the bench's shared gateway
        self.hap1 = self.haproxy("haproxy-lb", [("gw-bench", b.gateway.port)])
        # (b) its own target and two gateways; HAProxy over both
        self.target = b.start_target("lb-target", "source", c["lb_stream_bytes"])
        self.gws = [b.start_gateway("lb-gw-%d" % i, [self.target.port]) for i in range(2)]
        self.hap2 = self.haproxy("haproxy-lb2",
                                 [("lb-gw-%d" % i, g.port) for i, g in enumerate(self.gws)])
        b.log("lb: HAProxy %d -> gateway %d; gateways %s, HAProxy %d over both, target %d" % (
            self.hap1.port, b.gateway.port, [g.port for g in self.gws], self.hap2.port,
            self.target.port))

    # -- (a) the balancer's cost --

    def argv(self, peer, key, op, *opts):
        """The bench's mana client towards target `key`, at the gateway or at HAProxy."""
        argv = self.b.client_argv("mana-gateway", key, op, *opts)
        if peer == BEHIND:
            argv[argv.index("--connect") + 1] = self.hap1.url
        return argv

    def relay(self, peer, direction):
        b = self.b
        n = b.cfg["relay_bytes"]
        key = "sink" if direction == "up" else "source"
        tgt = b.targets[key]
        tgt.drain()
        name = "lb_relay_" + direction
        what = "%s %s" % (name, peer)
        try:
            if direction == "up":
                r = b.client(self.argv(peer, key, "up", "--bytes", n, "--frame", 65536), 600)
                t = tgt.next_json(b.bound(20))
                ok = (r.get("ok", True) is True and r.get("bytes") == n and
                      t.get("bytes_in") == n and t.get("hash_in") == r.get("hash"))
                detail = "sent %s, target received %s (hash %s, sent %s)" % (
                    r.get("bytes"), t.get("bytes_in"), t.get("hash_in"), r.get("hash"))
            else:
                r = b.client(self.argv(peer, key, "down", "--bytes", n), 600)
                tgt.next_json(b.bound(20))
                ok = (r.get("ok") is True and r.get("bytes") == n and
                      r.get("eof_after_data", True) is True)
                detail = "received %s (hash %s, expected %s, end %s)" % (
                    r.get("bytes"), r.get("hash"), r.get("expected_hash"), r.get("end"))
        except BenchError as e:
            b.fail("%s: %s" % (what, e))
            b.record(name, peer, None)
            return
        b.check_stream(ok, "%s: %s" % (what, detail))
        b.record(name, peer, r.get("mbps") if ok else None)

    def echo(self, peer):
        b = self.b
        try:
            r = b.client(self.argv(peer, "echo", "echo", "--samples", b.cfg["echo_samples"],
                                   "--warmup", 50), 120)
        except BenchError as e:
            b.fail("lb echo %s: %s" % (peer, e))
            return
        finally:
            b.targets["echo"].drain()
        for q in ("p50", "p90", "p99"):
            b.record("lb_echo_" + q, peer, r.get(q + "_us"))

    # -- (b) one gateway process or two --

    def scale_argvs(self, peer):
        b = self.b
        c = b.cfg
        ops = ["--op", "streams", "--n", str(c["lb_streams"]), "--bytes",
               str(c["lb_stream_bytes"])]
        if peer == TCP:
            return [[b.mana_bench, "client", "--proto", "tcp", "--connect",
                     "127.0.0.1:%d" % self.target.port] + ops] * CLIENTS
        urls = {ONE: [self.gws[0].url] * CLIENTS, TWO: [g.url for g in self.gws],
                TWO_LB: [self.hap2.url] * CLIENTS}[peer]
        return [[b.mana_bench, "client", "--proto", "mana", "--connect", url,
                 "--target", "127.0.0.1:%d" % self.target.port, "--token-file", b.token_path,
                 "--origin", ORIGIN, "--channels-per-conn", "1"] + ops for url in urls]

    def scale(self, peer):
        """The clients start together; aggregate = all bytes / wall time from their start until
        the last one exited (process start and WebSocket setup included: a few ms)."""
        b = self.b
        c = b.cfg
        argvs = self.scale_argvs(peer)
        gw_pids = {ONE: [self.gws[0].pid], TWO: [g.pid for g in self.gws],
                   TWO_LB: [g.pid for g in self.gws]}.get(peer, [])
        results = [None] * len(argvs)

        def one(i):
            try:
                results[i] = b.client(argvs[i], 300)
            except BenchError as e:
                results[i] = e

        self.target.drain()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(argvs))]
        cpu0 = [tree_cpu_s(p) for p in gw_pids]
        hap0 = tree_cpu_s(self.hap2.pid)
        tgt0 = tree_cpu_s(self.target.pid)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        gw_cpu = sum(tree_cpu_s(p) for p in gw_pids) - sum(cpu0)
        hap_cpu = tree_cpu_s(self.hap2.pid) - hap0
        tgt_cpu = tree_cpu_s(self.target.pid) - tgt0
        self.target.drain()
        total = c["lb_streams"] * c["lb_stream_bytes"] * len(argvs)
        errors = [r for r in results if isinstance(r, BenchError)]
        if errors:
            b.fail("lb_scale %s: %s" % (peer, errors[0]))
            b.record("lb_scale_mbps", peer, None)
            return
        ok = all(r.get("ok") is True and r.get("n") == c["lb_streams"] for r in results)
        b.check_stream(ok, "lb_scale %s: %s" % (peer, [{k: v for k, v in r.items()
                                                         if k != "per_stream_mbps"}
                                                        for r in results]))
        if not ok:
            b.record("lb_scale_mbps", peer, None)
            return
        b.record("lb_scale_mbps", peer, total / wall / 1e6)
        clients_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        b.record("lb_scale_cpu_clients", peer, clients_cpu / wall)
        b.record("lb_scale_cpu_target", peer, tgt_cpu / wall)
        if gw_pids:
            b.record("lb_scale_cpu_gateways", peer, gw_cpu / wall)
        if peer == TWO_LB:
            b.record("lb_scale_cpu_haproxy", peer, hap_cpu / wall)

    # -- one round --

    def round(self):
        b = self.b
        if not self.started:
            self.start()
        steps = [("relay", p, d) for p in (ALONE, BEHIND) for d in ("up", "down")]
        steps += [("echo", p, None) for p in (ALONE, BEHIND)]
        steps += [("scale", p, None) for p in SCALE_PEERS]
        for kind, peer, d in b.shuffled(steps):
            if kind == "relay":
                self.relay(peer, d)
            elif kind == "echo":
                self.echo(peer)
            else:
                self.scale(peer)


# --- report --------------------------------------------------------------------------------------

TITLES = {"lb": "Behind HAProxy: relay and echo through HAProxy + gateway vs the gateway alone",
          "lb_scale": "Aggregate throughput with 1 or 2 gateway processes"}
PEERS = {"lb": (ALONE, BEHIND), "lb_scale": SCALE_PEERS}


def cell(e):
    if e is None:
        return "—"
    if e["median"] is None:
        return "failed"
    if e["min"] == e["max"] or len(e["values"]) == 1:
        return fmt_num(e["median"]) + ("" if e["ok"] else " (failed runs)")
    return "%s (%s–%s)%s" % (fmt_num(e["median"]), fmt_num(e["min"]), fmt_num(e["max"]),
                             "" if e["ok"] else " failed runs")


def table(bench, group, entries, machine, sizes):
    """The group's table transposed: one row per metric, one column per peer, a ratio row (or
    a "+ µs" row for latencies) under every metric that has a baseline."""
    names = [n for n in bench.meta if bench.meta[n]["group"] == group and
             any(e["name"] == n for e in entries)]
    peers = [p for p in PEERS[group] if any(e["peer"] == p for e in entries)]
    get = {(e["name"], e["peer"]): e for e in entries}
    lines = ["### %s" % TITLES[group], ""]
    if group == "lb":
        lines += ["The bench's mana-gateway (below: relay streams of %s, %d echo samples) "
                  "directly and through HAProxy (gateway/examples/haproxy.cfg, HAProxy's default "
                  "threads); the last column is HAProxy + gateway ÷ gateway alone, both measured "
                  "in the same rounds." % (sizes["relay"], sizes["echo"]), ""]
        head = ["metric"] + peers + ["%s ÷ %s" % (BEHIND, ALONE)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for n in names:
            meta = bench.meta[n]
            row = ["%s (%s)" % (meta["label"], meta["unit"])]
            row += [cell(get.get((n, p))) for p in peers]
            e = get.get((n, BEHIND))
            ratio = fmt_num(e["ratio"]) if e and e.get("ratio") else "—"
            if e and meta["added"] and "added" in e:
                ratio += " (%s µs)" % fmt_signed(e["added"])
            lines.append("| " + " | ".join(row + [ratio]) + " |")
    else:
        lines += ["%d cores (os.cpu_count()) shared by everything in the row: %d `mana-bench "
                  "client` processes (%d streams of %s each, one session per stream), one "
                  "`mana-bench target`, the gateway process(es) and HAProxy; %s: the clients "
                  "straight to the target. %s: both clients on one gateway; %s: one client per "
                  "gateway; %s: both clients through HAProxy (`balance leastconn`) over the same "
                  "2 gateways. CPU busy = CPU seconds used ÷ wall seconds (1.0 = one core)." % (
                      machine.get("cores") or 0, CLIENTS, sizes["lb_streams"],
                      sizes["lb_stream"], TCP, ONE, TWO, TWO_LB), ""]
        head = ["metric"] + peers
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for n in names:
            meta = bench.meta[n]
            lines.append("| " + " | ".join(["%s (%s)" % (meta["label"], meta["unit"])] +
                                           [cell(get.get((n, p))) for p in peers]) + " |")
            for base in ([meta["baseline"]] if meta["baseline"] else []) + \
                    meta["extra_baselines"]:
                row = ["× %s" % base]
                for p in peers:
                    e = get.get((n, p))
                    r = None
                    if e and p != base:
                        r = e.get("ratio") if base == meta["baseline"] else \
                            e.get("ratios", {}).get(base)
                    row.append(fmt_num(r) if r else "—")
                lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines
