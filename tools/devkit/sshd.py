# SPDX-License-Identifier: Apache-2.0
"""The one launcher of a real OpenSSH server for the Python tools (twin of sshd.mjs, key login
only): the gateway tests, mana-proxy's test and bench/run.py.

    from devkit.sshd import start_sshd
    s = start_sshd(tmp)        # s.port, s.user, s.user_key["path"], s.known_hosts(path, alias)
    s.stop()

start_sshd(dir, *, user=None, users=None, authorized_keys=(), host_key_types=("ed25519",),
           user_key_type="ed25519", extra_config="", sshd_path=None, log_path=None,
           timeout=10.0, start_new_session=False, preexec_fn=None) -> Sshd
  dir           working directory (created); keys, sshd_config and (unless log_path says
                otherwise) sshd.log go there
  user          login user (default: the current user); users: AllowUsers (default [user])
  authorized_keys  extra public key lines (the generated user key is always accepted)
  extra_config  lines put first in sshd_config, so they win over the defaults (sshd uses the
                first value of most keywords), e.g. "Ciphers ...\\nLogLevel ERROR"
Sshd: host, port, pid, proc, user, dir, config_path, log_path,
      host_keys {type: {"pub", "fingerprint", "path"}},
      user_key {"path", "public_key", "fingerprint"} (private key file mode 0600),
      known_hosts(path, alias): writes a known_hosts line for `alias` (ssh -o HostKeyAlias),
      log(), stop(): SIGTERM to sshd and every session process it forked, SIGKILL after 2 s.

sshd cannot listen on port 0 and report it: the port comes from net.free_port() and a start that
lost the port to another process (Bind to port ... failed) is retried with a new one.
"""
import base64
import getpass
import hashlib
import os
import signal
import socket
import subprocess
import time

from .net import free_port

_KEY_BITS = {"rsa": ["-b", "3072"], "ecdsa": ["-b", "256"], "ed25519": []}


def fingerprint_of(pub_line):
    """'SHA256:...' (base64 without padding) of an OpenSSH public key line."""
    blob = base64.b64decode(pub_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _keygen(path, kind):
    subprocess.run(["ssh-keygen", "-q", "-t", kind] + _KEY_BITS[kind] +
                   ["-N", "", "-C", "mana-test-" + kind, "-f", path], check=True,
                   stdout=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    pub = open(path + ".pub").read().strip()
    return {"pub": pub, "fingerprint": fingerprint_of(pub), "path": path}


def _banner(port, deadline, proc):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
                s.settimeout(1.0)
                if s.recv(8) == b"SSH-2.0-":
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def _process_tree(root):
    """root and every descendant (from /proc), descendants first."""
    children = {}
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % ent).read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(ent))
    out = []

    def walk(pid):
        for c in children.get(pid, []):
            walk(c)
        out.append(pid)
    walk(root)
    return out


def _kill(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Sshd:
    host = "127.0.0.1"

    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.pid = self.proc.pid

    def known_hosts(self, path, alias):
        with open(path, "w") as f:
            for k in self.host_keys.values():
                kind, blob = k["pub"].split()[:2]
                f.write("%s %s %s\n" % (alias, kind, blob))
        return path

    def log(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""

    def log_tail(self, n=1500):
        return self.log()[-n:]

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace=2.0):
        if self.proc.poll() is None:
            pids = _process_tree(self.pid)
            _kill(pids, signal.SIGTERM)
            end = time.monotonic() + grace
            while self.proc.poll() is None and time.monotonic() < end:
                time.sleep(0.02)
            _kill([p for p in pids if os.path.exists("/proc/%d" % p)], signal.SIGKILL)
        return self.proc.wait()


def start_sshd(dir, *, user=None, users=None, authorized_keys=(), host_key_types=("ed25519",),
               user_key_type="ed25519", extra_config="", sshd_path=None, log_path=None,
               timeout=10.0, start_new_session=False, preexec_fn=None):
    sshd_path = sshd_path or os.environ.get("SSHD") or "/usr/sbin/sshd"
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
    os.makedirs(dir, exist_ok=True)
    os.chmod(dir, 0o755)
    user = user or getpass.getuser()
    host_keys = {t: _keygen(os.path.join(dir, "host_" + t), t) for t in host_key_types}
    uk = _keygen(os.path.join(dir, "user_key"), user_key_type)
    user_key = {"path": uk["path"], "public_key": uk["pub"], "fingerprint": uk["fingerprint"]}
    auth_path = os.path.join(dir, "authorized_keys")
    with open(auth_path, "w") as f:
        f.write("\n".join([uk["pub"]] + list(authorized_keys)) + "\n")
    os.chmod(auth_path, 0o644)  # sshd reads it with the user's uid
    config_path = os.path.join(dir, "sshd_config")
    log_path = log_path or os.path.join(dir, "sshd.log")
    for attempt in range(4):
        port = free_port()
        lines = [extra_config, "ListenAddress 127.0.0.1:%d" % port]
        lines += ["HostKey %s" % k["path"] for k in host_keys.values()]
        lines += ["PidFile %s" % os.path.join(dir, "sshd.pid"), "UsePAM no", "StrictModes no",
                  "PubkeyAuthentication yes", "AuthorizedKeysFile %s" % auth_path,
                  "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                  "PermitRootLogin prohibit-password", "AllowUsers %s" % " ".join(users or [user]),
                  "PrintMotd no", "PrintLastLog no", "MaxStartups 100:30:200",
                  "LogLevel VERBOSE", "Subsystem sftp internal-sftp", ""]
        with open(config_path, "w") as f:
            f.write("\n".join(lines))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([sshd_path, "-D", "-e", "-f", config_path],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=log, start_new_session=start_new_session,
                                    preexec_fn=preexec_fn)
        s = Sshd(proc=proc, port=port, user=user, dir=dir, config_path=config_path,
                 log_path=log_path, host_keys=host_keys, user_key=user_key)
        if _banner(port, time.monotonic() + timeout, proc):
            return s
        s.stop(grace=0)
        text = s.log()
        if attempt < 3 and ("Bind to port" in text or "Address already in use" in text):
            continue
        raise RuntimeError("sshd did not start on 127.0.0.1:%d: %s" % (port, text[-2000:]))
