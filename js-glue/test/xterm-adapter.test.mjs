// attachTerminal (src/xterm.ts) with a fake xterm Terminal and a fake session: credit follows
// xterm's write callbacks, high/low water marks on unparsed bytes, bounded input queue,
// resize, disposal.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { distDir } from './helpers.mjs';

const { attachTerminal } = await import(join(distDir, 'index.js'));

/** Minimal event source with listener counting. */
class Event {
  listeners = new Set();
  on = (fn) => {
    const entry = (v) => fn(v);
    this.listeners.add(entry);
    return { dispose: () => this.listeners.delete(entry) };
  };
  fire(v) {
    for (const l of [...this.listeners]) l(v);
  }
}

/** xterm stand-in: write() queues chunks; parse(n) "renders" n bytes and fires callbacks. */
class FakeTerminal {
  cols = 80;
  rows = 24;
  queue = []; // { data, cb }
  received = [];
  dataEv = new Event();
  binaryEv = new Event();
  resizeEv = new Event();
  onData = this.dataEv.on;
  onBinary = this.binaryEv.on;
  onResize = this.resizeEv.on;
  write(data, cb) {
    assert.ok(data instanceof Uint8Array, 'the adapter writes bytes');
    this.queue.push({ data, cb });
  }
  get unparsed() {
    return this.queue.reduce((a, q) => a + q.data.length, 0);
  }
  /** Parses whole chunks until at least n bytes were parsed (xterm calls back per chunk). */
  parse(n = Infinity) {
    let done = 0;
    while (this.queue.length > 0 && done < n) {
      const { data, cb } = this.queue.shift();
      this.received.push(data);
      done += data.length;
      cb?.();
    }
    return done;
  }
  resize(cols, rows) {
    this.cols = cols;
    this.rows = rows;
    this.resizeEv.fire({ cols, rows });
  }
  listenerCount() {
    return this.dataEv.listeners.size + this.binaryEv.listeners.size + this.resizeEv.listeners.size;
  }
}

/**
 * Session stand-in that honours credit like a real one: the "server" sends only while the
 * unconsumed bytes stay within `window`; write() accepts up to `writeCredit` bytes.
 */
class FakeSession {
  dataEv = new Event();
  stderrEv = new Event();
  writableEv = new Event();
  closeEv = new Event();
  onData = this.dataEv.on;
  onStderr = this.stderrEv.on;
  onWritable = this.writableEv.on;
  onClose = this.closeEv.on;
  unconsumed = 0;
  consumed = [];
  written = [];
  resizes = [];
  writeCredit = Infinity;
  closed = false;
  constructor({ withWritable = true } = {}) {
    if (!withWritable) this.onWritable = undefined;
  }
  deliver(bytes, stream = 'stdout') {
    this.unconsumed += bytes.length;
    (stream === 'stdout' ? this.dataEv : this.stderrEv).fire({ data: bytes, stream });
  }
  consume(n) {
    if (this.closed) throw new Error('consume on a closed session');
    assert.ok(n > 0 && n <= this.unconsumed, `consume(${n}) within 0..${this.unconsumed}`);
    this.unconsumed -= n;
    this.consumed.push(n);
  }
  write(bytes) {
    const n = Math.min(bytes.length, this.writeCredit);
    this.writeCredit -= n;
    if (n > 0) this.written.push(bytes.slice(0, n));
    return n;
  }
  resize(cols, rows) {
    this.resizes.push([cols, rows]);
  }
  get totalConsumed() {
    return this.consumed.reduce((a, b) => a + b, 0);
  }
  get input() {
    return Buffer.concat(this.written).toString('latin1');
  }
  listenerCount() {
    return (
      this.dataEv.listeners.size +
      this.stderrEv.listeners.size +
      this.writableEv.listeners.size +
      this.closeEv.listeners.size
    );
  }
}

const bytes = (n, fill = 0x61) => new Uint8Array(n).fill(fill);

test('initial size on attach, resize follows term.onResize, bad sizes ignored', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const a = attachTerminal(term, session);
  assert.deepEqual(session.resizes, [[80, 24]]);
  term.resize(132, 43);
  term.resizeEv.fire({ cols: 0, rows: 10 });
  term.resizeEv.fire({ cols: 1.5, rows: 10 });
  assert.deepEqual(session.resizes, [
    [80, 24],
    [132, 43],
  ]);
  a.dispose();
  const b = attachTerminal(term, session, { resizeOnAttach: false });
  assert.equal(session.resizes.length, 2);
  b.dispose();
});

