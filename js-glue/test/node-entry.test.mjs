// SPDX-License-Identifier: Apache-2.0
// The Node entry `@mana/websocket/node` (build/js/package/dist/node.js): connect() with the wasm
// read from the package and `ws`, the `transport` pause ended by the socket's 'drain', and
// toNodeStream() over the real gateway: SSH to a real sshd, 256 MiB into a slow Writable with
// bounded RSS and a cut transport in the middle, byte-exact by SHA-256.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { clearInterval, setImmediate, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startTarget } from '../../tools/devkit/targets.mjs';

// The entry must load both wasm modules by itself: load them through it before the helpers are
// imported (they hand the bytes to the loader, and the first load of the process wins).
const distDir = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'build',
  'js',
  'package',
  'dist',
);
const node = await import(join(distDir, 'node.js'));
await node.loadCore();
const { FakeWebSocket, helloOk, openChannel, sockets } = await import('./helpers.mjs');
const { connectOptions, sshBuilt, startGateway, startSshd } = await import('./ssh-helpers.mjs');
if (sshBuilt) await node.loadSsh();

const MiB = 1024 * 1024;

let sshd, gw, target;
const STREAM_BYTES = Number(process.env.NODE_ENTRY_MIB ?? 256) * MiB;

before(async () => {
  [sshd, target] = await Promise.all([
    sshBuilt ? startSshd() : undefined,
    startTarget({
      mode: 'stream',
      bytes: STREAM_BYTES,
      seed: 7,
      chunk: 256 * 1024,
      banner: 'SSH-2.0-node-entry-target',
    }),
  ]);
  gw = await startGateway([target.port, ...(sshd ? [sshd.port] : [])]);
});

after(async () => {
  await gw?.stop();
  await sshd?.stop();
  await target?.close();
});

test('the node entry: its own wasm load, exports of the browser entry, ws socket drain ends the transport pause', async () => {
  assert.equal(typeof node.toNodeStream, 'function');
  assert.equal(typeof node.AuthError, 'function', 'the browser entry is re-exported');
  // A ws-like socket: an event emitter whose 'upgrade' response carries the TCP socket.
  class EmittingWebSocket extends FakeWebSocket {
    events = new EventEmitter();
    tcp = new EventEmitter();
    on(e, l) {
      this.events.on(e, l);
      return this;
    }
    once(e, l) {
      this.events.once(e, l);
      return this;
    }
  }
  const policy = [];
  const conn = await node.connect({
    url: 'ws://fake/ws',
    token: 'jwt-token',
    WebSocket: EmittingWebSocket,
    highWaterMark: 1 * MiB,
    lowWaterMark: 256 * 1024,
    bufferedPollMs: 60000, // only the drain event can end the pause within this test
  });
  try {
    const ws = FakeWebSocket.last();
    assert.ok(ws instanceof EmittingWebSocket, 'the given constructor is used (subclassed)');
    assert.equal(ws.onbufferdrain, null);
    ws.events.emit('upgrade', { socket: ws.tcp });
    ws.open();
    ws.text(helloOk());
    await conn.whenReady();
    conn.onPolicy((p) => p.kind !== 'credit_grant' && policy.push(`${p.kind}:${p.reason}`));
    ws.sent.length = 0;
    const ch = await openChannel(conn, ws, { window: 4 * MiB });
    ws.bufferedAmount = 2 * MiB; // socket.writableLength + unsent frames
    assert.equal(ch.write(new Uint8Array(1000)), 1000);
    assert.deepEqual(conn.pauseReasons, ['transport']);
    assert.equal(ch.write(new Uint8Array(1000)), 0, 'nothing accepted while paused');
    ws.bufferedAmount = 512 * 1024;
    ws.tcp.emit('drain'); // above the low-water mark: still paused
    assert.deepEqual(conn.pauseReasons, ['transport']);
    ws.bufferedAmount = 0;
    ws.tcp.emit('drain');
    assert.deepEqual(conn.pauseReasons, [], 'the drain ended the pause without the poll');
    assert.deepEqual(policy, ['pause:transport', 'resume:transport']);
    assert.equal(ch.write(new Uint8Array(1000)), 1000);
  } finally {
    conn.dispose();
    FakeWebSocket.instances.length = 0;
  }
});

test(
  'SSH through the gateway to sshd: `cat` round-trip of 8 MiB through toNodeStream(session)',
  { skip: sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)' },
  async () => {
    const conn = await node.connect(connectOptions(gw));
    try {
      await conn.whenReady();
      const session = await conn.openSession({
        target: { host: '127.0.0.1', port: sshd.port },
        username: sshd.user,
        auth: { privateKey: sshd.userKey.privateKey },
        knownHosts: 'memory',
        command: 'cat',
        flow: 'manual',
      });
      assert.throws(
        () =>
          node.toNodeStream(
            conn.openChannel({
              target: { host: '127.0.0.1', port: sshd.port },
              autoConsume: true,
            }),
          ),
        (e) => e instanceof node.InvalidStateError,
      );
      const duplex = node.toNodeStream(session, { highWaterMark: 256 * 1024 });
      const exit = new Promise((r) => duplex.once('exit', r));
      const total = 8 * MiB;
      const sent = createHash('sha256');
      const got = createHash('sha256');
      let received = 0;
      await pipeline(
        Readable.from(
          (function* () {
            for (let i = 0; i < total / 65536; i++) {
              const b = Buffer.alloc(65536, i & 0xff);
              b.writeUInt32BE(i, 0);
              sent.update(b);
              yield b;
            }
          })(),
        ),
        duplex,
        new Writable({
          write(chunk, _enc, cb) {
            got.update(chunk);
            received += chunk.length;
            cb();
          },
        }),
      );
      assert.equal(received, total);
      assert.equal(got.digest('hex'), sent.digest('hex'), 'cat echoed every byte in order');
      assert.deepEqual(await exit, { code: 0 });
      assert.equal(session.state, 'closed');
      assert.equal(session.error, undefined);
    } finally {
      conn.dispose();
    }
  },
);

