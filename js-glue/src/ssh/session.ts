// SshSession: SSH in the page (libssh2 in wasm) over one mana channel of a Connection.
//
// Invariants
//   1. Every input into the engine (channel bytes, credit, app calls, timers, host-key and
//      keyboard-interactive answers) is followed by pump(): step the engine, send what it wrote
//      (only as much as the channel accepts), grant mana credit for the bytes libssh2 read,
//      dispatch its events, re-arm the keepalive timer. pump() is re-entrancy safe.
//   2. Credit is layered: the gateway sends only within mana credit, which this side grants only
//      for bytes libssh2 took; libssh2 reads the SSH channel only while the application holds
//      less than `highWaterMark` unconsumed bytes (consume(), or automatically with flow 'auto'),
//      so the SSH window (2 MiB) stops sshd when the application is slow.
//   3. After the engine reports `closed`, or after dispose(), no timer, listener or wasm handle
//      of this session is left (liveSshEngines() counts the handles).
//   4. Secrets (passwords, keys, answers) go into the wasm engine and nowhere else: never into
//      diagnostics, errors, storage or the gateway.
import type { Channel } from '../channel.js';
import type { Connection } from '../connection.js';
import { disposeSymbol } from '../dispose.js';
import { Emitter, type DisposableLike, type EventRegistration } from '../emitter.js';
import { InvalidStateError, ManaError } from '../errors.js';
import { createTokenStore, type StorageMode } from '../storage.js';
import { loadSshModule, type SshLoadOptions } from '../internal/ssh.js';
import type {
  SshEngineAuth,
  SshEngineConfig,
  SshEngineEvent,
  SshEngineHandle,
  SshEngineState,
} from '../internal/ssh-types.js';
import {
  HostKeyError,
  SessionLostError,
  SshAuthError,
  SshError,
  type HostKeyInfo,
} from './errors.js';
import { KnownHosts, base64Of, hostKeyPreference, type KnownHostsOption } from './known-hosts.js';

export type SshSessionState = 'connecting' | 'authenticating' | 'open' | 'closing' | 'closed';

export interface KeyboardInteractivePrompt {
  prompt: string;
  /** Whether the answer may be shown while typed (false for passwords). */
  echo: boolean;
}
export type KeyboardInteractiveHandler = (
  prompts: KeyboardInteractivePrompt[],
  info: { name: string; instruction: string },
) => string[] | Promise<string[]>;

export type SshAuthMethod =
  | { password: string }
  | { privateKey: string; passphrase?: string }
  | { keyboardInteractive: KeyboardInteractiveHandler };

export interface SshTermOptions {
  cols: number;
  rows: number;
  /** TERM of the pty. Default `xterm-256color`. */
  type?: string;
  /** Environment for the shell (sshd accepts only what its AcceptEnv allows). */
  env?: Record<string, string>;
}

export interface SshSessionOptions {
  target: { host: string; port: number };
  username: string;
  /** One method or several, tried in order as the server offers them. */
  auth: SshAuthMethod | SshAuthMethod[];
  /** Host key policy. Default: trust on first use (new keys are stored; a changed key fails). */
  hostKey?: { verify?: (info: HostKeyInfo) => boolean | Promise<boolean> };
  /** Where accepted host keys persist. Default `local` (localStorage; memory when unavailable). */
  knownHosts?: KnownHostsOption;
  /** pty + shell. */
  term?: SshTermOptions;
  /** exec (without a pty unless `term` is given too; stdout and stderr separated). */
  command?: string;
  /** SSH keepalive interval, ms (whole seconds). Default 30000; 0 disables. */
  keepaliveMs?: number;
  /** `auto` (default): output counts as consumed after the onData listeners ran. `manual`: call
   *  consume(n) once the bytes were really processed (e.g. in xterm's write callback). */
  flow?: 'auto' | 'manual';
  /** Unconsumed output at which reading from the SSH channel pauses. Default 512 KiB. */
  highWaterMark?: number;
  /** Deadline for handshake + authentication + channel start, ms. Default 30000. */
  timeoutMs?: number;
  /** Cipher preference (libssh2 names, comma separated). Default chacha20-poly1305 first. */
  ciphers?: string;
  /** How the SSH engine is loaded (first load in the page wins). */
  engine?: SshLoadOptions;
}

export interface SshSessionInfo {
  kex: string;
  hostKeyAlgorithm: string;
  fingerprint: string;
  cipherClientToServer: string;
  cipherServerToClient: string;
  macClientToServer: string;
  macServerToClient: string;
  authMethod: string;
}

export interface SshSessionStats {
  /** SSH transport bytes received from / sent to the server (encrypted, as on the channel). */
  received: number;
  sent: number;
  /** Output delivered and not consumed yet. */
  unconsumed: number;
  /** Input accepted by write() and not yet taken by the SSH channel. */
  writeQueued: number;
}

