// SPDX-License-Identifier: Apache-2.0
// ConnectionBase: the connection without any session layer. It owns one WebSocket at a time
// (transport.ts) and one wasm ClientSession (a second one only when the gateway refused a stored
// session adopted after a page reload: #startFresh()). The public Connection (connect.ts) adds
// openSession(); the SSH layer (ssh/) builds on this class and its SessionHost, and nothing here
// imports from ssh/ (ESLint no-restricted-imports checks it).
//
// Invariants
//   1. Every input into the core (bytes, closes, timers, app calls) is followed by pump(), which
//      sends every queued output message, dispatches every event and re-arms the deadline timer.
//      Listeners may call back into the connection (write, consume, close): pump() is re-entrant
//      safe (a nested call only asks the running loop for one more round).
//   2. `state` is the core's state, reported by the core's own stateChanged events.
//   3. After dispose() no timer, no listener and no wasm handle of this connection is left.
import type { Channel, OpenChannelOptions } from './channel.js';
import { ChannelTable } from './channel-table.js';
import type {
  ConnectEnvironment,
  ConnectOptions,
  ConnectionState,
  DiagnosticEvent,
  PauseReason,
  PersistenceEvent,
  PolicyEvent,
  ServerInfo,
  SessionHost,
  StateChangeEvent,
  StoredSessionOutcome,
  WebSocketConstructor,
} from './connection-types.js';
import { coreConfig, serverInfoOf } from './core-config.js';
import { DeadlineTimer } from './deadline.js';
import { disposeSymbol } from './dispose.js';
import { Emitter, type DisposableLike, type EventRegistration } from './emitter.js';
import { PauseSet, pauseBits, watchEnvironment } from './environment.js';
import {
  ClosedError,
  InvalidStateError,
  ManaError,
  ResumeError,
  errorFromClose,
} from './errors.js';
import { closeCode } from './generated/errc.js';
import type { CoreEvent, CoreModule, CoreSession } from './internal/core-types.js';
import { Reconnector } from './reconnect.js';
import { routeUrl } from './route.js';
import { StoredSessionKeeper, storageKeyOf, type StoredClaim } from './stored-session.js';
import { Transport, truncateUtf8 } from './transport.js';

export class ConnectionBase implements DisposableLike {
  readonly url: string;
  readonly #options: ConnectOptions;
  readonly #module: CoreModule;
  #core: CoreSession;
  readonly #now: () => number;
  readonly #stored: StoredSessionKeeper;
  readonly #transport: Transport;
  readonly #reconnect: Reconnector;

