// SPDX-License-Identifier: Apache-2.0
// RemoteConnection and RemoteChannel: a page's views of a Connection and of its raw channels held
// by the session worker (worker/hosted-connection.ts). One WebSocket, in the worker, carries every
// channel and SSH session opened on the connection, and outlives a reload of the page for the
// connection's grace (shared mode).
//
// The shapes follow Connection and Channel; what crosses to the worker is async: openChannel()
// resolves once the gateway accepted the channel (Connection.openChannel returns at once and
// `opened` resolves later), openSession() resolves like ManaWorkerClient.openSession. A channel is
// a stream session of the worker: the bytes this page has not consumed are kept there (bounded by
// the channel's credit) and a page that reattaches gets them again from `offset`.
import { disposeSymbol } from '../dispose.js';
import { Emitter, type DisposableLike, type EventRegistration } from '../emitter.js';
import { InvalidStateError } from '../errors.js';
import type { ChannelCloseEvent, ChannelData, ChannelState } from '../channel.js';
import { SessionLostError } from '../ssh/errors.js';
import type { ConnectionEndReason, WorkerMessage } from './protocol.js';
import type { DetachReason, RemoteSshSession } from './view.js';

/** A channel's or connection's end as a RemoteChannel / RemoteConnection reports it. */
export interface RemoteCloseEvent extends ChannelCloseEvent {
  /**
   * Set when the worker ended it rather than the target closing it: SessionLostError
   * `detached_too_long` (no view for its grace) or `session_lost` (the connection failed or ended).
   */
  error?: SessionLostError;
}

export interface RemoteChannelOptions {
  /** Consume every delivered chunk right after the onData listeners ran. Default false. */
  autoConsume?: boolean;
  /** Key of the stored attach secret in this tab (reattachChannel). None: not stored. */
  key?: string;
  /** Grace of the channel in the worker without a view, ms (100..300 000). Default 30 000. */
  graceMs?: number;
}

function lost(what: string, reason: string, code?: string): SessionLostError {
  return new SessionLostError(`${what} ended in the worker (${reason}${code ? `: ${code}` : ''})`, {
    code: reason === 'detached-too-long' ? 'detached_too_long' : 'session_lost',
    origin: 'local',
  });
}

/** A raw channel held by the worker: the shape of Channel, over a stream view (view.ts). */
export class RemoteChannel implements DisposableLike {
  /** The channel's id in the worker (its attach key with the secret). */
  readonly id: string;
  /** Undefined after a reattach of a channel whose target was not stored. */
  readonly target: { host: string; port: number } | undefined;
  readonly autoConsume: boolean;
  /** Bytes of the channel before the first byte this view delivers (0 for a new channel). */
  readonly offset: number;
  readonly #view: RemoteSshSession;
  readonly #close = new Emitter<RemoteCloseEvent>();
  #closing = false;