export interface SshExitEvent {
  code?: number;
  signal?: string;
}

export interface SshCloseEvent {
  /** Why the session ended; undefined for a normal end (exit, close()). */
  error?: ManaError;
}

/** SSH metadata stored next to the transport's resume token (no secrets). */
export interface SshSessionMetadata extends Partial<SshSessionInfo> {
  host: string;
  port: number;
  username: string;
  channelId: number;
  /** Date.now() when the session opened. */
  openedAt: number;
}

/** @internal What openSession needs from its Connection. */
export interface SshConnectionHooks {
  diagnostic(code: string, detail: string): void;
  storage: StorageMode;
  storageKey: string;
}

const encoder = new TextEncoder();
const liveMetadata = new Set<string>();

function metadataStore(storage: StorageMode, storageKey: string) {
  return createTokenStore(storage, `${storageKey}:ssh`);
}

function readMetadata(storage: StorageMode, storageKey: string): SshSessionMetadata[] {
  const text = metadataStore(storage, storageKey).load();
  if (text === undefined) return [];
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as SshSessionMetadata[]) : [];
  } catch {
    return [];
  }
}

function writeMetadata(storage: StorageMode, storageKey: string, list: SshSessionMetadata[]) {
  const store = metadataStore(storage, storageKey);
  if (list.length === 0) store.clear();
  else store.save(JSON.stringify(list.slice(-16)));
}

function invalid(message: string): InvalidStateError {
  return new InvalidStateError(message, { code: 'invalid_argument', origin: 'local' });
}

function toEngineAuth(m: SshAuthMethod): SshEngineAuth {
  if ('password' in m) return { type: 'password', password: m.password };
  if ('privateKey' in m) {
    return m.passphrase !== undefined
      ? { type: 'publickey', privateKey: m.privateKey, passphrase: m.passphrase }
      : { type: 'publickey', privateKey: m.privateKey };
  }
  return { type: 'keyboard-interactive' };
}

function validate(options: SshSessionOptions): void {
  const t = options.target as { host?: unknown; port?: unknown } | undefined;
  if (t === undefined || typeof t.host !== 'string' || t.host === '') {
    throw invalid('openSession: target.host is required');
  }
  if (typeof t.port !== 'number' || !Number.isInteger(t.port) || t.port < 1 || t.port > 65535) {
    throw invalid('openSession: target.port must be an integer 1..65535');
  }
  if (typeof options.username !== 'string' || options.username === '') {
    throw invalid('openSession: username is required');
  }
  const methods = Array.isArray(options.auth) ? options.auth : [options.auth];
  if (methods.length === 0 || methods.some((m) => typeof m !== 'object')) {
    throw invalid('openSession: auth needs {password}, {privateKey} or {keyboardInteractive}');
  }
  if (options.term === undefined && options.command === undefined) {
    throw invalid('openSession: pass `term` (pty + shell) or `command` (exec)');
  }
  if (options.term !== undefined) {
    const { cols, rows } = options.term;
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw invalid('openSession: term.cols and term.rows must be positive integers');
    }
  }
}

/** @internal Connection.openSession(). */
export async function openSshSession(
  conn: Connection,
  options: SshSessionOptions,
  hooks: SshConnectionHooks,
): Promise<SshSession> {
  validate(options);
  const module = await loadSshModule(options.engine);
  const known = new KnownHosts(options.knownHosts);
  const stored = known.get(options.target.host, options.target.port);
  const methods = Array.isArray(options.auth) ? options.auth : [options.auth];
  const term = options.term;
  const config: SshEngineConfig = {
    username: options.username,
    auth: methods.map(toEngineAuth),
    hostkeyPref: hostKeyPreference(stored?.keyType),
    keepaliveS: Math.round((options.keepaliveMs ?? 30000) / 1000),
    appHighWater: options.highWaterMark ?? 512 * 1024,
    ...(options.ciphers !== undefined ? { cipherPref: options.ciphers } : {}),
    ...(options.command !== undefined ? { command: options.command } : {}),
    ...(term !== undefined
      ? {
          pty: true,
          termType: term.type ?? 'xterm-256color',
          cols: term.cols,
          rows: term.rows,
          env: Object.entries(term.env ?? {}),
        }
      : {}),
  };
  const channel = conn.openChannel({ target: options.target, kind: 'tcp' });
  const engine = new module.SshEngine(config);
  const session = new SshSession(internalToken, conn, channel, engine, options, hooks, known);
  await session._opened;
  return session;
}

const internalToken = Symbol('internal');

