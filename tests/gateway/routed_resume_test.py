#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Routed resume across gateways (issue #18 §1, docs/gateway.md "Several gateways behind HAProxy").

Three mana-gateway processes (route ids gw-0, gw-1, gw-2) behind Debian's HAProxy 2.6 with the
configuration of gateway/examples/haproxy.cfg (tools/devkit/haproxy.py; send-proxy-v2, the
gateways with proxy_protocol = "v2" and their default per-IP limits), a real sshd, and
fault-injecting proxies (fault_proxy.py) between the clients and HAProxy that cut connections at
random byte offsets, one per 10 sessions, each from a loopback address of its own: the client
address HAProxy hands on (lb_support.py). Every client is a mana-proxy (one JWT principal per
session, s00..s49):
the first --ssh-sessions (10) are real `ssh` processes with ProxyCommand=mana-proxy running `cat`
on the sshd, the others mana-proxy processes whose channel goes to an echo target (tools/devkit
targets.py), driven through their stdin/stdout. (Fifty remote login shells at once contend on a
small machine: the login user's shell start-up files run for each.)

Phase 1, routed resumes: every session echoes a seeded payload byte-exact (SHA-256) through the
random cuts. Each cut makes mana-proxy resume at the URL with ?route=<id> of its hello_ok. Checked:
  - every session was authenticated once (no session restarted fresh), on one gateway: its owner,
    which logged the client's own address (127.0.0.1x from the PROXY header), not HAProxy's;
  - mana_resumes_total{outcome="accepted"} summed over the gateways equals the resumes the clients
    counted, and no gateway counts a rejected, out-of-range or rate-limited resume;
  - per session, every accepted resume is on its owner (gateway logs, by principal);
  - HAProxy served every request that carried ?route=X with server X (its log).
Phase 2, the owner dies: `kill -9` of the gateway holding the most sessions. Its clients resume to
a dead route, HAProxy sends them elsewhere, they get 4011 ("resume rejected") and mana-proxy exits
with it: each within 3 s of the kill. The sessions on the other gateways keep their session (no new
authentication), echo another payload byte-exact and end with exit 0; the survivors counted one
rejected resume per client of the dead gateway.

Loopback only; bounded (about 20-40 s on a loaded 2-core machine).
Usage: routed_resume_test.py --gateway PATH --proxy PATH [--sshd PATH] [--haproxy PATH]
                             [--sessions 50] [--ssh-sessions 10] [--kib 64] [--cuts 100]
                             [--seed 1] [--keep]
"""
import asyncio
import collections
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fault_proxy import Fault  # noqa: E402
from fixture import check  # noqa: E402
from lb_support import (Cluster, auths, echo_all, haproxy_routes, kill_sessions,  # noqa: E402
                        log_events, resume_metrics)

KILL_BOUND_S = 3.0
PER_ENTRY = 10  # sessions per client address


async def run(args, tmp, procs):
    cluster = Cluster(args, tmp, procs)
    # The example's configuration as written (health checks included): a dead gateway is found by
    # `option redispatch 1` at the first refused connection, not by the checks.
    await cluster.start(3)
    gws, hap = cluster.gws, cluster.hap
    sessions = []
    try:
        n_entries = -(-args.sessions // PER_ENTRY)
        cuts_each = -(-args.cuts // n_entries)
        # One entry (a client address) per PER_ENTRY sessions, each cutting at random offsets.
        sessions, entries = await cluster.start_sessions(
            ["s%02d" % i for i in range(args.sessions)], PER_ENTRY, args.ssh_sessions,
            seed=args.seed, min_bytes=16 << 10,
            max_bytes=max(64 << 10, args.kib << 11), max_cuts=cuts_each)

        # Every session logged in (a short line echoed) before the load starts: on a small,
        # shared machine the logins and the bulk echo at once starve each other.
        n_ssh = sum(1 for s in sessions if s.kind == "ssh")
        await echo_all(sessions, [("hello %s\n" % s.principal).encode() for s in sessions], 60,
                       "%d sessions through mana-proxy, %d fault proxies and HAProxy are up: %d "
                       "ssh logins to sshd (`cat`), %d to an echo target"
                       % (len(sessions), len(entries), n_ssh, len(sessions) - n_ssh))

        # ---- phase 1: echo through random cuts ------------------------------------------------
        rng = random.Random(args.seed)
        payloads = [rng.randbytes(args.kib << 10) for _ in sessions]
        await echo_all(sessions, payloads, 90,
                       "phase 1: %d sessions echoed %d KiB each byte-exact (SHA-256) through "
                       "the random cuts" % (len(sessions), args.kib))
        cuts = sum(fp.cuts for fp in entries)
        client_resumes = sum(s.resumes for s in sessions)
        check(cuts >= min(args.cuts, args.sessions) // 2 and client_resumes >= cuts // 2,
              "forced drops: %d cuts, %d resumes counted by the clients" % (cuts, client_resumes))

        # Owners: the gateway that authenticated the principal, exactly once over all gateways.
        owner, auth_count = cluster.owners()
        check(len(owner) == len(sessions) and set(auth_count.values()) == {1},
              "every session was authenticated once, by one gateway (none restarted fresh)")
        cluster.check_client_addresses(set(owner))
        per_gw = collections.Counter(owner.values())

        # Metrics: accepted resumes on the owners == the clients' count; no rejection anywhere.
        end = time.monotonic() + 5
        while True:
            mets = {r: resume_metrics(g.port) for r, g in gws.items()}
            client_resumes = sum(s.resumes for s in sessions)
            accepted = sum(m["accepted"] for m in mets.values())
            if accepted == client_resumes or time.monotonic() > end:
                break
            await asyncio.sleep(0.2)
        others = {r: sum(v for k, v in m.items() if k != "accepted") for r, m in mets.items()}
        check(accepted == client_resumes and not any(others.values()),
              "mana_resumes_total{outcome=\"accepted\"} over the gateways = %d = the clients' "
              "%d resumes; other outcomes per gateway %s" % (accepted, client_resumes, others))
        misplaced = []
        by_principal = collections.Counter()
        for r, g in gws.items():
            for e in log_events(g.log_path, "resume"):
                if e.get("result") == "accepted":
                    by_principal[e.get("principal")] += 1
                    if owner.get(e.get("principal")) != r:
                        misplaced.append((e.get("principal"), r))
        wrong_count = [s.principal for s in sessions if by_principal[s.principal] != s.resumes]
        check(not misplaced and not wrong_count,
              "per session, every accepted resume is on its owner (misplaced %s, counts differ "
              "for %s)" % (misplaced[:5], wrong_count[:5]))
        routed = haproxy_routes(hap)
        stray = [(a, b) for a, b in routed if a != b]
        check(len(routed) >= client_resumes and not stray,
              "HAProxy served all %d requests with ?route=X by server X (stray: %s)"
              % (len(routed), stray[:5]))
        resumes_per_gw = {r: mets[r]["accepted"] for r in gws}
        print("# sessions per gateway %s; accepted resumes per gateway %s"
              % (dict(sorted(per_gw.items())), resumes_per_gw))

        # ---- phase 2: kill -9 of an owner ------------------------------------------------------
        # No more cuts. New connections end with FIN: in random mode the fault proxy ends a
        # connection whose upstream closed with a RST half of the time, which can discard the
        # gateway's close frame (a 4011) on its way to the client.
        for fp in entries:
            fp.max_cuts = fp.cuts
            fp.disarm()  # the cuts the live connections were given when accepted
            fp.script = lambda index, rng: Fault(rst=False)
        cuts_before = sum(fp.cuts for fp in entries)
        victim = max(per_gw, key=lambda r: per_gw[r])
        victims = [s for s in sessions if owner[s.principal] == victim]
        survivors = [s for s in sessions if owner[s.principal] != victim]
        t_kill = time.monotonic()
        gws[victim].kill()
        # Meanwhile the others keep working.
        more = [rng.randbytes(64 << 10) for _ in survivors]
        echoing = asyncio.ensure_future(echo_all(
            survivors, more, 30,
            "the %d sessions of the other gateways echo 64 KiB more byte-exact" % len(survivors)))
        try:
            await asyncio.wait_for(asyncio.gather(*(s.waiter for s in victims)), 15)
        except asyncio.TimeoutError:
            pass
        delays = sorted((s.exited_at - t_kill) if s.exited_at else float("inf") for s in victims)
        with_4011 = [s for s in victims if any("4011" in ln for ln in s.stderr)]
        for s in victims:
            if s not in with_4011 or s.exited_at is None:
                print("#", s.principal, s.stderr[-4:])
        check(len(with_4011) == len(victims) and delays[-1] <= KILL_BOUND_S,
              "kill -9 of %s (%d sessions): each client got 4011 and mana-proxy ended, after "
              "%.2f s (median) / %.2f s (max) <= %.1f s" % (
                  victim, len(victims), delays[len(delays) // 2], delays[-1], KILL_BOUND_S))
        await echoing
        check(sum(fp.cuts for fp in entries) == cuts_before, "phase 2: no more cuts")
        rcs = await asyncio.gather(*(s.finish(20) for s in survivors))
        new_auth = [e.get("principal") for r, e in auths(gws)
                    if r != victim and owner.get(e.get("principal")) != r]
        check(set(rcs) == {0} and not new_auth,
              "they end normally (exit 0) in their original sessions (none started anew: %s)"
              % new_auth)
        after = {r: resume_metrics(g.port) for r, g in gws.items() if r != victim}
        rejected = sum(m["rejected"] for m in after.values())
        if rejected != len(victims):
            for s in victims:
                print("#", s.principal, s.stderr[-12:])
        check(rejected == len(victims) and not any(
                  v for m in after.values() for k, v in m.items()
                  if k not in ("accepted", "rejected")),
              "the surviving gateways answered the %d resumes of the dead one with the uniform "
              "4011 \"resume rejected\" with their default per-IP failed-resume budget (%s)"
              % (len(victims), {r: dict(m) for r, m in after.items()}))
    finally:
        await kill_sessions(sessions)
        await cluster.stop_entries()


def add_args(ap):
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--ssh-sessions", type=int, default=10,
                    help="how many of them are ssh logins to sshd (the rest: mana-proxy to an "
                         "echo target)")
    ap.add_argument("--kib", type=int, default=64)
    ap.add_argument("--cuts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)


def main():
    t0 = time.monotonic()
    rc = fixture.main(lambda args, tmp, procs: asyncio.run(run(args, tmp, procs)),
                      "mana-routed-", logs=("gw-0.log", "gw-1.log", "gw-2.log", "haproxy.log"),
                      add_args=add_args)
    if rc == 0:
        print("routed resume: all checks passed in %.1f s" % (time.monotonic() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
