#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Drain of one gateway behind HAProxy (issue #18 sections 2 and 7; docs/gateway.md "Rolling
deploy", which describes these steps).

Three mana-gateway processes (gw-0..gw-2; [server] drain_timeout_ms = 60 s,
drain_health_status = 404, proxy_protocol = "v2" from HAProxy, default per-IP limits) behind
Debian's HAProxy 2.6 with gateway/examples/haproxy.cfg as written, a real sshd and an echo target
(lb_support.Cluster). Clients are mana-proxy processes, 10 per client address (lb_support entries).

1. 30 sessions (6 of them `ssh ... cat` on the sshd) start and echo a line; each has an owner.
2. SIGTERM to the gateway that owns the most (the drained one). Its /healthz answers
   404 "draining"; HAProxy marks it NOLB (no new sessions, routed requests still served), not
   DOWN; mana_draining is 1.
3. While it drains, at once: 100 new sessions (mana-proxy to the echo target) start, echo a line
   byte-exact and end with exit 0; and the 30 old sessions echo 256 KiB each while every one of
   their connections is cut twice (FIN without a close frame, then RST), so each resumes at its
   ?route. Checked:
   - the drained gateway saw no fresh hello: a draining gateway answers each with 4010 (or 4003
     for a bad token), so its mana_policy_rejections_total is unchanged, and it authenticated no
     session; the 100 new sessions were each authenticated once, by the two others;
   - its mana_resumes_total{outcome="accepted"} grew by the resumes its clients counted (> 0),
     every resume was accepted by the session's owner, and HAProxy served every ?route=X
     request with server X (NOLB included);
   - the other gateways: only accepted resumes, no policy rejection;
   - every gateway logged the clients' own addresses (the PROXY v2 header), not HAProxy's.
4. The old sessions end (stdin closed: exit 0). The drained gateway logs `drained` and exits 0 within
   5 s of the last one, long before its drain timeout; HAProxy then marks it DOWN and keeps the
   other two UP.
