# SPDX-License-Identifier: Apache-2.0
"""`make bench`, groups `idle` and `slow` (bench/run.py runs them after the rounds, on fresh
processes per measurement): bytes per idle session (PSS of the peer's process tree plus kernel
socket memory over the same count of direct TCP connections) and the memory a peer grows by per
slow reader (for mana-gateway also its `mana_buffered_bytes_*` gauges). `bench` is run.py's
Bench (its targets, peers, client argv, record/fail)."""
import subprocess
import time

from procs import (ORIGIN, THIRD_PARTY, BenchError, Proc, kernel_socket_bytes, scrape_metrics,
                   tree_memory)

SLOW_CHANNELS_PER_CONN = 4  # channels per session of the slow readers (mana-bench's default)
# websockify forks one Python process per connection and each child waits in select(), which fails
# ("filedescriptor out of range in select()") once its descriptors pass FD_SETSIZE (1024): measured
# here, about 660 idle sessions are the most it holds. Its idle sessions are measured at this count
# (plus direct TCP at the same count for the kernel baseline).
WEBSOCKIFY_IDLE_N = 500


def run_slow(bench):
    """One slow-reader measurement per peer, in a shuffled order."""
    for peer in bench.shuffled(("socat", "websockify", "node-ws", "mana-gateway")):
        bench.log("slow readers %s" % peer)
        try:
            bench.timed("slow", lambda: slow_one(bench, peer))
        except BenchError as e:
            bench.fail("slow %s: %s" % (peer, e))


def start_peer_for(bench, peer, name, target_port):
    if peer == "tcp":
        return None
    if peer == "socat":
        return bench.start_socat(name, target_port)
    if peer == "websockify":
        return bench.start_websockify(name, target_port)
    if peer == "node-ws":
        return bench.start_node(name, target_port)
    return bench.start_gateway(name, [target_port])


def fresh_client_argv(bench, peer, relay, target_port, op, *opts):
    base = [bench.mana_bench, "client"]
    if peer == "tcp":
        base += ["--proto", "tcp", "--connect", "127.0.0.1:%d" % target_port]
    elif peer == "socat":
        base += ["--proto", "tcp", "--connect", "127.0.0.1:%d" % relay.port]
    elif peer in ("websockify", "node-ws"):
        base += ["--proto", "raw", "--connect", "ws://127.0.0.1:%d/" % relay.port]
    else:
        base += ["--proto", "mana", "--connect", "ws://127.0.0.1:%d/" % relay.port,
                 "--target", "127.0.0.1:%d" % target_port, "--token-file", bench.token_path,
                 "--origin", ORIGIN]
    return base + ["--op", op] + [str(o) for o in opts]


def idle_one(bench, peer, n):
    tgt = bench.start_target("idle-target-%s-%d" % (peer, n), "echo")
    relay = None
    client = None
    try:
        relay = start_peer_for(bench, peer, "idle-%s-%d" % (peer, n), tgt.port)
        time.sleep(0.5)
        mem0 = tree_memory(relay.pid) if relay else (0, 0, 0)
        slab0 = kernel_socket_bytes()
        t = bench.bound(120 + n / 50)
        argv = fresh_client_argv(bench, peer, relay, tgt.port, "idle", "--n", n,
                                 "--source-ips", "127.0.0.2-127.0.0.254",
                                 "--timeout-ms", int(t * 1000))
        if peer == "websockify":
            # its single accept loop forks per connection and drops handshakes under a
            # burst of 256 concurrent connects; 16 at a time is what it keeps up with
            argv += ["--concurrency", "16"]
        client = Proc(bench.reg, "idle-client-%s-%d" % (peer, n), argv, bench.logs,
                      stdin=subprocess.PIPE)
        t0 = time.monotonic()
        client.wait_prefix("READY", t)
        ready_s = time.monotonic() - t0
        time.sleep(1.0)
        mem1 = tree_memory(relay.pid) if relay else (0, 0, 0)
        slab1 = kernel_socket_bytes()
        gw = None
        if peer == "mana-gateway":
            m = scrape_metrics(relay.port)
            gw = {"sessions_active": m.get("mana_sessions_active"),
                  "channels_active": m.get("mana_channels_active")}
        client.popen.stdin.close()
        r = client.next_json(bench.bound(60))
        ok = r.get("opened") == n and r.get("closed_early", 0) == 0
        if not ok:
            bench.fail("idle %s n=%d: %s" % (peer, n, r))
        return {"n": n, "pss_delta": mem1[0] - mem0[0], "rss_delta": mem1[1] - mem0[1],
                "processes": mem1[2], "slab_delta": slab1 - slab0, "ready_s": ready_s,
                "ok": ok, "gateway": gw}
    finally:
        for p in (client, relay, tgt):
            if p is not None:
                p.stop()


