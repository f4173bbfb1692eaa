# SPDX-License-Identifier: Apache-2.0
"""Loopback helpers of the dev harness (twin of net.mjs)."""
import socket
import time


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
