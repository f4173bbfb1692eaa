// SPDX-License-Identifier: Apache-2.0
/// <reference types="node" />
// @mana/websocket/node: the Node entry point (docs/browser-client.md, "Node"). Everything of the
// browser entry, plus:
//   connect()       the wasm modules are read from the package (fs, next to this file), the
//                   WebSocket is the `ws` package (optional peer dependency) or Node's global one;
//                   with `ws` the socket's 'drain' ends the `transport` pause at once.
//   toNodeStream()  a stream.Duplex over a Channel or an SshSession whose backpressure is the
//                   channel credit: bytes are consumed (credit granted) only while the readable
//                   side holds less than its highWaterMark; writes wait for credit.
// Node-only imports (node:fs, node:stream) live in this file only, so the browser entry
// (index.ts) never pulls them into a bundle.
import { Buffer } from 'node:buffer';
import { readFile } from 'node:fs/promises';
import { Duplex } from 'node:stream';
import { Channel } from './channel.js';
import { connect as connectBrowser, type Connection } from './connect.js';
import type { ConnectOptions, WebSocketConstructor, WebSocketLike } from './connection-types.js';
import type { DisposableLike } from './emitter.js';
import { InvalidStateError, ManaError } from './errors.js';
import { setWasmSource } from './internal/load-module.js';
import { SshSession } from './ssh/session.js';

export * from './index.js';

// The .wasm files sit in dist/internal/ next to this module; a load without wasmBinary or
// locateFile (connect(), loadCore(), loadSsh(), openSession()) reads them from there.
const wasmSource = (file: string): Promise<Uint8Array> =>
  readFile(new URL(`./internal/${file}`, import.meta.url));
setWasmSource(wasmSource);

/** connect() options under Node: as in the browser, `WebSocket` defaults to `ws` (see below). */
export type NodeConnectOptions = ConnectOptions;

interface EmitterLike {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
}
type EmittingWebSocket = WebSocketLike & EmitterLike;

/**
 * The `ws` WebSocket class (or a subclass) with `onbufferdrain`: its bufferedAmount is the
 * socket's writableLength plus the frames `ws` has not handed to the socket yet; the socket emits
 * 'drain' once its writableLength, having passed writableHighWaterMark, is back to 0, and the
 * connection then checks the low-water mark at once instead of at its next poll. Constructors
 * whose sockets are not event emitters (Node's global WebSocket) are returned unchanged.
 */
function withDrain(WS: WebSocketConstructor): WebSocketConstructor {
  if (typeof (WS.prototype as Partial<EmitterLike>).on !== 'function') return WS;
  const Base = WS as new (url: string, protocols?: string | string[]) => EmittingWebSocket;
  return class NodeWebSocket extends Base {
    override onbufferdrain: (() => void) | null = null;
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      this.once('upgrade', (res) => {
        const socket = (res as { socket?: Partial<EmitterLike> } | undefined)?.socket;
        socket?.on?.('drain', () => {
          this.onbufferdrain?.();
        });
      });
    }
  };
}

async function nodeWebSocket(
  given: WebSocketConstructor | undefined,
): Promise<WebSocketConstructor> {
  if (given !== undefined) return withDrain(given);
  try {
    const ws = (await import('ws')) as { WebSocket?: unknown; default?: unknown };
    const WS = ws.WebSocket ?? ws.default;
    if (typeof WS === 'function') return withDrain(WS as WebSocketConstructor);
  } catch {
    // `ws` is an optional peer dependency: try Node's own WebSocket (Node >= 22).
  }
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global !== undefined) return global;
  throw new InvalidStateError(
    'no WebSocket under this Node: install the `ws` package or pass options.WebSocket',
    { code: 'invalid_argument', origin: 'local' },
  );
}

/**
 * connect() for Node: loads the wasm core from the package, uses `ws` (or Node's global
 * WebSocket), no browser globals (no hidden / offline pause) and `memory` storage by default.
 */
export async function connect(options: NodeConnectOptions): Promise<Connection> {
  setWasmSource(wasmSource);
  return connectBrowser({
    storage: 'memory',
    ...options,
    WebSocket: await nodeWebSocket(options.WebSocket),
    environment: { document: null, window: null, ...options.environment },
  });
}

export interface NodeStreamOptions {
  /** Readable and writable highWaterMark, bytes. Default Node's (16 KiB on Node 20). */
  highWaterMark?: number;
  /**
   * SshSession only: stderr of an exec without a pty. `event` (default): emitted as
   * `'stderr'` events (Buffer) and consumed at once; `merge`: into the readable side, in order.
   */
  stderr?: 'event' | 'merge';
}

/** What the duplex needs from a Channel or an SshSession. */
interface ByteSource {
  onData(listener: (data: Uint8Array, stderr: boolean) => void): DisposableLike;
  onClose(listener: (error: Error | undefined) => void): DisposableLike;
  consume(n: number): void;
  writeAll(data: Uint8Array): Promise<void>;
  /** The writable side ended. */
  end(): void;
  close(): void;
}

