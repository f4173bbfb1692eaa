// Loopback test against the real mana-gateway (build/native-debug/bin/mana-gateway, or
// $MANA_GATEWAY): the npm `ws` package stands in for the browser WebSocket, and a small TCP
// server that greets with an SSH banner and then echoes is the target.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { lib, sleep } from './helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const gatewayBin =
  process.env.MANA_GATEWAY ?? join(root, 'build', 'native-debug', 'bin', 'mana-gateway');
const SECRET = 'js-glue-test-secret-0123456789abcdefghij';

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}
const token = (sub = 'alice') => jwt({ sub, exp: Math.floor(Date.now() / 1000) + 300 });

function listen(server) {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
}
async function freePort() {
  const s = createServer();
  const p = await listen(s);
  await new Promise((r) => s.close(r));
  return p;
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

// WebSocket that remembers its instances, so a test can cut the TCP connection abruptly.
const sockets = [];
class TrackedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    sockets.push(this);
  }
}

let gateway, target, tmp, url, targetPort;
const gatewayLog = [];

before(async () => {
  assert.ok(
    existsSync(gatewayBin),
    `${gatewayBin} is missing: run \`make build\` first (or set MANA_GATEWAY)`,
  );
  target = createServer((sock) => {
    sock.write('SSH-2.0-test\r\n');
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => undefined);
  });
  targetPort = await listen(target);
  const gwPort = await freePort();
  tmp = mkdtempSync(join(tmpdir(), 'mana-js-gw-'));
  writeFileSync(join(tmp, 'secret'), SECRET);
  writeFileSync(
    join(tmp, 'gw.toml'),
    `[server]\nlisten = "127.0.0.1:${gwPort}"\n[origins]\nallow = []\nallow_missing = true\n` +
      `[auth]\njwt_secret_file = "secret"\n[[targets]]\nhost = "127.0.0.1"\nports = [${targetPort}]\n` +
      `[session]\nresume_ttl_ms = 10000\n`,
  );
  gateway = spawn(gatewayBin, ['--config', join(tmp, 'gw.toml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  gateway.stderr.on('data', (d) => gatewayLog.push(String(d)));
  await waitPort(gwPort);
  url = `ws://127.0.0.1:${gwPort}/`;
});

after(async () => {
  gateway?.kill('SIGTERM');
  await new Promise((r) => (gateway ? gateway.once('exit', r) : r()));
  target?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const options = (extra = {}) => ({
  url,
  token: token(),
  WebSocket: TrackedWebSocket,
  storage: 'memory',
  environment: { document: null, window: null },
  reconnect: { initialDelayMs: 20, jitter: 0 },
  ...extra,
});

/** Collects channel bytes (consuming them) until `n` arrived. */
function collector(ch) {
  const chunks = [];
  let total = 0;
  let waiter;
  ch.onData(({ data }) => {
    chunks.push(data);
    total += data.length;
    ch.consume(data.length);
    if (waiter && total >= waiter.n) waiter.resolve();
  });
  return {
    until(n, ms = 10000) {
      if (total >= n) return Promise.resolve(Buffer.concat(chunks));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${total}/${n} bytes arrived`)), ms);
        waiter = { n, resolve: () => (clearTimeout(t), resolve(Buffer.concat(chunks))) };
      });
    },
  };
}

test('handshake, SSH banner, echo of 1 MiB under credit, close', async () => {
  const conn = await lib.connect(options());
  await conn.whenReady();
  assert.equal(conn.state, 'ready');
  assert.equal(conn.server.server.length > 0, true);
  const ch = conn.openChannel({ target: { host: '127.0.0.1', port: targetPort }, kind: 'tcp' });
  const rx = collector(ch);
  await ch.opened;
  const banner = 'SSH-2.0-test\r\n';
  assert.equal((await rx.until(banner.length)).toString(), banner);
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  await ch.writeAll(payload);
  const all = await rx.until(banner.length + payload.length, 20000);
  assert.equal(Buffer.compare(all.subarray(banner.length), payload), 0, 'echo is byte-exact');
  const stats = ch.stats();
  assert.equal(stats.sent, payload.length);
  assert.ok(stats.sendLimit >= stats.sent, 'never sent past the server credit');
  conn.close();
  assert.equal(conn.state, 'closed');
  conn.dispose();
});

test('a target outside the policy is refused with ChannelOpenError', async () => {
  const conn = await lib.connect(options());
  await conn.whenReady();
  const ch = conn.openChannel({
    target: { host: '127.0.0.1', port: targetPort === 1 ? 2 : 1 },
    kind: 'tcp',
  });
  await assert.rejects(
    ch.opened,
    (e) => e instanceof lib.ChannelOpenError && e.code === 'policy_denied',
  );
  assert.equal(conn.state, 'ready');
  conn.dispose();
});

test('a bad JWT is an AuthError (4003, remote)', async () => {
  const conn = await lib.connect(options({ token: 'not.a.jwt' }));
  await assert.rejects(
    conn.whenReady(),
    (e) =>
      e instanceof lib.AuthError &&
      e.wsCode === 4003 &&
      e.appCode === 4003 &&
      e.origin === 'remote',
  );
  assert.equal(conn.state, 'closed');
  conn.dispose();
});

test('cut transport -> reconnecting -> resumed, no byte lost or duplicated', async () => {
  const conn = await lib.connect(options());
  await conn.whenReady();
  const states = [];
  conn.onStateChange((e) => states.push(e.to));
  const ch = conn.openChannel({ target: { host: '127.0.0.1', port: targetPort }, kind: 'tcp' });
  const rx = collector(ch);
  await ch.opened;
  await rx.until(14);
  await ch.writeAll('before-');
  await rx.until(14 + 7);
  sockets[sockets.length - 1].terminate(); // abrupt: no close frame
  await sleep(5);
  assert.equal(conn.state, 'reconnecting');
  ch.write('during-'); // kept for replay
  await new Promise((r) => {
    const d = conn.onStateChange((e) => e.to === 'ready' && (d.dispose(), r()));
  });
  await ch.writeAll('after');
  const all = (await rx.until(14 + 7 + 7 + 5)).toString();
  assert.equal(all, 'SSH-2.0-test\r\nbefore-during-after');
  assert.deepEqual(states, ['reconnecting', 'authenticating', 'ready']);
  conn.dispose();
  assert.equal(await lib.liveCoreSessions(), 0, 'every wasm handle released');
});
