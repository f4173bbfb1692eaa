// State machine, handshake, reconnect and resume against a scripted server.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import {
  FakeWebSocket,
  dataFrame,
  fakeConnect,
  helloOk,
  lib,
  openChannel,
  readyConnection,
  sleep,
  trackConnections,
} from './helpers.mjs';

const track = trackConnections(afterEach);

test('connecting -> authenticating -> ready, hello carries the bearer token and subprotocol', async () => {
  const { conn, ws } = track(await fakeConnect());
  const states = [];
  conn.onStateChange((e) => states.push(`${e.from}->${e.to}`));
  assert.equal(conn.state, 'connecting');
  assert.equal(ws.protocols, 'mana.ssh.v1');
  assert.equal(ws.binaryType, 'arraybuffer');
  ws.open();
  assert.equal(conn.state, 'authenticating');
  const [hello] = ws.controls();
  assert.equal(hello.t, 'hello');
  assert.deepEqual(hello.auth, { scheme: 'bearer', token: 'jwt-token' });
  assert.equal(hello.resume, undefined);
  ws.text(helloOk());
  await conn.whenReady();
  assert.equal(conn.state, 'ready');
  assert.deepEqual(states, ['connecting->authenticating', 'authenticating->ready']);
  assert.equal(conn.server.server, 'fake-gateway');
  assert.equal(conn.server.resumeTtlMs, 60000);
});

test('openChannel before ready throws InvalidStateError (local)', async () => {
  const { conn } = track(await fakeConnect());
  assert.throws(
    () => conn.openChannel({ target: { host: 'h', port: 22 }, kind: 'tcp' }),
    (e) => e instanceof lib.InvalidStateError && e.origin === 'local' && e.code === 'invalid_state',
  );
});

test('handshake deadline closes with ConnectionTimeoutError', async () => {
  const { conn, ws } = track(await fakeConnect({ handshakeTimeoutMs: 30 }));
  ws.open();
  await assert.rejects(
    conn.whenReady(),
    (e) => e instanceof lib.ConnectionTimeoutError && e.origin === 'local',
  );
  assert.equal(conn.state, 'closed');
  assert.equal(ws.closedWith.code, 4012);
});

test('transport loss -> reconnecting -> resume with the token, replaying unacknowledged bytes', async () => {
  const { conn, ws } = track(
    await readyConnection({ reconnect: { initialDelayMs: 5, jitter: 0 } }),
  );
  const ch = await openChannel(conn, ws, { window: 1024 });
  assert.equal(ch.write('hello'), 5);
  const events = [];
  conn.onStateChange((e) => events.push(e));
  ws.serverClose(1006);
  assert.equal(conn.state, 'reconnecting');
  assert.ok(events[0].error instanceof lib.TransportError);
  assert.equal(events[0].error.resumable, true);
  assert.equal(events[0].error.wsCode, 1006);
  // Written while reconnecting: kept for replay, limited by credit.
  assert.equal(ch.write('-more'), 5);
  await sleep(30);
  const ws2 = FakeWebSocket.last();
  assert.notEqual(ws2, ws, 'a new WebSocket was opened');
  ws2.open();
  const [hello] = ws2.controls();
  assert.equal(hello.resume.token, 'tok_0123456789abcdef');
  assert.deepEqual(
    hello.resume.channels.map((c) => c.id),
    [ch.id],
  );
  // The server received nothing of channel data (rx 0) and grants 1000 beyond.
  ws2.text(
    helloOk({ token: 'tok_rotated_0123456789', channels: [{ id: ch.id, rx: 0, credit: 1024 }] }),
  );
  assert.equal(conn.state, 'ready');
  const replayed = ws2
    .dataFrames()
    .map((f) => new TextDecoder().decode(f.payload))
    .join('');
  assert.equal(replayed, 'hello-more');
  assert.deepEqual(
    events.map((e) => e.to),
    ['reconnecting', 'authenticating', 'ready'],
  );
});

test('non-resumable close from the server is final and typed', async () => {
  const { conn, ws } = track(await readyConnection());
  let last;
  conn.onStateChange((e) => (last = e));
  ws.serverClose(4004, 'policy');
  assert.equal(conn.state, 'closed');
  assert.ok(last.error instanceof lib.PolicyError);
  assert.equal(last.error.appCode, 4004);
  assert.equal(last.error.origin, 'remote');
  assert.equal(last.error.resumable, false);
  assert.equal(FakeWebSocket.instances.length, 1, 'no reconnect after a final close');
});

test('gives up resuming after maxAttempts with ResumeError', async () => {
  const { conn, ws } = track(
    await readyConnection({ reconnect: { initialDelayMs: 1, maxAttempts: 2, jitter: 0 } }),
  );
  ws.serverClose(1006);
  for (let i = 0; i < 2; i++) {
    await sleep(20);
    FakeWebSocket.last().serverClose(1006); // refused before open
  }
  await sleep(10);
  assert.equal(conn.state, 'closed');
  assert.ok(conn.lastError instanceof lib.ResumeError);
  assert.equal(FakeWebSocket.instances.length, 3);
});

test('initial WebSocket failure closes with TransportError and rejects whenReady', async () => {
  const { conn, ws } = track(await fakeConnect());
  ws.serverClose(1006);
  await assert.rejects(
    conn.whenReady(),
    (e) => e instanceof lib.TransportError && e.wsCode === 1006,
  );
  assert.equal(conn.state, 'closed');
});

test('close() sends a normal close and ends in closed without an error', async () => {
  const { conn, ws } = track(await readyConnection());
  let last;
  conn.onStateChange((e) => (last = e));
  conn.close();
  assert.equal(conn.state, 'closed');
  assert.equal(last.error, undefined);
  assert.equal(ws.closedWith.code, 1000);
});

test('data frames reach onData with the right stream', async () => {
  const { conn, ws } = track(await readyConnection());
  const ch = await openChannel(conn, ws);
  const got = [];
  ch.onData((d) => got.push([d.stream, new TextDecoder().decode(d.data)]));
  ws.binary(dataFrame(ch.id, new TextEncoder().encode('out')));
  ws.binary(dataFrame(ch.id, new TextEncoder().encode('err'), 2));
  assert.deepEqual(got, [
    ['stdout', 'out'],
    ['stderr', 'err'],
  ]);
  assert.equal(ch.unconsumed, 6);
});

test('backoffDelay grows exponentially, is capped and jittered', () => {
  const o = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  assert.equal(
    lib.backoffDelay(0, o, () => 0),
    50,
  );
  assert.equal(
    lib.backoffDelay(0, o, () => 1),
    100,
  );
  assert.equal(
    lib.backoffDelay(3, o, () => 1),
    800,
  );
  assert.equal(
    lib.backoffDelay(10, o, () => 1),
    1000,
  );
  assert.equal(
    lib.backoffDelay(10, o, () => 0),
    500,
  );
});
