// SPDX-License-Identifier: Apache-2.0
// The session worker's host (src/worker/host.ts, hosted-session.ts) over real MessageChannels with
// a scripted SSH session and the real headless screen model: malformed messages get typed errors,
// the attach secret, one controlling view + takeOver + one read-only view, credit withheld while
// detached (pause reason `detached`) and granted once the screen replaced the withheld bytes, the
// grace timer ending a session nobody reattached.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeSession, TestPage, WorkerHost, headlessScreen, tick } from './worker-helpers.mjs';

const session = {
  target: { host: '127.0.0.1', port: 22 },
  username: 'u',
  auth: { password: 'pw' },
  term: { cols: 40, rows: 10 },
};

function setup(options = {}) {
  const opened = [];
  const host = new WorkerHost(
    {
      mode: 'shared',
      open: async () => {
        const s = new FakeSession();
        const entry = { session: s, released: 0 };
        opened.push(entry);
        return {
          session: s,
          release: () => {
            entry.released++;
          },
        };
      },
      screen: headlessScreen,
    },
    options,
  );
  return { host, opened };
}

async function openOn(page, extra = {}) {
  page.send({ v: 1, type: 'hello', pageId: page.pageId, lock: null });
  await page.type('ready');
  page.send({
    v: 1,
    type: 'open',
    req: 1,
    connect: { url: 'ws://127.0.0.1:1/ws', token: 't' },
    session,
    ...extra,
  });
  return page.type('opened');
}

const text = (buf) => new TextDecoder().decode(buf);

test('malformed messages get typed error replies; the host keeps serving', async () => {
  const { host } = setup();
  const page = new TestPage(host);
  for (const bad of [null, 'x', { v: 1 }, { v: 1, type: 'evil' }, { v: 99, type: 'bye' }]) {
    page.send(bad);
  }
  page.send({ v: 1, type: 'consume', sessionId: 's', n: -5, req: 9 });
  const errors = [];
  for (let i = 0; i < 6; i++) errors.push(await page.type('error'));
  assert.deepEqual(
    errors.map((e) => e.code),
    ['protocol', 'protocol', 'protocol', 'protocol', 'version', 'protocol'],
  );
  assert.equal(host.protocolErrors, 6);
  const opened = await openOn(page);
  assert.match(opened.sessionId, /^[0-9a-f]{32}$/);
  assert.match(opened.secret, /^[0-9a-f]{64}$/);
  // Messages for a session this page is not attached to are refused, not applied.
  const other = new TestPage(host);
  other.send({ v: 1, type: 'input', sessionId: opened.sessionId, data: new ArrayBuffer(1) });
  assert.equal((await other.type('error')).code, 'not-attached');
  page.close();
  other.close();
});

test('output is transferred, credit follows the page; input and resize reach the session', async () => {
  const { host, opened } = setup();
  const page = new TestPage(host);
  const { sessionId } = await openOn(page);
  const s = opened[0].session;
  s.emit('hello\r\n');
  const d = await page.type('data');
  assert.ok(d.data instanceof ArrayBuffer);
  assert.equal(text(d.data), 'hello\r\n');
  assert.equal(s.consumed, 0, 'nothing credited before the page parsed it');
  page.send({ v: 1, type: 'consume', sessionId, n: 7 });
  page.send({ v: 1, type: 'consume', sessionId, n: 1 }); // more than was sent
  assert.equal((await page.type('error')).code, 'protocol');
  assert.equal(s.consumed, 7);
  const input = new TextEncoder().encode('ls\r').buffer;
  page.send({ v: 1, type: 'input', sessionId, data: input }, [input]);
  assert.equal(input.byteLength, 0, 'the input buffer was moved, not copied');
  page.send({ v: 1, type: 'resize', sessionId, cols: 100, rows: 30 });
  await tick(20);
  assert.deepEqual(s.written, ['ls\r']);
  assert.deepEqual(s.resized, [[100, 30]]);
  page.close();
});

