// Routed resume (PROTOCOL.md §9.8): hello_ok.route, and the reconnect of a resume to the same URL
// with ?route=<id> (never the token), against a scripted server.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, test } from 'node:test';
import {
  FakeWebSocket,
  distDir,
  fakeConnect,
  helloOk,
  lib,
  sleep,
  trackConnections,
} from './helpers.mjs';

const track = trackConnections(afterEach);
const { isRouteId, routeUrl } = await import(join(distDir, 'route.js'));

const withRoute = (route, options = {}) => ({ ...helloOk(options), route });

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

/** Drops the transport of a ready connection and returns the WebSocket of the resume. */
async function dropAndReconnect(ws) {
  ws.serverClose(1006);
  await sleep(20);
  const next = FakeWebSocket.last();
  assert.notEqual(next, ws, 'a new WebSocket was opened');
  return next;
}

test('routeUrl adds or replaces route= and keeps the rest; isRouteId is strict', () => {
  assert.equal(routeUrl('ws://h/ws', 'gw-1'), 'ws://h/ws?route=gw-1');
  assert.equal(routeUrl('wss://h:8443/', 'a'), 'wss://h:8443/?route=a');
  assert.equal(
    routeUrl('wss://h/ws?tenant=a&route=old&x=1', 'gw-2'),
    'wss://h/ws?tenant=a&x=1&route=gw-2',
  );
  assert.equal(routeUrl('ws://h/ws?', 'gw-3'), 'ws://h/ws?route=gw-3');
  assert.equal(routeUrl('ws://h/ws?routes=1', 'gw-3'), 'ws://h/ws?routes=1&route=gw-3');
  // Not a route id: the URL is left alone (nothing else may reach a URL).
  for (const bad of ['', 'GW', 'gw_1', 'a&token=x', 'a'.repeat(33), 'gw/1', 'gw 1']) {
    assert.equal(isRouteId(bad), false, bad);
    assert.equal(routeUrl('ws://h/ws', bad), 'ws://h/ws', bad);
  }
  assert.equal(isRouteId('127-0-0-1-8022'), true);
  assert.equal(isRouteId('a'.repeat(32)), true);
  assert.equal(isRouteId(null), false);
});

test('a resume reconnects to the URL with ?route=<id> of the last hello_ok; the token stays out', async () => {
  const { conn, ws } = track(await fakeConnect({ reconnect: { initialDelayMs: 5, jitter: 0 } }));
  assert.equal(ws.url, 'ws://fake/ws', 'a fresh session uses the URL as given');
  ws.open();
  ws.text(withRoute('gw-7', { token: 'tok_first_0123456789' }));
  await conn.whenReady();
  assert.equal(conn.server.route, 'gw-7');
  const ws2 = await dropAndReconnect(ws);
  assert.equal(ws2.url, 'ws://fake/ws?route=gw-7');
  assert.ok(!ws2.url.includes('tok_'), 'no token in the URL');
  ws2.open();
  assert.equal(ws2.controls()[0].resume.token, 'tok_first_0123456789', 'the token is in hello');
  // The resume's hello_ok names another route (the gateway was renamed): it counts from now on.
  ws2.text(withRoute('gw-8', { token: 'tok_second_0123456789' }));
  assert.equal(conn.state, 'ready');
  assert.equal(conn.server.route, 'gw-8');
  const ws3 = await dropAndReconnect(ws2);
  assert.equal(ws3.url, 'ws://fake/ws?route=gw-8');
  assert.equal(conn.url, 'ws://fake/ws', 'the connection keeps its own URL');
});

test('an existing query is kept and an existing route= replaced', async () => {
  const { conn, ws } = track(
    await fakeConnect({
      url: 'ws://fake/ws?tenant=a&route=stale',
      reconnect: { initialDelayMs: 5, jitter: 0 },
    }),
  );
  assert.equal(ws.url, 'ws://fake/ws?tenant=a&route=stale', 'the first URL is the given one');
  ws.open();
  ws.text(withRoute('gw-2'));
  await conn.whenReady();
  const ws2 = await dropAndReconnect(ws);
  assert.equal(ws2.url, 'ws://fake/ws?tenant=a&route=gw-2');
});

