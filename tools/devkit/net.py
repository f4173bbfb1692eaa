# SPDX-License-Identifier: Apache-2.0
"""Loopback helpers of the dev harness (twin of net.mjs), and the start-and-wait of the launchers
that run a program in the foreground with its output in a log file (gateway.py, haproxy.py)."""
import os
import signal
import socket
import subprocess
import time


class StartError(Exception):
    """A launched program exited or was not ready in time. `status` is its exit status (None when
    it was killed for the timeout), `tail` the end of its log; both are in the message too."""

    def __init__(self, message, status=None, tail=""):
        super().__init__(message)
        self.status = status
        self.tail = tail


def free_port():
    """A port that was free a moment ago. Only for programs that cannot listen on port 0 and
    report the port (sshd) or for a port that must stay closed; anything else listens on 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    """True once host:port accepts a TCP connection, False after `timeout` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def log_tail(path, n=2000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def start_and_wait(what, argv, log_path, ready, *, timeout, log_mode="ab", stdout_to_log=True,
                   poll=0.02, **popen):
    """Runs `argv` (stdin /dev/null; stderr, and stdout unless `stdout_to_log` is False, to
    `log_path` opened with `log_mode`; other keywords go to Popen) and calls ready() every `poll`
    seconds until it returns something other than None: returns (Popen, that value). When the
    process exits first, or `timeout` seconds pass, it is killed (its process group when started
    with start_new_session) and waited for, and StartError names `what`, the reason and the tail
    of the log."""
    with open(log_path, log_mode) as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=log if stdout_to_log else subprocess.DEVNULL, stderr=log,
                                **popen)
    end = time.monotonic() + timeout
    try:
        while True:
            value = ready()
            if value is not None:
                return proc, value
            status = proc.poll()
            if status is not None:
                tail = log_tail(log_path)
                raise StartError("%s exited with status %s before it was ready: %s"
                                 % (what, status, tail), status, tail)
            if time.monotonic() >= end:
                tail = log_tail(log_path)
                raise StartError("%s was not ready within %.0f s: %s" % (what, timeout, tail),
                                 None, tail)
            time.sleep(poll)
    except BaseException:
        if proc.poll() is None:
            try:
                if popen.get("start_new_session"):
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            except ProcessLookupError:
                pass
        proc.wait()
        raise
