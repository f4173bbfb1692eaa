"""mana-conformance command line: runs the cases, prints a summary, writes a JUnit XML report.

Exit status: 0 when no MUST case failed, 1 when at least one did, 2 on a bad command line.
A skipped case is reported as skipped (never as passed) and does not change the exit status.
"""
import argparse
import asyncio
import sys
import time
import xml.etree.ElementTree as ET

from . import cases, profiles


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="mana-conformance",
        description="Conformance kit for mana.ssh.v1 servers (docs/conformance.md).")
    ap.add_argument("--url", help="ws://HOST:PORT/PATH of the server (required unless --list)")
    ap.add_argument("--token-file", help="file holding a bearer token the server accepts; "
                    "without it hello carries auth scheme none")
    ap.add_argument("--profile", default="all",
                    help="wire profile to test: %s or all (default)" % ", ".join(profiles.PROFILES))
    ap.add_argument("--origin", help="Origin header to send")
    ap.add_argument("--echo-target", help="host:port of an echo target reachable from the "
                    "server (sends SSH-2.0-mana-echo\\r\\n, then echoes; conformance/echo_target.py)")
    ap.add_argument("--report", help="write a JUnit XML report to this file")
    ap.add_argument("--resume-ttl-ms", type=int,
                    help="the server's resume TTL; enables the resume.expired case")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for an expected answer (default 10)")
    ap.add_argument("--max-wait", type=float, default=60.0,
                    help="longest deliberate wait (heartbeat, idle timeout, TTL) in seconds "
                    "(default 60)")
    ap.add_argument("--quick", action="store_true",
                    help="--max-wait 5: skip the cases that would wait longer")
    ap.add_argument("--case", action="append", default=[],
                    help="run only cases whose name starts with this (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    opts = ap.parse_args(argv)
    if not opts.url and not opts.list:
        ap.error("--url is required")
    if opts.quick:
        opts.max_wait = min(opts.max_wait, 5.0)
    if opts.profile == "all":
        opts.profiles = list(profiles.PROFILES)
    elif opts.profile in profiles.PROFILES:
        opts.profiles = [opts.profile]
    else:
        ap.error("unknown profile %r" % opts.profile)
    opts.token = None
    if opts.token_file:
        with open(opts.token_file) as f:
            opts.token = f.read().strip()
    if opts.echo_target:
        host, _, port = opts.echo_target.rpartition(":")
        if not host or not port.isdigit():
            ap.error("--echo-target must be host:port")
        opts.echo_target = (host.strip("[]"), int(port))
    opts.client_max_frame = profiles.DEFAULT_MAX_FRAME
    return opts


async def run_all(opts):
    results = []  # (profile, case, status, detail, seconds)
    for pid in opts.profiles:
        for c in cases.applicable(pid):
            if opts.case and not any(c.name.startswith(p) for p in opts.case):
                continue
            t0 = time.monotonic()
            ctx = cases.Context(opts, pid)
            limit = opts.timeout * 8 + opts.max_wait
            status, detail = await cases.run_case(c, ctx, limit)
            dt = time.monotonic() - t0
            results.append((pid, c, status, detail, dt))
            print("%-4s %-6s %-15s %-36s %s%s" % (status, c.level, pid, c.name, c.section,
                                                   (" - " + detail) if detail else ""),
                  flush=True)
    return results


def summary(results):
    lines = ["", "summary:"]
    for pid in dict.fromkeys(r[0] for r in results):
        for level in ("MUST", "SHOULD"):
            rs = [r for r in results if r[0] == pid and r[1].level == level]
            if not rs:
                continue
            n = {s: sum(1 for r in rs if r[2] == s) for s in ("PASS", "FAIL", "SKIP")}
            lines.append("  %-15s %-6s pass %3d  fail %3d  skip %3d" % (
                pid, level, n["PASS"], n["FAIL"], n["SKIP"]))
    failed = [r for r in results if r[2] == "FAIL"]
    skipped = [r for r in results if r[2] == "SKIP" and r[1].level == "MUST"]
    if skipped:
        lines.append("MUST cases skipped (NOT passed): " +
                     ", ".join("%s/%s" % (r[0], r[1].name) for r in skipped))
    if failed:
        lines.append("FAILED: " + ", ".join("%s/%s (%s)" % (r[0], r[1].name, r[1].level)
                                            for r in failed))
    must_failed = any(r[2] == "FAIL" and r[1].level == "MUST" for r in results)
    lines.append("result: %s" % ("FAIL (a MUST failed)" if must_failed else "OK (no MUST failed)"))
    return "\n".join(lines), must_failed


def junit(results, path):
    root = ET.Element("testsuites", name="mana-conformance")
    for pid in dict.fromkeys(r[0] for r in results):
        rs = [r for r in results if r[0] == pid]
        suite = ET.SubElement(root, "testsuite", name="mana-conformance." + pid,
                              tests=str(len(rs)),
                              failures=str(sum(1 for r in rs if r[2] == "FAIL")),
                              skipped=str(sum(1 for r in rs if r[2] == "SKIP")),
                              errors="0", time="%.3f" % sum(r[4] for r in rs))
        for _, c, status, detail, dt in rs:
            tc = ET.SubElement(suite, "testcase", classname="%s.%s" % (pid, c.level),
                               name="%s [%s %s]" % (c.name, c.level, c.section), time="%.3f" % dt)
            ET.SubElement(tc, "properties")
            for k, v in (("level", c.level), ("section", c.section), ("summary", c.summary)):
                ET.SubElement(tc.find("properties"), "property", name=k, value=v)
            if status == "FAIL":
                ET.SubElement(tc, "failure", message=detail[:200], type=c.level).text = detail
            elif status == "SKIP":
                ET.SubElement(tc, "skipped", message=detail[:200])
            elif detail:
                ET.SubElement(tc, "system-out").text = detail
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    if opts.list:
        for pid in opts.profiles:
            for c in cases.applicable(pid):
                print("%-6s %-15s %-36s %-24s %s" % (c.level, pid, c.name, c.section, c.summary))
        return 0
    print("mana-conformance: %s, profiles %s" % (opts.url, ", ".join(opts.profiles)))
    t0 = time.monotonic()
    results = asyncio.run(run_all(opts))
    text, must_failed = summary(results)
    print(text)
    print("time: %.1fs" % (time.monotonic() - t0))
    if opts.report:
        junit(results, opts.report)
        print("report: %s" % opts.report)
    return 1 if must_failed else 0