function channelSource(ch: Channel): ByteSource {
  if (ch.autoConsume) {
    throw new InvalidStateError('toNodeStream: open the channel without autoConsume', {
      code: 'invalid_argument',
      origin: 'local',
    });
  }
  return {
    onData: (l) =>
      ch.onData(({ data, stream }) => {
        l(data, stream === 'stderr');
      }),
    onClose: (l) =>
      ch.onClose(({ reason, origin }) => {
        // `eof`: the target closed its side after its last byte; `local`: this side closed it
        // (close(), destroy(), dispose()). Anything else ends the stream with an error.
        l(
          reason === 'eof' || origin === 'local'
            ? undefined
            : new ManaError(`channel ${ch.id} closed: ${reason || 'no reason'}`, {
                code: 'channel_closed',
                origin,
              }),
        );
      }),
    consume: (n) => {
      ch.consume(n);
    },
    writeAll: (data) => ch.writeAll(data),
    // The protocol has no half-close: the channel stays open for reading until the target
    // closes it or the stream is destroyed.
    end: () => undefined,
    close: () => {
      ch.close('stream destroyed');
    },
  };
}

function sessionSource(s: SshSession): ByteSource {
  if (s.flow !== 'manual') {
    throw new InvalidStateError("toNodeStream: open the SSH session with flow: 'manual'", {
      code: 'invalid_argument',
      origin: 'local',
    });
  }
  return {
    onData: (l) => {
      const a = s.onData((d) => {
        l(d, false);
      });
      const b = s.onStderr((d) => {
        l(d, true);
      });
      return {
        dispose() {
          a.dispose();
          b.dispose();
        },
      };
    },
    onClose: (l) =>
      s.onClose(({ error }) => {
        l(error);
      }),
    consume: (n) => {
      s.consume(n);
    },
    writeAll: (data) => s.writeAll(data),
    end: () => {
      if (s.state === 'open') s.sendEof();
    },
    close: () => {
      s.close();
    },
  };
}

/**
 * A stream.Duplex over a Channel (opened without autoConsume) or an SshSession (flow 'manual').
 * Received bytes are pushed to the readable side and consumed, which grants the server credit,
 * only while that side holds less than `highWaterMark`: a slow consumer stops the server within
 * one credit window. Writes resolve once the bytes are within the server's credit. `end()` sends
 * EOF to an SSH session's stdin (a channel has no half-close); `destroy()` closes the channel or
 * session. The readable side ends when the target closes (`eof`) or the session ends normally;
 * any other close destroys the stream with the error. An SshSession's exit is emitted as `'exit'`.
 */
export function toNodeStream(
  source: Channel | SshSession,
  options: NodeStreamOptions = {},
): Duplex {
  if (source instanceof Channel) return new CreditDuplex(channelSource(source), options);
  if (source instanceof SshSession) {
    const d = new CreditDuplex(sessionSource(source), options);
    const exit = source.onExit((e) => d.emit('exit', e));
    d.once('close', () => {
      exit.dispose();
    });
    return d;
  }
  throw new InvalidStateError('toNodeStream: pass a Channel or an SshSession', {
    code: 'invalid_argument',
    origin: 'local',
  });
}

class CreditDuplex extends Duplex {
  readonly #source: ByteSource;
  readonly #subs: DisposableLike[];
  /** Bytes pushed and not consumed yet (the readable side was at its highWaterMark). */
  #owed = 0;
  #ended = false;

  constructor(source: ByteSource, options: NodeStreamOptions) {
    super({
      allowHalfOpen: true,
      ...(options.highWaterMark !== undefined ? { highWaterMark: options.highWaterMark } : {}),
    });
    this.#source = source;
    const mergeStderr = options.stderr === 'merge';
    this.#subs = [
      source.onData((data, stderr) => {
        const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        if (stderr && !mergeStderr) {
          source.consume(chunk.length);
          this.emit('stderr', chunk);
          return;
        }
        if (this.#ended || this.destroyed) return;
        // Owed first: push() may call back into _read() before it returns.
        this.#owed += chunk.length;
        if (this.push(chunk)) this._read();
      }),
      source.onClose((error) => {
        this.#release();
        if (error !== undefined) this.destroy(error);
        else if (!this.#ended) {
          this.#ended = true;
          this.push(null);
        }
      }),
    ];
  }

  override _read(): void {
    const n = this.#owed;
    if (n === 0) return;
    this.#owed = 0;
    try {
      this.#source.consume(n);
    } catch {
      // The channel or session is gone: nothing left to grant.
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (e?: Error) => void): void {
    this.#source.writeAll(chunk).then(
      () => {
        callback();
      },
      (e: unknown) => {
        callback(e instanceof Error ? e : new Error(String(e)));
      },
    );
  }

  override _final(callback: (e?: Error) => void): void {
    try {
      this.#source.end();
      callback();
    } catch (e) {
      callback(e instanceof Error ? e : new Error(String(e)));
    }
  }

  override _destroy(error: Error | null, callback: (e: Error | null) => void): void {
    const open = this.#subs.length > 0;
    this.#release();
    if (open) {
      try {
        this.#source.close();
      } catch {
        // Already closed.
      }
    }
    callback(error);
  }

  #release(): void {
    for (const s of this.#subs.splice(0)) s.dispose();
  }
}
