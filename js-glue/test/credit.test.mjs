// Credit accounting in both directions and pause reasons.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import {
  FakeTarget,
  FakeWebSocket,
  dataFrame,
  lib,
  openChannel,
  readyConnection,
  sleep,
  trackConnections,
} from './helpers.mjs';

const track = trackConnections(afterEach);
const bytes = (n, v = 0x61) => new Uint8Array(n).fill(v);
const flows = (ws) => ws.controls().filter((m) => m.t === 'flow');

test('write accepts at most the server credit and resumes on flow', async () => {
  const { conn, ws } = track(await readyConnection());
  const ch = await openChannel(conn, ws, { window: 1024 });
  assert.equal(ch.writable, 1024);
  assert.equal(ch.write(bytes(1030)), 1024);
  assert.equal(ch.write(bytes(1)), 0);
  const frames = ws.dataFrames();
  assert.equal(frames.length, 1);
  assert.equal(frames[0].id, ch.id);
  assert.equal(frames[0].payload.length, 1024);
  const writable = [];
  ch.onWritable((n) => writable.push(n));
  ws.text({ t: 'flow', id: ch.id, credit: 7, rx: 1024 });
  assert.deepEqual(writable, [7]);
  assert.equal(ch.write(bytes(100)), 7);
  assert.equal(ch.stats().sent, 1031);
  assert.equal(ch.stats().sendLimit, 1031);
});

test('writeAll waits for credit', async () => {
  const { conn, ws } = track(await readyConnection());
  const ch = await openChannel(conn, ws, { window: 1024 });
  const payload = new Uint8Array(2500).map((_, i) => i % 251);
  const done = ch.writeAll(payload);
  await sleep(1);
  ws.text({ t: 'flow', id: ch.id, credit: 1024, rx: 1024 });
  await sleep(1);
  ws.text({ t: 'flow', id: ch.id, credit: 1024, rx: 2048 });
  await done;
  const sent = ws.dataFrames().flatMap((f) => [...f.payload]);
  assert.deepEqual(sent, [...payload]);
});

test('credit is granted only after consume()', async () => {
  const { conn, ws } = track(await readyConnection({ window: { initial: 4096, max: 4096 } }));
  const ch = await openChannel(conn, ws);
  ws.binary(dataFrame(ch.id, bytes(3000)));
  assert.equal(flows(ws).length, 0, 'no grant before consumption');
  assert.equal(ch.stats().received, 3000);
  ch.consume(1000);
  assert.equal(flows(ws).length, 0, 'below half a window consumed');
  ch.consume(2000);
  const [f] = flows(ws);
  assert.equal(f.id, ch.id);
  assert.equal(f.credit, 3000);
  assert.equal(ch.stats().consumed, 3000);
  assert.throws(() => ch.consume(1), lib.InvalidStateError);
});

test('autoConsume grants after the listeners ran', async () => {
  const { conn, ws } = track(await readyConnection({ window: { initial: 4096, max: 4096 } }));
  const ch = await openChannel(conn, ws, { autoConsume: true });
  let seen = 0;
  ch.onData((d) => (seen += d.data.length));
  ws.binary(dataFrame(ch.id, bytes(2100)));
  assert.equal(seen, 2100);
  assert.equal(ch.unconsumed, 0);
  assert.equal(flows(ws)[0].credit, 2100);
});

test('server overrunning its credit is a FlowControlError (4007)', async () => {
  const { conn, ws } = track(await readyConnection({ window: { initial: 1024, max: 1024 } }));
  const ch = await openChannel(conn, ws);
  ws.binary(dataFrame(ch.id, bytes(2000)));
  assert.equal(conn.state, 'closed');
  assert.ok(conn.lastError instanceof lib.FlowControlError);
  assert.equal(conn.lastError.origin, 'remote');
  assert.equal(ws.closedWith.code, 4007);
});

test('hidden pause withholds credit; visible grants it', async () => {
  const document = new FakeTarget({ visibilityState: 'visible' });
  const { conn, ws } = track(
    await readyConnection({ window: { initial: 4096, max: 4096 }, environment: { document } }),
  );
  const ch = await openChannel(conn, ws);
  const policy = [];
  conn.onPolicy((p) => policy.push(p));
  document.visibilityState = 'hidden';
  document.dispatch('visibilitychange');
  assert.deepEqual(conn.pauseReasons, ['hidden']);
  ws.binary(dataFrame(ch.id, bytes(4000)));
  ch.consume(4000);
  assert.equal(flows(ws).length, 0, 'no credit while hidden');
  document.visibilityState = 'visible';
  document.dispatch('visibilitychange');
  assert.deepEqual(conn.pauseReasons, []);
  assert.equal(flows(ws)[0].credit, 4000);
  assert.deepEqual(
    policy.filter((p) => p.kind !== 'credit_grant').map((p) => `${p.kind}:${p.reason}`),
    ['pause:hidden', 'resume:hidden'],
  );
  // Page freeze is a hidden pause too.
  document.dispatch('freeze');
  assert.deepEqual(conn.pauseReasons, ['hidden']);
  document.dispatch('resume');
  assert.deepEqual(conn.pauseReasons, []);
});

