// SPDX-License-Identifier: Apache-2.0
// ManaAttachAddon / attachTerminal (src/xterm.ts) with a fake xterm Terminal and a fake session:
// credit follows xterm's write callbacks, high/low water marks on unparsed bytes, bounded input
// queue, resize, disposal, the addon contract (loadAddon / term.dispose()), the output filter,
// read-only mode and the flow switch; then the addon on a real SshSession left at flow 'auto'
// (real sshd through the real mana-gateway), down to zero wasm handles and listeners.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectOptions, lib, sleep, sshBuilt, startGateway, startSshd } from './ssh-helpers.mjs';

const { attachTerminal, ManaAttachAddon, InvalidStateError } = lib;

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

/** FakeTerminal with xterm 6's addon registry (AddonManager.loadAddon / Terminal.dispose). */
class AddonTerminal extends FakeTerminal {
  addons = [];
  disposed = false;
  loadAddon(addon) {
    const entry = { instance: addon, dispose: addon.dispose, isDisposed: false };
    this.addons.push(entry);
    addon.dispose = () => {
      if (entry.isDisposed) return;
      entry.isDisposed = true;
      entry.dispose.apply(addon);
      this.addons.splice(this.addons.indexOf(entry), 1);
    };
    addon.activate(this);
  }
  dispose() {
    this.disposed = true;
    for (const a of [...this.addons]) a.instance.dispose();
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

// ---- the addon: loadAddon / term.dispose(), filter, read-only, flow switch -----------------------

/** FakeSession with SshSession's flow modes: 'auto' consumes after the onData listeners ran. */
class FlowSession extends FakeSession {
  disposeCalls = 0;
  constructor(flow) {
    super();
    this.flow = flow;
  }
  setFlow(mode) {
    this.flow = mode;
    if (mode === 'auto' && this.unconsumed > 0) this.consume(this.unconsumed);
  }
  deliver(bytes, stream) {
    super.deliver(bytes, stream);
    if (this.flow === 'auto' && this.unconsumed > 0) this.consume(this.unconsumed);
  }
  dispose() {
    this.disposeCalls++;
    this.closed = true;
  }
}

test('loadAddon: term.dispose() disposes the addon, every listener is released', () => {
  const term = new AddonTerminal();
  const session = new FakeSession();
  const addon = new ManaAttachAddon(session);
  assert.equal(term.listenerCount() + session.listenerCount(), 0, 'nothing before activate');
  term.loadAddon(addon);
  assert.equal(term.listenerCount(), 3);
  assert.equal(session.listenerCount(), 4);
  assert.deepEqual(session.resizes, [[80, 24]]);
  session.deliver(bytes(10));
  term.parse();
  assert.deepEqual(session.consumed, [10]);
  term.dispose();
  assert.equal(addon.disposed, true);
  assert.equal(term.addons.length, 0, 'xterm forgot the addon');
  assert.equal(term.listenerCount(), 0);
  assert.equal(session.listenerCount(), 0);
  assert.throws(() => addon.activate(new AddonTerminal()), InvalidStateError);
});

test('attachTerminal is the addon activated in one call; Symbol.dispose; activate once', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const a = attachTerminal(term, session);
  assert.ok(a instanceof ManaAttachAddon);
  assert.throws(() => a.activate(new FakeTerminal()), InvalidStateError);
  assert.equal(term.listenerCount(), 3, 'the second activate registered nothing');
  // `using a = attachTerminal(...)` calls a[Symbol.dispose]() at the end of the scope.
  assert.equal(typeof Symbol.dispose, 'symbol', 'this Node has Symbol.dispose');
  a[Symbol.dispose]();
  assert.equal(a.disposed, true);
  assert.equal(term.listenerCount() + session.listenerCount(), 0);
  // An addon of xterm's registry disposed directly (not through term.dispose()) leaves it too.
  const t2 = new AddonTerminal();
  const b = new ManaAttachAddon(session);
  t2.loadAddon(b);
  b[Symbol.dispose]();
  assert.equal(t2.addons.length, 0);
  assert.equal(t2.listenerCount() + session.listenerCount(), 0);
});

test('filter: a swallowed chunk is credited at once, a replaced one when xterm parsed it', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  const seen = [];
  const a = attachTerminal(term, session, {
    filter: (chunk, stream) => {
      seen.push([chunk[0], chunk.length, stream]);
      if (chunk[0] === 0x7a) return null; // 'z...': a transfer handler took it
      if (chunk[0] === 0x72) return chunk.subarray(0, 2); // 'r...': shortened
      return chunk;
    },
  });
  session.deliver(bytes(7, 0x7a));
  assert.deepEqual(session.consumed, [7], 'swallowed: credited without reaching xterm');
  assert.equal(term.queue.length, 0);
  session.deliver(bytes(9, 0x72), 'stderr');
  assert.equal(term.queue.length, 1);
  assert.deepEqual([...term.queue[0].data], [0x72, 0x72]);
  assert.equal(a.stats().pending, 2);
  assert.deepEqual(session.consumed, [7], 'replaced: not before xterm parsed it');
  term.parse();
  assert.deepEqual(
    session.consumed,
    [7, 9],
    'the session bytes are credited, not the written ones',
  );
  session.deliver(bytes(5, 0x61));
  term.parse();
  assert.deepEqual(session.consumed, [7, 9, 5]);
  assert.equal(session.unconsumed, 0);
  assert.deepEqual(seen, [
    [0x7a, 7, 'stdout'],
    [0x72, 9, 'stderr'],
    [0x61, 5, 'stdout'],
  ]);
  const { filtered, written, parsed, consumed } = a.stats();
  assert.deepEqual(
    { filtered, written, parsed, consumed },
    {
      filtered: 7, // session bytes swallowed
      written: 7, // bytes xterm got: the 2-byte replacement and the 5-byte chunk
      parsed: 7,
      consumed: 21, // 7 + 9 + 5: every session byte
    },
  );
  a.dispose();
});

