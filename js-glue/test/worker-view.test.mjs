// SPDX-License-Identifier: Apache-2.0
// RemoteSshSession (worker/view.ts), a page's view of a session in the worker, against a recorded
// link: the replayed screen starts with a terminal reset and is credited locally; a read-only view
// cannot write; a detached view takes no input; a view replaced by a newer attach of the same page
// ends without a `detach` (which would detach the newer view); a session that ended is a
// SessionLostError and its stored secret is forgotten.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lib } from './helpers.mjs';

const { RemoteSshSession, SessionLostError, InvalidStateError } = lib;

function link() {
  const sent = [];
  const forgotten = [];
  return {
    sent,
    forgotten,
    send: (m) => sent.push(m),
    forget: (id, ended) => forgotten.push([id, ended]),
  };
}

function collect(view) {
  const chunks = [];
  view.onData((d) => chunks.push(new TextDecoder().decode(d)));
  return chunks;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test('a restored screen is reset + screen, credited locally; live bytes are credited remotely', async () => {
  const l = link();
  const view = new RemoteSshSession(l, 's1', false, 'abc\r\n$ ');
  const chunks = collect(view);
  await tick();
  assert.deepEqual(chunks, ['\x1bcabc\r\n$ ']);
  assert.equal(view.restoredScreen, 'abc\r\n$ ');
  const local = chunks[0].length;
  view.consume(local);
  assert.equal(l.sent.length, 0, 'the replay is never credited to the worker');
  const live = new TextEncoder().encode('live');
  view._receive({
    v: 1,
    type: 'data',
    sessionId: 's1',
    data: live.slice().buffer,
    stream: 'stdout',
  });
  view.consume(4);
  assert.deepEqual(l.sent, [{ v: 1, type: 'consume', sessionId: 's1', n: 4 }]);
});

test('a new session has no replay (no reset either)', async () => {
  const view = new RemoteSshSession(link(), 's1', false, '');
  const chunks = collect(view);
  await tick();
  assert.deepEqual(chunks, []);
  assert.equal(view.unconsumed, 0);
});

test('read-only: write and close throw InvalidStateError, resize is ignored', () => {
  const l = link();
  const view = new RemoteSshSession(l, 's1', true, '');
  assert.throws(() => view.write(new Uint8Array([0x61])), InvalidStateError);
  assert.throws(() => view.close(), InvalidStateError);
  view.resize(100, 30);
  assert.deepEqual(l.sent, []);
});

test('taken over: the view is detached, takes no input and sends nothing', () => {
  const l = link();
  const view = new RemoteSshSession(l, 's1', false, '');
  const reasons = [];
  view.onDetached((r) => reasons.push(r));
  view._receive({ v: 1, type: 'detached', sessionId: 's1', reason: 'taken-over' });
  assert.deepEqual(reasons, ['taken-over']);
  assert.equal(view.state, 'detached');
  assert.equal(view.write(new Uint8Array([0x61])), 0);
  view.resize(100, 30);
  assert.deepEqual(l.sent, []);
});

test('replaced by a newer attach of this page: ends without a detach message', () => {
  const l = link();
  const view = new RemoteSshSession(l, 's1', true, '');
  const reasons = [];
  view.onDetached((r) => reasons.push(r));
  view._replaced();
  assert.deepEqual(reasons, ['replaced']);
  assert.equal(view.state, 'closed');
  view.dispose();
  assert.deepEqual(l.sent, [], 'no detach: it would detach the newer view of this page');
  assert.deepEqual(l.forgotten, []);
});

test('dispose detaches (the secret is kept); session-ended is SessionLostError (secret forgotten)', () => {
  const l = link();
  const a = new RemoteSshSession(l, 's1', false, '');
  a.dispose();
  assert.deepEqual(l.sent, [{ v: 1, type: 'detach', sessionId: 's1' }]);
  assert.deepEqual(l.forgotten, [['s1', false]]);

  const l2 = link();
  const b = new RemoteSshSession(l2, 's2', false, '');
  const closes = [];
  b.onClose((e) => closes.push(e));
  b._receive({ v: 1, type: 'session-ended', sessionId: 's2', reason: 'detached-too-long' });
  assert.equal(closes.length, 1);
  assert.ok(closes[0].error instanceof SessionLostError);
  assert.equal(closes[0].error.code, 'detached_too_long');
  assert.deepEqual(l2.forgotten, [['s2', true]]);
  assert.equal(b.state, 'closed');
});

test("the worker's refusal of an input ends the view with its reason, never silently", () => {
  const l = link();
  const view = new RemoteSshSession({ ...l, inputRoom: true }, 's1', false, '');
  const closes = [];
  view.onClose((e) => closes.push(e));
  assert.equal(view.write(new TextEncoder().encode('ls\r')), 3);
  view._receive({
    v: 1,
    type: 'error',
    sessionId: 's1',
    code: 'limit',
    message: 'input queue full: bytes dropped',
  });
  assert.equal(closes.length, 1);
  assert.ok(closes[0].error instanceof lib.WorkerRequestError, String(closes[0].error));
  assert.equal(closes[0].error.code, 'limit');
  assert.match(closes[0].error.message, /input queue full/);
  assert.equal(view.error, closes[0].error);
  assert.equal(view.state, 'closed');
  // Detached from the worker, the secret kept: the session can be attached again.
  assert.deepEqual(l.sent.at(-1), { v: 1, type: 'detach', sessionId: 's1' });
  assert.deepEqual(l.forgotten, [['s1', false]]);
  assert.equal(view.write(new Uint8Array(1)), 0, 'a closed view takes nothing');
  // A second refusal (already closed) changes nothing.
  view._receive({ v: 1, type: 'error', sessionId: 's1', code: 'not-attached', message: 'x' });
  assert.equal(closes.length, 1);
});
