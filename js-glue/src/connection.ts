// SPDX-License-Identifier: Apache-2.0
// Connection: owns one WebSocket at a time and one wasm ClientSession (a second one only when the
// gateway refused a stored session adopted after a page reload: #startFresh()).
//
// Invariants
//   1. Every input into the core (bytes, closes, timers, app calls) is followed by pump(), which
//      sends every queued output message, dispatches every event and re-arms the deadline timer.
//      Listeners may call back into the connection (write, consume, close): pump() is re-entrant
//      safe (a nested call only asks the running loop for one more round).
//   2. `state` is the core's state, reported by the core's own stateChanged events.
//   3. After dispose() no timer, no listener and no wasm handle of this connection is left.
import { Channel, type ChannelInternals, type OpenChannelOptions } from './channel.js';
import { Emitter, type DisposableLike, type EventRegistration } from './emitter.js';
import {
  ClosedError,
  InvalidStateError,
  ManaError,
  ResumeError,
  TransportError,
  errorFromCall,
  errorFromClose,
} from './errors.js';
import { closeCode } from './generated/errc.js';
import {
  createTokenStore,
  decodeStoredSession,
  encodeStoredSession,
  type StorageMode,
  type StoredSession,
  type TokenStore,
} from './storage.js';
import { newSessionId, resumeLockName, tryLock, type HeldLock } from './locks.js';
import { disposeSymbol } from './dispose.js';
import { loadCoreModule, type CoreLoadOptions } from './internal/core.js';
import { openSshSession, type SshSession, type SshSessionOptions } from './ssh/session.js';
import {
  isCoreError,
  type CoreEvent,
  type CoreModule,
  type CoreSession,
} from './internal/core-types.js';

export const SUBPROTOCOL = 'mana.ssh.v1';

export type ConnectionState = 'connecting' | 'authenticating' | 'ready' | 'reconnecting' | 'closed';
export type PauseReason = 'transport' | 'hidden' | 'offline' | 'app';

const pauseBits: Record<PauseReason, number> = { transport: 1, hidden: 2, offline: 4, app: 8 };
const pauseOrder: PauseReason[] = ['transport', 'hidden', 'offline', 'app'];

/** The subset of the browser WebSocket the connection uses (the npm `ws` package fits too). */
export interface WebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  readonly protocol: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** Optional: called when the socket's write buffer drained (Node), so the `transport` pause
   *  ends without waiting for the next bufferedAmount poll. The browser has no such event. */
  onbufferdrain?: (() => void) | null;
}
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}
/** What the connection reads from `document` (visibility and page lifecycle). */
export interface DocumentLike extends EventTargetLike {
  readonly visibilityState: string;
}

/** Injection points for hosts and tests; every field defaults to the browser global. */
export interface ConnectEnvironment {
  /** Monotonic milliseconds; default `performance.now()`. */
  now?: () => number;
  /** Random number in [0, 1) for backoff jitter; default `Math.random`. */
  random?: () => number;
  /** Source of `visibilitychange` / `freeze` / `resume`; `null` disables the hidden pause. */
  document?: DocumentLike | null;
  /** Source of `online` / `offline`; `null` disables the offline pause. */
  window?: EventTargetLike | null;
  /** `navigator.onLine` at connect time; default the global navigator. */
  onLine?: () => boolean;
}

export interface ReconnectOptions {
  /** Reconnect and resume after a resumable loss. Default true. */
  enabled?: boolean;
  /** First delay, ms. Default 250. */
  initialDelayMs?: number;
  /** Largest delay, ms. Default 10000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of each delay that is random (0..1). Default 0.5. */
  jitter?: number;
  /** Attempts per loss before giving up (ResumeError). Default Infinity (the resume TTL bounds it). */
  maxAttempts?: number;
}

