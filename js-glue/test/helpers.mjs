// SPDX-License-Identifier: Apache-2.0
// Test doubles: a scripted WebSocket, a fake document/window, and mana.v1 frame helpers; and for
// the tests against the real mana-gateway (build/native-debug/bin/mana-gateway or $MANA_GATEWAY,
// started by tools/devkit/gateway.mjs): its connect options and a WebSocket that can be cut
// abruptly.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { launchGateway } from '../../tools/devkit/gateway.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const distDir = join(root, 'build', 'js', 'package', 'dist');
export const lib = await import(join(distDir, 'index.js'));
// Under Node the 3.1.6 loader cannot fetch a file path: hand it the bytes (first load wins).
await lib.loadCore({ wasmBinary: readFileSync(join(distDir, 'internal', 'mana-core.wasm')) });

export class FakeWebSocket {
  static instances = [];
  static last() {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.binaryType = 'blob';
    this.bufferedAmount = 0;
    this.readyState = 0;
    this.protocol = '';
    this.sent = [];
    this.closedWith = undefined;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(typeof data === 'string' ? data : Uint8Array.from(data));
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // ---- driven by tests ----
  open() {
    this.readyState = 1;
    this.protocol = 'mana.ssh.v1';
    this.onopen?.({});
  }
  text(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  binary(bytes) {
    const copy = Uint8Array.from(bytes);
    this.onmessage?.({ data: copy.buffer });
  }
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
  /** Sent control messages (JSON) after the test last looked. */
  controls() {
    return this.sent.filter((m) => typeof m === 'string').map((m) => JSON.parse(m));
  }
  dataFrames() {
    return this.sent.filter((m) => typeof m !== 'string').map(parseData);
  }
}

export function parseData(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { stream: bytes[0], id: view.getUint32(1), payload: bytes.subarray(5) };
}

export function dataFrame(id, payload, stream = 1) {
  const out = new Uint8Array(5 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(1, id);
  out.set(payload, 5);
  return out;
}

export function helloOk({
  token = 'tok_0123456789abcdef',
  channels = [],
  window = 262144,
  resume = true,
} = {}) {
  const m = {
    t: 'hello_ok',
    server: 'fake-gateway',
    caps: {
      flow: 'credit',
      maxFrame: 1048576,
      profileAccepted: 'mana.v1',
      bidi: true,
      heartbeatMs: 20000,
      idleTimeoutMs: 60000,
      maxChannels: 4,
      window,
    },
  };
  if (resume) {
    m.caps.resumeTtlMs = 60000;
    m.resume = { token, channels };
  }
  return m;
}

export class FakeTarget {
  #listeners = new Map();
  constructor(props = {}) {
    Object.assign(this, props);
  }
  addEventListener(type, l) {
    if (!this.#listeners.has(type)) this.#listeners.set(type, new Set());
    this.#listeners.get(type).add(l);
  }
  removeEventListener(type, l) {
    this.#listeners.get(type)?.delete(l);
  }
  dispatch(type) {
    for (const l of [...(this.#listeners.get(type) ?? [])]) l();
  }
  listenerCount() {
    let n = 0;
    for (const s of this.#listeners.values()) n += s.size;
    return n;
  }
}

/** A manual clock for `environment.now`. */
export function clock(start = 1000) {
  let t = start;
  const now = () => t;
  now.advance = (ms) => {
    t += ms;
  };
  return now;
}

/** Connects with the fake socket and no browser globals; returns the connection and its socket. */
export async function fakeConnect(extra = {}) {
  const env = { document: null, window: null, random: () => 0.5, ...(extra.environment ?? {}) };
  const conn = await lib.connect({
    url: 'ws://fake/ws',
    token: 'jwt-token',
    WebSocket: FakeWebSocket,
    storage: 'memory',
    ...extra,
    environment: env,
  });
  return { conn, ws: FakeWebSocket.last() };
}

/** Connects and completes the handshake. */
export async function readyConnection(extra = {}, helloOkOptions = {}) {
  const { conn, ws } = await fakeConnect(extra);
  ws.open();
  ws.text(helloOk(helloOkOptions));
  await conn.whenReady();
  ws.sent.length = 0;
  return { conn, ws };
}

/** Opens a channel and acknowledges it with `window` bytes of client->server credit. */
export async function openChannel(conn, ws, { window = 65536, autoConsume = false } = {}) {
  const ch = conn.openChannel({
    target: { host: '127.0.0.1', port: 22 },
    kind: 'tcp',
    autoConsume,
  });
  const open = ws.controls().find((m) => m.t === 'open' && m.id === ch.id);
  if (!open) throw new Error('no open message sent');
  ws.text({ t: 'open_ok', id: ch.id, window });
  await ch.opened;
  ws.sent.length = 0;
  return ch;
}

export { sleep } from '../../tools/devkit/net.mjs';

/**
 * Registers an afterEach hook that disposes every connection passed through the returned
 * `track(result)` and forgets the fake sockets. Returns `track`.
 */
export function trackConnections(afterEach) {
  const live = [];
  afterEach(() => {
    for (const c of live.splice(0)) c.dispose();
    FakeWebSocket.instances.length = 0;
  });
  return (r) => (live.push(r.conn), r);
}

// ---- the real gateway (tools/devkit) ----

/** WebSocket that remembers its instances, so a test can cut the TCP connection abruptly. */
export const sockets = [];
export class TrackedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    sockets.push(this);
  }
}

/** Options of lib.connect() to a real gateway under Node (fast reconnects, no browser globals). */
export function gatewayConnectOptions(url, token, extra = {}) {
  return {
    url,
    token,
    WebSocket: TrackedWebSocket,
    storage: 'memory',
    environment: { document: null, window: null },
    reconnect: { initialDelayMs: 20, jitter: 0 },
    ...extra,
  };
}

/**
 * mana-gateway (tools/devkit/gateway.mjs) allowing `ports` on 127.0.0.1 and a missing Origin,
 * with a fresh HS256 key, holding detached sessions for `resumeTtlMs`. Returns the devkit's
 * Gateway: { url, token(claims?), logs(), stop(), ... }.
 */
export function startGateway({ ports, resumeTtlMs }) {
  return launchGateway({
    allowMissingOrigin: true,
    targets: [{ host: '127.0.0.1', ports }],
    config: { session: { resume_ttl_ms: resumeTtlMs } },
  });
}
