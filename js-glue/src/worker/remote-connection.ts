// SPDX-License-Identifier: Apache-2.0
// RemoteConnection: a page's view of a Connection held by the session worker
// (worker/hosted-connection.ts). One WebSocket, in the worker, carries every channel and SSH
// session opened on the connection, and outlives a reload of the page for the connection's grace
// (shared mode).
//
// The shape of Connection (connection.ts, connect.ts), member by member. The getters (state,
// pauseReasons, rttMs, server, lastError, bufferedAmount, storedSession) read the last status the
// worker sent: with `connected` and with every event (state change, diagnostic, pause), so they
// are as fresh as the last event; refreshStatus() asks for a fresh one (bufferedAmount and rttMs
// change without an event). The events fire as in-page, after the worker's. What differs, because
// it crosses to the worker:
//   - openChannel() and openSession() return promises that resolve once the gateway accepted the
//     channel / the session runs (Connection.openChannel returns at once, `opened` later);
//   - whenReady() is resolved: the worker answers `connected` only once the connection was ready;
//   - onPolicy does not report `credit_grant` (read a channel's credit with RemoteChannel.stats());
//   - a diagnostic's `at` is the worker's time mapped onto this page's performance.now();
//   - dispose() releases this page's view (the worker closes the connection once nothing uses it);
//     close() closes it for every page;
//   - onClose (not in Connection) reports the end of the connection in the worker.
import type { OpenChannelOptions } from '../channel.js';
import type {
  ConnectionState,
  DiagnosticEvent,
  PauseReason,
  PersistenceEvent,
  PolicyEvent,
  ServerInfo,
  StateChangeEvent,
  StoredSessionOutcome,
} from '../connection-types.js';
import { disposeSymbol } from '../dispose.js';
import { Emitter, type DisposableLike, type EventRegistration } from '../emitter.js';
import { InvalidStateError, ManaError, invalidArgument } from '../errors.js';
import { SessionLostError } from '../ssh/errors.js';
import { fromFailure } from './failure.js';
import type { ConnectionEndReason, WireFailure, WorkerMessage } from './protocol.js';
import type { WireConnectionEvent, WireConnectionStatus } from './protocol-status.js';
import {
  RemoteChannel,
  type RemoteChannelOptions,
  type RemoteCloseEvent,
} from './remote-channel.js';
import type { WorkerSessionOptions } from './client.js';
import type { RemoteSshSession } from './view.js';

export { RemoteChannel, type RemoteChannelOptions, type RemoteCloseEvent };

function lost(what: string, reason: string, code?: string): SessionLostError {
  return new SessionLostError(`${what} ended in the worker (${reason}${code ? `: ${code}` : ''})`, {
    code: reason === 'detached-too-long' ? 'detached_too_long' : 'session_lost',
    origin: 'local',
  });
}

/** What a RemoteConnection needs of its client. */
export interface ConnectionClientLink {
  openChannel(
    connectionId: string,
    target: { host: string; port: number },
    options: RemoteChannelOptions,
  ): Promise<RemoteChannel>;
  release(connectionId: string): void;
  /** A fresh status of the connection from the worker. */
  status(connectionId: string): Promise<WireConnectionStatus>;
  setAppPaused(connectionId: string, on: boolean): void;
  close(connectionId: string, code: number, reason: string): void;
  openSession(conn: RemoteConnection, options: WorkerSessionOptions): Promise<RemoteSshSession>;
}

/** The worker's error as its class in this page (a ManaError for a class not rebuilt). */
function errorOf(f: WireFailure): ManaError {
  return fromFailure(f) ?? new ManaError(f.message, { code: f.code, origin: f.origin });
}

function timeOrigin(): number {
  return (globalThis as { performance?: { timeOrigin?: number } }).performance?.timeOrigin ?? 0;
}

/**
 * A Connection held by the worker. Its channels and sessions (openChannel, openSession) share its
 * one WebSocket; dispose() releases it: the worker closes it once nothing opened on it runs any
 * more. A page that goes away without dispose() leaves it in the worker for its grace
 * (reattachConnection after a reload).
 */
