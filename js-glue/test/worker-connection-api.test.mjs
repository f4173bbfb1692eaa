// SPDX-License-Identifier: Apache-2.0
// The Connection / Channel API of a connection held by the session worker (RemoteConnection,
// RemoteChannel), member by member against the in-page classes, with the real mana-gateway and
// the devkit's echo target (worker-conn-host.mjs: one real WorkerHost, real connections):
// status getters, state / diagnostic / policy events through a transport cut and a resume, the
// `app` pause withholding credit, writeAll and stats(), close(code) ending the connection for
// every page, and the same members on both classes as in-page.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { startTarget } from '../../tools/devkit/targets.mjs';
import { gatewayConnectOptions, lib, sleep, sockets, startGateway } from './helpers.mjs';
import { memoryStorage } from './ssh-helpers.mjs';
import { closeAll, sharedHost, useGateway } from './worker-conn-host.mjs';

const BANNER = 'SSH-2.0-test\r\n';
const workerUrl = import.meta.resolve('./worker-conn-host.mjs');

async function until(pred, ms = 10_000, what = 'condition') {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const pattern = (n) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + (i >> 9)) & 0xff;
  return b;
};

/** Public members of a class (getters, methods) and of an instance (events, fields). */
function members(instance) {
  const names = new Set(Object.keys(instance));
  for (
    let p = Object.getPrototypeOf(instance);
    p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const k of Object.getOwnPropertyNames(p)) names.add(k);
  }
  names.delete('constructor');
  return [...names].filter((n) => !n.startsWith('_'));
}