test('credit is granted only in the write callback, stdout and stderr alike', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const a = attachTerminal(term, session);
  session.deliver(bytes(100));
  session.deliver(bytes(50, 0x62), 'stderr');
  assert.equal(term.queue.length, 2);
  assert.deepEqual(session.consumed, [], 'nothing consumed before xterm parsed');
  assert.equal(a.stats().pending, 150);
  term.parse(1);
  assert.deepEqual(session.consumed, [100]);
  term.parse();
  assert.deepEqual(session.consumed, [100, 50]);
  assert.equal(session.unconsumed, 0);
  const s = a.stats();
  assert.equal(s.written, 150);
  assert.equal(s.parsed, 150);
  assert.equal(s.pending, 0);
  assert.equal(s.consumed, 150);
  assert.equal(s.pauses, 0);
  a.dispose();
});

test('stderr option false leaves stderr to the app', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const a = attachTerminal(term, session, { stderr: false });
  session.deliver(bytes(10), 'stderr');
  assert.equal(term.queue.length, 0);
  a.dispose();
});

test('high/low water marks: credit withheld from high until pending falls to low', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const events = [];
  const a = attachTerminal(term, session, {
    highWaterMark: 100,
    lowWaterMark: 30,
    onPause: (p) => events.push(p),
  });
  session.deliver(bytes(60));
  assert.equal(a.paused, false);
  session.deliver(bytes(60));
  assert.equal(a.paused, true, 'pending 120 >= high 100');
  assert.deepEqual(events, [true]);
  session.deliver(bytes(20));
  term.parse(60); // pending 80: above low, credit for the 60 parsed bytes is withheld
  assert.deepEqual(session.consumed, []);
  assert.equal(a.stats().withheld, 60);
  term.parse(60); // pending 20 <= low: everything withheld is granted in one call
  assert.deepEqual(session.consumed, [120]);
  assert.equal(a.paused, false);
  assert.deepEqual(events, [true, false]);
  term.parse();
  assert.deepEqual(session.consumed, [120, 20]);
  const s = a.stats();
  assert.equal(s.maxPending, 140);
  assert.equal(s.pauses, 1);
  assert.equal(s.consumed, 140);
  assert.equal(s.withheld, 0);
  a.dispose();
});

test('flood: a credit-honouring source never gets credit while paused; nothing lost', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const HIGH = 1 << 20;
  const LOW = 256 << 10;
  const WINDOW = 4 << 20; // larger than HIGH, so only the water marks can stop the source
  const a = attachTerminal(term, session);
  let grantsWhilePaused = 0;
  const consume = session.consume.bind(session);
  session.consume = (n) => {
    if (a.paused) grantsWhilePaused++;
    consume(n);
  };
  const TOTAL = 64 << 20;
  let sent = 0;
  let seq = 0;
  let maxUnparsed = 0;
  while (sent < TOTAL || term.queue.length > 0) {
    // the server sends 64 KiB chunks as long as its credit lasts
    while (sent < TOTAL && session.unconsumed + 65536 <= WINDOW) {
      const chunk = new Uint8Array(65536);
      chunk.fill(seq++ & 0xff);
      session.deliver(chunk);
      sent += chunk.length;
    }
    maxUnparsed = Math.max(maxUnparsed, term.unparsed);
    term.parse(48 << 10); // xterm parses slower than the source could send
  }
  const s = a.stats();
  assert.equal(grantsWhilePaused, 0);
  assert.equal(s.written, TOTAL);
  assert.equal(s.parsed, TOTAL);
  assert.equal(s.consumed, TOTAL);
  assert.equal(session.unconsumed, 0);
  assert.ok(s.pauses > 0, 'the high-water mark was reached');
  // After a pause the source has at most its window in flight: xterm's backlog stays bounded.
  assert.ok(maxUnparsed <= WINDOW, `unparsed ${maxUnparsed} <= window ${WINDOW}`);
  assert.equal(s.maxPending, maxUnparsed);
  // Every chunk arrived once and in order.
  assert.equal(term.received.length, TOTAL / 65536);
  term.received.forEach((c, i) => assert.equal(c[0], i & 0xff));
  assert.ok(HIGH > LOW);
  a.dispose();
});