export class RemoteConnection implements DisposableLike {
  readonly connectionId: string;
  /** The gateway URL (undefined after a reattach of a connection stored without it). */
  readonly url: string | undefined;
  readonly #link: ConnectionClientLink;
  readonly #close = new Emitter<RemoteCloseEvent>();
  readonly #onStateChange = new Emitter<StateChangeEvent>();
  readonly #onDiagnostic = new Emitter<DiagnosticEvent>();
  readonly #onPolicy = new Emitter<PolicyEvent>();
  readonly #onPersistence = new Emitter<PersistenceEvent>();
  #status: WireConnectionStatus;
  #released = false;

  /** The connection ended in the worker (`error` unless it closed normally). */
  readonly onClose: EventRegistration<RemoteCloseEvent> = this.#close.event;
  /** As Connection.onStateChange (`error` rebuilt as the worker's error class). */
  readonly onStateChange: EventRegistration<StateChangeEvent> = this.#onStateChange.event;
  /** As Connection.onDiagnostic (`at` on this page's clock). */
  readonly onDiagnostic: EventRegistration<DiagnosticEvent> = this.#onDiagnostic.event;
  /** As Connection.onPolicy, without `credit_grant`. */
  readonly onPolicy: EventRegistration<PolicyEvent> = this.#onPolicy.event;
  /** As Connection.onPersistence (the worker keeps the resume token in memory). */
  readonly onPersistence: EventRegistration<PersistenceEvent> = this.#onPersistence.event;

