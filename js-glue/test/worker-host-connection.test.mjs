// SPDX-License-Identifier: Apache-2.0
// The session worker's hosted connections (src/worker/hosted-connection.ts, host.ts) with a
// scripted connection: a released connection stays while a channel runs on it and closes when the
// last one ends; only a page with a view of the connection opens on it; a page gone starts the
// connection's grace, and its end ends the channels on it; the input room comes back in `writable`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeSession, TestPage, WorkerHost, headlessScreen, tick } from './worker-helpers.mjs';

function setup() {
  const conns = [];
  const host = new WorkerHost(
    {
      mode: 'shared',
      open: async () => {
        throw new Error('not used');
      },
      connect: async () => {
        const c = { channels: [], disposed: 0, closeListeners: [] };
        c.openChannel = async () => {
          const s = new FakeSession();
          c.channels.push(s);
          return s;
        };
        c.openSession = c.openChannel;
        c.onClose = (l) => c.closeListeners.push(l);
        c.dispose = () => {
          c.disposed++;
          for (const s of c.channels) s.dispose();
        };
        conns.push(c);
        return c;
      },
      screen: headlessScreen,
    },
    { graceMs: 60_000 },
  );
  return { host, conns };
}

const target = { host: '127.0.0.1', port: 7 };

async function connectAndOpen(page, req = 1, graceMs = undefined) {
  page.send({
    v: 1,
    type: 'connect',
    req,
    connect: { url: 'ws://gw/ws' },
    ...(graceMs ? { graceMs } : {}),
  });
  const c = await page.type('connected');
  page.send({ v: 1, type: 'open-channel', req: req + 1, connectionId: c.connectionId, target });
  const o = await page.type('opened');
  return { c, o };
}

test('release: the connection closes once its last channel ended; views are checked', async () => {
  const { host, conns } = setup();
  const a = new TestPage(host, 'a');
  const b = new TestPage(host, 'b');
  try {
    const { c, o } = await connectAndOpen(a);
    // b has no view of the connection: it cannot open on it, nor release it.
    b.send({ v: 1, type: 'open-channel', req: 9, connectionId: c.connectionId, target });
    assert.equal((await b.type('error')).code, 'unknown-connection');
    b.send({ v: 1, type: 'release-connection', connectionId: c.connectionId });
    assert.equal((await b.type('error')).code, 'unknown-connection');
    a.send({ v: 1, type: 'release-connection', connectionId: c.connectionId });
    await tick(20);
    assert.equal(host.connectionCount, 1, 'kept: a channel runs on it');
    assert.equal(conns[0].disposed, 0);
    // Input: the room goes back to the page as the channel takes the bytes.
    const buf = new TextEncoder().encode('hello').buffer;
    a.send({ v: 1, type: 'input', sessionId: o.sessionId, data: buf }, [buf]);
    const w = await a.type('writable');
    assert.equal(w.room, 5);
    assert.deepEqual(conns[0].channels[0].written, ['hello']);
    a.send({ v: 1, type: 'close', sessionId: o.sessionId });
    assert.equal((await a.type('session-ended')).reason, 'exit');
    await tick(20);
    assert.equal(host.connectionCount, 0, 'released and unused: closed');
    assert.equal(conns[0].disposed, 1);
  } finally {
    a.port.close();
    b.port.close();
  }
});

test('a page gone: the connection grace ends it and its channels; a failure ends them too', async () => {
  const { host, conns } = setup();
  const a = new TestPage(host, 'a');
  const b = new TestPage(host, 'b');
  try {
    const { c, o } = await connectAndOpen(a, 1, 150);
    // b watches the channel (it knows its secret) but not the connection.
    b.send({
      v: 1,
      type: 'attach',
      req: 5,
      sessionId: o.sessionId,
      secret: o.secret,
      readOnly: false,
      takeOver: true,
    });
    await b.type('attached');
    a.send({ v: 1, type: 'bye' });
    const ended = await b.type('session-ended', 3000);
    assert.equal(ended.reason, 'detached-too-long');
    assert.equal(host.connectionCount, 0);
    assert.equal(conns[0].disposed, 1);
    b.send({
      v: 1,
      type: 'attach-connection',
      req: 6,
      connectionId: c.connectionId,
      secret: c.secret,
    });
    assert.equal((await b.type('error')).code, 'unknown-connection');

    // The Connection failing for good ends everything on it with `error`.
    const two = await connectAndOpen(b, 10);
    conns[1].closeListeners[0]({ code: 'network', message: 'gone' });
    const e1 = await b.type('connection-ended');
    assert.deepEqual([e1.reason, e1.code], ['error', 'network']);
    const e2 = await b.next((m) => m.type === 'session-ended' && m.sessionId === two.o.sessionId);
    assert.equal(e2.reason, 'error');
  } finally {
    a.port.close();
    b.port.close();
  }
});
