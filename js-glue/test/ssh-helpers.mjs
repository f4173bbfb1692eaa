// SPDX-License-Identifier: Apache-2.0
// Fixture of the SSH tests: real OpenSSH servers (tools/devkit/sshd.mjs), the real mana-gateway
// (tools/devkit/gateway.mjs: build/native-debug/bin/mana-gateway or $MANA_GATEWAY) allowing
// exactly those servers, JWTs minted with the gateway's key, and the mana-ssh wasm module loaded
// from the staged package.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd } from '../../tools/devkit/sshd.mjs';
import {
  distDir,
  lib,
  gatewayConnectOptions,
  sleep,
  sockets,
  startGateway as startRealGateway,
  TrackedWebSocket,
} from './helpers.mjs';

export { lib, sleep, startSshd };
export const sshWasm = join(distDir, 'internal', 'mana-ssh.wasm');
/** The SSH module is part of the package (MANA_WASM_SSH): when it is not, the SSH tests skip. */
export const sshBuilt =
  existsSync(sshWasm) && existsSync(join(distDir, 'internal', 'mana-ssh.mjs'));
if (sshBuilt) await lib.loadSsh({ wasmBinary: readFileSync(sshWasm) });

export { sockets, TrackedWebSocket };

/** mana-gateway allowing `ports` on 127.0.0.1. Returns the devkit's Gateway ({ url, stop, ... }). */
export function startGateway(ports) {
  return startRealGateway({ ports, resumeTtlMs: 20000 });
}

/** Options of lib.connect() to `gw` with a fresh token of it (sub alice, valid 10 minutes). */
export const connectOptions = (gw, extra = {}) =>
  gatewayConnectOptions(
    gw.url,
    gw.token({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }),
    extra,
  );

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

/**
 * The transport-cut journey every SSH test file runs against its server: `open(options)` opens
 * an exec session (the caller adds target, auth, `via`) printing 300 markers; the WebSocket is cut
 * abruptly after marker 40 (no close frame); every marker arrives once, in order, the session
 * takes input after the resume and exits 0 on a connection that is `ready` again.
 */
export async function cutMidSession(conn, open) {
  const states = [];
  conn.onStateChange((e) => states.push(e.to));
  const s = await open({
    command: 'for i in $(seq 1 300); do echo m$i; sleep 0.005; done; read -r line; echo got-$line',
  });
  const out = collect(s);
  await out.text(/m40\n/);
  sockets[sockets.length - 1].terminate(); // abrupt TCP cut, no close frame
  await out.text(/m300\n/, 30000);
  await s.writeAll('after-cut\n');
  await out.closedP(15000);
  assert.ok(states.includes('reconnecting'), states.join(','));
  assert.equal(conn.state, 'ready');
  const lines = out.stdout.trim().split('\n');
  const expected = Array.from({ length: 300 }, (_, i) => `m${i + 1}`);
  assert.deepEqual(lines.slice(0, 300), expected, 'every marker once, in order');
  assert.equal(lines[300], 'got-after-cut');
  assert.deepEqual(out.exit, { code: 0 });
  return out;
}