  /** The target's bytes. Call consume(n) once they are really consumed (unless autoConsume). */
  readonly onData: EventRegistration<ChannelData> = (l) => {
    // Both streams subscribe at once: the view flushes what it held on the first subscription.
    const out = this.#view.onData((data) => {
      l({ data, stream: 'stdout' });
    });
    const err = this.#view.onStderr((data) => {
      l({ data, stream: 'stderr' });
    });
    return {
      dispose: () => {
        out.dispose();
        err.dispose();
      },
    };
  };
  /** Room for write() came back (the bytes it took left the worker's queue). */
  readonly onWritable: EventRegistration<number>;
  readonly onClose: EventRegistration<RemoteCloseEvent> = this.#close.event;
  /** This view no longer shows the channel (taken over by another page, or replaced). */
  readonly onDetached: EventRegistration<DetachReason>;

  /** @internal Made by ManaWorkerClient. */
  constructor(
    view: RemoteSshSession,
    target: { host: string; port: number } | undefined,
    autoConsume: boolean,
  ) {
    this.#view = view;
    this.id = view.sessionId;
    this.target = target;
    this.autoConsume = autoConsume;
    this.offset = view.offset;
    this.onWritable = view.onWritable;
    this.onDetached = view.onDetached;
    if (autoConsume) view.setFlow('auto');
    view.onClose(() => {
      const error = view.error;
      this.#close.fire(
        error === undefined
          ? { reason: 'closed', origin: 'remote' }
          : { reason: error.code, origin: 'local', error },
      );
      this.#close.clear();
    });
  }

  get state(): ChannelState {
    if (this.#view.state !== 'open') return 'closed';
    return this.#closing ? 'closing' : 'open';
  }

  /** Bytes write() would take now (the room of the worker's input queue). */
  get writable(): number {
    return this.state === 'open' ? this.#view.writable : 0;
  }

  /** Bytes delivered by onData and not consumed yet. */
  get unconsumed(): number {
    return this.#view.unconsumed;
  }

  /**
   * Queues up to `writable` bytes for the worker's channel and returns how many were taken; the
   * rest is not kept: write it again after onWritable. Throws InvalidStateError once closed.
   */
  write(data: Uint8Array | string): number {
    const state = this.state;
    if (state !== 'open') {
      throw new InvalidStateError(`write: channel ${this.id} is ${state}`, {
        code: 'invalid_state',
        origin: 'local',
      });
    }
    return this.#view.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }

  /** This page consumed `n` delivered bytes: the worker may credit the channel. */
  consume(n: number): void {
    this.#view.consume(n);
  }

  /** Closes the channel in the worker (for every page); onClose fires when it is closed. */
  close(): void {
    if (this.state !== 'open') return;
    this.#closing = true;
    this.#view.close();
  }

  /**
   * Detaches this view: the channel stays in the worker for its grace (its unconsumed bytes kept,
   * its credit withheld), and this tab can reattach (reattachChannel). close() ends it.
   */
  dispose(): void {
    this.#view.dispose();
    this.#close.clear();
  }

  [disposeSymbol](): void {
    this.dispose();
  }
}

/** What a RemoteConnection needs of its client. */
export interface ConnectionClientLink {
  openChannel(
    connectionId: string,
    target: { host: string; port: number },
    options: RemoteChannelOptions,
  ): Promise<RemoteChannel>;
  release(connectionId: string): void;
}

/**
 * A Connection held by the worker. Its channels and sessions (openChannel, and openSession of the
 * client with `connection`) share its one WebSocket; dispose() releases it: the worker closes it
 * once nothing opened on it runs any more. A page that goes away without dispose() leaves it in
 * the worker for its grace (reattachConnection after a reload).
 */
export class RemoteConnection implements DisposableLike {
  readonly connectionId: string;
  readonly #link: ConnectionClientLink;
  readonly #close = new Emitter<RemoteCloseEvent>();
  #state: 'ready' | 'closed' = 'ready';

  /** The connection ended in the worker (`error` unless it closed normally). */
  readonly onClose: EventRegistration<RemoteCloseEvent> = this.#close.event;

  /** @internal Made by ManaWorkerClient. */
  constructor(link: ConnectionClientLink, connectionId: string) {
    this.#link = link;
    this.connectionId = connectionId;
  }

  get state(): 'ready' | 'closed' {
    return this.#state;
  }

  /** A raw channel to `target` through the gateway; resolves once the gateway accepted it. */
  openChannel(
    target: { host: string; port: number },
    options: RemoteChannelOptions = {},
  ): Promise<RemoteChannel> {
    if (this.#state !== 'ready') {
      return Promise.reject(
        new InvalidStateError('openChannel: the connection is closed', {
          code: 'invalid_state',
          origin: 'local',
        }),
      );
    }
    return this.#link.openChannel(this.connectionId, target, options);
  }

  /** Releases this page's view; the worker closes the connection once nothing else uses it. */
  dispose(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#link.release(this.connectionId);
    this.#close.clear();
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  /** @internal `connection-ended` from the worker. */
  _ended(msg: Extract<WorkerMessage, { type: 'connection-ended' }>): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    const reason: ConnectionEndReason = msg.reason;
    this.#close.fire(
      reason === 'closed'
        ? { reason, origin: 'local' }
        : { reason, origin: 'local', error: lost('the connection', reason, msg.code) },
    );
    this.#close.clear();
  }
}