test('filter: swallowed chunks obey the water marks; a throwing filter still credits', () => {
  const term = new FakeTerminal();
  const session = new FakeSession();
  let swallow = false;
  const a = attachTerminal(term, session, {
    highWaterMark: 10,
    lowWaterMark: 0,
    filter: (chunk) => {
      if (chunk[0] === 0x21) throw new Error('handler bug');
      return swallow ? null : chunk;
    },
  });
  session.deliver(bytes(12)); // pending 12 >= 10: paused
  assert.equal(a.paused, true);
  swallow = true;
  session.deliver(bytes(4));
  assert.deepEqual(session.consumed, [], 'withheld while paused');
  assert.throws(() => session.deliver(bytes(3, 0x21)), /handler bug/);
  term.parse();
  assert.deepEqual(session.consumed, [19], 'everything granted at the low mark');
  assert.equal(session.unconsumed, 0);
  assert.equal(a.stats().filtered, 7);
  a.dispose();
});

test('read-only (bidirectional: false): output only, no keystrokes, paste or resize', () => {
  const term = new AddonTerminal();
  const session = new FakeSession();
  term.loadAddon(new ManaAttachAddon(session, { bidirectional: false }));
  assert.equal(term.listenerCount(), 0, 'no terminal listener at all');
  assert.deepEqual(session.resizes, [], 'no size on activation');
  term.dataEv.fire('rm -rf /\r');
  term.binaryEv.fire('\x03');
  term.resize(100, 40);
  assert.deepEqual(session.written, []);
  assert.deepEqual(session.resizes, []);
  session.deliver(bytes(6));
  term.parse();
  assert.deepEqual(session.consumed, [6], 'output and credit as usual');
  term.dispose();
  assert.equal(session.listenerCount(), 0);
});