export interface ConnectOptions {
  /** Gateway URL, e.g. `wss://gw.example/ws`. */
  url: string;
  /** Bearer token for hello.auth (a JWT for mana-gateway). */
  token?: string;
  /** WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** How the wasm core is loaded (first load in the page wins). */
  core?: CoreLoadOptions;
  /** Where the resume token is kept. Default `session` (sessionStorage). */
  storage?: StorageMode;
  /** Storage key. Default `mana.websocket.resume:<url>`. */
  storageKey?: string;
  reconnect?: ReconnectOptions;
  /** bufferedAmount above which the `transport` pause starts. Default 8 MiB. */
  highWaterMark?: number;
  /** bufferedAmount below which the `transport` pause ends. Default 2 MiB. */
  lowWaterMark?: number;
  /** How often bufferedAmount is polled while the transport pause is on, ms. Default 20. */
  bufferedPollMs?: number;
  /** Initial / maximum per-channel receive window (server to client credit), bytes. */
  window?: { initial?: number; max?: number };
  /** Bytes kept per channel for replay after a resume. Default 2 MiB. */
  replayCapacity?: number;
  /** Heartbeat interval until the server announces its own, ms. Default 20000. */
  heartbeatMs?: number;
  /** Deadline for hello_ok, ms. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Ask the server for resume. Default true. */
  resume?: boolean;
  /**
   * Only resume the stored session (after a reload): connect() rejects with ResumeError
   * (`no_stored_session`, `resume_lock_busy`) when there is none or another tab holds it, and a
   * token the gateway refuses closes the connection with ResumeError instead of starting fresh.
   * Default false.
   */
  resumeOnly?: boolean;
  environment?: ConnectEnvironment;
}

export interface StateChangeEvent {
  from: ConnectionState;
  to: ConnectionState;
  /** Why the connection moved to `reconnecting` or `closed` (undefined for a normal close). */
  error?: ManaError;
}

export interface DiagnosticEvent {
  /** e.g. hello_sent, hello_ok, resume_requested, resume_accepted, token_rotated, rtt_sample,
   *  transport_lost, reconnect_scheduled, reconnect_attempt, stored_session_found,
   *  resumed_stored_session, stored_session_rejected, resume_lock_busy. */
  code: string;
  /** performance.now() milliseconds. */
  at: number;
  phase: string;
  detail: string;
}

export type PolicyEvent =
  | { kind: 'pause'; reason: PauseReason; reasons: PauseReason[] }
  | { kind: 'resume'; reason: PauseReason; reasons: PauseReason[] }
  | { kind: 'credit_grant'; channel: number; amount: number }
  | { kind: 'rate_limited' | 'channel_limit'; channel: number; detail: string };

export interface PersistenceEvent {
  kind: 'load' | 'persist' | 'clear';
  storage: StorageMode;
  /** load: whether a token was found. */
  found?: boolean;
}

export interface ServerInfo {
  server: string;
  maxFrame: number;
  heartbeatMs: number;
  idleTimeoutMs: number;
  maxChannels: number;
  window: number;
  resumeTtlMs: number | null;
}

/** Exponential backoff with jitter: the delay before reconnect attempt `attempt` (0-based). */
export function backoffDelay(
  attempt: number,
  options: ReconnectOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 10000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const base = Math.min(max, initial * Math.pow(factor, attempt));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

/** Close codes a browser may pass to WebSocket.close(): 1000 and 3000-4999. */
function browserCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  return new TextDecoder().decode(bytes.slice(0, maxBytes)).replace(/\uFFFD$/u, '');
}

const encoder = new TextEncoder();

/** What connect() found in storage and whether this tab may resume it. */
export type StoredSessionOutcome =
  /** Nothing stored (or storage `none`, or `resume: false`). */
  | 'none'
  /** A stored session was found and its lock taken: the first hello resumes it. */
  | 'resuming'
  /** Another tab holds the stored session's lock: this connection starts fresh. */
  | 'lock_busy'
  /** The stored value was unusable and was cleared. */
  | 'invalid';

/** @internal The stored session claimed by connect() before the Connection exists. */
interface StoredClaim {
  store: TokenStore;
  found: boolean;
  outcome: StoredSessionOutcome;
  session: StoredSession | undefined;
  lock: HeldLock | undefined;
}

