// Fixture of the SSH tests: real OpenSSH servers (tests/support/sshd.mjs), the real mana-gateway
// (build/native-debug/bin/mana-gateway or $MANA_GATEWAY) allowing exactly those servers, JWTs
// minted with the gateway's secret, and the mana-ssh wasm module loaded from the staged package.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  distDir,
  jwt,
  lib,
  gatewayConnectOptions,
  sleep,
  sockets,
  startGateway as startRealGateway,
  TrackedWebSocket,
} from './helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const { startSshd } = await import(join(root, 'tests', 'support', 'sshd.mjs'));
const SECRET = 'js-glue-ssh-test-secret-0123456789abcdefghij';

export { lib, sleep };
export const sshWasm = join(distDir, 'internal', 'mana-ssh.wasm');
/** The SSH module is part of the package (MANA_WASM_SSH): when it is not, the SSH tests skip. */
export const sshBuilt =
  existsSync(sshWasm) && existsSync(join(distDir, 'internal', 'mana-ssh.mjs'));
if (sshBuilt) await lib.loadSsh({ wasmBinary: readFileSync(sshWasm) });

export const token = (sub = 'alice') =>
  jwt(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600 });

export { sockets, TrackedWebSocket };

/** mana-gateway allowing `ports` on 127.0.0.1. Returns { url, stop, log }. */
export function startGateway(ports) {
  return startRealGateway({
    secret: SECRET,
    ports,
    resumeTtlMs: 20000,
    tmpPrefix: 'mana-js-ssh-gw-',
  });
}

export const connectOptions = (url, extra = {}) => gatewayConnectOptions(url, token(), extra);

/** An in-memory Storage-like object (what knownHosts accepts besides 'local' / 'memory'). */
export function memoryStorage(initial = {}) {
  const m = new Map(Object.entries(initial));
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
  };
}

/** Collects a session's stdout/stderr as text; until(re) waits for a match. */
export function collect(session) {
  const out = { stdout: '', stderr: '', exit: undefined, closed: undefined };
  const waiters = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pred(out)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(out);
      }
    }
  };
  const dec = new TextDecoder();
  const decErr = new TextDecoder();
  session.onData((d) => {
    out.stdout += dec.decode(d, { stream: true });
    check();
  });
  session.onStderr((d) => {
    out.stderr += decErr.decode(d, { stream: true });
    check();
  });
  session.onExit((e) => {
    out.exit = e;
    check();
  });
  session.onClose((e) => {
    out.closed = e;
    check();
  });
  out.until = (pred, ms = 15000, what = 'condition') =>
    new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(
          new Error(
            `timeout waiting for ${what}; stdout=${JSON.stringify(out.stdout.slice(-300))} ` +
              `stderr=${JSON.stringify(out.stderr.slice(-300))}`,
          ),
        );
      }, ms);
      waiters.push(w);
      check();
    });
  out.text = (re, ms) => out.until((o) => re.test(o.stdout), ms, String(re));
  out.closedP = (ms) => out.until((o) => o.closed !== undefined, ms, 'close');
  return out;
}
