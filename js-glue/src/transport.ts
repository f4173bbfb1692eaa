// SPDX-License-Identifier: Apache-2.0
// The WebSocket of a connection: one at a time (a reconnect opens a new one), its events fed into
// the core, the core's output sent on it, and the `transport` pause from its bufferedAmount (high
// / low water marks, polled; `onbufferdrain` ends the pause at once where the socket has it).
import type { WebSocketConstructor, WebSocketLike } from './connection-types.js';
import { TransportError } from './errors.js';
import { closeCode } from './generated/errc.js';
import type { CoreSession } from './internal/core-types.js';

export const SUBPROTOCOL = 'mana.ssh.v1';

/** Close codes a browser may pass to WebSocket.close(): 1000 and 3000-4999. */
function browserCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  return new TextDecoder().decode(bytes.slice(0, maxBytes)).replace(/\uFFFD$/u, '');
}

const encoder = new TextEncoder();

/** What the transport needs from its connection. */
export interface TransportHost {
  /** The current core (replaced when a refused stored session starts fresh). */
  core(): CoreSession;
  disposed(): boolean;
  now(): number;
  pump(): void;
  diag(code: string, detail: string): void;
  /** The error the next close reports (instead of the one derived from the close code). */
  setPendingError(error: TransportError): void;
  setTransportPause(on: boolean): void;
  /** A WebSocket failed before it opened while the core was `reconnecting`. */
  retry(): void;
  /** The URL of the next WebSocket (a resume's carries `?route=<id>`, route.ts). */
  url(): string;
}

export interface TransportOptions {
  WebSocket: WebSocketConstructor;
  /** bufferedAmount above which the `transport` pause starts / below which it ends. */
  high: number;
  low: number;
  pollMs: number;
}

export class Transport {
  readonly #host: TransportHost;
  readonly #options: TransportOptions;
  #ws: WebSocketLike | undefined;
  #bufferedTimer: ReturnType<typeof setInterval> | undefined;

  constructor(host: TransportHost, options: TransportOptions) {
    this.#host = host;
    this.#options = options;
  }

  /** Whether a WebSocket is open or opening. */
  get active(): boolean {
    return this.#ws !== undefined;
  }

  /** The WebSocket's bufferedAmount (0 without a transport). */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  open(): void {
    const host = this.#host;
    let ws: WebSocketLike;
    try {
      ws = new this.#options.WebSocket(host.url(), SUBPROTOCOL);
    } catch (cause) {
      this.#failed(undefined, cause);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => {
      if (ws !== this.#ws || host.disposed()) return;
      if (ws.protocol !== '' && ws.protocol !== SUBPROTOCOL) {
        host.setPendingError(
          new TransportError(`server chose subprotocol '${ws.protocol}'`, {
            code: 'bad_subprotocol',
            origin: 'remote',
          }),
        );
      }
      const r = host.core().transportOpen(host.now());
      if (r !== undefined) host.diag('transport_open_failed', r.detail);
      host.pump();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.#ws || host.disposed()) return;
      const d = ev.data;
      if (typeof d === 'string') {
        host.core().receive(true, encoder.encode(d), host.now());
      } else if (d instanceof ArrayBuffer) {
        host.core().receive(false, new Uint8Array(d), host.now());
      } else if (ArrayBuffer.isView(d)) {
        host
          .core()
          .receive(false, new Uint8Array(d.buffer, d.byteOffset, d.byteLength), host.now());
      }
      host.pump();
    };
    ws.onerror = () => {
      // A close event always follows; it carries the code.
    };
    ws.onclose = (ev) => {
      if (ws !== this.#ws || host.disposed()) return;
      this.drop(false);
      const core = host.core();
      const coreState = core.state();
      if (coreState === 'connecting' || coreState === 'reconnecting') {
        // The WebSocket never opened (DNS, refused, HTTP error, offline).
        this.#failed(ev.code, undefined);
        return;
      }
      if (ev.code === 1006 || ev.code === 1015) core.transportLost(host.now());
      else core.receiveClose(ev.code === 1005 ? 1000 : ev.code, ev.reason, host.now());
      host.pump();
    };
  }

  // The WebSocket failed before opening.
  #failed(wsCode: number | undefined, cause: unknown): void {
    const host = this.#host;
    if (host.core().state() === 'reconnecting') {
      host.retry();
      return;
    }
    // Browsers hide the upgrade's HTTP status, so a refused Origin (403) and an unreachable
    // gateway look the same here: name both.
    host.setPendingError(
      new TransportError(
        'WebSocket failed before opening: the gateway is unreachable, or it refused the upgrade ' +
          "(e.g. this page's Origin is not in [server] origins: see the gateway's `policy` log line)",
        {
          code: 'transport_failed',
          origin: 'remote',
          wsCode,
          cause,
        },
      ),
    );
    host.core().close(closeCode.cancelled, 'transport failed', host.now());
    host.pump();
  }

  /** Detaches the WebSocket (`close`: close it too) and ends the `transport` pause. */
  drop(close: boolean): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    this.#ws = undefined;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    if (ws.onbufferdrain !== undefined) ws.onbufferdrain = null;
    if (close && (ws.readyState === 0 || ws.readyState === 1)) {
      try {
        ws.close(1000, 'disposed');
      } catch {
        // Already closing.
      }
    }
    this.#stopPolling();
    if (!this.#host.disposed()) this.#host.setTransportPause(false);
  }

  /** Sends every queued output message of the core (dropped while no WebSocket is open). */
  flush(): void {
    const core = this.#host.core();
    for (let out = core.pollOutput(); out !== null; out = core.pollOutput()) {
      const ws = this.#ws;
      if (ws !== undefined) this.#send(ws, out);
    }
  }

  #send(ws: WebSocketLike, out: NonNullable<ReturnType<CoreSession['pollOutput']>>): void {
    if (ws.readyState !== 1) return;
    switch (out.type) {
      case 'text':
        ws.send(out.text);
        break;
      case 'binary':
        ws.send(out.data);
        break;
      case 'close':
        this.drop(false);
        try {
          ws.close(browserCloseCode(out.code), truncateUtf8(out.reason, 120));
        } catch {
          // Closing already.
        }
        break;
    }
  }

  /** Starts the `transport` pause once bufferedAmount reaches the high-water mark. */
  checkBuffered(paused: boolean): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    const host = this.#host;
    if (!paused && ws.bufferedAmount >= this.#options.high) {
      host.setTransportPause(true);
      const drained = () => {
        if (this.#ws !== ws || host.disposed()) return;
        if (ws.bufferedAmount <= this.#options.low) {
          this.#stopPolling();
          if (ws.onbufferdrain !== undefined) ws.onbufferdrain = null;
          host.setTransportPause(false);
          host.pump();
        }
      };
      this.#bufferedTimer = setInterval(drained, this.#options.pollMs);
      if (ws.onbufferdrain !== undefined) ws.onbufferdrain = drained;
    }
  }

  #stopPolling(): void {
    if (this.#bufferedTimer !== undefined) clearInterval(this.#bufferedTimer);
    this.#bufferedTimer = undefined;
  }

  /** Stops the bufferedAmount poll (dispose, final close). */
  stop(): void {
    this.#stopPolling();
  }
}