async function claimStoredSession(options: ConnectOptions): Promise<StoredClaim> {
  const store = createTokenStore(
    options.storage ?? 'session',
    options.storageKey ?? `mana.websocket.resume:${options.url}`,
  );
  const text = store.load();
  const base = { store, found: text !== undefined, session: undefined, lock: undefined };
  if (text === undefined || options.resume === false) return { ...base, outcome: 'none' };
  const session = decodeStoredSession(text);
  if (session === undefined) {
    store.clear();
    return { ...base, outcome: 'invalid' };
  }
  const lock = await tryLock(resumeLockName(session.id));
  if (lock === null) return { ...base, outcome: 'lock_busy' };
  return { ...base, outcome: 'resuming', session, lock };
}

/**
 * Opens a connection. Resolves once the wasm core is loaded and the WebSocket is created. A
 * session stored by an earlier page of this tab (reload) is resumed when its Web Lock is free
 * (docs/browser-client.md, "Page reload and multiple tabs"). Rejects with ResumeError only with
 * `resumeOnly`.
 */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const module = await loadCoreModule(options.core);
  const claim = await claimStoredSession(options);
  if (options.resumeOnly === true && claim.outcome !== 'resuming') {
    claim.lock?.release();
    throw new ResumeError(
      claim.outcome === 'lock_busy'
        ? 'the stored session is in use by another tab (Web Lock held)'
        : 'no stored session to resume',
      {
        code: claim.outcome === 'lock_busy' ? 'resume_lock_busy' : 'no_stored_session',
        origin: 'local',
      },
    );
  }
  return new Connection(module, options, internalToken, claim);
}

const internalToken = Symbol('internal');

export class Connection implements DisposableLike {
  readonly url: string;
  readonly #options: ConnectOptions;
  readonly #module: CoreModule;
  #core: CoreSession;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #WebSocket: WebSocketConstructor;
  readonly #store: TokenStore;
  readonly #high: number;
  readonly #low: number;
  readonly #env: ConnectEnvironment;

  #ws: WebSocketLike | undefined;
  #state: ConnectionState = 'connecting';
  #disposed = false;
  #channels = new Map<number, Channel>();
  #pause = 0;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #deadlineAt: number | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #bufferedTimer: ReturnType<typeof setInterval> | undefined;
  #attempt = 0;
  #lostAt: number | undefined;
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
  /** The first hello resumes a session adopted from storage (cleared at ready). */
  #adopted = false;
  #storedOutcome: StoredSessionOutcome = 'none';
  /** Id of the stored session this connection owns (names its Web Lock). */
  #sessionId: string | undefined;
  #lock: HeldLock | undefined;
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
  constructor(module: CoreModule, options: ConnectOptions, token: symbol, claim?: StoredClaim) {
    if (token !== internalToken) throw new TypeError('use connect() to create a Connection');
    this.url = options.url;
    this.#options = options;
    this.#module = module;
    const env = options.environment ?? {};
    this.#env = env;
    this.#now = env.now ?? (() => performance.now());
    this.#random = env.random ?? Math.random;
    const ws = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ws === undefined) {
      throw new InvalidStateError('no WebSocket: pass options.WebSocket outside browsers', {
        code: 'invalid_argument',
        origin: 'local',
      });
    }
    this.#WebSocket = ws;
    this.#high = options.highWaterMark ?? 8 * 1024 * 1024;
    this.#low = Math.min(options.lowWaterMark ?? 2 * 1024 * 1024, this.#high);
    this.#store =
      claim?.store ??
      createTokenStore(
        options.storage ?? 'session',
        options.storageKey ?? `mana.websocket.resume:${options.url}`,
      );
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.#ready.catch(() => undefined);

    this.#core = this.#newCore();