test('256 MiB through toNodeStream(channel) into a slow Writable: bounded RSS, server stopped by credit, cut transport resumed, byte-exact', async () => {
  const windowMax = 2 * MiB;
  const hwm = 1 * MiB;
  const conn = await node.connect(
    connectOptions(gw, { window: { initial: 256 * 1024, max: windowMax } }),
  );
  try {
    await conn.whenReady();
    const states = [];
    conn.onStateChange((e) => states.push(e.to));
    const ch = conn.openChannel({ target: { host: '127.0.0.1', port: target.port }, kind: 'tcp' });
    const duplex = node.toNodeStream(ch, { highWaterMark: hwm });
    const banner = Buffer.from('SSH-2.0-node-entry-target\r\n');
    const hash = createHash('sha256');
    let head = Buffer.alloc(0);
    let got = 0;
    let baseline;
    let peak = 0;
    const sampler = setInterval(() => {
      const rss = process.memoryUsage().rss;
      if (baseline !== undefined) peak = Math.max(peak, rss - baseline);
    }, 25);
    const stall = { at: 160 * MiB, ms: 1200, received: [] };
    let cut = false;
    const t0 = performance.now();
    // Slow: every 64 KiB waits for the next macrotask, every 16 MiB for 60 ms; at 160 MiB it stalls
    // for 1.2 s while the channel's `received` counter is sampled (the server must stop).
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk, _enc, cb) {
        if (head.length < banner.length) {
          const take = Math.min(chunk.length, banner.length - head.length);
          head = Buffer.concat([head, chunk.subarray(0, take)]);
          chunk = chunk.subarray(take);
        }
        const before = got;
        got += chunk.length;
        hash.update(chunk);
        if (baseline === undefined && got >= 8 * MiB) baseline = process.memoryUsage().rss;
        if (!cut && got >= 96 * MiB) {
          cut = true;
          sockets[sockets.length - 1].terminate(); // abrupt TCP cut: no close frame
        }
        if (before < stall.at && got >= stall.at) {
          const t = setInterval(() => stall.received.push(ch.stats()?.received ?? -1), 100);
          return void setTimeout(() => (clearInterval(t), cb()), stall.ms);
        }
        if (Math.floor(before / (16 * MiB)) !== Math.floor(got / (16 * MiB)))
          return void setTimeout(cb, 60);
        setImmediate(cb);
      },
    });
    // The channel's stream ends when the target closes; here the target keeps its socket open,
    // so end the pipeline after the last byte.
    const done = new Promise((resolve, reject) => {
      sink.on('error', reject);
      const check = setInterval(() => {
        if (got >= STREAM_BYTES) (clearInterval(check), resolve());
      }, 20);
    });
    duplex.pipe(sink);
    duplex.on('error', (e) => sink.destroy(e));
    await done;
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    assert.equal(head.toString(), banner.toString());
    assert.equal(got, STREAM_BYTES, 'exact length: nothing lost or duplicated');
    assert.equal(
      hash.digest('hex'),
      target.connections[0].hashOut(),
      'SHA-256 of what the target sent',
    );
    assert.equal(target.connections.length, 1, 'one target connection: the session was resumed');
    assert.deepEqual(states, ['reconnecting', 'authenticating', 'ready']);
    // During the stall the server stopped: after the readable side filled (hwm) and the credit
    // outstanding arrived (<= one window), the channel received nothing more.
    const r = stall.received;
    assert.ok(r.length >= 10, `stall samples: ${r.length}`);
    assert.equal(r[r.length - 1], r[4], `received grew during the stall: ${r.join(',')}`);
    assert.ok(
      r[r.length - 1] - stall.at <= hwm + 2 * windowMax + 1 * MiB,
      `in flight at the stall: ${r[r.length - 1] - stall.at} bytes`,
    );
    const bound = 2 * windowMax + 16 * MiB;
    console.log(
      `node-entry: 256 MiB in ${seconds.toFixed(1)} s (${(256 / seconds).toFixed(1)} MiB/s incl. ` +
        `${stall.ms} ms stall); RSS growth peak ${(peak / MiB).toFixed(1)} MiB (bound ${bound / MiB} MiB); ` +
        `received during the stall ${r[0] - stall.at}..${r[r.length - 1] - stall.at} bytes past the stall point`,
    );
    assert.ok(peak <= bound, `RSS grew ${(peak / MiB).toFixed(1)} MiB > ${bound / MiB} MiB`);
    duplex.destroy();
  } finally {
    conn.dispose();
  }
});