test("flow 'auto' session: switched to 'manual' on activation, back to 'auto' on dispose", () => {
  const term = new AddonTerminal();
  const session = new FlowSession('auto');
  session.deliver(bytes(3)); // consumed by the session itself before the addon
  const addon = new ManaAttachAddon(session, { highWaterMark: 10, lowWaterMark: 0 });
  term.loadAddon(addon);
  assert.equal(session.flow, 'manual');
  session.deliver(bytes(8));
  session.deliver(bytes(8)); // paused at 16
  assert.deepEqual(session.consumed, [3], 'the session no longer consumes by itself');
  term.parse(8);
  assert.equal(addon.stats().withheld, 8);
  assert.equal(addon.stats().consumed, 0);
  // Disposed with 8 bytes withheld and 8 still inside xterm: 'auto' again returns all of it.
  term.dispose();
  assert.equal(session.flow, 'auto');
  assert.equal(session.unconsumed, 0);
  assert.deepEqual(session.consumed, [3, 16]);
  term.parse(); // the late write callback grants nothing twice
  assert.deepEqual(session.consumed, [3, 16]);
  assert.equal(session.disposeCalls, 0, 'the session stays open');
  assert.equal(session.listenerCount(), 0);
});

test("a 'manual' session stays manual; disposeSession disposes it with the terminal", () => {
  const term = new AddonTerminal();
  const session = new FlowSession('manual');
  term.loadAddon(new ManaAttachAddon(session, { disposeSession: true }));
  assert.equal(session.flow, 'manual');
  session.deliver(bytes(5));
  term.parse();
  assert.deepEqual(session.consumed, [5]);
  term.dispose();
  assert.equal(session.flow, 'manual');
  assert.equal(session.disposeCalls, 1);
  assert.throws(() => new ManaAttachAddon(new FakeSession(), { disposeSession: true }), RangeError);
});

test('a stream that consumes by itself and cannot be switched is refused (typed error)', () => {
  const term = new FakeTerminal();
  const autoNoSwitch = new FakeSession();
  autoNoSwitch.flow = 'auto';
  assert.throws(
    () => attachTerminal(term, autoNoSwitch),
    (e) =>
      e instanceof InvalidStateError && e.code === 'invalid_state' && /flow 'auto'/.test(e.message),
  );
  const autoConsumeChannel = new FakeSession();
  autoConsumeChannel.autoConsume = true;
  assert.throws(() => attachTerminal(term, autoConsumeChannel), InvalidStateError);
  assert.equal(term.listenerCount(), 0);
  assert.equal(autoNoSwitch.listenerCount() + autoConsumeChannel.listenerCount(), 0);
});

// ---- a real SshSession at the default flow 'auto' ---------------------------------------------

const skip = sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)';