test('a lagging page gets frames of the screen, the model credits meanwhile, then live again', async () => {
  // frameLagBytes 48: the second line no longer fits, so the page gets frames from then on.
  const { host, opened } = setup({ frameLagBytes: 48, frameIntervalMs: 0 });
  const page = new TestPage(host);
  const { sessionId } = await openOn(page);
  const s = opened[0].session;
  const first = `${'a'.repeat(40)}\r\n`; // 42 bytes
  s.emit(first);
  const live = await page.type('data');
  assert.equal(text(live.data), first, 'a page that keeps up gets the stream');
  for (let i = 0; i < 50; i++) s.emit(`flood ${String(i).padStart(2, '0')}\r\n`);
  await tick(30);
  // Nothing but the first line was posted, and the screen model, not the page, credited every
  // byte once it parsed it (it stands for the page from now on).
  assert.equal(page.received.filter((m) => m.type === 'data').length, 0);
  const total = 42 + 50 * 10;
  assert.equal(s.consumed, total, 'the model credits what it parsed');
  page.send({ v: 1, type: 'consume', sessionId, n: 42 });
  // The page parsed its backlog: the first frame, RIS + the viewport (10 rows), no scrollback.
  const f1 = await page.type('data');
  const t1 = text(f1.data);
  assert.ok(t1.startsWith('\x1bc'), 'a frame starts with RIS');
  assert.match(t1, /flood 49/);
  assert.match(t1, /flood 41/);
  assert.doesNotMatch(t1, /flood 30/, 'a frame while output comes is the viewport only');
  page.send({ v: 1, type: 'consume', sessionId, n: f1.data.byteLength });
  // Nothing new since: the last frame carries the scrollback, and the view is live again.
  const f2 = await page.type('data');
  const t2 = text(f2.data);
  assert.ok(t2.startsWith('\x1bc'));
  assert.match(t2, /a{40}/, 'the last frame has the scrollback');
  assert.match(t2, /flood 00[\s\S]*flood 49/);
  s.emit('after\r\n');
  const back = await page.type('data');
  assert.equal(text(back.data), 'after\r\n', 'live again after the last frame');
  assert.equal(s.consumed, total, 'live output waits for the page again');
  page.send({ v: 1, type: 'consume', sessionId, n: f2.data.byteLength + 7 });
  await tick(20);
  assert.equal(s.consumed, total + 7);
  page.close();
});

test('frames follow the page: the next one only after the page parsed the one before', async () => {
  const { host, opened } = setup({ frameLagBytes: 8, frameIntervalMs: 0 });
  const page = new TestPage(host);
  const { sessionId } = await openOn(page);
  const s = opened[0].session;
  for (let i = 0; i < 20; i++) s.emit(`line ${i}\r\n`);
  const live = await page.type('data');
  page.send({ v: 1, type: 'consume', sessionId, n: live.data.byteLength });
  const f1 = await page.type('data');
  assert.match(text(f1.data), /line 19/);
  // More output while the page has not parsed the frame: no second frame yet.
  s.emit('line 20\r\n');
  await assert.rejects(page.type('data', 100), 'no frame while one is outstanding');
  page.send({ v: 1, type: 'consume', sessionId, n: f1.data.byteLength - 1 });
  await assert.rejects(page.type('data', 100), 'nor while a part of it is');
  page.send({ v: 1, type: 'consume', sessionId, n: 1 });
  const f2 = await page.type('data');
  assert.match(text(f2.data), /line 20/);
  assert.doesNotMatch(text(f2.data), /line 5\r/, 'output came since the last frame: viewport');
  page.close();
});

test('attach needs the secret; one controlling view, takeOver, one read-only view', async () => {
  const { host, opened } = setup();
  const a = new TestPage(host, 'a');
  const { sessionId, secret } = await openOn(a);
  const s = opened[0].session;
  const b = new TestPage(host, 'b');
  const attach = (page, extra) =>
    page.send({
      v: 1,
      type: 'attach',
      req: 5,
      sessionId,
      secret,
      readOnly: false,
      takeOver: false,
      ...extra,
    });
  const forged = secret.slice(0, 63) + (secret[63] === 'a' ? 'b' : 'a');
  attach(b, { secret: forged });
  assert.deepEqual(
    { code: (await b.type('error')).code },
    { code: 'bad-secret' },
    'a forged secret is refused',
  );
  attach(b, { secret: '' });
  assert.equal((await b.type('error')).code, 'bad-secret');
  attach(b, { sessionId: 'f'.repeat(32) });
  assert.equal((await b.type('error')).code, 'unknown-session');
  attach(b, {});
  assert.equal((await b.type('error')).code, 'busy', 'a controls the session');

  attach(b, { readOnly: true });
  const ro = await b.type('attached');
  assert.equal(ro.readOnly, true);
  s.emit('seen by both\r\n');
  assert.equal(text((await a.type('data')).data), 'seen by both\r\n');
  assert.equal(text((await b.type('data')).data), 'seen by both\r\n');
  b.send({ v: 1, type: 'input', sessionId, data: new ArrayBuffer(1) });
  assert.equal((await b.type('error')).code, 'read-only');
  b.send({ v: 1, type: 'consume', sessionId, n: 14 });
  await tick(10);
  assert.equal(s.consumed, 0, "a read-only view's consume grants no credit");

  const c = new TestPage(host, 'c');
  attach(c, { takeOver: true });
  assert.equal((await a.type('detached')).reason, 'taken-over');
  const att = await c.type('attached');
  assert.match(att.screen, /seen by both/);
  // The screen stands for the 14 bytes a never credited: they are credited now.
  assert.equal(s.consumed, 14);
  a.send({ v: 1, type: 'consume', sessionId, n: 1 });
  assert.equal((await a.type('error')).code, 'not-attached');
  for (const p of [a, b, c]) p.close();
});

