// Error mapping, token storage and handle/listener release.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import {
  FakeTarget,
  FakeWebSocket,
  fakeConnect,
  helloOk,
  lib,
  openChannel,
  readyConnection,
} from './helpers.mjs';
import { errorFromClose } from '../../build/js/package/dist/errors.js';

afterEach(() => {
  FakeWebSocket.instances.length = 0;
});

test('close codes map to typed errors with wsCode/appCode/origin/resumable', () => {
  const cases = [
    ['auth_failed', 4003, lib.AuthError],
    ['policy_denied', 4004, lib.PolicyError],
    ['channel_limit', 4006, lib.PolicyError],
    ['credit_overrun', 4007, lib.FlowControlError],
    ['resume_rejected', 4011, lib.ResumeError],
    ['timeout', 4012, lib.ConnectionTimeoutError],
    ['going_away', 1006, lib.TransportError],
    ['bad_json', 4014, lib.ProtocolError],
    ['frame_too_large', 1009, lib.ProtocolError],
  ];
  for (const [error, code, cls] of cases) {
    const e = errorFromClose({
      error,
      code,
      origin: 'remote',
      reason: 'r',
      resumable: code === 1006,
    });
    assert.ok(e instanceof cls, `${error} -> ${cls.name}`);
    assert.ok(e instanceof lib.ManaError);
    assert.equal(e.name, cls.name);
    assert.equal(e.code, error);
    assert.equal(e.wsCode, code);
    assert.equal(e.appCode, code >= 4000 ? code : undefined);
    assert.equal(e.origin, 'remote');
    assert.equal(e.resumable, code === 1006);
  }
  const a = errorFromClose({
    error: 'auth_failed',
    code: 4003,
    origin: 'remote',
    reason: '',
    resumable: false,
  });
  const b = errorFromClose({
    error: 'auth_failed',
    code: 4003,
    origin: 'remote',
    reason: '',
    resumable: false,
  });
  assert.notEqual(a, b, 'a new instance every time');
});

test('auth failure from the server rejects whenReady with AuthError', async () => {
  const { conn, ws } = await fakeConnect();
  ws.open();
  ws.serverClose(4003, 'bad token');
  await assert.rejects(
    conn.whenReady(),
    (e) => e instanceof lib.AuthError && e.appCode === 4003 && /bad token/.test(e.message),
  );
  conn.dispose();
});

test('memory storage: persist on hello_ok and rotation, clear on final close', async () => {
  const { conn, ws } = await fakeConnect({ storage: 'memory', storageKey: 'k-memory' });
  const events = [];
  conn.onPersistence((e) => events.push(`${e.kind}:${e.storage}`));
  ws.open();
  ws.text(helloOk());
  conn.close();
  assert.deepEqual(events, ['persist:memory', 'clear:memory']);
  conn.dispose();
});

test('session storage keeps the token in sessionStorage; a new page discards it', async () => {
  const store = new Map();
  globalThis.sessionStorage = {
    getItem: (k) => store.get(k) ?? null,
    setItem: (k, v) => void store.set(k, v),
    removeItem: (k) => void store.delete(k),
  };
  try {
    const { conn, ws } = await fakeConnect({ storage: 'session', storageKey: 'k-session' });
    ws.open();
    ws.text(helloOk({ token: 'tok_session_0123456789' }));
    assert.equal(store.get('k-session'), 'tok_session_0123456789');
    // Simulate a reload: the old page vanishes without closing.
    const events = [];
    const second = await fakeConnect({ storage: 'session', storageKey: 'k-session' });
    second.conn.onPersistence((e) => events.push(e));
    assert.equal(store.has('k-session'), false, 'stored token discarded by the new page');
    second.ws.open();
    assert.equal(second.ws.controls()[0].resume, undefined, 'the new page starts fresh');
    conn.dispose();
    second.conn.dispose();
  } finally {
    delete globalThis.sessionStorage;
  }
});

test('storage none never persists', async () => {
  const { conn, ws } = await fakeConnect({ storage: 'none' });
  const events = [];
  conn.onPersistence((e) => events.push(e.kind));
  ws.open();
  ws.text(helloOk());
  conn.close();
  assert.deepEqual(events, []);
  conn.dispose();
});

test('dispose releases every wasm handle, timer, listener and the socket', async () => {
  const before = await lib.liveCoreSessions();
  const document = new FakeTarget({ visibilityState: 'visible' });
  const window = new FakeTarget();
  const conns = [];
  for (let i = 0; i < 5; i++) {
    const r = await readyConnection({ environment: { document, window, onLine: () => true } });
    await openChannel(r.conn, r.ws);
    conns.push(r);
  }
  assert.equal(await lib.liveCoreSessions(), before + 5);
  assert.equal(document.listenerCount(), 15);
  assert.equal(window.listenerCount(), 10);
  for (const { conn, ws } of conns) {
    conn.dispose();
    assert.equal(conn.disposed, true);
    assert.equal(ws.closedWith.code, 1000);
    assert.equal(ws.onmessage, null);
    assert.throws(
      () => conn.openChannel({ target: { host: 'h', port: 1 } }),
      lib.InvalidStateError,
    );
    conn.dispose(); // idempotent
  }
  assert.equal(await lib.liveCoreSessions(), before);
  assert.equal(document.listenerCount(), 0);
  assert.equal(window.listenerCount(), 0);
});