test('input: UTF-8 for onData, bytes for onBinary, queued under backpressure, in order', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  session.writeCredit = 3;
  const a = attachTerminal(term, session);
  term.dataEv.fire('héllo'); // 6 bytes in UTF-8
  assert.equal(Buffer.concat(session.written).toString('utf8').length, 2); // 'h' + 'é' = 3 bytes
  assert.equal(a.stats().inputQueued, 3);
  term.binaryEv.fire('\x80\xff');
  session.writeCredit = 100;
  session.writableEv.fire(100);
  assert.deepEqual(
    [...Buffer.concat(session.written)],
    [...Buffer.from('héllo', 'utf8'), 0x80, 0xff],
  );
  const s = a.stats();
  assert.equal(s.inputSent, 8);
  assert.equal(s.inputQueued, 0);
  a.dispose();
});

test('input queue is bounded: overflow is dropped and reported', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  session.writeCredit = 0;
  const dropped = [];
  const a = attachTerminal(term, session, {
    maxInputBytes: 10,
    onInputDropped: (n) => dropped.push(n),
  });
  term.dataEv.fire('12345678');
  term.dataEv.fire('abcdefgh');
  term.dataEv.fire('xy');
  assert.deepEqual(dropped, [8]);
  assert.equal(a.stats().inputQueued, 10);
  session.writeCredit = Infinity;
  session.writableEv.fire(1);
  assert.equal(session.input, '12345678xy');
  assert.equal(a.stats().inputDropped, 8);
  a.dispose();
});

test('input retry timer when the session has no onWritable', async () => {
  const term = new FakeTerminal();
  const session = new FakeSession({ withWritable: false });
  session.writeCredit = 0;
  const a = attachTerminal(term, session, { inputRetryMs: 5 });
  term.dataEv.fire('ls\r');
  assert.equal(session.input, '');
  session.writeCredit = Infinity;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(session.input, 'ls\r');
  a.dispose();
});

test('dispose: listeners removed, no writes after, withheld credit granted, late callbacks grant', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const a = attachTerminal(term, session, { highWaterMark: 10, lowWaterMark: 0 });
  assert.ok(term.listenerCount() === 3 && session.listenerCount() === 4);
  session.deliver(bytes(8));
  session.deliver(bytes(8)); // pending 16 >= 10: paused
  term.parse(8); // 8 parsed, withheld
  assert.deepEqual(session.consumed, []);
  a.dispose();
  a.dispose(); // idempotent
  assert.equal(term.listenerCount(), 0);
  assert.equal(session.listenerCount(), 0);
  assert.deepEqual(session.consumed, [8], 'withheld credit granted on dispose');
  term.parse(); // the chunk still inside xterm finishes: its credit is granted too
  assert.deepEqual(session.consumed, [8, 8]);
  assert.equal(session.unconsumed, 0);
  session.deliver(bytes(4)); // a listener-less source: nothing reaches the terminal
  assert.equal(term.queue.length, 0);
  term.dataEv.fire('x');
  assert.equal(session.written.length, 0);
  term.resize(100, 30);
  assert.deepEqual(session.resizes, [[80, 24]]);
});

test('a session that closed: no input queued, consume errors swallowed', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const dropped = [];
  const a = attachTerminal(term, session, { onInputDropped: (n) => dropped.push(n) });
  session.deliver(bytes(5));
  session.closed = true;
  session.closeEv.fire({});
  assert.doesNotThrow(() => term.parse());
  term.dataEv.fire('abc');
  assert.deepEqual(dropped, [3]);
  a.dispose();
});

test('invalid options are RangeErrors', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  assert.throws(
    () => attachTerminal(term, session, { highWaterMark: 10, lowWaterMark: 20 }),
    RangeError,
  );
  assert.throws(() => attachTerminal(term, session, { highWaterMark: -1 }), RangeError);
  assert.throws(() => attachTerminal(term, session, { maxInputBytes: 1.5 }), RangeError);
  assert.equal(term.listenerCount(), 0, 'nothing registered when options are rejected');
});