test('credit is withheld while detached, and the reattached page gets the screen first', async () => {
  const { host, opened } = setup({ graceMs: 5000 });
  const a = new TestPage(host, 'a');
  const { sessionId, secret } = await openOn(a);
  const s = opened[0].session;
  s.emit('before\r\n');
  await a.type('data');
  a.send({ v: 1, type: 'consume', sessionId, n: 8 });
  await tick(10);
  assert.equal(s.consumed, 8);
  a.send({ v: 1, type: 'bye' }); // the page unloads
  await tick(10);
  const hosted = host.session(sessionId);
  assert.deepEqual(hosted.pauseReasons, ['detached']);
  for (let i = 0; i < 50; i++) s.emit(`while-detached ${i}\r\n`);
  await tick(10);
  const withheld = s.unconsumed;
  assert.ok(withheld > 0);
  assert.equal(s.consumed, 8, 'nothing consumed while detached');

  const b = new TestPage(host, 'b');
  b.send({ v: 1, type: 'hello', pageId: 'b', lock: null });
  b.send({ v: 1, type: 'attach', req: 2, sessionId, secret, readOnly: false, takeOver: false });
  const att = await b.type('attached');
  assert.equal(att.req, 2);
  assert.match(att.screen, /while-detached 49/);
  assert.match(att.screen, /before/, 'the scrollback holds the lines from before');
  assert.equal(s.consumed, 8 + withheld, 'withheld credit granted once the screen was sent');
  assert.deepEqual(hosted.pauseReasons, []);
  s.emit('live\r\n');
  const d = await b.type('data');
  assert.equal(text(d.data), 'live\r\n');
  const order = b.all.map((m) => m.type);
  assert.ok(order.indexOf('attached') < order.indexOf('data'), 'screen before the live stream');
  a.close();
  b.close();
});

test('a reattach sends attached before the output its credit lets the session read', async () => {
  // A real SshSession pumps its engine inside consume(): output read with the credit granted for
  // the screen arrives synchronously, and must follow `attached` on the view's port (it once went
  // first, and a page that starts reading at `attached` never consumed it: the session stalled).
  const { host, opened } = setup({ graceMs: 5000 });
  const a = new TestPage(host, 'a');
  const { sessionId, secret } = await openOn(a);
  const s = opened[0].session;
  a.send({ v: 1, type: 'bye' });
  await tick(10);
  for (let i = 0; i < 20; i++) s.emit(`withheld ${i}\r\n`);
  const withheld = s.unconsumed;
  s.onConsume = () => {
    s.onConsume = undefined;
    s.emit('read-with-the-credit\r\n');
  };
  const b = new TestPage(host, 'b');
  try {
    b.send({ v: 1, type: 'hello', pageId: 'b', lock: null });
    b.send({ v: 1, type: 'attach', req: 2, sessionId, secret, readOnly: false, takeOver: false });
    const att = await b.type('attached');
    assert.equal(att.offset, withheld, 'the screen stands for the withheld bytes');
    const d = await b.type('data');
    assert.equal(text(d.data), 'read-with-the-credit\r\n');
    const order = b.all.map((m) => m.type);
    assert.deepEqual(order.slice(order.indexOf('ready') + 1), ['attached', 'data']);
    b.send({ v: 1, type: 'consume', sessionId, n: d.data.byteLength });
    await tick(10);
    assert.equal(s.unconsumed, 0, 'everything credited');
  } finally {
    a.close();
    b.close();
    host.session(sessionId)?.end('closed');
  }
});

test('a stream session keeps what the page did not consume and replays it from attached.offset', async () => {
  const { host, opened } = setup({ graceMs: 5000 });
  const a = new TestPage(host, 'a');
  const { sessionId, secret } = await openOn(a, { stream: true });
  const s = opened[0].session;
  s.emit('0123456789');
  s.emit('abcdef');
  const d1 = await a.type('data');
  assert.equal(text(d1.data), '0123456789');
  await a.type('data');
  // The page saved the first chunk and 3 bytes of the second, then unloads.
  a.send({ v: 1, type: 'consume', sessionId, n: 13 });
  await tick(10);
  assert.equal(s.consumed, 13);
  a.send({ v: 1, type: 'bye' });
  await tick(10);
  const hosted = host.session(sessionId);
  assert.deepEqual(hosted.pauseReasons, ['detached']);
  s.emit('XYZ');
  await tick(10);
  assert.equal(s.consumed, 13, 'nothing consumed while detached');
  assert.equal(hosted.pendingBytes, 6, 'kept: 3 sent-not-consumed + 3 while detached');

  const b = new TestPage(host, 'b');
  b.send({ v: 1, type: 'hello', pageId: 'b', lock: null });
  b.send({ v: 1, type: 'attach', req: 2, sessionId, secret, readOnly: false, takeOver: false });
  const att = await b.type('attached');
  assert.equal(att.screen, '');
  assert.equal(att.offset, 13);
  assert.equal(s.consumed, 13, 'a stream attach credits nothing by itself');
  const r1 = await b.type('data');
  const r2 = await b.type('data');
  assert.equal(text(r1.data) + text(r2.data), 'defXYZ', 'replayed from the offset');
  b.send({ v: 1, type: 'consume', sessionId, n: 6 });
  await tick(10);
  assert.equal(s.consumed, 19);
  assert.equal(hosted.pendingBytes, 0);
  b.send({ v: 1, type: 'consume', sessionId, n: 1 });
  const err = await b.type('error');
  assert.equal(err.code, 'protocol', 'consuming more than was sent is refused');
  a.close();
  b.close();
});

