# SPDX-License-Identifier: Apache-2.0
"""The one launcher of mana-gateway for the Python tools (twin of gateway.mjs): the gateway
tests, the conformance kit's driver, bench/run.py.

    from devkit.gateway import start_gateway
    gw = start_gateway(binary, tmp, origins=[ORIGIN], targets=[{"host": "127.0.0.1",
                       "ports": [port]}], config={"session": {"resume_ttl_ms": 5000}})
    # gw.port, gw.url, gw.pid, gw.token(sub="alice"), gw.logs()
    gw.stop()

It writes <dir>/<name>.toml and the JWT key <dir>/<name>.jwt-secret (mode 0600; `secret` or a
fresh one), starts the gateway with `--listen 127.0.0.1:0` (or `listen`), stderr to
<dir>/<name>.log (or `log_path`), and reads the port from the `listening` log line, which the
gateway writes at every log level: no free-port race. Startup is bounded by `timeout`; the error
carries the tail of the log (net.start_and_wait, shared with haproxy.py).

start_gateway(binary, dir, name="gateway", *, origins=(), allow_missing_origin=False,
              targets=(), config=None, log_level=None, secret=None, listen="127.0.0.1:0",
              log_path=None, env=None, preexec_fn=None, start_new_session=False, timeout=15.0)
  targets: [{"host": ..., "ports": [...]}, {"cidr": ..., "ports": [...]}]
  config:  {section: {key: value}}: every other key ([server], [session], [limits], [rate],
           [relay], [tls]...); values are str, int, float, bool or lists of them
  env:     extra environment variables (ASan options, LD_PRELOAD shims)
"""
import json
import os
import signal
import subprocess

from . import tokens
from .net import StartError, start_and_wait  # noqa: F401 - StartError for the callers


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[%s]" % ", ".join(_toml_value(x) for x in v)
    raise ValueError("gateway config: cannot write %r as TOML" % (v,))


def gateway_toml(sections, targets=()):
    """The TOML text of `sections` ({name: {key: value}}) and `targets`."""
    out = []
    for name, keys in sections.items():
        out.append("[%s]" % name)
        out += ["%s = %s" % (k, _toml_value(v)) for k, v in keys.items() if v is not None]
    for t in targets:
        out.append("[[targets]]")
        out += ["%s = %s" % (k, _toml_value(v)) for k, v in t.items()]
    return "\n".join(out) + "\n"


class Gateway:
    def __init__(self, proc, port, name, dir, config_path, config_text, log_path, secret,
                 tls, start_new_session):
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.name = name
        self.dir = dir
        self.config_path = config_path
        self.config_text = config_text
        self.log_path = log_path
        self.secret = secret
        self.url = "%s://127.0.0.1:%d/" % ("wss" if tls else "ws", port)
        self._group = start_new_session

    def token(self, sub="dev", **claims):
        """An HS256 JWT for this gateway (exp now + 300 s unless given)."""
        claims["sub"] = sub
        return tokens.mint(self.secret, claims)

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_tail(self, n=2000):
        return self.logs()[-n:]

    def alive(self):
        return self.proc.poll() is None

    def poll(self):
        return self.proc.poll()

    def _signal(self, sig):
        try:
            if self._group:
                os.killpg(self.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after `grace` seconds (the process group when started in its
        own session); returns the exit status. Idempotent."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None or self._group:
            self._signal(signal.SIGKILL)
        return self.proc.wait()

    def kill(self):
        self._signal(signal.SIGKILL)
        return self.proc.wait()


def _listening_port(log_path):
    """A ready() for net.start_and_wait: the port of the `listening` line once logged."""
    state = {"seen": 0, "buf": b""}

    def ready():
        with open(log_path, "rb") as f:
            f.seek(state["seen"])
            chunk = f.read()
        state["seen"] += len(chunk)
        state["buf"] += chunk
        while b"\n" in state["buf"]:
            line, state["buf"] = state["buf"].split(b"\n", 1)
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == "listening":
                return int(entry["port"])
        return None
    return ready


def start_gateway(binary, dir, name="gateway", *, origins=(), allow_missing_origin=False,
                  targets=(), config=None, log_level=None, secret=None, listen="127.0.0.1:0",
                  log_path=None, env=None, preexec_fn=None, start_new_session=False,
                  timeout=15.0):
    extra = dict(config or {})
    secret = secret if secret is not None else tokens.new_secret()
    secret_path = tokens.write_secret(os.path.join(dir, name + ".jwt-secret"), secret)
    sections = {
        # No `listen` key: the config refuses port 0; the command line's --listen sets it.
        "server": dict({"log_level": log_level}, **extra.pop("server", {})),
        "origins": dict({"allow": list(origins), "allow_missing": allow_missing_origin},
                        **extra.pop("origins", {})),
        "auth": dict({"jwt_secret_file": secret_path}, **extra.pop("auth", {})),
    }
    sections.update(extra)
    text = gateway_toml(sections, targets)
    config_path = os.path.join(dir, name + ".toml")
    with open(config_path, "w") as f:
        f.write(text)
    log_path = log_path or os.path.join(dir, name + ".log")
    tls = bool(sections.get("tls", {}).get("cert_file"))
    proc, port = start_and_wait(
        "mana-gateway %s" % name, [binary, "--config", config_path, "--listen", listen],
        log_path, _listening_port(log_path), timeout=timeout, log_mode="wb",
        stdout_to_log=False, env=None if env is None else dict(os.environ, **env),
        preexec_fn=preexec_fn, start_new_session=start_new_session)
    return Gateway(proc, port, name, dir, config_path, text, log_path, secret, tls,
                   start_new_session)