export class SshSession implements DisposableLike {
  readonly target: { host: string; port: number };
  readonly username: string;

  readonly #conn: Connection;
  readonly #channel: Channel;
  readonly #options: SshSessionOptions;
  readonly #hooks: SshConnectionHooks;
  readonly #known: KnownHosts;
  readonly #methods: SshAuthMethod[];
  #engine: SshEngineHandle | undefined;
  #state: SshSessionState = 'connecting';
  #info: Partial<SshSessionInfo> = {};
  #hostKey: HostKeyInfo | undefined;
  #hostKeyVerdict: 'changed' | 'rejected' | undefined;
  #flow: 'auto' | 'manual';
  #unconsumed = 0;
  #pendingOut: Uint8Array | undefined;
  #wantWritable = false;
  #pumping = false;
  #pumpAgain = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt: number | undefined;
  #openTimer: ReturnType<typeof setTimeout> | undefined;
  #resizeTimer: ReturnType<typeof setTimeout> | number | undefined;
  #resizeUsesRaf = false;
  #pendingSize: { cols: number; rows: number } | undefined;
  #subs: DisposableLike[] = [];
  #closeError: ManaError | undefined;
  #closed = false;
  #metaKey: string;
  #resolveOpened!: () => void;
  #rejectOpened!: (e: ManaError) => void;
  #everOpen = false;
  #lastCounts = { received: 0, sent: 0 };

  readonly #onData = new Emitter<Uint8Array>();
  readonly #onStderr = new Emitter<Uint8Array>();
  readonly #onExit = new Emitter<SshExitEvent>();
  readonly #onClose = new Emitter<SshCloseEvent>();
  readonly #onWritable = new Emitter<number>();

  // Output, exit and close that arrive after the session opened but before the application
  // registered any of onData / onStderr / onExit / onClose are held here, in order, and handed
  // over in a microtask after the first such registration: `await conn.openSession(...)` resumes
  // only after the pump that opened the session has run, so a fast command's output would
  // otherwise fire to no listener. Bounded: held output is not consumed, so the engine stops
  // reading at its high-water mark. null once handed over.
  #held: SshEngineEvent[] | null = [];

  /** Output of the remote process (stdout; with a pty also what it writes to stderr). */
  readonly onData: EventRegistration<Uint8Array> = this.#subscribe(this.#onData);
  /** stderr of an exec without a pty. */
  readonly onStderr: EventRegistration<Uint8Array> = this.#subscribe(this.#onStderr);
  /** The remote process ended: exit code, or the signal that killed it. */
  readonly onExit: EventRegistration<SshExitEvent> = this.#subscribe(this.#onExit);
  /** The session ended (error set unless it was a normal end). Fires once. */
  readonly onClose: EventRegistration<SshCloseEvent> = this.#subscribe(this.#onClose);
  /** write() may accept input again (payload: bytes it accepts now). */
  readonly onWritable: EventRegistration<number> = this.#onWritable.event;

  /** @internal Resolves when the shell / command runs. */
  readonly _opened: Promise<void>;