def phase_idle(bench, peers):
    results = {}
    runs = [(peer, n) for n in bench.cfg["idle_ns"] for peer in peers if peer != "websockify"]
    if "websockify" in peers:
        runs += [("websockify", WEBSOCKIFY_IDLE_N), ("tcp", WEBSOCKIFY_IDLE_N)]
    for peer, n in bench.shuffled(runs):
        bench.log("idle %s n=%d" % (peer, n))
        try:
            results[(peer, n)] = idle_one(bench, peer, n)
        except BenchError as e:
            if peer in THIRD_PARTY:
                bench.peer_defects.append("idle %s n=%d: %s" % (peer, n, e))
            else:
                bench.fail("idle %s n=%d: %s" % (peer, n, e))
    for (peer, n), r in results.items():
        base = results.get(("tcp", n))
        kernel = r["slab_delta"]
        if peer != "tcp" and base is not None:
            kernel -= base["slab_delta"]
        user_b = r["pss_delta"] / n
        kern_b = kernel / n
        name = "idle_%d" % n
        if name + "_total" not in bench.meta:
            for part in ("user", "kernel", "total"):
                bench.define("%s_%s" % (name, part), "bytes/session", "idle", better="lower",
                            label="%d: %s" % (n, part))
        if peer == "tcp":
            bench.record(name + "_kernel", peer, kern_b, detail=r)
            continue
        bench.record(name + "_user", peer, user_b)
        bench.record(name + "_kernel", peer, kern_b)
        bench.record(name + "_total", peer, user_b + kern_b, detail=r)
    if "websockify" in peers:
        bench.notes.append(
            "websockify idle sessions are measured at %d: it forks a Python process per "
            "connection whose select() fails beyond descriptor 1024 (\"filedescriptor out of "
            "range in select()\"), which here ends sessions after about 660." %
            WEBSOCKIFY_IDLE_N)


def slow_one(bench, peer):
    c = bench.cfg
    tgt = bench.start_target("slow-target-%s" % peer, "source", c["slow_bytes"])
    relay = None
    client = None
    try:
        relay = start_peer_for(bench, peer, "slow-%s" % peer, tgt.port)
        time.sleep(0.5)
        mem0 = tree_memory(relay.pid)
        t = bench.bound(60 + c["slow_ms"] / 1000)
        argv = fresh_client_argv(bench, peer, relay, tgt.port, "slow", "--n", c["slow_n"],
                                      "--read-rate", c["slow_rate"],
                                      "--duration-ms", c["slow_ms"],
                                      "--timeout-ms", int(t * 1000))
        if peer == "mana-gateway":  # (other peers carry one stream per connection)
            argv += ["--channels-per-conn", str(SLOW_CHANNELS_PER_CONN)]
        client = Proc(bench.reg, "slow-client-%s" % peer, argv, bench.logs)
        peak = 0
        gw_max = gw_total = None
        end = time.monotonic() + c["slow_ms"] / 1000 + 0.5
        while time.monotonic() < end and client.alive():
            time.sleep(0.25)
            peak = max(peak, tree_memory(relay.pid)[0])
            if peer == "mana-gateway":
                m = scrape_metrics(relay.port)
                gw_max = max(gw_max or 0, m.get("mana_buffered_bytes_max", 0))
                gw_total = max(gw_total or 0, m.get("mana_buffered_bytes_total", 0))
        r = client.next_json(bench.bound(60))
        ok = r.get("ok", True) is not False
        if not ok:
            bench.fail("slow %s: %s" % (peer, r))
        per = (peak - mem0[0]) / c["slow_n"]
        bench.record("slow_pss_per_session", peer, per, detail=r)
        if peer == "mana-gateway":
            bench.record("slow_gateway_buffered_max", peer, gw_max)
            bench.record("slow_gateway_buffered_avg", peer,
                        gw_total / c["slow_n"] if gw_total is not None else None)
    finally:
        for p in (client, relay, tgt):
            if p is not None:
                p.stop()
