// Fixture of the SSH tests: real OpenSSH servers (tests/support/sshd.mjs), the real mana-gateway
// (build/native-debug/bin/mana-gateway or $MANA_GATEWAY) allowing exactly those servers, JWTs
// minted with the gateway's secret, and the mana-ssh wasm module loaded from the staged package.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { distDir, lib, sleep } from './helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const { startSshd } = await import(join(root, 'tests', 'support', 'sshd.mjs'));
const gatewayBin =
  process.env.MANA_GATEWAY ?? join(root, 'build', 'native-debug', 'bin', 'mana-gateway');
const SECRET = 'js-glue-ssh-test-secret-0123456789abcdefghij';

export { lib, sleep };
export const sshWasm = join(distDir, 'internal', 'mana-ssh.wasm');
/** The SSH module is part of the package (MANA_WASM_SSH): when it is not, the SSH tests skip. */
export const sshBuilt =
  existsSync(sshWasm) && existsSync(join(distDir, 'internal', 'mana-ssh.mjs'));
if (sshBuilt) await lib.loadSsh({ wasmBinary: readFileSync(sshWasm) });

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}
export const token = (sub = 'alice') => jwt({ sub, exp: Math.floor(Date.now() / 1000) + 600 });

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

async function waitPort(port, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => {
      const s = tcpConnect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} did not open`);
}

/** WebSocket that remembers its instances, so a test can cut the TCP connection abruptly. */
export const sockets = [];
export class TrackedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    sockets.push(this);
  }
}

/** mana-gateway allowing `ports` on 127.0.0.1. Returns { url, stop, log }. */
export async function startGateway(ports) {
  assert.ok(
    existsSync(gatewayBin),
    `${gatewayBin} is missing: run \`make build\` first (or set MANA_GATEWAY)`,
  );
  const gwPort = await freePort();
  const tmp = mkdtempSync(join(tmpdir(), 'mana-js-ssh-gw-'));
  writeFileSync(join(tmp, 'secret'), SECRET);
  writeFileSync(
    join(tmp, 'gw.toml'),
    `[server]\nlisten = "127.0.0.1:${gwPort}"\n[origins]\nallow = []\nallow_missing = true\n` +
      `[auth]\njwt_secret_file = "secret"\n[[targets]]\nhost = "127.0.0.1"\n` +
      `ports = [${ports.join(', ')}]\n[session]\nresume_ttl_ms = 20000\n`,
  );
  const log = [];
  const proc = spawn(gatewayBin, ['--config', join(tmp, 'gw.toml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr.on('data', (d) => log.push(String(d)));
  await waitPort(gwPort);
  return {
    url: `ws://127.0.0.1:${gwPort}/`,
    log: () => log.join(''),
    async stop() {
      proc.kill('SIGTERM');
      if (proc.exitCode === null) await new Promise((r) => proc.once('exit', r));
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export function connectOptions(url, extra = {}) {
  return {
    url,
    token: token(),
    WebSocket: TrackedWebSocket,
    storage: 'memory',
    environment: { document: null, window: null },
    reconnect: { initialDelayMs: 20, jitter: 0 },
    ...extra,
  };
}

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