5. The new version in place (the recipe's step 3, variant "same address"): a gateway started on
   the drained one's address with its route id, HAProxy's `server` line unchanged, is marked UP
   by the next check; 20 more sessions through HAProxy are balanced over all three gateways, so
   some are authenticated by the new process, and each echoes a line byte-exact.

Loopback only; about 20-30 s on a loaded 2-core machine.
Usage: drain_haproxy_test.py --gateway PATH --proxy PATH [--sshd PATH] [--haproxy PATH]
                             [--sessions 30] [--ssh-sessions 6] [--new 100] [--kib 256]
                             [--seed 1] [--keep]
"""
import asyncio
import collections
import os
import random
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from fixture import SECRET, check, loopback  # noqa: E402
from lb_support import (Cluster, auths, echo_all, gateway_config, gateway_get,  # noqa: E402
                        gateway_metrics, haproxy_routes, kill_sessions, log_events,
                        policy_rejections, resume_metrics)
from devkit.gateway import start_gateway  # noqa: E402

DRAIN_TIMEOUT_MS = 60000
PER_ENTRY = 10  # sessions per client address
CUT_ROUNDS = 2
SERVER = {"drain_timeout_ms": DRAIN_TIMEOUT_MS, "drain_health_status": 404}


async def cut_rounds(entries, sessions, rounds):
    """Cuts every live connection of `entries` `rounds` times (FIN first, then RST), each round
    once every session has resumed from the one before; returns the connections cut."""
    cut = 0
    for k in range(rounds):
        await asyncio.sleep(0.3)
        cut += sum(fp.cut(rst=k % 2 == 1) for fp in entries)
        end = time.monotonic() + 20
        while any(s.resumes < k + 1 for s in sessions) and time.monotonic() < end:
            await asyncio.sleep(0.05)
    return cut


async def run(args, tmp, procs):
    cluster = Cluster(args, tmp, procs)
    await cluster.start(3, server=SERVER)
    gws, hap = cluster.gws, cluster.hap
    old, new = [], []
    try:
        # ---- 1. sessions before the drain ---------------------------------------------------
        old, old_entries = await cluster.start_sessions(
            ["s%02d" % i for i in range(args.sessions)], PER_ENTRY, args.ssh_sessions,
            seed=args.seed)
        await echo_all(old, [("hello %s\n" % s.principal).encode() for s in old], 60,
                       "%d sessions up (%d ssh logins to sshd, the others to an echo target)"
                       % (len(old), sum(1 for s in old if s.kind == "ssh")))
        owner, _ = cluster.owners()
        per_gw = collections.Counter(owner.values())
        check(len(owner) == len(old) and len(per_gw) == 3,
              "sessions per gateway %s" % dict(sorted(per_gw.items())))
        victim = max(sorted(per_gw), key=lambda r: per_gw[r])
        gw = gws[victim]
        others = [r for r in gws if r != victim]
        mine = [s for s in old if owner[s.principal] == victim]
        before = {r: (resume_metrics(g.port), policy_rejections(g.port)) for r, g in gws.items()}
        auth_before = len([1 for r, _ in auths(gws) if r == victim])

        # ---- 2. drain ------------------------------------------------------------------------
        t_term = time.monotonic()
        gw._signal(signal.SIGTERM)
        states = await cluster.wait_states(dict({r: "UP" for r in others}, **{victim: "NOLB"}),
                                           5)
        t_nolb = time.monotonic() - t_term
        check(states[victim] == "NOLB" and all(states[r] == "UP" for r in others),
              "SIGTERM to %s (owner of %d sessions): HAProxy marks it NOLB, not DOWN, after "
              "%.2f s; the others stay UP (%s)" % (victim, len(mine), t_nolb, states))
        check(gateway_get(gw.port, "/healthz") == (404, "draining\n"),
              "%s: /healthz answers 404 \"draining\" (drain_health_status = 404)" % victim)
        check(gateway_metrics(gw.port).get("mana_draining") == 1, "%s: mana_draining 1" % victim)
        check(log_events(gw.log_path, "drain"), "%s: `drain` logged" % victim)
        check("Server gateways/%s is stopping, reason: Layer7 check conditionally passed, code: "
              "404" % victim in hap.logs(), "HAProxy's log: %s is stopping (404)" % victim)

        # ---- 3. new sessions and routed resumes while it drains ---------------------------------
        t0 = time.monotonic()
        rng = random.Random(args.seed)
        payloads = [rng.randbytes(args.kib << 10) for _ in old]
        old_echo = asyncio.ensure_future(echo_all(
            old, payloads, 60, "the %d old sessions echoed %d KiB each byte-exact, every "
            "connection cut meanwhile" % (len(old), args.kib)))
        cutting = asyncio.ensure_future(cut_rounds(old_entries, old, CUT_ROUNDS))
        new, _ = await cluster.start_sessions(["n%03d" % i for i in range(args.new)], PER_ENTRY,
                                              0, seed=args.seed)
        await echo_all(new, [("new %s\n" % s.principal).encode() for s in new], 60,
                       "%d new sessions during the drain echoed a line byte-exact" % len(new))
        rcs = await asyncio.gather(*(s.finish(20) for s in new))
        check(set(rcs) == {0}, "the %d new sessions ended with exit 0 (%s)"
              % (len(new), dict(collections.Counter(rcs))))
        cut = await cutting
        await old_echo
        print("# %.1f s for the new sessions and the routed resumes; %d connections cut"
              % (time.monotonic() - t0, cut))
        check(all(s.resumes == CUT_ROUNDS for s in old),
              "each old session lost its connection %d times and resumed at its ?route (%s)" % (
                  CUT_ROUNDS, dict(collections.Counter(s.resumes for s in old))))

        owner_now, count = cluster.owners()
        new_owner = collections.Counter(owner_now.get(s.principal) for s in new)
        check(all(count[s.principal] == 1 for s in new) and victim not in new_owner
              and all(new_owner[r] > 0 for r in others),
              "the %d new sessions avoided %s: authenticated once each, by %s" % (
                  len(new), victim, dict(sorted(new_owner.items()))))
        after = {r: (resume_metrics(g.port), policy_rejections(g.port)) for r, g in gws.items()}
        auth_after = len([1 for r, _ in auths(gws) if r == victim])
        rej_before, rej_after = before[victim][1], after[victim][1]
        check(rej_after == rej_before and auth_after == auth_before,
              "%s saw no fresh hello while draining: mana_policy_rejections_total unchanged "
              "(%s; a draining gateway answers a hello with 4010), no new authentication"
              % (victim, dict(rej_after) or "none"))
        accepted = after[victim][0]["accepted"] - before[victim][0]["accepted"]
        counted = sum(s.resumes for s in mine)
        check(accepted > 0 and accepted == counted,
              "%s accepted %d resumes while draining = the %d its %d clients counted" % (
                  victim, accepted, counted, len(mine)))
        misplaced = [(e.get("principal"), r) for r, g in gws.items()
                     for e in log_events(g.log_path, "resume")
                     if e.get("result") == "accepted" and owner.get(e.get("principal")) != r]
        outcomes = {r: dict(after[r][0] - before[r][0]) for r in gws}
        bad = {r: {k: v for k, v in o.items() if k != "accepted"} for r, o in outcomes.items()}
        check(not misplaced and not any(bad.values()),
              "every resume accepted by its owner (misplaced %s); resume outcomes per gateway "
              "during the drain %s" % (misplaced[:5], outcomes))
        check(not any(after[r][1] for r in others),
              "%s: no policy rejection (%s)" % (", ".join(others),
                                                {r: dict(after[r][1]) for r in others}))
        routed = haproxy_routes(hap)
        stray = [(a, b) for a, b in routed if a != b]
        to_victim = sum(1 for a, _ in routed if a == victim)
        check(to_victim >= counted and not stray,
              "HAProxy served every ?route=X request with server X, %d of them to the NOLB %s "
              "(stray: %s)" % (to_victim, victim, stray[:5]))
        cluster.check_client_addresses({s.principal for s in old + new})

        # ---- 4. the drained gateway exits 0 once its sessions end ------------------------------
        check(gw.poll() is None, "%s still runs while its %d sessions do" % (victim, len(mine)))
        rcs = await asyncio.gather(*(s.finish(20) for s in old))
        t_last = time.monotonic()
        check(set(rcs) == {0}, "the %d old sessions ended with exit 0 (%s)"
              % (len(old), dict(collections.Counter(rcs))))
        end = t_last + 10
        while gw.poll() is None and time.monotonic() < end:
            await asyncio.sleep(0.05)
        took = time.monotonic() - t_last
        check(gw.poll() == 0 and took < 5,
              "%s exited with status %s %.2f s after its last session ended, %.1f s into the "
              "drain (drain_timeout_ms %d)" % (victim, gw.poll(), took,
                                               time.monotonic() - t_term, DRAIN_TIMEOUT_MS))
        check(log_events(gw.log_path, "drained") and not log_events(gw.log_path, "drain_timeout"),
              "%s: `drained` logged, no `drain_timeout`" % victim)
        states = await cluster.wait_states(dict({r: "UP" for r in others}, **{victim: "DOWN"}), 5)
        check(states[victim] == "DOWN" and all(states[r] == "UP" for r in others)
              and all(gws[r].alive() for r in others),
              "HAProxy: %s DOWN once gone, the others UP and running (%s)" % (victim, states))

        # ---- 5. the new version in place: same address, same route id ----------------------
        t_up = time.monotonic()
        v2 = start_gateway(args.gateway, tmp, victim + "-v2", listen="127.0.0.1:%d" % gw.port,
                           allow_missing_origin=True,
                           targets=loopback(cluster.sshd.port, cluster.echo.port),
                           config=gateway_config(victim, SERVER), secret=SECRET)
        procs.append(v2)
        states = await cluster.wait_states({r: "UP" for r in gws}, 10)
        check(v2.port == gw.port and all(v == "UP" for v in states.values()),
              "a new gateway on %s's address (port %d, route id %s) is UP in HAProxy %.2f s "
              "after its start (%s)" % (victim, v2.port, victim, time.monotonic() - t_up, states))
        later, _ = await cluster.start_sessions(["v%02d" % i for i in range(args.later)],
                                                PER_ENTRY, 0, seed=args.seed + 2)
        await echo_all(later, [("later %s\n" % s.principal).encode() for s in later], 30,
                       "%d more sessions through HAProxy echoed a line" % len(later))
        mine_v2 = {e.get("principal") for e in log_events(v2.log_path, "auth")
                   if e.get("result") == "ok"}
        check(mine_v2 and mine_v2 <= {s.principal for s in later},
              "the new %s authenticated %d of the %d later sessions (leastconn over 3 gateways)"
              % (victim, len(mine_v2), len(later)))
        new += later
    finally:
        await kill_sessions(old + new)
        await cluster.stop_entries()


def add_args(ap):
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--ssh-sessions", type=int, default=6)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--later", type=int, default=20)
    ap.add_argument("--kib", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)


def main():
    t0 = time.monotonic()
    rc = fixture.main(lambda args, tmp, procs: asyncio.run(run(args, tmp, procs)),
                      "mana-drain-lb-", logs=("gw-0.log", "gw-1.log", "gw-2.log", "haproxy.log"),
                      add_args=add_args)
    if rc == 0:
        print("drain behind HAProxy: all checks passed in %.1f s" % (time.monotonic() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