  /** @internal Use conn.openSession(). */
  constructor(
    token: symbol,
    conn: Connection,
    channel: Channel,
    engine: SshEngineHandle,
    options: SshSessionOptions,
    hooks: SshConnectionHooks,
    known: KnownHosts,
  ) {
    if (token !== internalToken)
      throw new TypeError('use conn.openSession() to open an SSH session');
    this.target = { host: options.target.host, port: options.target.port };
    this.username = options.username;
    this.#flow = options.flow ?? 'auto';
    this.#conn = conn;
    this.#channel = channel;
    this.#engine = engine;
    this.#options = options;
    this.#hooks = hooks;
    this.#known = known;
    this.#methods = Array.isArray(options.auth) ? options.auth : [options.auth];
    this.#metaKey = `${hooks.storageKey}#${channel.id}`;
    this._opened = new Promise<void>((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this._opened.catch(() => undefined);

    this.#subs.push(
      channel.onData(({ data }) => {
        this.#engine?.pushInput(data);
        this.#pump();
      }),
      channel.onWritable(() => {
        this.#pump();
      }),
      channel.onClose(({ reason }) => {
        this.#transportGone(reason);
      }),
    );
    channel.opened.then(
      () => {
        this.#pump();
      },
      (e: unknown) => {
        this.#fail(
          e instanceof ManaError
            ? e
            : new SshError(`channel to ${this.target.host}:${this.target.port} refused`, {
                code: 'channel_refused',
                origin: 'remote',
                cause: e,
              }),
        );
      },
    );
    const timeoutMs = options.timeoutMs ?? 30000;
    this.#openTimer = setTimeout(() => {
      this.#openTimer = undefined;
      if (!this.#everOpen) {
        this.#fail(
          new SshError(
            `SSH session not open after ${timeoutMs} ms (${this.#engine?.state() ?? ''})`,
            {
              code: 'timeout',
              origin: 'local',
            },
          ),
        );
      }
    }, timeoutMs);
    this.#pump();
  }

  get state(): SshSessionState {
    return this.#state;
  }

  /** Negotiated algorithms, host key fingerprint and auth method (filled during the open). */
  get info(): SshSessionInfo {
    return {
      kex: '',
      hostKeyAlgorithm: '',
      fingerprint: '',
      cipherClientToServer: '',
      cipherServerToClient: '',
      macClientToServer: '',
      macServerToClient: '',
      authMethod: '',
      ...this.#info,
    };
  }

  /** Id of the mana channel carrying the session. */
  get channelId(): number {
    return this.#channel.id;
  }

  /** `auto`: output counts as consumed after the onData listeners ran; `manual`: consume(n). */
  get flow(): 'auto' | 'manual' {
    return this.#flow;
  }

  /**
   * Switches the flow mode (ManaAttachAddon makes an `auto` session `manual` while it is attached).
   * Switching to `auto` consumes every byte still unconsumed.
   */
  setFlow(mode: 'auto' | 'manual'): void {
    if (mode !== 'auto' && mode !== 'manual') {
      throw invalid(`setFlow: ${String(mode)} is not a mode`);
    }
    this.#flow = mode;
    if (mode === 'auto' && this.#unconsumed > 0) this.consume(this.#unconsumed);
  }

  /** Output delivered by onData/onStderr and not consumed yet. */
  get unconsumed(): number {
    return this.#unconsumed;
  }

  /** Byte counters (for status bars and tests). */
  stats(): SshSessionStats {
    const e = this.#engine;
    if (e !== undefined) {
      this.#lastCounts = { received: e.bytesReceived(), sent: e.bytesSent() };
    }
    return {
      ...this.#lastCounts,
      unconsumed: this.#unconsumed,
      writeQueued: e?.writeQueued() ?? 0,
    };
  }

  /** Bytes write() accepts now. */
  get writable(): number {
    return this.#state === 'open' ? (this.#engine?.writeRoom() ?? 0) : 0;
  }

  /**
   * Queues input for the remote process; returns how many bytes were accepted (0..length, bounded
   * by a 1 MiB queue that drains within the SSH window and mana credit). Write the rest after
   * onWritable. Throws InvalidStateError once the session is closing or closed.
   */
  write(data: Uint8Array | string): number {
    this.#assertOpen('write');
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    if (bytes.length === 0 || this.#engine === undefined) return 0;
    const n = this.#engine.write(bytes);
    if (n < bytes.length) this.#wantWritable = true;
    this.#pump();
    return n;
  }

  /** Writes all of `data`, waiting for room as needed. */
  async writeAll(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? encoder.encode(data) : data;
    let offset = 0;
    while (offset < bytes.length) {
      offset += this.write(bytes.subarray(offset));
      if (offset < bytes.length) await this.#nextWritableOrClose();
    }
  }

  /** The application processed `n` bytes of output (flow 'manual'; harmless with 'auto'). */
  consume(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#unconsumed) {
      throw invalid(`consume: ${n} is not within 0..${this.#unconsumed}`);
    }
    if (n === 0) return;
    this.#unconsumed -= n;
    if (this.#engine === undefined) return;
    this.#engine.consume(n);
    this.#pump();
  }

  /** New terminal size; coalesced to at most one window-change per animation frame. */
  resize(cols: number, rows: number): void {
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw invalid(`resize: ${cols}x${rows} is not a terminal size`);
    }
    if (this.#closed) return;
    this.#pendingSize = { cols: Math.min(cols, 10000), rows: Math.min(rows, 10000) };
    if (this.#resizeTimer !== undefined) return;
    const raf = (globalThis as { requestAnimationFrame?: (cb: () => void) => number })
      .requestAnimationFrame;
    const flush = () => {
      this.#resizeTimer = undefined;
      const size = this.#pendingSize;
      this.#pendingSize = undefined;
      if (size === undefined || this.#engine === undefined) return;
      this.#engine.resize(size.cols, size.rows);
      this.#pump();
    };
    if (typeof raf === 'function') {
      this.#resizeUsesRaf = true;
      this.#resizeTimer = raf(flush);
    } else {
      this.#resizeUsesRaf = false;
      this.#resizeTimer = setTimeout(flush, 16);
    }
  }

  /** Sends a signal to the remote process (`TERM`, `INT`, `HUP`, `KILL`, ...; `SIG` prefix ok). */
  signal(name: string): void {
    this.#assertOpen('signal');
    const n = name.toUpperCase().replace(/^SIG/u, '');
    if (this.#engine === undefined || !this.#engine.signal(n)) {
      throw invalid(`signal: ${name} is not a signal name`);
    }
    this.#pump();
  }

  /** Sends EOF on the remote process's stdin (after the queued input). */
  sendEof(): void {
    this.#assertOpen('sendEof');
    this.#engine?.sendEof();
    this.#pump();
  }

  /** Ends the session (channel close + SSH disconnect); onClose follows. */
  close(): void {
    if (this.#closed || this.#engine === undefined) return;
    if (this.#state !== 'closed') this.#setState('closing');
    this.#engine.close();
    this.#pump();
  }

  /** `using ssh = await conn.openSession(...)`: dispose() at the end of the scope. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** Closes at once and releases the wasm handle, timers and listeners. */
  dispose(): void {
    if (!this.#closed) {
      this.#finish(undefined, true);
    }
    this.#onData.clear();
    this.#onStderr.clear();
    this.#onExit.clear();
    this.#onClose.clear();
    this.#onWritable.clear();
  }

  /**
   * The SSH sessions that were attached before the page was reloaded (from the metadata stored
   * next to the transport's token). Their keys lived in the old page: they cannot be resumed, only
   * reopened. `clear` (default true) forgets them.
   */
  static lostSessions(options: {
    url: string;
    storage?: StorageMode;
    storageKey?: string;
    clear?: boolean;
  }): SshSessionMetadata[] {
    const storage = options.storage ?? 'session';
    const key = options.storageKey ?? `mana.websocket.resume:${options.url}`;
    const all = readMetadata(storage, key);
    const lost = all.filter((m) => !liveMetadata.has(`${key}#${m.channelId}`));
    if (options.clear ?? true) {
      writeMetadata(
        storage,
        key,
        all.filter((m) => liveMetadata.has(`${key}#${m.channelId}`)),
      );
    }
    return lost;
  }

  // ---- the pump --------------------------------------------------------------------------------

  #pump(): void {
    if (this.#engine === undefined) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      let rounds = 0;
      do {
        this.#pumpAgain = false;
        const engine = this.#engine;
        if (engine === undefined) break;
        engine.step(performance.now());
        let progressed = this.#flush(engine);
        const used = engine.takeInputConsumed();
        if (used > 0) {
          progressed = true;
          if (this.#channel.state === 'open') this.#channel.consume(used);
        }
        const events: SshEngineEvent[] = [];
        for (let ev = engine.pollEvent(); ev !== null; ev = engine.pollEvent()) events.push(ev);
        for (const ev of events) {
          this.#handle(ev);
          if (this.#engine === undefined) break;
        }
        if (events.length > 0) progressed = true;
        if (progressed) this.#pumpAgain = true;
        if (++rounds >= 1000 && this.#pumpAgain) {
          // Yield to the event loop; continue right after.
          setTimeout(() => {
            this.#pump();
          }, 0);
          break;
        }
      } while (this.#pumpAgain && this.#engine !== undefined);
      this.#afterPump();
    } finally {
      this.#pumping = false;
    }
  }

  #flush(engine: SshEngineHandle): boolean {
    let wrote = false;
    const ch = this.#channel;
    if (ch.state !== 'open') return false;
    for (;;) {
      if (this.#pendingOut === undefined) {
        const avail = engine.outputBytes();
        if (avail === 0) return wrote;
        // At least a small chunk even without credit: the refused write is what arms the
        // channel's onWritable (the core reports credit only to a writer it turned away).
        const want = Math.min(avail, Math.max(ch.writable, 16 * 1024), 256 * 1024);
        this.#pendingOut = engine.takeOutput(want);
      }
      const pending = this.#pendingOut;
      const n = ch.write(pending);
      if (n > 0) wrote = true;
      if (n < pending.length) {
        this.#pendingOut = pending.subarray(n);
        return wrote;
      }
      this.#pendingOut = undefined;
    }
  }

  #afterPump(): void {
    const engine = this.#engine;
    if (engine === undefined) return;
    if (this.#wantWritable && this.#state === 'open') {
      const room = engine.writeRoom();
      if (room > 0) {
        this.#wantWritable = false;
        this.#onWritable.fire(room);
      }
    }
    const at = engine.nextTimeout();
    if (at === null) {
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = undefined;
      return;
    }
    if (this.#timer !== undefined && this.#timerAt === at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = undefined;
        this.#pump();
      },
      Math.max(0, Math.ceil(at - performance.now())),
    );
  }

  #subscribe<T>(emitter: Emitter<T>): EventRegistration<T> {
    return (listener) => {
      const d = emitter.event(listener);
      if (this.#held !== null) {
        queueMicrotask(() => {
          this.#release();
        });
      }
      return d;
    };
  }

  #release(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    for (const ev of held) this.#handle(ev);
  }

  #handle(ev: SshEngineEvent): void {
    if (
      this.#held !== null &&
      this.#everOpen &&
      (ev.type === 'data' || ev.type === 'exit' || ev.type === 'closed')
    ) {
      this.#held.push(ev);
      // The engine is done: hand over (or drop, with no listener) one task later at the latest,
      // so a session nobody listens to still releases its wasm handle and timers.
      if (ev.type === 'closed') {
        setTimeout(() => {
          this.#release();
        }, 0);
      }
      return;
    }
    switch (ev.type) {
      case 'stateChanged':
        this.#engineState(ev.to);
        return;
      case 'kexDone':
        this.#info = {
          ...this.#info,
          kex: ev.kex,
          hostKeyAlgorithm: ev.hostKey,
          cipherClientToServer: ev.cipherClientToServer,
          cipherServerToClient: ev.cipherServerToClient,
          macClientToServer: ev.macClientToServer,
          macServerToClient: ev.macServerToClient,
        };
        this.#diag(
          'ssh_kex_done',
          `kex=${ev.kex} hostkey=${ev.hostKey} c2s=${ev.cipherClientToServer}/${ev.macClientToServer} ` +
            `s2c=${ev.cipherServerToClient}/${ev.macServerToClient}`,
        );
        return;
      case 'hostKey':
        this.#checkHostKey(ev);
        return;
      case 'authMethods':
        this.#diag('ssh_auth_methods', ev.methods);
        return;
      case 'authResult':
        if (ev.ok) this.#info = { ...this.#info, authMethod: ev.method };
        this.#diag(
          'ssh_auth_result',
          `${ev.method}: ${ev.ok ? 'ok' : 'failed'}` + (ev.ok ? '' : ` (${ev.code} ${ev.message})`),
        );
        return;
      case 'kbdPrompts':
        void this.#answerPrompts(ev);
        return;
      case 'ready':
        this.#opened();
        return;
      case 'data':
        this.#deliver(ev.stream, ev.data);
        return;
      case 'exit': {
        const e: SshExitEvent = {};
        if (ev.code !== null) e.code = ev.code;
        if (ev.signal !== null) e.signal = ev.signal;
        this.#diag(
          'ssh_exit',
          ev.signal !== null ? `signal ${ev.signal}` : `code ${ev.code ?? ''}`,
        );
        this.#onExit.fire(e);
        return;
      }
      case 'diagnostic':
        this.#diag(ev.code, ev.detail);
        return;
      case 'closed':
        this.#engineClosed(ev);
        return;
    }
  }

  #engineState(to: SshEngineState): void {
    switch (to) {
      case 'auth_list':
      case 'auth_try':
      case 'auth_prompt':
        if (this.#state === 'connecting') this.#setState('authenticating');
        return;
      case 'closing':
        this.#setState('closing');
        return;
      default:
        return;
    }
  }

  #deliver(stream: 'stdout' | 'stderr', data: Uint8Array): void {
    this.#unconsumed += data.length;
    (stream === 'stderr' ? this.#onStderr : this.#onData).fire(data);
    if (this.#flow === 'auto' && this.#unconsumed > 0) this.consume(this.#unconsumed);
  }

  #opened(): void {
    this.#everOpen = true;
    if (this.#openTimer !== undefined) clearTimeout(this.#openTimer);
    this.#openTimer = undefined;
    this.#setState('open');
    this.#storeMetadata();
    this.#resolveOpened();
  }

  #checkHostKey(ev: Extract<SshEngineEvent, { type: 'hostKey' }>): void {
    const { host, port } = this.target;
    const key = base64Of(ev.blob);
    const stored = this.#known.get(host, port);
    const known: HostKeyInfo['known'] =
      stored === undefined
        ? 'new'
        : stored.keyType === ev.keyType && stored.key === key
          ? 'match'
          : 'changed';
    const info: HostKeyInfo = {
      host,
      port,
      algorithm: ev.keyType,
      fingerprint: ev.fingerprint,
      known,
    };
    this.#hostKey = info;
    this.#info = { ...this.#info, fingerprint: ev.fingerprint };
    const sent = this.#engine?.bytesSent() ?? 0;
    const decide = (accept: boolean, why: string) => {
      this.#diag(
        'ssh_hostkey',
        `${host}:${port} ${ev.keyType} ${ev.fingerprint} ${known} -> ${accept ? 'accepted' : 'rejected'}` +
          ` (${why}; sent=${sent})`,
      );
      if (!accept) this.#hostKeyVerdict = known === 'changed' ? 'changed' : 'rejected';
      else if (known === 'new') this.#known.set(host, port, { keyType: ev.keyType, key });
      this.#engine?.hostKeyDecision(accept);
      this.#pump();
    };
    if (known === 'changed') {
      decide(false, 'the stored key differs');
      return;
    }
    const verify = this.#options.hostKey?.verify;
    if (verify === undefined) {
      decide(true, known === 'new' ? 'trust on first use' : 'stored key');
      return;
    }
    let answer: boolean | Promise<boolean>;
    try {
      answer = verify(info);
    } catch {
      decide(false, 'verify threw');
      return;
    }
    void Promise.resolve(answer).then(
      (ok) => {
        if (this.#engine !== undefined) decide(ok, 'verify');
      },
      () => {
        if (this.#engine !== undefined) decide(false, 'verify rejected');
      },
    );
  }

  async #answerPrompts(ev: Extract<SshEngineEvent, { type: 'kbdPrompts' }>): Promise<void> {
    const handler = this.#methods.find(
      (m): m is { keyboardInteractive: KeyboardInteractiveHandler } => 'keyboardInteractive' in m,
    )?.keyboardInteractive;
    let answers: string[] | null = null;
    this.#diag('ssh_auth_prompts', `${ev.prompts.length} prompt(s)`);
    try {
      if (handler !== undefined) {
        const a = await handler(
          ev.prompts.map((p) => ({ prompt: p.prompt, echo: p.echo })),
          { name: ev.name, instruction: ev.instruction },
        );
        if (
          Array.isArray(a) &&
          a.length === ev.prompts.length &&
          a.every((s) => typeof s === 'string')
        ) {
          answers = a;
        }
      }
    } catch {
      answers = null;
    }
    if (this.#engine === undefined) return;
    this.#engine.kbdAnswers(answers);
    this.#pump();
  }

  // ---- endings ---------------------------------------------------------------------------------

  #engineClosed(ev: Extract<SshEngineEvent, { type: 'closed' }>): void {
    const detail = ev.message !== '' ? `: ${ev.message}` : '';
    const methods = ev.methods === '' ? [] : ev.methods.split(',');
    const init = { origin: 'remote' as const, sshCode: ev.code };
    let error: ManaError | undefined;
    switch (ev.reason) {
      case 'none':
        error = undefined;
        break;
      case 'hostkey_rejected': {
        const hk = this.#hostKey ?? {
          host: this.target.host,
          port: this.target.port,
          algorithm: '',
          fingerprint: '',
          known: 'new' as const,
        };
        error =
          this.#hostKeyVerdict === 'changed'
            ? new HostKeyError(
                `host key of ${hk.host}:${hk.port} changed: got ${hk.algorithm} ${hk.fingerprint}, ` +
                  'which differs from the stored key (possible man-in-the-middle)',
                { ...init, code: 'hostkey_changed', origin: 'local', hostKey: hk },
              )
            : new HostKeyError(`host key ${hk.algorithm} ${hk.fingerprint} was not accepted`, {
                ...init,
                code: 'hostkey_rejected',
                origin: 'local',
                hostKey: hk,
              });
        break;
      }
      case 'auth_failed':
        error = new SshAuthError(
          `SSH authentication as ${this.username} failed (server allows: ${ev.methods || 'none'})${detail}`,
          { ...init, code: 'auth_failed', methods },
        );
        break;
      case 'auth_cancelled':
        error = new SshAuthError('keyboard-interactive authentication was cancelled', {
          ...init,
          code: 'auth_cancelled',
          origin: 'local',
          methods,
        });
        break;
      case 'key_error':
        error = new SshAuthError(`the private key could not be used${detail}`, {
          ...init,
          code: 'key_error',
          origin: 'local',
          methods,
        });
        break;
      case 'transport_closed':
        error = this.#lostError(`the transport of the SSH session closed${detail}`);
        break;
      case 'channel_failed':
        error = new SshError(`SSH channel refused${detail}`, { ...init, code: 'channel_failed' });
        break;
      case 'buffer_full':
        error = new SshError(`SSH engine buffer bound exceeded${detail}`, {
          ...init,
          code: 'buffer_full',
          origin: 'local',
        });
        break;
      case 'ssh_error':
        error = new SshError(`SSH error ${ev.code}${detail}`, { ...init, code: 'ssh_error' });
        break;
    }
    this.#diag(
      'ssh_closed',
      `${ev.reason}${ev.code !== 0 ? ` ${ev.code}` : ''} (sent=${this.#engine?.bytesSent() ?? 0})`,
    );
    this.#finish(error, false);
  }

  #lostError(message: string): ManaError {
    const connGone = this.#conn.state === 'closed' || this.#conn.disposed;
    if (connGone) {
      return new SessionLostError(`${message}: the connection could not be resumed`, {
        code: 'session_lost',
        origin: 'local',
        cause: this.#conn.lastError,
      });
    }
    return new SshError(message, { code: 'transport_closed', origin: 'remote' });
  }

  #transportGone(reason: string): void {
    if (this.#closed) return;
    const engine = this.#engine;
    if (engine === undefined) return;
    this.#diag('ssh_transport_closed', reason);
    engine.transportClosed();
    // The channel closes from inside the connection's own pump, before its state settles (e.g.
    // to `closed`): decide about the error once that pump is done.
    queueMicrotask(() => {
      this.#pump();
      if (!this.#closed) this.#fail(this.#lostError(`the SSH channel closed (${reason})`));
    });
  }

  #fail(error: ManaError): void {
    if (this.#closed) return;
    this.#diag('ssh_closed', error.code);
    this.#finish(error, true);
  }

  /** Ends the session: one onClose, the wasm handle freed, the channel closed. */
  #finish(error: ManaError | undefined, abrupt: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    const engine = this.#engine;
    if (engine !== undefined) {
      // What the engine still wants to send (e.g. its DISCONNECT) goes out if credit allows.
      if (!abrupt) this.#flush(engine);
      this.#lastCounts = { received: engine.bytesReceived(), sent: engine.bytesSent() };
      this.#engine = undefined;
      engine.delete();
    }
    this.#pendingOut = undefined;
    for (const s of this.#subs.splice(0)) s.dispose();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#openTimer !== undefined) clearTimeout(this.#openTimer);
    if (this.#resizeTimer !== undefined) {
      if (this.#resizeUsesRaf) {
        (globalThis as { cancelAnimationFrame?: (h: number) => void }).cancelAnimationFrame?.(
          this.#resizeTimer as number,
        );
      } else {
        clearTimeout(this.#resizeTimer as ReturnType<typeof setTimeout>);
      }
    }
    this.#timer = this.#openTimer = this.#resizeTimer = undefined;
    if (this.#channel.state === 'open' || this.#channel.state === 'opening') {
      try {
        this.#channel.close(error === undefined ? 'ssh session ended' : error.code);
      } catch {
        // The connection is gone already.
      }
    }
    this.#removeMetadata();
    this.#setState('closed');
    if (!this.#everOpen) {
      this.#rejectOpened(
        error ??
          new SshError('SSH session closed before it opened', { code: 'closed', origin: 'local' }),
      );
    }
    this.#onClose.fire(error === undefined ? {} : { error });
  }

  /** The error that ended the session (undefined while open or after a normal end). */
  get error(): ManaError | undefined {
    return this.#closeError;
  }

  // ---- helpers ---------------------------------------------------------------------------------

  #setState(s: SshSessionState): void {
    if (this.#state === s || this.#state === 'closed') return;
    this.#state = s;
  }

  #assertOpen(what: string): void {
    if (this.#closed || this.#state === 'closing') {
      throw new InvalidStateError(`${what}: the SSH session is ${this.#state}`, {
        code: 'invalid_state',
        origin: 'local',
      });
    }
  }

  #nextWritableOrClose(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.#closed) {
        reject(
          new InvalidStateError('the SSH session is closed', {
            code: 'invalid_state',
            origin: 'local',
          }),
        );
        return;
      }
      if (this.writable > 0) {
        resolve();
        return;
      }
      this.#wantWritable = true;
      const a = this.onWritable(() => {
        a.dispose();
        b.dispose();
        resolve();
      });
      const b = this.#onClose.event(() => {
        a.dispose();
        b.dispose();
        reject(
          new InvalidStateError('the SSH session closed', {
            code: 'invalid_state',
            origin: 'local',
          }),
        );
      });
    });
  }

  #diag(code: string, detail: string): void {
    this.#hooks.diagnostic(code, `ch ${this.#channel.id}: ${detail}`);
  }

  #storeMetadata(): void {
    const { storage, storageKey } = this.#hooks;
    const meta: SshSessionMetadata = {
      host: this.target.host,
      port: this.target.port,
      username: this.username,
      channelId: this.#channel.id,
      openedAt: Date.now(),
      ...this.#info,
    };
    liveMetadata.add(this.#metaKey);
    const list = readMetadata(storage, storageKey).filter((m) => m.channelId !== meta.channelId);
    writeMetadata(storage, storageKey, [...list, meta]);
  }

  #removeMetadata(): void {
    if (!liveMetadata.delete(this.#metaKey)) return;
    const { storage, storageKey } = this.#hooks;
    writeMetadata(
      storage,
      storageKey,
      readMetadata(storage, storageKey).filter((m) => m.channelId !== this.#channel.id),
    );
  }
}
