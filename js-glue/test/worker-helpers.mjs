// SPDX-License-Identifier: Apache-2.0
// Test doubles of the session worker tests: a scripted SSH session with the shape the worker host
// needs, and a page end of a MessageChannel that records what the host sends.
import { MessageChannel } from 'node:worker_threads';
import { Emitter } from '../../build/js/package/dist/emitter.js';

export { WorkerHost } from '../../build/js/package/dist/worker/host.js';
export { headlessScreen } from '../../build/js/package/dist/worker/screen.js';
export * as protocol from '../../build/js/package/dist/worker/protocol.js';
export { newSecret, secretsEqual } from '../../build/js/package/dist/worker/secret.js';

/** An SshSession double in flow 'manual': records writes, consumes, resizes, close/dispose. */
export class FakeSession {
  constructor() {
    this.data = new Emitter();
    this.stderr = new Emitter();
    this.exit = new Emitter();
    this.close_ = new Emitter();
    this.writable = new Emitter();
    this.onData = this.data.event;
    this.onStderr = this.stderr.event;
    this.onExit = this.exit.event;
    this.onClose = this.close_.event;
    this.onWritable = this.writable.event;
    this.unconsumed = 0;
    this.consumed = 0;
    this.written = [];
    this.resized = [];
    this.room = Infinity;
    this.closed = false;
    this.disposed = false;
  }
  /** The remote side printed `text`. */
  emit(text) {
    const bytes = new TextEncoder().encode(text);
    this.unconsumed += bytes.length;
    this.data.fire(bytes);
  }
  write(d) {
    const n = Math.min(d.length, this.room);
    this.written.push(new TextDecoder().decode(d.subarray(0, n)));
    return n;
  }
  consume(n) {
    if (n > this.unconsumed) throw new Error(`consume ${n} > ${this.unconsumed}`);
    this.unconsumed -= n;
    this.consumed += n;
    // A real session pumps its engine on consume(), which may deliver output synchronously.
    this.onConsume?.(n);
  }
  resize(c, r) {
    this.resized.push([c, r]);
  }
  close() {
    this.closed = true;
    this.close_.fire({});
  }
  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.close_.fire({});
  }
}

/** A page connected to `host` over a real MessageChannel. */
export class TestPage {
  constructor(host, pageId = `page-${Math.random().toString(16).slice(2)}`) {
    const { port1, port2 } = new MessageChannel();
    host.addPort(port1);
    this.port = port2;
    this.pageId = pageId;
    this.received = [];
    /** Every message, in order. */
    this.all = [];
    this.waiters = [];
    port2.onmessage = (e) => {
      this.all.push(e.data);
      const w = this.waiters.find((x) => x.pred(e.data));
      if (w === undefined) {
        this.received.push(e.data);
        return;
      }
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(e.data);
    };
  }
  send(msg, transfer = []) {
    this.port.postMessage(msg, transfer);
  }
  /** The next message (already received or future) matching `pred`. */
  next(pred, ms = 3000) {
    const have = this.received.find(pred);
    if (have) {
      this.received.splice(this.received.indexOf(have), 1);
      return Promise.resolve(have);
    }
    return new Promise((resolve, reject) => {
      // The timer is cleared on a match: a pending one kept the test process alive until it fired.
      const w = {
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.waiters.push(w);
      const timer = setTimeout(() => {
        if (!this.waiters.includes(w)) return;
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(
          new Error(
            `no message matched within ${ms} ms; got ${JSON.stringify(this.received.map((m) => m.type))}`,
          ),
        );
      }, ms);
    });
  }
  type(t, ms) {
    return this.next((m) => m.type === t, ms);
  }
  close() {
    this.port.close();
  }
}

export const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
