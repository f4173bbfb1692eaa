// A download through the session worker (pages/worker-transfer.html, ssh/worker-transfer.spec.ts):
// the SSH session runs in the SharedWorker as a stream session (no screen model); this page hashes
// what arrives, saves the hash state and the byte count to sessionStorage, and only then consumes
// the bytes, so the worker's credit follows what the page made safe. After a reload, resume()
// restores the saved state and reattaches: the worker replays from `view.offset` what this page had
// not consumed, and the page skips what it saved beyond that offset.
import { ManaWorkerClient } from '@mana/websocket';
import { Sha256 } from './harness.js';

const KEY = 'e2e-transfer';
const state = { events: [], offset: 0, chunks: 0, held: 0, exit: undefined, closed: false };
let client;
let view;
let sha = new Sha256();
/** Bytes to drop at the start of a replay (saved before the reload, not yet consumed then). */
let skip = 0;
/** Stop consuming once `offset` reaches this (chunks are held, not consumed). */
let pauseAt = Infinity;
const heldChunks = [];

function save() {
  sessionStorage.setItem(KEY, JSON.stringify({ offset: state.offset, sha: sha.snapshot() }));
}

function take(chunk) {
  let d = chunk;
  if (skip > 0) {
    const n = Math.min(skip, d.length);
    skip -= n;
    d = d.subarray(n);
  }
  sha.update(d);
  state.offset += d.length;
  state.chunks++;
  save();
  view.consume(chunk.length);
}

function onChunk(chunk) {
  if (state.offset >= pauseAt || heldChunks.length > 0) {
    heldChunks.push(chunk);
    state.held += chunk.length;
    return;
  }
  take(chunk);
}

function wire(v) {
  view = v;
  v.onData(onChunk);
  v.onExit((e) => {
    state.exit = e.code;
  });
  v.onClose(({ error }) => {
    state.closed = true;
    state.events.push({ type: 'close', name: error?.name, code: error?.code });
  });
}

window.manaTransfer = {
  state,
  async start(options = {}) {
    client = await ManaWorkerClient.start(options);
    return client.mode;
  },
  async open(connect, session, options = {}) {
    sessionStorage.removeItem(KEY);
    pauseAt = options.pauseAt ?? Infinity;
    save();
    wire(await client.openSession(connect, { ...session, stream: true }));
    return view.sessionId;
  },
  /** After a reload: the saved hash state, then reattach; returns both offsets. */
  async resume() {
    const saved = JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
    if (saved === null) return { ok: false, why: 'nothing saved' };
    sha = Sha256.restore(saved.sha);
    state.offset = saved.offset;
    const v = await client.reattach();
    if (v === undefined) return { ok: false, why: 'no session stored' };
    skip = saved.offset - v.offset;
    wire(v);
    return { ok: true, saved: saved.offset, workerOffset: v.offset, skip };
  },
  /** Consume again: the held chunks first. */
  release() {
    pauseAt = Infinity;
    while (heldChunks.length > 0) take(heldChunks.shift());
  },
  hex() {
    return sha.hex();
  },
};
window.manaLoaded = Promise.resolve(true);
