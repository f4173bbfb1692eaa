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

/** Installs a Map-backed sessionStorage for `fn` (Node has none). */
async function withSessionStorage(fn) {
  const store = new Map();
  globalThis.sessionStorage = {
    getItem: (k) => store.get(k) ?? null,
    setItem: (k, v) => void store.set(k, v),
    removeItem: (k) => void store.delete(k),
  };
  try {
    await fn(store);
  } finally {
    delete globalThis.sessionStorage;
  }
}

const diagnostics = (conn) => {
  const codes = [];
  conn.onDiagnostic((d) => codes.push(d.code));
  return codes;
};

test('session storage keeps the token and a stable session id in sessionStorage', async () => {
  await withSessionStorage(async (store) => {
    const { conn, ws } = await fakeConnect({ storage: 'session', storageKey: 'k-session' });
    assert.equal(conn.storedSession, 'none');
    ws.open();
    ws.text(helloOk({ token: 'tok_session_0123456789' }));
    const first = JSON.parse(store.get('k-session'));
    assert.equal(first.v, 1);
    assert.equal(first.token, 'tok_session_0123456789');
    assert.match(first.id, /^[A-Za-z0-9_-]{22}$/);
    conn.close();
    assert.equal(store.has('k-session'), false, 'a final close clears it');
    conn.dispose();
  });
});

test('reload: the stored session is resumed with no channels (its lock is free)', async () => {
  await withSessionStorage(async (store) => {
    // What the previous page of this tab left behind (it vanished without closing).
    store.set('k-reload', JSON.stringify({ v: 1, token: 'tok_previous_page_0001', id: 'sid-1' }));
    const { conn, ws } = await fakeConnect({ storage: 'session', storageKey: 'k-reload' });
    const codes = diagnostics(conn);
    assert.equal(conn.storedSession, 'resuming');
    ws.open();
    const hello = ws.controls()[0];
    assert.deepEqual(hello.resume, { token: 'tok_previous_page_0001', channels: [] });
    // The gateway resumes it; channels of the old page are not listed by us, so it frees them.
    ws.text(
      helloOk({
        token: 'tok_rotated_after_reload',
        channels: [{ id: 1, rx: 10, credit: 1000, closed: false }],
      }),
    );
    await conn.whenReady();
    assert.equal(conn.state, 'ready');
    await new Promise((r) => setTimeout(r, 5));
    assert.ok(codes.includes('resume_accepted'), codes.join());
    assert.ok(codes.includes('resumed_stored_session'), codes.join());
    assert.deepEqual(JSON.parse(store.get('k-reload')), {
      v: 1,
      token: 'tok_rotated_after_reload',
      id: 'sid-1',
    });
    // A second connection of the same realm finds the same session but its lock is held.
    const second = await fakeConnect({ storage: 'session', storageKey: 'k-reload' });
    const codes2 = diagnostics(second.conn);
    assert.equal(second.conn.storedSession, 'lock_busy');
    second.ws.open();
    assert.equal(second.ws.controls()[0].resume, undefined, 'starts fresh');
    await new Promise((r) => setTimeout(r, 5));
    assert.ok(codes2.includes('resume_lock_busy'), codes2.join());
    await assert.rejects(
      fakeConnect({ storage: 'session', storageKey: 'k-reload', resumeOnly: true }),
      (e) => e instanceof lib.ResumeError && e.code === 'resume_lock_busy' && e.origin === 'local',
    );
    second.conn.dispose();
    conn.dispose();
    // dispose() released the lock: the next connection may resume (nothing is stored any more).
    await assert.rejects(
      fakeConnect({ storage: 'session', storageKey: 'k-reload', resumeOnly: true }),
      (e) => e instanceof lib.ResumeError && e.code === 'no_stored_session',
    );
  });
});

test('reload: a stored token the gateway refuses (4011) starts a fresh session', async () => {
  await withSessionStorage(async (store) => {
    store.set('k-reject', JSON.stringify({ v: 1, token: 'tok_expired_0123456789', id: 'sid-2' }));
    const { conn, ws } = await fakeConnect({ storage: 'session', storageKey: 'k-reject' });
    const codes = diagnostics(conn);
    const states = [];
    conn.onStateChange((e) => states.push(e.to));
    ws.open();
    assert.equal(ws.controls()[0].resume.token, 'tok_expired_0123456789');
    ws.serverClose(4011, 'resume rejected');
    assert.notEqual(conn.state, 'closed');
    assert.equal(store.has('k-reject'), false, 'the refused token is cleared');
    const fresh = FakeWebSocket.last();
    assert.notEqual(fresh, ws, 'a new WebSocket');
    fresh.open();
    assert.equal(fresh.controls()[0].resume, undefined, 'a fresh hello');
    fresh.text(helloOk({ token: 'tok_fresh_session_0001' }));
    await conn.whenReady();
    assert.ok(codes.includes('stored_session_rejected'), codes.join());
    assert.deepEqual(states, ['authenticating', 'connecting', 'authenticating', 'ready']);
    assert.equal(JSON.parse(store.get('k-reject')).token, 'tok_fresh_session_0001');
    conn.dispose();
    assert.equal(await lib.liveCoreSessions(), 0, 'both wasm sessions released');
  });
});

test('reload with resumeOnly: a refused stored token closes with ResumeError 4011', async () => {
  await withSessionStorage(async (store) => {
    store.set('k-only', JSON.stringify({ v: 1, token: 'tok_expired_9876543210', id: 'sid-3' }));
    const { conn, ws } = await fakeConnect({
      storage: 'session',
      storageKey: 'k-only',
      resumeOnly: true,
    });
    ws.open();
    ws.serverClose(4011, 'resume rejected');
    await assert.rejects(
      conn.whenReady(),
      (e) => e instanceof lib.ResumeError && e.wsCode === 4011 && e.origin === 'remote',
    );
    assert.equal(conn.state, 'closed');
    conn.dispose();
  });
});

test('an unreadable stored value is cleared and the connection starts fresh', async () => {
  await withSessionStorage(async (store) => {
    store.set('k-bad', '{"v":1,"token":7}');
    const { conn, ws } = await fakeConnect({ storage: 'session', storageKey: 'k-bad' });
    assert.equal(conn.storedSession, 'invalid');
    assert.equal(store.has('k-bad'), false);
    ws.open();
    assert.equal(ws.controls()[0].resume, undefined);
    conn.dispose();
  });
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

test('[Symbol.dispose]: `using` closes a channel and disposes a connection', async () => {
  const before = await lib.liveCoreSessions();
  const { conn, ws } = await readyConnection();
  const ch = await openChannel(conn, ws);
  assert.equal(typeof conn[Symbol.dispose], 'function');
  ch[Symbol.dispose]();
  assert.equal(ch.state, 'closing');
  assert.ok(ws.controls().some((m) => m.t === 'close' && m.id === ch.id));
  conn[Symbol.dispose]();
  assert.equal(conn.disposed, true);
  assert.equal(await lib.liveCoreSessions(), before);
});