  /** @internal Made by ManaWorkerClient. */
  constructor(
    link: ConnectionClientLink,
    connectionId: string,
    url: string | undefined,
    status: WireConnectionStatus | undefined,
  ) {
    this.#link = link;
    this.connectionId = connectionId;
    this.url = url;
    this.#status = status ?? {
      state: 'ready',
      pauseReasons: [],
      bufferedAmount: 0,
      storedSession: 'none',
    };
  }

  /** The worker's connection state; `closed` also once this view was disposed. */
  get state(): ConnectionState {
    return this.#released ? 'closed' : this.#status.state;
  }
  get pauseReasons(): PauseReason[] {
    return [...this.#status.pauseReasons];
  }
  get rttMs(): number | undefined {
    return this.#status.rttMs;
  }
  get server(): ServerInfo | undefined {
    return this.#status.server === undefined ? undefined : { ...this.#status.server };
  }
  get lastError(): ManaError | undefined {
    const f = this.#status.lastError;
    return f === undefined ? undefined : errorOf(f);
  }
  /** The worker's WebSocket bufferedAmount at the last status. */
  get bufferedAmount(): number {
    return this.#status.bufferedAmount;
  }
  /** This view was disposed (released). */
  get disposed(): boolean {
    return this.#released;
  }
  /** The worker's connections keep their resume token in memory: `none`. */
  get storedSession(): StoredSessionOutcome {
    return this.#status.storedSession;
  }

  /** Resolved: the worker hands out a connection once it was ready. */
  whenReady(): Promise<void> {
    return Promise.resolve();
  }

  /** Asks the worker for a fresh status (bufferedAmount, rttMs); the getters read it then. */
  async refreshStatus(): Promise<void> {
    this.#assertUsable('refreshStatus');
    this.#status = await this.#link.status(this.connectionId);
  }

  /**
   * A raw channel through the gateway: `openChannel({target, autoConsume})` as in-page, or
   * `openChannel(target, options)`. Resolves once the gateway accepted it; rejects with
   * ChannelOpenError otherwise.
   */
  openChannel(
    target: { host: string; port: number } | (OpenChannelOptions & RemoteChannelOptions),
    options: RemoteChannelOptions = {},
  ): Promise<RemoteChannel> {
    if (this.state === 'closed') {
      return Promise.reject(
        new InvalidStateError('openChannel: the connection is closed', {
          code: 'invalid_state',
          origin: 'local',
        }),
      );
    }
    if ('target' in target) {
      const { target: t, kind, ...rest } = target;
      if (kind !== undefined && kind !== 'tcp') {
        return Promise.reject(invalidArgument(`openChannel: kind ${kind} is not supported`));
      }
      return this.#link.openChannel(this.connectionId, t, { ...rest, ...options });
    }
    return this.#link.openChannel(this.connectionId, target, options);
  }

  /**
   * An SSH session on this connection's WebSocket, run by the worker (ManaWorkerClient
   * .openSession(this, options)); resolves when the shell or command runs.
   */
  openSession(options: WorkerSessionOptions): Promise<RemoteSshSession> {
    return this.#link.openSession(this, options);
  }

  /** Application pause (`app` reason) of the connection in the worker, for every channel on it. */
  setAppPaused(on: boolean): void {
    this.#assertUsable('setAppPaused');
    this.#link.setAppPaused(this.connectionId, on);
  }

  /** Closes the connection in the worker for good (for every page). Code 1000 or 4000-4999. */
  close(code = 1000, reason = ''): void {
    if (!Number.isInteger(code) || (code !== 1000 && (code < 4000 || code > 4999))) {
      throw invalidArgument(`close: code ${code} is not 1000 or 4000..4999`);
    }
    if (this.state === 'closed') return;
    this.#link.close(this.connectionId, code, reason.slice(0, 120));
  }

  /** Releases this page's view; the worker closes the connection once nothing else uses it. */
  dispose(): void {
    if (this.#released) return;
    this.#released = true;
    this.#link.release(this.connectionId);
    this.#clear();
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  #assertUsable(what: string): void {
    if (this.state === 'closed') {
      throw new InvalidStateError(`${what}: the connection is closed`, {
        code: 'invalid_state',
        origin: 'local',
      });
    }
  }

  #clear(): void {
    this.#close.clear();
    this.#onStateChange.clear();
    this.#onDiagnostic.clear();
    this.#onPolicy.clear();
    this.#onPersistence.clear();
  }

  /** @internal A status the client asked for (refreshStatus of another path). */
  _status(status: WireConnectionStatus): void {
    this.#status = status;
  }

  /** @internal `connection-event` from the worker. */
  _event(msg: Extract<WorkerMessage, { type: 'connection-event' }>): void {
    if (this.#released) return;
    this.#status = msg.status;
    const e: WireConnectionEvent | undefined = msg.event;
    if (e === undefined) return;
    switch (e.kind) {
      case 'state': {
        const error = e.error === undefined ? undefined : errorOf(e.error);
        this.#onStateChange.fire(
          error === undefined ? { from: e.from, to: e.to } : { from: e.from, to: e.to, error },
        );
        return;
      }
      case 'diagnostic':
        this.#onDiagnostic.fire({
          code: e.code,
          at: e.at - timeOrigin(),
          phase: e.phase,
          detail: e.detail,
        });
        return;
      case 'pause':
      case 'resume':
        this.#onPolicy.fire({ kind: e.kind, reason: e.reason, reasons: [...e.reasons] });
        return;
      case 'rate_limited':
      case 'channel_limit':
        this.#onPolicy.fire({ kind: e.kind, channel: e.channel, detail: e.detail });
        return;
      case 'persistence':
        this.#onPersistence.fire(
          e.found === undefined
            ? { kind: e.persistence, storage: e.storage }
            : { kind: e.persistence, storage: e.storage, found: e.found },
        );
        return;
    }
  }

  /** @internal `connection-ended` from the worker. */
  _ended(msg: Extract<WorkerMessage, { type: 'connection-ended' }>): void {
    if (this.#released) return;
    this.#released = true;
    const reason: ConnectionEndReason = msg.reason;
    this.#close.fire(
      reason === 'closed'
        ? { reason, origin: 'local' }
        : { reason, origin: 'local', error: lost('the connection', reason, msg.code) },
    );
    this.#clear();
  }
}
