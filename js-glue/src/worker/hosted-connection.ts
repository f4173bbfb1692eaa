// SPDX-License-Identifier: Apache-2.0
// A Connection kept by the worker host (host.ts) for pages: one WebSocket shared by the raw
// channels and SSH sessions opened on it. Each channel is a stream session of hosted-session.ts
// (channelSession adapts a Channel to its HostSession interface), so a channel has the same
// views, credit, replay and grace as a stream session; the connection itself only keeps who uses
// it.
//
// Lifetime: the connection ends (`connection-ended`, and every channel and session on it ends
// with the same reason) when
//   - it has no view for its grace (the page that held it went away and did not come back):
//     `detached-too-long`;
//   - its last view released it and nothing runs on it, or its last channel / session ended after
//     that: `closed`;
//   - the Connection closed for good (its WebSocket could not be resumed): `error`.
import type { Channel } from '../channel.js';
import { Emitter } from '../emitter.js';
import { ManaError } from '../errors.js';
import type { SshCloseEvent } from '../ssh/types.js';
import type { HostSession, HostedSession, PageLink } from './hosted-session.js';
import type { PageAsk } from './host.js';
import { GraceTimer, type Timers } from './grace.js';
import type { ConnectionEndReason, WireSessionOptions, WorkerMessage } from './protocol.js';
import type { WireConnectionEvent, WireConnectionStatus } from './protocol-status.js';

/** What the host needs of a Connection (tests substitute their own; worker/open.ts). */
export interface HostConnection {
  /** A raw channel (flow manual), resolved once the gateway accepted it. */
  openChannel(target: { host: string; port: number }): Promise<HostSession>;
  /** An SSH session on this connection (flow manual). */
  openSession(session: WireSessionOptions, ask: PageAsk): Promise<HostSession>;
  /**
   * The Connection closed for good (not fired by dispose()); `normal`: a close without an error
   * (close() of a page, the gateway's normal close).
   */
  onClose(listener: (error: { code: string; message: string; normal?: boolean }) => void): void;
  dispose(): void;
  /** The Connection's status snapshot (absent: a test connection, `ready` is reported). */
  status?(): WireConnectionStatus;
  /** The Connection's events for the views (state, diagnostic, policy, persistence). */
  onEvent?(listener: (event: WireConnectionEvent) => void): void;
  setAppPaused?(on: boolean): void;
  /** Connection.close(code, reason): closes for good; onClose follows. */
  close?(code: number, reason: string): void;
}

const readyStatus: WireConnectionStatus = {
  state: 'ready',
  pauseReasons: [],
  bufferedAmount: 0,
  storedSession: 'none',
};

/**
 * A Channel as a HostSession: its stdout / stderr chunks, its writes and credit; resize does
 * nothing. A close by the target is a normal end; any other close (the connection went away, a
 * local close) carries an error naming the reason. Made as soon as the channel is (its first bytes
 * may come with the open): what it delivers before the host subscribes is held (bounded by the
 * channel's credit) and delivered, in order, once the host did.
 */
export function channelSession(ch: Channel): HostSession {
  const stdout = new Emitter<Uint8Array>();
  const stderr = new Emitter<Uint8Array>();
  const closed = new Emitter<SshCloseEvent>();
  let held: (() => void)[] | null = [];
  const later = (f: () => void) => {
    if (held !== null) held.push(f);
    else f();
  };
  const flushSoon = () => {
    // The host subscribes to every event in one go (HostedSession's constructor).
    queueMicrotask(() => {
      const h = held ?? [];
      held = null;
      for (const f of h) f();
    });
  };
  ch.onData(({ data, stream }) => {
    later(() => {
      (stream === 'stderr' ? stderr : stdout).fire(data);
    });
  });
  ch.onClose(({ reason, origin }) => {
    const e: SshCloseEvent =
      origin === 'remote'
        ? {}
        : { error: new ManaError(`channel closed: ${reason}`, { code: 'closed', origin }) };
    later(() => {
      closed.fire(e);
    });
  });
  return {
    onData: (l) => {
      if (held !== null && stdout.size === 0) flushSoon();
      return stdout.event(l);
    },
    onStderr: stderr.event,
    channelStats: () => ch.stats() ?? null,
    onExit: (l) =>
      ch.onExit(({ code, signal }) => {
        l({ ...(code !== null ? { code } : {}), ...(signal !== null ? { signal } : {}) });
      }),
    onClose: closed.event,
    onWritable: ch.onWritable,
    get unconsumed() {
      return ch.unconsumed;
    },
    write: (d) => (ch.state === 'open' ? ch.write(d) : 0),
    consume: (n) => {
      ch.consume(n);
    },
    resize: () => undefined,
    close: () => {
      ch.close();
    },
    dispose: () => {
      ch.close('disposed');
    },
  };
}