    this.#applyClaim(claim);
    this.#watchEnvironment();
    this.#openSocket();
  }

  /** Current state; authoritative for UIs. */
  get state(): ConnectionState {
    return this.#state;
  }
  /** Active pause reasons (credit grants are withheld while any is set). */
  get pauseReasons(): PauseReason[] {
    return pauseOrder.filter((r) => (this.#pause & pauseBits[r]) !== 0);
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
    return this.#ws?.bufferedAmount ?? 0;
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
    return this.#storedOutcome;
  }

  /** Resolves at the first `ready`; rejects with the error if the connection closes before. */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /** Opens a channel to `target` (state must be `ready`). Await `channel.opened` for the answer. */
  openChannel(options: OpenChannelOptions): Channel {
    this.#assertUsable('openChannel');
    const kind = options.kind ?? 'tcp';
    const r = this.#core.openChannel(options.target.host, options.target.port, kind, this.#now());
    if (isCoreError(r)) throw errorFromCall('openChannel', r);
    const internals: ChannelInternals = {
      write: (id, data) => this.#write(id, data),
      consume: (id, n) => {
        this.#consume(id, n);
      },
      close: (id, reason) => {
        this.#closeChannel(id, reason);
      },
      resize: (id, cols, rows) => {
        this.#resize(id, cols, rows);
      },
      available: (id) => (this.#disposed ? 0 : this.#core.available(id)),
      stats: (id) => (this.#disposed ? null : this.#core.channelStats(id)),
      transportPaused: () => (this.#pause & pauseBits.transport) !== 0,
    };
    const ch = new Channel(r, options, internals);
    this.#channels.set(r, ch);
    this.#pump();
    return ch;
  }

  /**
   * Opens an SSH session over a new channel to `options.target`: SSH runs in this page (libssh2
   * in wasm, loaded on first use), so the gateway never sees credentials or plaintext. Resolves
   * when the shell or command runs; rejects with SshAuthError, HostKeyError or SshError.
   * See docs/ssh-in-browser.md.
   */
  openSession(options: SshSessionOptions): Promise<SshSession> {
    return openSshSession(this, options, {
      diagnostic: (code, detail) => {
        this.#diag(code, detail);
      },
      storage: this.#store.mode,
      storageKey: this.#options.storageKey ?? `mana.websocket.resume:${this.#options.url}`,
    });
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
    this.#dropSocket(true);
    for (const ch of this.#channels.values()) ch._release();
    this.#channels.clear();
    this.#releaseLock();
    this.#core.delete();
    this.#onStateChange.clear();
    this.#onDiagnostic.clear();
    this.#onPolicy.clear();
    this.#onPersistence.clear();
  }

  // ---- transport ------------------------------------------------------------------------------

  #openSocket(): void {
    let ws: WebSocketLike;
    try {
      ws = new this.#WebSocket(this.url, SUBPROTOCOL);
    } catch (cause) {
      this.#socketFailed(undefined, cause);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => {
      if (ws !== this.#ws || this.#disposed) return;
      if (ws.protocol !== '' && ws.protocol !== SUBPROTOCOL) {
        this.#pendingError = new TransportError(`server chose subprotocol '${ws.protocol}'`, {
          code: 'bad_subprotocol',
          origin: 'remote',
        });
      }
      const r = this.#core.transportOpen(this.#now());
      if (r !== undefined) this.#diag('transport_open_failed', r.detail);
      this.#pump();
    };
    ws.onmessage = (ev) => {
      if (ws !== this.#ws || this.#disposed) return;
      const d = ev.data;
      if (typeof d === 'string') {
        this.#core.receive(true, encoder.encode(d), this.#now());
      } else if (d instanceof ArrayBuffer) {
        this.#core.receive(false, new Uint8Array(d), this.#now());
      } else if (ArrayBuffer.isView(d)) {
        this.#core.receive(
          false,
          new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
          this.#now(),
        );
      }
      this.#pump();
    };
    ws.onerror = () => {
      // A close event always follows; it carries the code.
    };
    ws.onclose = (ev) => {
      if (ws !== this.#ws || this.#disposed) return;
      this.#dropSocket(false);
      const coreState = this.#core.state();
      if (coreState === 'connecting' || coreState === 'reconnecting') {
        // The WebSocket never opened (DNS, refused, HTTP error, offline).
        this.#socketFailed(ev.code, undefined);
        return;
      }
      if (ev.code === 1006 || ev.code === 1015) this.#core.transportLost(this.#now());
      else this.#core.receiveClose(ev.code === 1005 ? 1000 : ev.code, ev.reason, this.#now());
      this.#pump();
    };
  }

  // The WebSocket failed before opening.
  #socketFailed(wsCode: number | undefined, cause: unknown): void {
    if (this.#core.state() === 'reconnecting') {
      this.#scheduleReconnect();
      return;
    }
    // Browsers hide the upgrade's HTTP status, so a refused Origin (403) and an unreachable
    // gateway look the same here: name both.
    this.#pendingError = new TransportError(
      'WebSocket failed before opening: the gateway is unreachable, or it refused the upgrade ' +
        "(e.g. this page's Origin is not in [server] origins: see the gateway's `policy` log line)",
      {
        code: 'transport_failed',
        origin: 'remote',
        wsCode,
        cause,
      },
    );
    this.#core.close(closeCode.cancelled, 'transport failed', this.#now());
    this.#pump();
  }

  #dropSocket(close: boolean): void {
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
    if (this.#bufferedTimer !== undefined) {
      clearInterval(this.#bufferedTimer);
      this.#bufferedTimer = undefined;
    }
    if (!this.#disposed) this.#setPause('transport', false);
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
        this.#dropSocket(false);
        try {
          ws.close(browserCloseCode(out.code), truncateUtf8(out.reason, 120));
        } catch {
          // Closing already.
        }
        break;
    }
  }

  #checkBuffered(): void {
    const ws = this.#ws;
    if (ws === undefined) return;
    const paused = (this.#pause & pauseBits.transport) !== 0;
    if (!paused && ws.bufferedAmount >= this.#high) {
      this.#setPause('transport', true);
      const drained = () => {
        if (this.#ws !== ws || this.#disposed) return;
        if (ws.bufferedAmount <= this.#low) {
          clearInterval(this.#bufferedTimer);
          this.#bufferedTimer = undefined;
          if (ws.onbufferdrain !== undefined) ws.onbufferdrain = null;
          this.#setPause('transport', false);
          this.#pump();
        }
      };
      this.#bufferedTimer = setInterval(drained, this.#options.bufferedPollMs ?? 20);
      if (ws.onbufferdrain !== undefined) ws.onbufferdrain = drained;
    }
  }

  // ---- reconnect ------------------------------------------------------------------------------

  #scheduleReconnect(): void {
    if (this.#disposed || this.#core.state() !== 'reconnecting') return;
    if (this.#reconnectTimer !== undefined) return;
    const opts = this.#options.reconnect ?? {};
    const ttl = this.#server?.resumeTtlMs ?? 60000;
    const lostFor = this.#now() - (this.#lostAt ?? this.#now());
    if (
      opts.enabled === false ||
      this.#attempt >= (opts.maxAttempts ?? Infinity) ||
      lostFor > ttl
    ) {
      this.#pendingError = new ResumeError(
        opts.enabled === false
          ? 'transport lost and reconnect is disabled'
          : `gave up resuming after ${this.#attempt} attempts (${Math.round(lostFor)} ms)`,
        { code: 'resume_gave_up', origin: 'local' },
      );
      this.#core.close(closeCode.resume_failed, 'resume gave up', this.#now());
      this.#pump();
      return;
    }
    if ((this.#pause & pauseBits.offline) !== 0) {
      this.#diag('reconnect_waiting_online', '');
      return;
    }
    const delay = backoffDelay(this.#attempt, opts, this.#random);
    this.#attempt += 1;
    this.#diag('reconnect_scheduled', `attempt ${this.#attempt} in ${delay} ms`);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#disposed || this.#core.state() !== 'reconnecting') return;
      this.#diag('reconnect_attempt', `attempt ${this.#attempt}`);
      this.#openSocket();
    }, delay);
  }

  #reconnectNow(): void {
    if (this.#core.state() !== 'reconnecting' || this.#ws !== undefined) return;
    if (this.#reconnectTimer !== undefined) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
    }
    this.#diag('reconnect_attempt', 'online');
    this.#attempt += 1;
    this.#openSocket();
  }

  // ---- environment ----------------------------------------------------------------------------

  #watchEnvironment(): void {
    const env = this.#env;
    const doc =
      env.document === undefined
        ? (globalThis as { document?: DocumentLike }).document
        : (env.document ?? undefined);
    if (doc !== undefined) {
      const onVisibility = () => {
        this.#setPause('hidden', doc.visibilityState === 'hidden');
      };
      const onFreeze = () => {
        this.#setPause('hidden', true);
      };
      const onResume = () => {
        this.#setPause('hidden', doc.visibilityState === 'hidden');
      };
      doc.addEventListener('visibilitychange', onVisibility);
      doc.addEventListener('freeze', onFreeze);
      doc.addEventListener('resume', onResume);
      this.#cleanups.push(() => {
        doc.removeEventListener('visibilitychange', onVisibility);
        doc.removeEventListener('freeze', onFreeze);
        doc.removeEventListener('resume', onResume);
      });
      if (doc.visibilityState === 'hidden') this.#setPause('hidden', true);
    }
    const win =
      env.window === undefined
        ? typeof (globalThis as Partial<EventTargetLike>).addEventListener === 'function'
          ? (globalThis as unknown as EventTargetLike)
          : undefined
        : (env.window ?? undefined);
    if (win !== undefined) {
      const onOffline = () => {
        this.#setPause('offline', true);
      };
      const onOnline = () => {
        this.#setPause('offline', false);
        this.#reconnectNow();
      };
      win.addEventListener('offline', onOffline);
      win.addEventListener('online', onOnline);
      this.#cleanups.push(() => {
        win.removeEventListener('offline', onOffline);
        win.removeEventListener('online', onOnline);
      });
      const onLine =
        env.onLine ??
        (() => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true);
      if (!onLine()) this.#setPause('offline', true);
    }
  }

  #setPause(reason: PauseReason, on: boolean): void {
    const bit = pauseBits[reason];
    if (((this.#pause & bit) !== 0) === on || this.#disposed) return;
    this.#pause = on ? this.#pause | bit : this.#pause & ~bit;
    this.#core.setPaused(bit, on, this.#now());
    this.#onPolicy.fire({ kind: on ? 'pause' : 'resume', reason, reasons: this.pauseReasons });
    if (!on && reason === 'transport') {
      for (const ch of this.#channels.values()) ch._writable();
    }
    this.#pump();
  }

  // ---- storage --------------------------------------------------------------------------------

  #newCore(): CoreSession {
    const options = this.#options;
    return new this.#module.ClientSession(
      {
        ...(options.token !== undefined ? { bearer: options.token } : {}),
        ...(options.window?.initial !== undefined ? { windowInitial: options.window.initial } : {}),
        ...(options.window?.max !== undefined ? { windowMax: options.window.max } : {}),
        ...(options.replayCapacity !== undefined ? { replayCapacity: options.replayCapacity } : {}),
        ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
        ...(options.handshakeTimeoutMs !== undefined
          ? { handshakeTimeoutMs: options.handshakeTimeoutMs }
          : {}),
        resume: options.resume ?? true,
      },
      this.#now(),
    );
  }

  // A stored session (an earlier page of this tab) is resumed with no channels: its channel
  // offsets (and any SSH state) lived in that page's memory, so the gateway frees its channels
  // and targets at once and the session continues here (docs/browser-client.md).
  #applyClaim(claim: StoredClaim | undefined): void {
    const mode = this.#store.mode;
    const outcome = claim?.outcome ?? 'none';
    const events: [code: string, detail: string][] = [];
    const persistence: PersistenceEvent[] = [
      { kind: 'load', storage: mode, found: claim?.found ?? false },
    ];
    if (outcome === 'resuming' && claim?.session !== undefined) {
      const r = this.#core.adoptResumeToken(claim.session.token);
      if (r === undefined) {
        this.#adopted = true;
        this.#sessionId = claim.session.id;
        this.#lock = claim.lock;
        this.#storedOutcome = 'resuming';
        events.push(['stored_session_found', `resuming it (lock ${claim.lock?.kind ?? 'none'})`]);
      } else {
        claim.lock?.release();
        this.#store.clear();
        this.#storedOutcome = 'invalid';
        persistence.push({ kind: 'clear', storage: mode });
        events.push(['stored_session_invalid', r.detail]);
      }
    } else {
      this.#storedOutcome = outcome;
      if (outcome === 'lock_busy') {
        events.push(['resume_lock_busy', 'another tab holds the stored session: starting fresh']);
      } else if (outcome === 'invalid') {
        persistence.push({ kind: 'clear', storage: mode });
        events.push(['stored_session_invalid', 'unreadable stored value cleared']);
      }
    }
    // The app registers its listeners after connect() resolves: report on the next task.
    this.#deferTimer = setTimeout(() => {
      this.#deferTimer = undefined;
      if (this.#disposed) return;
      for (const p of persistence) this.#onPersistence.fire(p);
      for (const [code, detail] of events) this.#diag(code, detail);
    }, 0);
  }

  #persistToken(): void {
    const token = this.#core.resumeToken();
    if (token === null || this.#store.mode === 'none') return;
    if (this.#sessionId === undefined) {
      // A new session: its own id and lock, held for the session's life.
      const id = newSessionId();
      this.#sessionId = id;
      void tryLock(resumeLockName(id)).then((lock) => {
        if (lock === null) return;
        if (this.#disposed || this.#state === 'closed' || this.#sessionId !== id) lock.release();
        else this.#lock = lock;
      });
    }
    this.#store.save(encodeStoredSession({ token, id: this.#sessionId }));
    this.#onPersistence.fire({ kind: 'persist', storage: this.#store.mode });
  }

  #releaseLock(): void {
    this.#lock?.release();
    this.#lock = undefined;
    this.#sessionId = undefined;
  }

  // The gateway refused the stored session (expired, unknown): start a fresh session on a new core
  // instead of closing, unless the app asked for resumeOnly.
  #startFresh(closed: Extract<CoreEvent, { type: 'closed' }>): void {
    this.#adopted = false;
    this.#storedOutcome = 'none';
    this.#dropSocket(true);
    this.#releaseLock();
    if (this.#store.mode !== 'none') {
      this.#store.clear();
      this.#onPersistence.fire({ kind: 'clear', storage: this.#store.mode });
    }
    const old = this.#core;
    this.#core = this.#newCore();
    old.delete();
    for (const r of pauseOrder) {
      if ((this.#pause & pauseBits[r]) !== 0) this.#core.setPaused(pauseBits[r], true, this.#now());
    }
    this.#diag(
      'stored_session_rejected',
      `${closed.codeName} ${closed.code}${closed.reason ? ` (${closed.reason})` : ''}: starting fresh`,
    );
    const from = this.#state;
    this.#state = 'connecting';
    if (from !== 'connecting') this.#onStateChange.fire({ from, to: 'connecting' });
    this.#pumpAgain = true;
    this.#openSocket();
  }

  // ---- channel calls --------------------------------------------------------------------------

  #write(id: number, data: Uint8Array): number {
    this.#assertUsable('write');
    if ((this.#pause & pauseBits.transport) !== 0) return 0;
    const r = this.#core.write(id, data, this.#now());
    if (isCoreError(r)) throw errorFromCall('write', r);
    this.#pump();
    return r;
  }

  #consume(id: number, n: number): void {
    if (this.#disposed || this.#state === 'closed') return;
    const r = this.#core.consume(id, n, this.#now());
    if (r !== undefined && r.error !== 'unknown_channel') throw errorFromCall('consume', r);
    this.#pump();
  }

  #closeChannel(id: number, reason: string): void {
    if (this.#disposed || this.#state === 'closed') return;
    const r = this.#core.closeChannel(id, truncateUtf8(reason, 256), this.#now());
    if (r !== undefined && r.error !== 'unknown_channel') throw errorFromCall('close', r);
    this.#pump();
  }

  #resize(id: number, cols: number, rows: number): void {
    this.#assertUsable('resize');
    const r = this.#core.resize(id, cols, rows, this.#now());
    if (r !== undefined) throw errorFromCall('resize', r);
    this.#pump();
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
        for (let out = this.#core.pollOutput(); out !== null; out = this.#core.pollOutput()) {
          const ws = this.#ws;
          if (ws !== undefined) this.#send(ws, out);
        }
        const events: CoreEvent[] = [];
        for (let ev = this.#core.pollEvent(); ev !== null; ev = this.#core.pollEvent())
          events.push(ev);
        for (const ev of events) {
          this.#handle(ev, events);
          if (this.#disposed) return;
        }
        this.#checkBuffered();
      } while (this.#pumpAgain || this.#core.outputBytes() > 0);
      this.#armDeadline();
    } finally {
      this.#pumping = false;
    }
  }

  #armDeadline(): void {
    const at = this.#core.nextTimeout();
    if (at === null) {
      if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
      this.#deadlineAt = undefined;
      return;
    }
    if (this.#deadlineTimer !== undefined && this.#deadlineAt === at) return;
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    const delay = Math.max(0, Math.ceil(at - this.#now()));
    this.#deadlineTimer = setTimeout(() => {
      this.#deadlineTimer = undefined;
      this.#deadlineAt = undefined;
      if (this.#disposed) return;
      this.#core.handleTimeout(this.#now());
      this.#pump();
    }, delay);
  }

  #handle(ev: CoreEvent, batch: CoreEvent[]): void {
    switch (ev.type) {
      case 'stateChanged': {
        if (ev.to === 'awaiting_hello' || ev.to === 'detached') return;
        const from = this.#state;
        const to = ev.to;
        if (from === to) return;
        if (to === 'closed' && this.#adopted && this.#options.resumeOnly !== true) {
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
        if (to === 'reconnecting') this.#lostAt ??= this.#now();
        if (to === 'closed') this.#finalize(error);
        this.#onStateChange.fire(error === undefined ? { from, to } : { from, to, error });
        return;
      }
      case 'ready':
        this.#server = {
          server: ev.server,
          maxFrame: ev.maxFrame,
          heartbeatMs: ev.heartbeatMs,
          idleTimeoutMs: ev.idleTimeoutMs,
          maxChannels: ev.maxChannels,
          window: ev.window,
          resumeTtlMs: ev.resumeTtlMs,
        };
        this.#attempt = 0;
        this.#lostAt = undefined;
        this.#pendingError = undefined;
        if (this.#adopted) {
          this.#adopted = false;
          this.#diag('resumed_stored_session', "the previous page's channels were released");
        }
        this.#persistToken();
        if (!this.#everReady) {
          this.#everReady = true;
          this.#resolveReady();
        }
        for (const ch of this.#channels.values()) ch._writable();
        return;
      case 'channelOpened':
        this.#channels.get(ev.id)?._opened();
        return;
      case 'channelOpenFailed': {
        const ch = this.#channels.get(ev.id);
        this.#channels.delete(ev.id);
        ch?._openFailed(ev.code, ev.message);
        return;
      }
      case 'channelData':
        this.#channels.get(ev.id)?._data(ev.data, ev.stream);
        return;
      case 'channelWritable':
        this.#channels.get(ev.id)?._writable();
        return;
      case 'channelExit':
        this.#channels.get(ev.id)?._exit(ev.code, ev.signal);
        return;
      case 'channelClosed': {
        const ch = this.#channels.get(ev.id);
        this.#channels.delete(ev.id);
        ch?._closed(ev.reason, ev.origin);
        return;
      }
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
      case 'channelResized':
      case 'channelSignal':
      case 'unexpected':
        return;
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
    this.#dropSocket(true);
    this.#releaseLock();
    if (this.#store.mode !== 'none') {
      this.#store.clear();
      this.#onPersistence.fire({ kind: 'clear', storage: this.#store.mode });
    }
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
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    if (this.#bufferedTimer !== undefined) clearInterval(this.#bufferedTimer);
    if (this.#deferTimer !== undefined) clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    this.#deadlineTimer = undefined;
    this.#deadlineAt = undefined;
    this.#reconnectTimer = undefined;
    this.#bufferedTimer = undefined;
  }

  #diag(code: string, detail: string): void {
    this.#onDiagnostic.fire({ code, at: this.#now(), phase: this.#state, detail });
  }
}
