// SPDX-License-Identifier: Apache-2.0
// Connections and raw channels held by the session worker (worker/hosted-connection.ts), driven
// through ManaWorkerClient (in-page mode, worker-conn-host.mjs: one real WorkerHost, real
// lib.connect() connections) against the real mana-gateway, the devkit's echo target and sshd:
// byte-exact echo through the worker, one WebSocket for two channels and an SSH session, credit
// withheld while no page views a channel, replay from `offset` after a "reload" (a second client),
// wrong secrets refused, the grace ending the connection and its channels with a typed event, no
// wasm handle left.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTarget } from '../../tools/devkit/targets.mjs';
import { lib, sleep, sockets, startGateway } from './helpers.mjs';
import { memoryStorage, sshBuilt, startSshd } from './ssh-helpers.mjs';
import { TestPage } from './worker-helpers.mjs';
import { closeAll, sharedHost, useGateway } from './worker-conn-host.mjs';

const BANNER = 'SSH-2.0-test\r\n';
const workerUrl = import.meta.resolve('./worker-conn-host.mjs');

/** Byte i of the test pattern (not periodic in 256, so a shifted replay would not match). */
const pattern = (from, n) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = ((from + i) * 7 + ((from + i) >> 11)) & 0xff;
  return b;
};

async function until(pred, ms = 10_000, what = 'condition') {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Writes `data` through a RemoteChannel, waiting for room (onWritable) as needed. */
async function writeAll(ch, data) {
  let off = 0;
  while (off < data.length) {
    off += ch.write(data.subarray(off));
    if (off < data.length) {
      await new Promise((r) => {
        const d = ch.onWritable(() => {
          d.dispose();
          r();
        });
      });
    }
  }
}

describe('connections and channels in the session worker', () => {
  let gw, echo, sshd, storage;
  const start = () => lib.ManaWorkerClient.start({ mode: 'page', workerUrl, storage });
  const connect = () => ({
    url: gw.url,
    token: gw.token({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }),
  });
  const echoTarget = () => ({ host: '127.0.0.1', port: echo.port });

  before(async () => {
    echo = await startTarget({ mode: 'echo', banner: 'SSH-2.0-test' });
    sshd = sshBuilt ? await startSshd() : undefined;
    gw = await startGateway({
      ports: sshd ? [echo.port, sshd.port] : [echo.port],
      resumeTtlMs: 10_000,
    });
    useGateway(gw);
    storage = memoryStorage();
  });

  after(async () => {
    closeAll();
    await gw?.stop();
    await echo?.close();
    await sshd?.stop();
  });

  test('8 MiB echo byte-exact; two channels and an SSH session share one WebSocket', async (t) => {
    const client = await start();
    const t0 = Date.now();
    const before = sockets.length;
    const conn = await client.connect(connect());
    const ch = await conn.openChannel(echoTarget());
    const got = [];
    let total = 0;
    ch.onData(({ data, stream }) => {
      assert.equal(stream, 'stdout');
      got.push(Buffer.from(data));
      total += data.length;
      ch.consume(data.length);
    });
    const payload = pattern(0, 8 << 20);
    await writeAll(ch, payload);
    await until(() => total >= BANNER.length + payload.length, 60_000, '8 MiB echoed');
    const all = Buffer.concat(got);
    assert.equal(all.subarray(0, BANNER.length).toString(), BANNER);
    const sha = (b) => createHash('sha256').update(b).digest('hex');
    assert.equal(sha(all.subarray(BANNER.length)), sha(payload), 'echo is byte-exact (SHA-256)');
    assert.equal(all.length, BANNER.length + payload.length, 'nothing extra');
    t.diagnostic(`8 MiB echoed through the worker in ${Date.now() - t0} ms`);

    const ch2 = await conn.openChannel(echoTarget(), { autoConsume: true });
    let text = '';
    ch2.onData(({ data }) => (text += Buffer.from(data).toString()));
    ch2.write('second channel');
    await until(() => text === `${BANNER}second channel`, 10_000, 'second channel echo');
    assert.equal(ch2.unconsumed, 0, 'autoConsume consumed');
    // Node Buffers: a small one is a view on Node's pool, a subarray a view on a larger buffer;
    // only their own bytes cross to the worker (Buffer#slice would be a view of the whole).
    ch2.write(Buffer.from(' pooled'));
    ch2.write(Buffer.alloc(64, 0x61).subarray(10, 13));
    await until(() => text.length >= `${BANNER}second channel pooledaaa`.length, 10_000, 'Buffers');
    await sleep(200);
    assert.equal(text, `${BANNER}second channel pooledaaa`, "exactly the Buffers' bytes");

    if (sshd) {
      const session = await client.openSession(conn, {
        target: { host: '127.0.0.1', port: sshd.port },
        username: sshd.user,
        auth: { privateKey: sshd.userKey.privateKey },
        command: 'echo shared-websocket',
        stream: true,
      });
      let out = '';
      session.onData((d) => {
        out += Buffer.from(d).toString();
        session.consume(d.length);
      });
      await new Promise((r) => session.onClose(r));
      assert.equal(out, 'shared-websocket\n');
    }
    assert.equal(sockets.length - before, 1, 'one WebSocket for everything on the connection');

    const closed = new Promise((r) => ch.onClose(r));
    ch.close();
    assert.equal(ch.state, 'closing');
    const ev = await closed;
    assert.equal(ch.state, 'closed');
    assert.equal(ev.error, undefined, JSON.stringify(ev));
    assert.throws(() => ch.write('x'), lib.InvalidStateError);
    ch2.close();
    conn.dispose();
    const host = sharedHost();
    await until(() => host.connectionCount === 0 && host.sessionCount === 0, 10_000, 'released');
    await until(() => sockets.at(-1).readyState === 3, 10_000, 'WebSocket closed');
    assert.equal(await lib.liveCoreSessions(), 0, 'no wasm handle left');
    client.dispose();
  });

  test('detached: credit withheld, bounded; a reload replays from offset byte-exact', async (t) => {
    const a = await start();
    const conn = await a.connect(connect(), { key: 'c1', graceMs: 20_000 });
    const chA = await conn.openChannel(echoTarget(), { key: 'k1', graceMs: 20_000 });
    // Page a consumes the first 100 000 bytes (banner included), then "reloads".
    const consumeUpTo = 100_000;
    let seenA = 0;
    chA.onData(({ data }) => {
      const n = Math.max(0, Math.min(data.length, consumeUpTo - seenA));
      seenA += data.length;
      if (n > 0) chA.consume(n);
    });
    const W = 6 << 20;
    let written = 0;
    // Write what the worker takes (bounded by its input queue) for a while.
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline && written < W) {
      written += chA.write(pattern(written, Math.min(256 * 1024, W - written)));
      await sleep(20);
    }
    assert.ok(written > consumeUpTo, `wrote ${written}`);
    const hosted = sharedHost().session(chA.id);
    a.dispose(); // the page goes away: no view, the credit is withheld
    await sleep(500);
    const pending1 = hosted.pendingBytes;
    await sleep(700);
    assert.equal(hosted.pendingBytes, pending1, 'nothing more arrives while detached');
    assert.ok(pending1 <= 1 << 20, `kept ${pending1} bytes: bounded by the channel's credit`);
    assert.deepEqual(hosted.pauseReasons, ['detached']);
    t.diagnostic(`detached: ${pending1} bytes kept by the worker (${written} written)`);

    // Wrong secrets are refused (the connection's and the channel's).
    const intruder = new TestPage(sharedHost(), 'intruder');
    intruder.send({
      v: 1,
      type: 'attach-connection',
      req: 1,
      connectionId: conn.connectionId,
      secret: 'x'.repeat(43),
    });
    const refused = await intruder.type('error');
    assert.equal(refused.code, 'bad-secret');
    intruder.send({
      v: 1,
      type: 'open-channel',
      req: 2,
      connectionId: conn.connectionId,
      target: echoTarget(),
    });
    assert.equal((await intruder.type('error')).code, 'unknown-connection', 'no view: no use');
    intruder.port.close();
    const c = await start();
    await assert.rejects(c.attach(chA.id, 'y'.repeat(43)), { code: 'bad-secret' });

    // The "reloaded" page: the connection and the channel come back from sessionStorage.
    const conn2 = await c.reattachConnection({ key: 'c1' });
    assert.equal(conn2.connectionId, conn.connectionId);
    const chB = await c.reattachChannel({ key: 'k1' });
    assert.equal(chB.offset, consumeUpTo, 'replay starts after what page a consumed');
    assert.deepEqual(chB.target, echoTarget());
    const got = [];
    let total = 0;
    chB.onData(({ data }) => {
      got.push(Buffer.from(data));
      total += data.length;
      chB.consume(data.length);
    });
    await writeAll(chB, pattern(written, W - written));
    const want = Buffer.concat([Buffer.from(BANNER), pattern(0, W)]);
    await until(() => total >= want.length - consumeUpTo, 60_000, 'the rest of the echo');
    assert.equal(
      Buffer.compare(Buffer.concat(got), want.subarray(consumeUpTo)),
      0,
      'replayed and live bytes continue byte-exact from offset',
    );
    chB.close();
    conn2.dispose();
    await until(() => sharedHost().connectionCount === 0, 10_000, 'released');
    c.dispose();
  });

  test('grace: a connection nobody views ends, with its channels (typed events)', async () => {
    const a = await start();
    const conn = await a.connect(connect(), { key: 'g', graceMs: 400 });
    const ch = await conn.openChannel(echoTarget(), { key: 'gch', graceMs: 60_000 });
    // A second page watches the channel (not the connection): it sees the channel end.
    const b = await start();
    a.dispose();
    const chB = await b.reattachChannel({ key: 'gch' });
    assert.equal(chB.id, ch.id);
    const ended = await new Promise((r) => chB.onClose(r));
    assert.equal(ended.reason, 'detached_too_long');
    assert.ok(ended.error instanceof lib.SessionLostError);
    assert.equal(ended.error.code, 'detached_too_long');
    await assert.rejects(b.reattachConnection({ key: 'g' }), lib.SessionLostError);
    assert.equal(sharedHost().connectionCount, 0);
    await until(() => sockets.at(-1).readyState === 3, 10_000, 'WebSocket closed');
    assert.equal(await lib.liveCoreSessions(), 0, 'no wasm handle left');
    b.dispose();
  });
});
