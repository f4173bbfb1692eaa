# SPDX-License-Identifier: Apache-2.0
"""What every group of `make bench` (bench/run.py, bench/memory.py, bench/lb.py) shares: child
processes in their own process groups (Proc, Registry, run), readiness by /proc/net/tcp, CPU and
memory of process trees from /proc, the gateway's /metrics, and the statistics and number
formats of the report. Python 3 standard library only."""
import json
import os
import queue
import re
import resource
import signal
import statistics
import subprocess
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
ORIGIN = "http://localhost:8080"  # the Origin every WebSocket client of the bench sends
# Peers this repository does not ship: their byte-exactness failures are findings, not failures.
THIRD_PARTY = ("websockify", "socat")


class BenchError(Exception):
    """A step failed (process died, timeout, unexpected output)."""



# --- processes -----------------------------------------------------------------------------------

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Proc:
    """A child process in its own process group; stdout lines are queued by a reader thread."""

    def __init__(self, registry, name, argv, log_dir, stdin=subprocess.DEVNULL, capture=True,
                 cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(log_dir, "%s.log" % name)
        self.lines = queue.Queue()
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            argv, stdin=stdin, stdout=subprocess.PIPE if capture else log, stderr=log, cwd=cwd,
            start_new_session=True, preexec_fn=raise_nofile)
        log.close()
        self.pid = self.popen.pid
        registry.add(self)
        if capture:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.popen.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\r\n"))
        self.lines.put(None)

    def next_line(self, timeout):
        try:
            line = self.lines.get(timeout=max(0.01, timeout))
        except queue.Empty:
            raise BenchError("%s: no output within %.1f s" % (self.name, timeout)) from None
        if line is None:
            self.lines.put(None)
            raise BenchError("%s exited (status %s): %s" % (self.name, self.popen.poll(),
                                                             self.log_tail()))
        return line

    def wait_prefix(self, prefix, timeout):
        end = time.monotonic() + timeout
        while True:
            line = self.next_line(end - time.monotonic())
            if line.startswith(prefix):
                return line

    def next_json(self, timeout):
        end = time.monotonic() + timeout
        while True:
            line = self.next_line(end - time.monotonic())
            if line.startswith("{"):
                return json.loads(line)

    def drain(self):
        out = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return out
            if line is None:
                self.lines.put(None)
                return out
            out.append(line)

    def log_tail(self, n=1500):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.popen.poll() is None

    def stop(self, grace=2.0):
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the group: forked children too
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass


class Registry:
    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)

    def stop_all(self):
        for p in reversed(self.procs):
            p.stop(grace=1.0)
        self.procs = []


def run(argv, timeout, stdin_data=None, check=True, env=None):
    """subprocess.run in its own process group, killed (group) on timeout."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data is not None else
                         subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, preexec_fn=raise_nofile, env=env)
    try:
        out, err = p.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise BenchError("timeout after %.0f s: %s" % (timeout, " ".join(argv[:6]))) from None
    if check and p.returncode != 0:
        raise BenchError("%s exited %d: %s" % (" ".join(argv[:6]), p.returncode,
                                              err.decode(errors="replace")[-800:]))
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def listening(port):
    """True when 127.0.0.1:port is in LISTEN state (read from /proc, no probe connection, so a
    forking relay does not open a connection to its target)."""
    want = "0100007F:%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def wait_listening(port, proc, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if listening(port):
            return
        if not proc.alive():
            raise BenchError("%s exited: %s" % (proc.name, proc.log_tail()))
        time.sleep(0.02)
    raise BenchError("%s: port %d not listening after %.0f s" % (proc.name, port, timeout))


# --- /proc sampling ------------------------------------------------------------------------------

def children_map():
    out = {}
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % ent) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.setdefault(ppid, []).append(int(ent))
    return out


def tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def proc_cpu_s(pid, with_children=True):
    """utime+stime (+cutime+cstime of reaped children) of one process, seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0.0
    f = stat[stat.rindex(")") + 2:].split()
    ticks = int(f[11]) + int(f[12])
    if with_children:
        ticks += int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def tree_cpu_s(pid):
    """CPU of a process tree: live descendants plus what the root reaped."""
    total = proc_cpu_s(pid, with_children=True)
    for p in tree(pid)[1:]:
        total += proc_cpu_s(p, with_children=True)
    return total


def tree_memory(pid):
    """(PSS bytes, RSS bytes, process count) summed over a process tree (smaps_rollup)."""
    pss = rss = 0
    pids = tree(pid)
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return pss, rss, len(pids)


# Slab caches a TCP socket and its descriptor occupy (SLUB may merge some of them into others; the
# ones missing from /proc/slabinfo are skipped). Summing only these keeps other activity on the
# machine (builds churn dentries and kmalloc caches) out of the per-session kernel figure.
SOCKET_SLABS = ("TCP", "TCPv6", "sock_inode_cache", "eventpoll_epi", "eventpoll_pwq", "filp",
                "skbuff_head_cache", "tcp_bind_bucket", "request_sock_TCP")


def kernel_socket_bytes():
    """Kernel memory of TCP sockets: active objects x object size over SOCKET_SLABS plus the TCP
    buffer pages of /proc/net/sockstat. Falls back to /proc/meminfo Slab without slabinfo."""
    total = 0
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                fields = line.split()
                if fields and fields[0] in SOCKET_SLABS:
                    total += int(fields[1]) * int(fields[3])
    except OSError:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Slab:"):
                    total = int(line.split()[1]) * 1024
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                total += int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def scrape_metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\S+)\s+(\S+)$", line)
        if m and not line.startswith("#"):
            out[m.group(1)] = float(m.group(2))
    return out


# --- statistics ----------------------------------------------------------------------------------

def summary(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt_num(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def md_table(head, rows):
    """Markdown table of `rows` (one per peer) under `head`. Transposed (one row per metric, one
    column per peer) when it has more metric columns than max(8, peers): a wide table is not
    readable."""
    if len(head) - 1 > max(8, len(rows)):
        head, rows = ["metric"] + [r[0] for r in rows], [
            [head[i]] + [r[i] for r in rows] for i in range(1, len(head))]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def fmt_signed(v):
    if v is None:
        return "—"
    return ("+" if v >= 0 else "−") + fmt_num(abs(v))