describe('the Connection / Channel API through the session worker', () => {
  let gw, echo, storage;
  const start = () => lib.ManaWorkerClient.start({ mode: 'page', workerUrl, storage });
  const connect = () => ({
    url: gw.url,
    token: gw.token({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }),
  });
  const echoTarget = () => ({ host: '127.0.0.1', port: echo.port });

  before(async () => {
    echo = await startTarget({ mode: 'echo', banner: 'SSH-2.0-test' });
    gw = await startGateway({ ports: [echo.port], resumeTtlMs: 10_000 });
    useGateway(gw);
    storage = memoryStorage();
  });

  after(async () => {
    closeAll();
    await gw?.stop();
    await echo?.close();
  });

  test('every member of Connection and Channel exists on the remote views', async () => {
    const client = await start();
    const conn = await client.connect(connect());
    const inPage = await lib.connect(gatewayConnectOptions(gw.url, connect().token));
    await inPage.whenReady();
    const missing = members(inPage).filter((m) => !(m in conn));
    assert.deepEqual(missing, [], 'Connection members missing from RemoteConnection');
    const ch = await conn.openChannel({ target: echoTarget() });
    const inCh = inPage.openChannel({ target: echoTarget() });
    await inCh.opened;
    const missingCh = members(inCh).filter((m) => !(m in ch));
    assert.deepEqual(missingCh, [], 'Channel members missing from RemoteChannel');
    inPage.dispose();
    ch.close();
    conn.dispose();
    await until(() => sharedHost().connectionCount === 0, 10_000, 'released');
    client.dispose();
  });

  test('status, state and diagnostic events through a transport cut and a resume', async () => {
    const client = await start();
    const t0 = performance.now();
    const conn = await client.connect(connect(), { key: 'st' });
    assert.equal(conn.state, 'ready');
    assert.equal(conn.url, gw.url);
    await conn.whenReady();
    assert.ok(conn.server.maxChannels > 0, JSON.stringify(conn.server));
    assert.equal(conn.server.resumeTtlMs, 10_000);
    assert.deepEqual(conn.pauseReasons, []);
    assert.equal(conn.storedSession, 'none');
    assert.equal(conn.lastError, undefined);

    const states = [];
    const diags = [];
    conn.onStateChange((e) => states.push(e));
    conn.onDiagnostic((d) => diags.push(d));
    const ch = await conn.openChannel({ target: echoTarget(), autoConsume: true });
    assert.equal(ch.autoConsume, true);
    await ch.opened;
    let text = '';
    ch.onData(({ data }) => (text += Buffer.from(data).toString()));
    await until(() => text === BANNER, 10_000, 'banner');

    sockets.at(-1).terminate(); // abrupt TCP cut in the worker: it resumes on its own
    await until(() => states.some((e) => e.to === 'ready'), 15_000, 'resumed');
    const lost = states.find((e) => e.to === 'reconnecting');
    assert.ok(lost, JSON.stringify(states));
    assert.ok(lost.error instanceof lib.ManaError, 'the error class crosses the worker');
    assert.equal(conn.state, 'ready');
    assert.ok(conn.lastError instanceof lib.ManaError, 'lastError after the cut');
    const codes = diags.map((d) => d.code);
    assert.ok(codes.includes('resume_accepted'), codes.join(','));
    for (const d of diags) {
      assert.ok(
        d.at >= t0 - 1 && d.at <= performance.now() + 1,
        `${d.code} at ${d.at}: page clock`,
      );
    }
    await ch.writeAll('after the cut');
    await until(() => text === `${BANNER}after the cut`, 10_000, 'echo after the resume');
    await conn.refreshStatus();
    assert.equal(conn.state, 'ready');

    // A second page's view gets the events too; close(code) ends the connection for both.
    const other = await start();
    const conn2 = await other.reattachConnection({ key: 'st' });
    assert.equal(conn2.url, gw.url, 'the URL is kept with the secret');
    const states2 = [];
    conn2.onStateChange((e) => states2.push(e.to));
    const ended = new Promise((r) => conn.onClose(r));
    const ended2 = new Promise((r) => conn2.onClose(r));
    const chClosed = new Promise((r) => ch.onClose(r));
    assert.throws(() => conn.close(1001), { code: 'invalid_argument' });
    conn.close(4001, 'done here');
    assert.deepEqual(await ended, { reason: 'closed', origin: 'local' });
    assert.deepEqual(await ended2, { reason: 'closed', origin: 'local' });
    assert.equal((await chClosed).error?.code, 'session_lost', 'its channel ended with it');
    assert.ok(states.some((e) => e.to === 'closed'));
    assert.ok(states2.includes('closed'), states2.join(','));
    assert.equal(conn.state, 'closed');
    assert.throws(() => conn.setAppPaused(true), lib.InvalidStateError);
    await assert.rejects(conn.openChannel({ target: echoTarget() }), lib.InvalidStateError);
    assert.equal(sharedHost().connectionCount, 0);
    await until(() => sockets.at(-1).readyState === 3, 10_000, 'WebSocket closed');
    client.dispose();
    other.dispose();
  });

  test('app pause withholds credit; writeAll, stats() and onExit as in-page', async (t) => {
    const client = await start();
    const conn = await client.connect(connect());
    const policy = [];
    conn.onPolicy((p) => policy.push(p));
    const ch = await conn.openChannel({ target: echoTarget() });
    let exits = 0;
    ch.onExit(() => exits++);
    const chunks = [];
    let received = 0;
    ch.onData(({ data }) => {
      chunks.push(Buffer.from(data));
      received += data.length;
      ch.consume(data.length);
    });
    await until(() => received === BANNER.length, 10_000, 'banner');

    conn.setAppPaused(true);
    await until(() => conn.pauseReasons.includes('app'), 5_000, 'app pause reported');
    const app = () => policy.filter((p) => p.reason === 'app').at(-1);
    assert.deepEqual(app(), { kind: 'pause', reason: 'app', reasons: ['app'] });
    const N = 4 << 20;
    const payload = pattern(N);
    const writing = ch.writeAll(payload);
    await sleep(800);
    const held = received;
    await sleep(600);
    assert.equal(received, held, 'nothing more arrives while the app pause holds the credit');
    const stats = await ch.stats();
    assert.ok(held - BANNER.length < N, `only ${held} bytes before the pause's credit ran out`);
    assert.ok(stats.received <= stats.recvLimit, JSON.stringify(stats));
    assert.equal(stats.consumed, stats.received, 'everything delivered was consumed by the page');
    t.diagnostic(`app pause: ${held} bytes arrived, window ${stats.window}`);

    conn.setAppPaused(false);
    await writing;
    await until(() => received === BANNER.length + N, 60_000, 'the rest after the pause');
    assert.equal(
      Buffer.compare(Buffer.concat(chunks).subarray(BANNER.length), payload),
      0,
      'byte-exact',
    );
    assert.deepEqual(app(), { kind: 'resume', reason: 'app', reasons: [] });
    assert.ok(!policy.some((p) => p.kind === 'credit_grant'), 'credit grants stay in the worker');
    const after = await ch.stats();
    assert.equal(after.received, BANNER.length + N);
    assert.equal(after.sent, N);
    assert.equal(exits, 0, 'a tcp channel never exits');
    const closed = new Promise((r) => ch.onClose(r));
    ch.close();
    await closed;
    assert.equal(await ch.stats(), undefined, 'no stats once closed');
    await assert.rejects(ch.writeAll('x'), lib.InvalidStateError);
    conn.dispose();
    await until(() => sharedHost().connectionCount === 0, 10_000, 'released');
    assert.equal(await lib.liveCoreSessions(), 0, 'no wasm handle left');
    client.dispose();
  });
});