test('a session nobody reattaches within its grace ends with session-ended', async () => {
  const { host, opened } = setup();
  const a = new TestPage(host, 'a');
  const { sessionId, secret } = await openOn(a, { graceMs: 150 });
  a.send({ v: 1, type: 'detach', sessionId });
  await tick(60);
  assert.equal(opened[0].session.disposed, false, 'still inside the grace');
  await tick(200);
  assert.equal(opened[0].session.disposed, true);
  assert.equal(opened[0].released, 1, 'the connection was released');
  assert.equal(host.sessionCount, 0);
  const b = new TestPage(host, 'b');
  b.send({ v: 1, type: 'attach', req: 3, sessionId, secret, readOnly: false, takeOver: false });
  const ended = await b.type('session-ended');
  assert.equal(ended.reason, 'detached-too-long');
  assert.equal((await b.type('error')).code, 'unknown-session');

  // Reattaching within the grace cancels it.
  const c = new TestPage(host, 'c');
  const second = await openOn(c, { graceMs: 150 });
  c.send({ v: 1, type: 'detach', sessionId: second.sessionId });
  await tick(50);
  c.send({ ...second, v: 1, type: 'attach', req: 4, readOnly: false, takeOver: false });
  await c.type('attached');
  await tick(250);
  assert.equal(opened[1].session.disposed, false, 'the reattached session lives on');
  c.send({ v: 1, type: 'close', sessionId: second.sessionId });
  const end = await c.type('session-ended');
  assert.equal(end.reason, 'exit');
  for (const p of [a, b, c]) p.close();
});

test('a page whose lock is released loses its views', async () => {
  let release;
  const host = new WorkerHost({
    mode: 'shared',
    open: async () => ({ session: new FakeSession(), release: () => {} }),
    screen: headlessScreen,
    watchLock: () =>
      new Promise((r) => {
        release = r;
      }),
  });
  const a = new TestPage(host, 'a');
  a.send({ v: 1, type: 'hello', pageId: 'a', lock: 'lock-a' });
  await a.type('ready');
  a.send({
    v: 1,
    type: 'open',
    req: 1,
    connect: { url: 'ws://127.0.0.1:1/ws' },
    session,
    graceMs: 5000,
  });
  const { sessionId } = await a.type('opened');
  assert.deepEqual(host.session(sessionId).views, { control: 'a' });
  release();
  await tick(10);
  assert.deepEqual(host.session(sessionId).views, {});
  assert.deepEqual(host.session(sessionId).pauseReasons, ['detached']);
  host.session(sessionId).end('closed');
  a.close();
});

test('timers are called unbound (a browser throws Illegal invocation otherwise)', async () => {
  function strict(fn) {
    return function (...args) {
      if (this !== undefined) throw new TypeError('Illegal invocation');
      return fn(...args);
    };
  }
  const timers = { set: strict(setTimeout), clear: strict(clearTimeout) };
  const s = new FakeSession();
  const host = new WorkerHost({
    mode: 'shared',
    open: async () => ({ session: s, release: () => {} }),
    screen: headlessScreen,
    timers,
  });
  const a = new TestPage(host, 'a');
  try {
    const { sessionId, secret } = await openOn(a, { graceMs: 100 });
    a.send({ v: 1, type: 'detach', sessionId });
    await tick(30);
    a.send({ v: 1, type: 'attach', req: 2, sessionId, secret, readOnly: false, takeOver: false });
    await a.type('attached');
    a.send({ v: 1, type: 'detach', sessionId });
    await tick(300);
    assert.equal(s.disposed, true, 'the grace ended the session');
    assert.equal(host.sessionCount, 0);
    assert.deepEqual(
      a.all.filter((m) => m.type === 'error'),
      [],
    );
  } finally {
    a.close();
  }
});