  #state: ConnectionState = 'connecting';
  #disposed = false;
  readonly #channels: ChannelTable;
  readonly #pause = new PauseSet();
  readonly #deadline = new DeadlineTimer(() => {
    if (this.#disposed) return;
    this.#core.handleTimeout(this.#now());
    this.#pump();
  });
  #pumping = false;
  #pumpAgain = false;
  #pendingError: ManaError | undefined;
  #lastError: ManaError | undefined;
  #server: ServerInfo | undefined;
  #cleanups: (() => void)[] = [];
  #ready: Promise<void>;
  #resolveReady!: () => void;
  #rejectReady!: (e: ManaError) => void;
  #everReady = false;
  #deferTimer: ReturnType<typeof setTimeout> | undefined;

  readonly #onStateChange = new Emitter<StateChangeEvent>();
  readonly #onDiagnostic = new Emitter<DiagnosticEvent>();
  readonly #onPolicy = new Emitter<PolicyEvent>();
  readonly #onPersistence = new Emitter<PersistenceEvent>();

  /** The state changed (`state` is authoritative; this reports every transition once). */
  readonly onStateChange: EventRegistration<StateChangeEvent> = this.#onStateChange.event;
  /** Diagnostics: handshake, resume, heartbeats, RTT samples, reconnect attempts. */
  readonly onDiagnostic: EventRegistration<DiagnosticEvent> = this.#onDiagnostic.event;
  /** Flow policy: every pause reason transition, credit grants, rate limits. */
  readonly onPolicy: EventRegistration<PolicyEvent> = this.#onPolicy.event;
  /** The resume token was loaded from, written to or removed from storage. */
  readonly onPersistence: EventRegistration<PersistenceEvent> = this.#onPersistence.event;

  /** @internal Use connect(). */
  constructor(module: CoreModule, options: ConnectOptions, claim?: StoredClaim) {
    this.url = options.url;
    this.#options = options;
    this.#module = module;
    const env: ConnectEnvironment = options.environment ?? {};
    this.#now = env.now ?? (() => performance.now());
    const ws = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ws === undefined) {
      throw new InvalidStateError('no WebSocket: pass options.WebSocket outside browsers', {
        code: 'invalid_argument',
        origin: 'local',
      });
    }
    const high = options.highWaterMark ?? 8 * 1024 * 1024;
    this.#stored = new StoredSessionKeeper(options, claim, (e) => {
      this.#onPersistence.fire(e);
    });
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.#ready.catch(() => undefined);
    // What the parts of the connection (transport, reconnect, channels) call back into.
    const host = {
      core: () => this.#core,
      disposed: () => this.#disposed,
      closed: () => this.#state === 'closed',
      now: this.#now,
      pump: () => {
        this.#pump();
      },
      diag: (code: string, detail: string) => {
        this.#diag(code, detail);
      },
      transportPaused: () => this.#pause.has('transport'),
      assertUsable: (what: string) => {
        this.#assertUsable(what);
      },
      setTransportPause: (on: boolean) => {
        this.#setPause('transport', on);
      },
      setPendingError: (error: ManaError) => {
        this.#pendingError = error;
      },
      retry: () => {
        this.#scheduleReconnect();
      },
      url: () => this.#transportUrl(),
      reconnecting: () => !this.#disposed && this.#core.state() === 'reconnecting',
      open: () => {
        this.#transport.open();
      },
      giveUp: (message: string) => {
        this.#pendingError = new ResumeError(message, { code: 'resume_gave_up', origin: 'local' });
        this.#core.close(closeCode.resume_failed, 'resume gave up', this.#now());
        this.#pump();
      },
    };
    this.#transport = new Transport(host, {
      WebSocket: ws,
      high,
      low: Math.min(options.lowWaterMark ?? 2 * 1024 * 1024, high),
      pollMs: options.bufferedPollMs ?? 20,
    });
    this.#reconnect = new Reconnector(options.reconnect ?? {}, env.random ?? Math.random, host);
    this.#channels = new ChannelTable(host);

    this.#core = this.#newCore();

    this.#applyClaim(claim);
    this.#cleanups.push(
      ...watchEnvironment(env, {
        setPause: (reason, on) => {
          this.#setPause(reason, on);
        },
        online: () => {
          this.#reconnect.attemptNow(!this.#transport.active);
        },
      }),
    );
    this.#transport.open();
  }

  /** Current state; authoritative for UIs. */
  get state(): ConnectionState {
    return this.#state;
  }
  /** Active pause reasons (credit grants are withheld while any is set). */
  get pauseReasons(): PauseReason[] {
    return this.#pause.list();
  }
  /** Smoothed round-trip time from heartbeats, ms, once measured. */
  get rttMs(): number | undefined {
    if (this.#disposed) return undefined;
    return this.#core.rtt() ?? undefined;
  }
  /** The server's capabilities from the last hello_ok. */
  get server(): ServerInfo | undefined {
    return this.#server;
  }
  /** The error that moved the connection to `reconnecting` or `closed` most recently. */
  get lastError(): ManaError | undefined {
    return this.#lastError;
  }
  /** The WebSocket's bufferedAmount (0 without a transport). */
  get bufferedAmount(): number {
    return this.#transport.bufferedAmount;
  }
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * What connect() found in storage: `resuming` (the stored session of an earlier page is being
   * resumed; `resumed_stored_session` or `stored_session_rejected` follows), `lock_busy` (another
   * tab holds it: fresh session), `invalid` (cleared), `none`.
   */
  get storedSession(): StoredSessionOutcome {
    return this.#stored.outcome;
  }

  /** Resolves at the first `ready`; rejects with the error if the connection closes before. */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /** Opens a channel to `target` (state must be `ready`). Await `channel.opened` for the answer. */
  openChannel(options: OpenChannelOptions): Channel {
    return this.#channels.open(options);
  }

  /** @internal The hooks of a session layer (SSH) opened over this connection. */
  _sessionHost(): SessionHost {
    return {
      diagnostic: (code, detail) => {
        this.#diag(code, detail);
      },
      storage: this.#stored.store.mode,
      storageKey: storageKeyOf(this.#options),
    };
  }

  /** Application pause (`app` reason): withhold credit, e.g. while the UI is busy. */
  setAppPaused(on: boolean): void {
    this.#assertUsable('setAppPaused');
    this.#setPause('app', on);
  }

  /** Closes the connection for good (not resumable). Code 1000 or 4000-4999. */
  close(code = 1000, reason = ''): void {
    if (this.#disposed || this.#state === 'closed') return;
    this.#core.close(code, truncateUtf8(reason, 120), this.#now());
    this.#pump();
  }

  /** `using conn = await connect(...)`: dispose() at the end of the scope. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** Closes (if needed) and releases the wasm handle, timers, listeners and the WebSocket. */
  dispose(): void {
    if (this.#disposed) return;
    if (this.#state !== 'closed') this.close(1000, 'disposed');
    this.#disposed = true;
    this.#clearTimers();
    for (const c of this.#cleanups.splice(0)) c();
    this.#transport.drop(true);
    this.#channels.release();
    this.#stored.release();
    this.#core.delete();
    this.#onStateChange.clear();
    this.#onDiagnostic.clear();
    this.#onPolicy.clear();
    this.#onPersistence.clear();
  }

  #assertUsable(what: string): void {
    if (this.#disposed || this.#state === 'closed') {
      throw new InvalidStateError(
        `${what}: the connection is ${this.#disposed ? 'disposed' : 'closed'}`,
        {
          code: 'invalid_state',
          origin: 'local',
        },
      );
    }
  }

  // A resume goes back to the gateway that holds the session: the URL with `?route=<id>` of the
  // last hello_ok (or of the stored session a reload adopted). A fresh session uses the URL as
  // given. PROTOCOL.md §9.8.
  #transportUrl(): string {
    const resuming = this.#core.state() === 'reconnecting' || this.#stored.adopted;
    const route = resuming ? (this.#server?.route ?? this.#stored.route) : undefined;
    return route === undefined || route === null ? this.url : routeUrl(this.url, route);
  }

  #scheduleReconnect(): void {
    this.#reconnect.schedule(this.#server?.resumeTtlMs ?? 60000, this.#pause.has('offline'));
  }

  #setPause(reason: PauseReason, on: boolean): void {
    if (this.#disposed || !this.#pause.set(reason, on)) return;
    this.#core.setPaused(pauseBits[reason], on, this.#now());
    this.#onPolicy.fire({ kind: on ? 'pause' : 'resume', reason, reasons: this.pauseReasons });
    if (!on && reason === 'transport') {
      this.#channels.writable();
    }
    this.#pump();
  }

  // ---- stored session -------------------------------------------------------------------------

  #newCore(): CoreSession {
    return new this.#module.ClientSession(coreConfig(this.#options), this.#now());
  }

  #applyClaim(claim: StoredClaim | undefined): void {
    const { persistence, diagnostics } = this.#stored.adopt(claim, this.#core);
    // The app registers its listeners after connect() resolves: report on the next task.
    this.#deferTimer = setTimeout(() => {
      this.#deferTimer = undefined;
      if (this.#disposed) return;
      for (const p of persistence) this.#onPersistence.fire(p);
      for (const [code, detail] of diagnostics) this.#diag(code, detail);
    }, 0);
  }

  #persistToken(): void {
    this.#stored.persist(
      this.#core.resumeToken(),
      this.#server?.route ?? null,
      () => this.#disposed || this.#state === 'closed',
    );
  }

  // The gateway refused the stored session (expired, unknown): start a fresh session on a new core
  // instead of closing, unless the app asked for resumeOnly.
  #startFresh(closed: Extract<CoreEvent, { type: 'closed' }>): void {
    this.#stored.adopted = false;
    this.#stored.outcome = 'none';
    this.#transport.drop(true);
    this.#stored.discard();
    const old = this.#core;
    this.#core = this.#newCore();
    old.delete();
    for (const r of this.#pause.list()) this.#core.setPaused(pauseBits[r], true, this.#now());
    this.#diag(
      'stored_session_rejected',
      `${closed.codeName} ${closed.code}${closed.reason ? ` (${closed.reason})` : ''}: starting fresh`,
    );
    const from = this.#state;
    this.#state = 'connecting';
    if (from !== 'connecting') this.#onStateChange.fire({ from, to: 'connecting' });
    this.#pumpAgain = true;
    this.#transport.open();
  }

  // ---- the pump -------------------------------------------------------------------------------

  #pump(): void {
    if (this.#disposed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#transport.flush();
        const events: CoreEvent[] = [];
        for (let ev = this.#core.pollEvent(); ev !== null; ev = this.#core.pollEvent())
          events.push(ev);
        for (const ev of events) {
          this.#handle(ev, events);
          if (this.#disposed) return;
        }
        this.#transport.checkBuffered(this.#pause.has('transport'));
      } while (this.#pumpAgain || this.#core.outputBytes() > 0);
      this.#deadline.arm(this.#core.nextTimeout(), this.#now());
    } finally {
      this.#pumping = false;
    }
  }

  #handle(ev: CoreEvent, batch: CoreEvent[]): void {
    switch (ev.type) {
      case 'stateChanged': {
        if (ev.to === 'awaiting_hello' || ev.to === 'detached') return;
        const from = this.#state;
        const to = ev.to;
        if (from === to) return;
        if (to === 'closed' && this.#stored.adopted && this.#options.resumeOnly !== true) {
          const c = batch.find((e) => e.type === 'closed');
          if (
            c?.type === 'closed' &&
            (c.error === 'resume_rejected' || c.error === 'resume_out_of_range')
          ) {
            this.#startFresh(c);
            return;
          }
        }
        let error: ManaError | undefined;
        if (to === 'reconnecting' || to === 'closed') {
          const closed = batch.find((e) => e.type === 'closed');
          if (closed?.type === 'closed') error = this.#errorFor(closed);
          this.#lastError = error ?? this.#lastError;
        }
        this.#state = to;
        if (to === 'reconnecting') this.#reconnect.lost();
        if (to === 'closed') this.#finalize(error);
        this.#onStateChange.fire(error === undefined ? { from, to } : { from, to, error });
        return;
      }
      case 'ready':
        this.#server = serverInfoOf(ev);
        this.#reconnect.reset();
        this.#pendingError = undefined;
        if (this.#stored.adopted) {
          this.#stored.adopted = false;
          this.#diag('resumed_stored_session', "the previous page's channels were released");
        }
        this.#persistToken();
        if (!this.#everReady) {
          this.#everReady = true;
          this.#resolveReady();
        }
        this.#channels.writable();
        return;
      case 'policy':
        if (ev.kind === 'credit_grant') {
          this.#onPolicy.fire({ kind: 'credit_grant', channel: ev.id, amount: ev.amount });
        } else if (ev.kind === 'rate_limited' || ev.kind === 'channel_limit') {
          this.#onPolicy.fire({ kind: ev.kind, channel: ev.id, detail: ev.detail });
        }
        // flow_pause / flow_resume: reported per reason by #setPause.
        return;
      case 'diagnostic':
        this.#onDiagnostic.fire({ code: ev.code, at: ev.at, phase: ev.phase, detail: ev.detail });
        if (ev.code === 'token_rotated') this.#persistToken();
        return;
      case 'closed':
        if (ev.resumable) {
          this.#diag('transport_closed', `${ev.codeName} ${ev.code}`);
          this.#scheduleReconnect();
        }
        return;
      case 'unexpected':
        return;
      default:
        this.#channels.handle(ev);
    }
  }

  #errorFor(closed: Extract<CoreEvent, { type: 'closed' }>): ManaError | undefined {
    const pending = this.#pendingError;
    if (pending !== undefined) {
      this.#pendingError = undefined;
      return pending;
    }
    if (closed.code === 1000 && (closed.error === 'ok' || closed.origin === 'local'))
      return undefined;
    return errorFromClose(closed);
  }

  #finalize(error: ManaError | undefined): void {
    this.#clearTimers();
    this.#transport.drop(true);
    this.#stored.discard();
    if (!this.#everReady) {
      this.#rejectReady(
        error ??
          new ClosedError('connection closed before it was ready', {
            code: 'closed',
            origin: 'local',
          }),
      );
    }
  }

  #clearTimers(): void {
    this.#deadline.cancel();
    this.#reconnect.cancel();
    this.#transport.stop();
    if (this.#deferTimer !== undefined) clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
  }

  #diag(code: string, detail: string): void {
    this.#onDiagnostic.fire({ code, at: this.#now(), phase: this.#state, detail });
  }
}
