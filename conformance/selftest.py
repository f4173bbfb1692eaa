#!/usr/bin/python3
"""ctest driver of the conformance kit: runs mana-conformance against real servers.

  selftest.py gateway --gateway PATH [--profile ID|all] [--known-failure CASE]... [--kit PATH]
                      [--report F]
      echo target + mana-gateway (test config, JWT) -> the kit: exit 0 only if no MUST case was
      skipped and the failed cases are exactly the --known-failure ones (a known gateway/
      PROTOCOL.md disagreement keeps failing in the kit's report; once the gateway is fixed this
      driver fails until the entry is removed).
  selftest.py reference --profile ID [--kit PATH] [--report F]
      conformance/reference/server.py (resume TTL RESUME_TTL_MS) -> the kit for that profile:
      exit 0 only if no case failed and no MUST case was skipped (resume included).
  selftest.py violation [--kit PATH]
      the reference server with --violate credit -> the kit must exit non-zero and report
      flow.server_respects_credit as failed.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
SECRET = "conformance-test-secret-0123456789abcdef"
ORIGIN = "http://localhost:8080"
RESUME_TTL_MS = 1500
IDLE_TIMEOUT_MS = 2000  # below 3 x heartbeat_ms: heartbeat.idle_timeout sees the idle timeout


def spawn_listening(cmd, log_path, timeout=15):
    """Starts `cmd`, which prints "listening HOST:PORT" on stdout; returns (Popen, port)."""
    log = open(log_path, "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    end = time.time() + timeout
    while time.time() < end:
        line = p.stdout.readline()
        if not line:
            break
        m = re.search(r"listening \S+:(\d+)", line)
        if m:
            return p, int(m.group(1))
    p.kill()
    raise RuntimeError("%s did not start: %s" % (cmd[0], open(log_path).read()[-2000:]))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def jwt_token():
    import jwt
    t = jwt.encode({"sub": "conformance", "exp": int(time.time()) + 3600}, SECRET,
                   algorithm="HS256")
    return t if isinstance(t, str) else t.decode()


def kit_cmd(args):
    return [args.kit] if args.kit else [PY, "-m", "conformance"]


def run_kit(args, argv):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = kit_cmd(args) + argv
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, env=env, cwd=ROOT).returncode


def report_cases(path):
    """[(profile, case name, level, status)] from a JUnit report written by the kit."""
    out = []
    for suite in ET.parse(path).getroot():
        pid = suite.get("name").split(".", 1)[1]
        for tc in suite:
            name = tc.get("name").split(" ")[0]
            level = tc.get("classname").rsplit(".", 1)[1]
            status = ("FAIL" if tc.find("failure") is not None else
                      "SKIP" if tc.find("skipped") is not None else "PASS")
            out.append((pid, name, level, status))
    return out


def gateway(args, tmp):
    procs = []
    try:
        echo, echo_port = spawn_listening([PY, os.path.join(HERE, "echo_target.py")],
                                          os.path.join(tmp, "echo.log"))
        procs.append(echo)
        with open(os.path.join(tmp, "secret"), "w") as f:
            f.write(SECRET + "\n")
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write(jwt_token())
        port = free_port()
        conf = os.path.join(tmp, "gateway.toml")
        with open(conf, "w") as f:
            f.write('[server]\nlisten = "127.0.0.1:%d"\n'
                    '[origins]\nallow = ["%s"]\n'
                    '[auth]\njwt_secret_file = "secret"\n'
                    '[[targets]]\nhost = "127.0.0.1"\nports = [%d]\n'
                    '[session]\nmax_frame = 131072\nwindow = 65536\nmax_channels = 3\n'
                    'heartbeat_ms = 1000\nidle_timeout_ms = %d\nresume_ttl_ms = %d\n'
                    '[limits]\nmax_sessions_per_principal = 10000\n'
                    'max_connections_per_ip = 10000\n' % (port, ORIGIN, echo_port, IDLE_TIMEOUT_MS,
                                                          RESUME_TTL_MS))
        glog = os.path.join(tmp, "gateway.log")
        gw = subprocess.Popen([args.gateway, "--config", conf], stdout=subprocess.DEVNULL,
                              stderr=open(glog, "w"))
        procs.append(gw)
        if not wait_port(port):
            raise RuntimeError("gateway did not start: " + open(glog).read()[-2000:])
        report = args.report or os.path.join(tmp, "report.xml")
        rc = run_kit(args, ["--url", "ws://127.0.0.1:%d/" % port, "--token-file", tok,
                            "--origin", ORIGIN, "--profile", args.profile,
                            "--echo-target", "127.0.0.1:%d" % echo_port,
                            "--resume-ttl-ms", str(RESUME_TTL_MS), "--report", report])
        results = report_cases(report)
        known = set(args.known_failure)
        failed = {r[1] for r in results if r[3] == "FAIL"}
        skipped = ["%s/%s" % (r[0], r[1]) for r in results if r[3] == "SKIP" and r[2] == "MUST"]
        ok = (failed == known and not skipped and gw.poll() is None
              and rc == (1 if known else 0))
        if not ok:
            print("FAIL - kit exit %d; failed %s (known: %s); skipped MUSTs %s%s" % (
                rc, sorted(failed), sorted(known), skipped,
                "; gateway exited" if gw.poll() is not None else ""))
            print(open(glog).read()[-3000:])
            return 1
        print("ok - %d cases against mana-gateway (%s): all passed%s" % (
            len(results), args.profile,
            "" if not known else " except the known disagreement(s) %s, which failed as "
            "expected" % sorted(known)))
        return 0
    finally:
        for p in procs:
            p.kill()
            p.wait()


def reference(args, tmp, violate=False):
    tok = os.path.join(tmp, "token")
    with open(tok, "w") as f:
        f.write("reference-token-0123456789\n")
    cmd = [PY, os.path.join(HERE, "reference", "server.py"), "--profile", args.profile,
           "--token-file", tok, "--resume-ttl-ms", str(RESUME_TTL_MS)]
    if violate:
        cmd += ["--violate", "credit"]
    srv, port = spawn_listening(cmd, os.path.join(tmp, "reference.log"))
    try:
        report = args.report or os.path.join(tmp, "report.xml")
        rc = run_kit(args, ["--url", "ws://127.0.0.1:%d/" % port, "--token-file", tok,
                            "--profile", args.profile, "--echo-target", "127.0.0.1:7",
                            "--resume-ttl-ms", str(RESUME_TTL_MS), "--report", report])
        results = {(r[0], r[1]): r for r in report_cases(report)}
        if violate:
            r = results.get((args.profile, "flow.server_respects_credit"))
            if rc == 0 or r is None or r[3] != "FAIL":
                print("FAIL - a server that sends beyond credit was not caught (exit %d, %s)"
                      % (rc, r))
                return 1
            print("ok - --violate credit: kit exit %d, flow.server_respects_credit FAILED" % rc)
            return 0
        failed = [r for r in results.values() if r[3] == "FAIL"]
        skipped = [r for r in results.values() if r[3] == "SKIP" and r[2] == "MUST"]
        if rc != 0 or failed or skipped:
            print("FAIL - kit exit %d; failed: %s; skipped MUSTs: %s" % (rc, failed, skipped))
            print(open(os.path.join(tmp, "reference.log")).read()[-3000:])
            return 1
        print("ok - %d cases against the reference server (%s): none failed, no MUST skipped"
              % (len(results), args.profile))
        return 0
    finally:
        srv.kill()
        srv.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["gateway", "reference", "violation"])
    ap.add_argument("--gateway")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--known-failure", action="append", default=[],
                    help="gateway mode: a case known to fail (a reported disagreement)")
    ap.add_argument("--kit", help="mana-conformance launcher (default: python3 -m conformance)")
    ap.add_argument("--report")
    args = ap.parse_args()
    if args.profile is None:
        args.profile = "all" if args.mode == "gateway" else "json-base64.v1"
    tmp = tempfile.mkdtemp(prefix="mana-conformance-")
    t0 = time.time()
    try:
        if args.mode == "gateway":
            if not args.gateway:
                ap.error("gateway mode needs --gateway")
            rc = gateway(args, tmp)
        else:
            rc = reference(args, tmp, violate=args.mode == "violation")
    except Exception as e:  # noqa: BLE001 - report any failure
        print("FAIL -", e)
        rc = 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("time: %.1fs" % (time.time() - t0))
    return rc


if __name__ == "__main__":
    sys.exit(main())