test('offline pause; online triggers an immediate reconnect attempt', async () => {
  const window = new FakeTarget();
  const { conn, ws } = track(
    await readyConnection({
      environment: { window, onLine: () => true },
      reconnect: { initialDelayMs: 60000 },
    }),
  );
  window.dispatch('offline');
  assert.deepEqual(conn.pauseReasons, ['offline']);
  ws.serverClose(1006);
  assert.equal(conn.state, 'reconnecting');
  assert.equal(FakeWebSocket.instances.length, 1, 'no attempt while offline');
  window.dispatch('online');
  assert.deepEqual(conn.pauseReasons, []);
  assert.equal(
    FakeWebSocket.instances.length,
    2,
    'online reconnects without waiting for the backoff',
  );
});

test('bufferedAmount above the high-water mark pauses transport until below the low-water mark', async () => {
  const { conn, ws } = track(
    await readyConnection({ highWaterMark: 1000, lowWaterMark: 100, bufferedPollMs: 5 }),
  );
  const ch = await openChannel(conn, ws, { window: 1 << 20 });
  const policy = [];
  conn.onPolicy((p) => policy.push(`${p.kind}:${p.reason}`));
  ws.bufferedAmount = 5000;
  assert.equal(ch.write(bytes(10)), 10);
  assert.deepEqual(conn.pauseReasons, ['transport']);
  assert.equal(ch.write(bytes(10)), 0, 'no writes while the transport is congested');
  assert.equal(ch.writable, 0);
  let writable = 0;
  ch.onWritable((n) => (writable = n));
  ws.bufferedAmount = 500;
  await sleep(20);
  assert.deepEqual(conn.pauseReasons, ['transport'], 'still above the low-water mark');
  ws.bufferedAmount = 50;
  await sleep(20);
  assert.deepEqual(conn.pauseReasons, []);
  assert.ok(writable > 0, 'channels are told they may write again');
  assert.deepEqual(policy, ['pause:transport', 'resume:transport']);
});

test('open_err rejects opened with ChannelOpenError carrying the gateway code', async () => {
  const { conn, ws } = track(await readyConnection());
  const ch = conn.openChannel({ target: { host: '10.0.0.1', port: 22 }, kind: 'tcp' });
  ws.text({ t: 'open_err', id: ch.id, code: 'policy_denied', msg: 'no' });
  await assert.rejects(
    ch.opened,
    (e) => e instanceof lib.ChannelOpenError && e.code === 'policy_denied' && e.origin === 'remote',
  );
  assert.equal(ch.state, 'closed');
  assert.throws(() => ch.write('x'), lib.InvalidStateError);
});

test('channel close waits for the server and then fires onClose', async () => {
  const { conn, ws } = track(await readyConnection());
  const ch = await openChannel(conn, ws);
  let closed;
  ch.onClose((e) => (closed = e));
  ch.close('bye');
  assert.equal(ch.state, 'closing');
  assert.deepEqual(
    ws.controls().find((m) => m.t === 'close'),
    { t: 'close', id: ch.id, reason: 'bye' },
  );
  ws.text({ t: 'close', id: ch.id });
  assert.equal(ch.state, 'closed');
  assert.ok(closed, 'onClose fired');
  assert.equal(conn.state, 'ready', 'the connection stays up');
});

test('app pause withholds credit and is reported like the others', async () => {
  const { conn, ws } = track(await readyConnection({ window: { initial: 4096, max: 4096 } }));
  const ch = await openChannel(conn, ws);
  const policy = [];
  conn.onPolicy((p) => policy.push(p));
  conn.setAppPaused(true);
  ws.binary(dataFrame(ch.id, bytes(4000)));
  ch.consume(4000);
  assert.equal(flows(ws).length, 0);
  conn.setAppPaused(false);
  assert.equal(flows(ws)[0].credit, 4000);
  assert.deepEqual(
    policy.map((p) => p.kind),
    ['pause', 'resume', 'credit_grant'],
  );
  assert.deepEqual(policy[0].reasons, ['app']);
});