/** Wraps a session so every onX registration still alive is counted. */
function countingSession(session) {
  const live = new Set();
  const proxy = new Proxy(session, {
    get(target, key) {
      const v = Reflect.get(target, key, target);
      if (typeof key === 'string' && /^on[A-Z]/.test(key) && typeof v === 'function') {
        return (listener) => {
          const d = v(listener);
          const entry = { dispose: () => (live.delete(entry), d.dispose()) };
          live.add(entry);
          return entry;
        };
      }
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { proxy, listeners: () => live.size };
}

async function until(pred, what, ms = 20000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timeout waiting for ${what}`);
    await sleep(5);
  }
}

describe('ManaAttachAddon on a real SshSession (sshd through mana-gateway)', { skip }, () => {
  let sshd;
  let gw;
  before(async () => {
    sshd = await startSshd();
    gw = await startGateway([sshd.port]);
  });
  after(async () => {
    await gw?.stop();
    await sshd?.stop();
  });
  const keyLogin = (extra) => ({
    target: { host: '127.0.0.1', port: sshd.port },
    username: sshd.user,
    auth: { privateKey: sshd.userKey.privateKey },
    knownHosts: 'memory',
    ...extra,
  });

  test("flow 'auto' (the default): the terminal becomes the consumer; term.dispose() leaves 0 handles", async () => {
    const conn = await lib.connect(connectOptions(gw));
    await conn.whenReady();
    const TOTAL = 2_000_000;
    const session = await conn.openSession(
      keyLogin({
        term: { cols: 80, rows: 24 },
        // No newline in the flood (the pty would add CRs); then `cat` echoes input until disposed.
        command: `head -c ${TOTAL} /dev/zero | tr '\\0' x; printf '<done>'; exec cat`,
      }),
    );
    assert.equal(session.flow, 'auto', 'left at the default');
    const counted = countingSession(session);

    // 1. A terminal that does not parse: the session must stop at its high-water mark (512 KiB)
    //    instead of consuming on its own, and nothing is credited before xterm parsed it.
    const term1 = new AddonTerminal();
    const addon1 = new ManaAttachAddon(counted.proxy);
    term1.loadAddon(addon1);
    assert.equal(session.flow, 'manual');
    await until(() => addon1.stats().written >= 256 * 1024, 'output');
    await sleep(300);
    const stalled = addon1.stats();
    assert.ok(stalled.written < TOTAL, `stalled at ${stalled.written}`);
    assert.ok(session.unconsumed <= 512 * 1024 + 128 * 1024, `unconsumed ${session.unconsumed}`);
    assert.equal(stalled.consumed, 0);
    assert.equal(session.unconsumed, stalled.written);

    // 2. xterm parses: credit flows, every byte arrives and is consumed exactly once.
    const text = () => Buffer.concat(term1.received).toString('latin1');
    await until(() => {
      term1.parse();
      return text().endsWith('<done>');
    }, 'the whole flood');
    const s = addon1.stats();
    assert.equal(s.written, TOTAL + '<done>'.length);
    assert.equal(s.consumed, s.written, `stats ${JSON.stringify(s)}`);
    assert.equal(s.withheld, 0);
    assert.equal(s.pending, 0);
    assert.equal(session.unconsumed, 0);
    assert.ok(s.maxPending > 0);

    // 3. term.dispose(): listeners released, the session is 'auto' again and stays open.
    term1.dispose();
    assert.equal(term1.listenerCount(), 0);
    assert.equal(counted.listeners(), 0, 'no listener left on the session');
    assert.equal(session.flow, 'auto');
    assert.equal(session.state, 'open');
    assert.equal(await lib.liveSshEngines(), 1);

    // 4. A second terminal owns the session (disposeSession): input reaches it, and
    //    term.dispose() releases the session's wasm handle too.
    const term2 = new AddonTerminal();
    term2.loadAddon(new ManaAttachAddon(counted.proxy, { disposeSession: true }));
    assert.equal(session.flow, 'manual');
    term2.dataEv.fire('ping-\u00e9\r');
    await until(() => {
      term2.parse();
      return Buffer.concat(term2.received).toString('utf8').includes('ping-\u00e9');
    }, 'the echo');
    assert.ok(counted.listeners() > 0);
    term2.dispose();
    assert.equal(term2.listenerCount(), 0);
    assert.equal(counted.listeners(), 0);
    assert.equal(session.state, 'closed');
    assert.equal(await lib.liveSshEngines(), 0, 'the SSH engine handle was released');

    // 5. SshSession[Symbol.dispose] (what `using` calls) releases its handle as dispose() does.
    const other = await conn.openSession(keyLogin({ command: 'sleep 30' }));
    assert.equal(await lib.liveSshEngines(), 1);
    other[Symbol.dispose]();
    assert.equal(other.state, 'closed');
    assert.equal(await lib.liveSshEngines(), 0);
    conn.dispose();
    assert.equal(await lib.liveCoreSessions(), 0, 'the core session handle was released');
  });
});
