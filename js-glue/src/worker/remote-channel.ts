// SPDX-License-Identifier: Apache-2.0
// RemoteChannel: a page's view of a raw channel held by the session worker (a stream session of
// worker/hosted-session.ts on a hosted connection). The shape of Channel (channel.ts), member by
// member; what differs, because it crosses to the worker:
//   - `id` is the worker's channel id (a string, the attach key with the secret), not a number;
//   - `opened` is resolved from the start: RemoteConnection.openChannel resolves only once the
//     gateway accepted the channel (and rejects with ChannelOpenError otherwise);
//   - stats() is async (the counters are in the worker's core);
//   - close() takes no reason (the worker closes with its own);
//   - dispose() detaches this view (the channel stays for its grace), close() ends it.
// Bytes arrive as transferred ArrayBuffers; credit goes to the worker only for what this page
// consumed (consume(n), or autoConsume after the onData listeners ran).
import type { ChannelData, ChannelExitEvent, ChannelState, ChannelStats } from '../channel.js';
import { disposeSymbol } from '../dispose.js';
import {
  Emitter,
  nextWritableOrClose,
  type DisposableLike,
  type EventRegistration,
} from '../emitter.js';
import { InvalidStateError } from '../errors.js';
import type { SessionLostError } from '../ssh/errors.js';
import type { ChannelCloseEvent } from '../channel.js';
import type { WorkerRequestError } from './request-error.js';
import type { DetachReason, RemoteSshSession } from './view.js';

/** A channel's or connection's end as a RemoteChannel / RemoteConnection reports it. */
export interface RemoteCloseEvent extends ChannelCloseEvent {
  /**
   * Set when the worker ended it rather than the target closing it: SessionLostError
   * `detached_too_long` (no view for its grace) or `session_lost` (the connection failed or ended);
   * WorkerRequestError when the worker refused a message of this view (e.g. `limit`: written
   * bytes it could not queue), which ends this view only.
   */
  error?: SessionLostError | WorkerRequestError;
}

export interface RemoteChannelOptions {
  /** Consume every delivered chunk right after the onData listeners ran. Default false. */
  autoConsume?: boolean;
  /** Key of the stored attach secret in this tab (reattachChannel). None: not stored. */
  key?: string;
  /** Grace of the channel in the worker without a view, ms (100..300 000). Default 30 000. */
  graceMs?: number;
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
  /** Resolved: the gateway accepted the channel before this view was made. */
  readonly opened: Promise<void> = Promise.resolve();
  readonly #view: RemoteSshSession;
  readonly #stats: () => Promise<ChannelStats | null>;
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
  /** The remote process exited (ssh kind; tcp channels never report it), as Channel.onExit. */
  readonly onExit: EventRegistration<ChannelExitEvent> = (l) =>
    this.#view.onExit(({ code, signal }) => {
      l({ code: code ?? null, signal: signal ?? null });
    });
  /** This view no longer shows the channel (taken over by another page, or replaced). */
  readonly onDetached: EventRegistration<DetachReason>;

  /** @internal Made by ManaWorkerClient. */
  constructor(
    view: RemoteSshSession,
    target: { host: string; port: number } | undefined,
    autoConsume: boolean,
    stats: () => Promise<ChannelStats | null>,
  ) {
    this.#view = view;
    this.#stats = stats;
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

  /**
   * Writes all of `data`, waiting for room in the worker's input queue as needed (which follows
   * the channel's credit). Rejects with InvalidStateError if the channel closes first.
   */
  async writeAll(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    let offset = 0;
    while (offset < bytes.length) {
      offset += this.write(bytes.subarray(offset));
      if (offset < bytes.length) {
        await nextWritableOrClose(
          this.onWritable,
          this.onClose,
          this.state === 'closed',
          () =>
            new InvalidStateError(`channel ${this.id} closed`, {
              code: 'invalid_state',
              origin: 'local',
            }),
        );
      }
    }
  }

  /** This page consumed `n` delivered bytes: the worker may credit the channel. */
  consume(n: number): void {
    this.#view.consume(n);
  }

  /** Terminal size (ssh kind); ignored by tcp targets, as Channel.resize. */
  resize(cols: number, rows: number): void {
    this.#view.resize(cols, rows);
  }

  /**
   * The channel's credit and byte counters in the worker's core (async: they are there);
   * undefined once the channel is gone.
   */
  async stats(): Promise<ChannelStats | undefined> {
    if (this.state === 'closed') return undefined;
    return (await this.#stats()) ?? undefined;
  }

  /**
   * Closes the channel in the worker (for every page); onClose fires when it is closed. Unlike
   * Channel.close it takes no reason (the worker closes with its own).
   */
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