export interface HostedConnectionOptions {
  id: string;
  secret: string;
  conn: HostConnection;
  graceMs: number;
  /** The connection ended (once). */
  ended: () => void;
  timers?: Timers;
}

export class HostedConnection {
  /** The pages viewing the connection, and the channels / sessions running on it. */
  readonly #views = new Set<PageLink>();
  readonly #users = new Set<HostedSession>();
  readonly #o: HostedConnectionOptions;
  readonly #grace: GraceTimer;
  #ended = false;
  /** A page asked for close(): the end is `closed` when the Connection reports it. */
  #closing = false;
  readonly id: string;
  readonly secret: string;
  readonly conn: HostConnection;

  constructor(o: HostedConnectionOptions) {
    this.#o = o;
    this.id = o.id;
    this.secret = o.secret;
    this.conn = o.conn;
    this.#grace = new GraceTimer(o.graceMs, o.timers, () => {
      this.end('detached-too-long');
    });
    // Before onClose: the views get the `closed` state, then `connection-ended`.
    o.conn.onEvent?.((event) => {
      this.#broadcast(event);
    });
    o.conn.onClose((e) => {
      // A close a page asked for (close(4001)) is a normal end, whatever code it carried.
      if (e.normal === true || this.#closing) this.end('closed');
      else this.end('error', e.code, e.message);
    });
  }

  status(): WireConnectionStatus {
    return this.conn.status?.() ?? { ...readyStatus };
  }

  /** Connection.setAppPaused of a page (the `app` pause holds every channel on the connection). */
  setAppPaused(on: boolean): void {
    if (!this.#ended) this.conn.setAppPaused?.(on);
  }

  /** Connection.close of a page: closes it for good, for every page (`connection-ended`). */
  close(code: number, reason: string): void {
    if (this.#ended || this.#closing) return;
    this.#closing = true;
    // The views get the `closed` state, then `connection-ended` (onClose above).
    if (this.conn.close !== undefined) this.conn.close(code, reason);
    else this.end('closed');
  }

  #broadcast(event: WireConnectionEvent): void {
    if (this.#ended || this.#views.size === 0) return;
    const msg: WorkerMessage = {
      v: 1,
      type: 'connection-event',
      connectionId: this.id,
      status: this.status(),
      event,
    };
    for (const v of this.#views) v.send(msg);
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Channels and sessions running on the connection. */
  get users(): number {
    return this.#users.size;
  }

  isViewer(link: PageLink): boolean {
    return this.#views.has(link);
  }

  attach(link: PageLink): void {
    this.#grace.cancel();
    this.#views.add(link);
  }

  /** The page released its view: the connection ends when nothing else uses it. */
  release(link: PageLink): void {
    this.#views.delete(link);
    this.#endIfUnused();
  }

  /** The page went away: without a view left, the grace timer starts. */
  pageGone(link: PageLink): void {
    if (this.#views.delete(link) && this.#views.size === 0 && !this.#ended) this.#grace.start();
  }

  /** `s` runs on the connection until it ends (then unuse()). */
  use(s: HostedSession): void {
    this.#users.add(s);
  }

  unuse(s: HostedSession): void {
    this.#users.delete(s);
    this.#endIfUnused();
  }

  /** Ends the connection: every channel and session on it ends with `reason`, then it closes. */
  end(reason: ConnectionEndReason, code?: string, message?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#grace.cancel();
    for (const s of [...this.#users]) s.end(reason);
    this.#users.clear();
    const msg: WorkerMessage = { v: 1, type: 'connection-ended', connectionId: this.id, reason };
    if (code !== undefined) msg.code = code.slice(0, 64);
    if (message !== undefined) msg.message = message.slice(0, 4096);
    for (const v of this.#views) v.send(msg);
    this.#views.clear();
    this.conn.dispose();
    this.#o.ended();
  }

  #endIfUnused(): void {
    if (this.#views.size === 0 && this.#users.size === 0 && !this.#grace.running) {
      this.end('closed');
    }
  }
}