test('a gateway without a route id: reconnects use the URL as given', async () => {
  const { conn, ws } = track(await fakeConnect({ reconnect: { initialDelayMs: 5, jitter: 0 } }));
  ws.open();
  ws.text(helloOk());
  await conn.whenReady();
  assert.equal(conn.server.route, null);
  const ws2 = await dropAndReconnect(ws);
  assert.equal(ws2.url, 'ws://fake/ws');
});

test('a hello_ok whose route is not a route id is refused and never reaches a URL', async () => {
  const { conn, ws } = track(await fakeConnect({ reconnect: { initialDelayMs: 5, jitter: 0 } }));
  ws.open();
  ws.text(withRoute('gw&token=x'));
  await assert.rejects(conn.whenReady());
  assert.equal(conn.state, 'closed');
  await sleep(20);
  assert.equal(FakeWebSocket.instances.length, 1, 'no reconnect');
  assert.ok(FakeWebSocket.instances.every((w) => !w.url.includes('route')));
});

test('a 4011 after a routed resume is final (the owner is gone): no further routed attempts', async () => {
  const { conn, ws } = track(await fakeConnect({ reconnect: { initialDelayMs: 5, jitter: 0 } }));
  ws.open();
  ws.text(withRoute('gw-dead'));
  await conn.whenReady();
  const ws2 = await dropAndReconnect(ws);
  assert.equal(ws2.url, 'ws://fake/ws?route=gw-dead');
  ws2.open();
  ws2.serverClose(4011, 'resume rejected');
  assert.equal(conn.state, 'closed');
  assert.ok(conn.lastError instanceof lib.ResumeError, String(conn.lastError));
  await sleep(20);
  assert.equal(FakeWebSocket.last(), ws2, 'the application starts a fresh session itself');
});

test('reload: the stored session keeps its route and the adopted resume goes there', async () => {
  await withSessionStorage(async (store) => {
    const first = await fakeConnect({ storage: 'session', storageKey: 'k-route' });
    first.ws.open();
    first.ws.text(withRoute('gw-3', { token: 'tok_stored_route_0001' }));
    await first.conn.whenReady();
    const saved = JSON.parse(store.get('k-route'));
    assert.equal(saved.route, 'gw-3');
    assert.equal(saved.token, 'tok_stored_route_0001');
    // The page goes away without closing (reload): its lock is released, the value stays.
    first.conn.dispose();
    store.set('k-route', JSON.stringify(saved));

    const { conn, ws } = track(await fakeConnect({ storage: 'session', storageKey: 'k-route' }));
    assert.equal(conn.storedSession, 'resuming');
    assert.equal(ws.url, 'ws://fake/ws?route=gw-3');
    ws.open();
    assert.equal(ws.controls()[0].resume.token, 'tok_stored_route_0001');
    // The owner is gone: the stored session is refused and a fresh one starts on the plain URL.
    ws.serverClose(4011, 'resume rejected');
    const fresh = FakeWebSocket.last();
    assert.notEqual(fresh, ws);
    assert.equal(fresh.url, 'ws://fake/ws');
    fresh.open();
    assert.equal(fresh.controls()[0].resume, undefined);
    fresh.text(withRoute('gw-1', { token: 'tok_fresh_route_00001' }));
    await conn.whenReady();
    assert.equal(JSON.parse(store.get('k-route')).route, 'gw-1');
  });
});

test('a stored route that is not a route id is dropped, the session kept', async () => {
  await withSessionStorage(async (store) => {
    store.set(
      'k-badroute',
      JSON.stringify({ v: 1, token: 'tok_previous_page_0002', id: 'sid-9', route: 'x/../y' }),
    );
    const { conn, ws } = track(await fakeConnect({ storage: 'session', storageKey: 'k-badroute' }));
    assert.equal(conn.storedSession, 'resuming');
    assert.equal(ws.url, 'ws://fake/ws');
  });
});
