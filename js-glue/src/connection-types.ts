// SPDX-License-Identifier: Apache-2.0
// The public types of connect() and Connection (options, states, events). No code: the connection
// (connection.ts) and everything built on it import these.
import type { ManaError } from './errors.js';
import type { CoreLoadOptions } from './internal/core.js';
import type { StorageMode } from './storage.js';

export type ConnectionState = 'connecting' | 'authenticating' | 'ready' | 'reconnecting' | 'closed';
export type PauseReason = 'transport' | 'hidden' | 'offline' | 'app';

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

/** What the connection reads from `window` (online / offline). */
export interface EventTargetLike {
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
  /**
   * The gateway's route id (hello_ok.route, PROTOCOL.md §9.8), or null. A resume reconnects to
   * the connection's URL with `?route=<id>`. Not a secret.
   */
  route: string | null;
}

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

/**
 * @internal What a session layer built on a connection (the SSH layer) gets besides the public
 * API: the connection's diagnostics and where it keeps its stored session
 * (ConnectionBase._sessionHost()). Not exported from the package.
 */
export interface SessionHost {
  diagnostic(code: string, detail: string): void;
  readonly storage: StorageMode;
  readonly storageKey: string;
}
