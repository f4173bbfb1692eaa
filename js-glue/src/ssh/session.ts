// SPDX-License-Identifier: Apache-2.0
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
import type { ConnectionBase } from '../connection.js';
import type { SessionHost } from '../connection-types.js';
import { disposeSymbol } from '../dispose.js';
import { nextWritableOrClose, type DisposableLike, type EventRegistration } from '../emitter.js';
import {
  InvalidStateError,
  ManaError,
  invalidArgument as invalid,
  type SshLayer,
} from '../errors.js';
import type { SshEngineEvent, SshEngineHandle, SshEngineState } from '../internal/ssh-types.js';
import type { StorageMode } from '../storage.js';
import { storageKeyOf } from '../stored-session.js';
import { channelRefusedError, engineCloseError, lostError, tagLayer } from './close-error.js';
import { SshError } from './errors.js';
import type { KnownHosts } from './known-hosts.js';
import { lostMetadata, removeMetadata, storeMetadata } from './metadata.js';
import { SessionEvents, exitEventOf, sessionStateOf } from './events.js';
import { SshHandshake } from './handshake.js';
import { SshPump } from './pump.js';
import { Opening } from './opening.js';
import { OutputFlow } from './flow.js';
import { ResizeCoalescer } from './resize.js';
import type { SshWire } from './wire.js';
import type {
  SshCloseEvent,
  SshExitEvent,
  SshSessionInfo,
  SshSessionMetadata,
  SshSessionOptions,
  SshSessionState,
  SshSessionStats,
} from './types.js';

const encoder = new TextEncoder();
const internalToken = Symbol('internal');

/** @internal The place of a session in a jump-host chain (ssh/jump.ts). */
export interface SessionLayerOptions {
  layer: SshLayer;
  /** Tunnel mode (a bastion): the next hop its direct-tcpip channel goes to. */
  tunnelTo?: { host: string; port: number };
  /** The target of a chain: its bastions, outermost first (kept in the metadata). */
  via?: { host: string; port: number; username: string }[];
}

/** @internal Used by openSshSession() (ssh/open.ts) and openJumpChain() (ssh/jump.ts). */
export function createSshSession(
  conn: ConnectionBase,
  wire: SshWire,
  engine: SshEngineHandle,
  options: SshSessionOptions,
  known: KnownHosts,
  layer?: SessionLayerOptions,
): SshSession {
  return new SshSession(internalToken, conn, wire, engine, options, known, layer);
}

export class SshSession implements DisposableLike {
  readonly target: { host: string; port: number };
  readonly username: string;

  readonly #conn: ConnectionBase;
  readonly #channel: SshWire;
  readonly #layer: SessionLayerOptions | undefined;
  readonly #host: SessionHost;
  readonly #io: SshPump;
  readonly #handshake: SshHandshake;
  readonly #resizer: ResizeCoalescer;
  #state: SshSessionState = 'connecting';
  readonly #flow: OutputFlow;
  #wantWritable = false;
  #subs: DisposableLike[] = [];
  #closeError: ManaError | undefined;
  #closed = false;
  readonly #opening: Opening;

  readonly #events = new SessionEvents((ev) => {
    this.#handle(ev);
  });

  /** Output of the remote process (stdout; with a pty also what it writes to stderr). */
  readonly onData: EventRegistration<Uint8Array> = this.#events.subscribe(this.#events.data);
  /** stderr of an exec without a pty. */
  readonly onStderr: EventRegistration<Uint8Array> = this.#events.subscribe(this.#events.stderr);
  /** The remote process ended: exit code, or the signal that killed it. */
  readonly onExit: EventRegistration<SshExitEvent> = this.#events.subscribe(this.#events.exit);
  /** The session ended (error set unless it was a normal end). Fires once. */
  readonly onClose: EventRegistration<SshCloseEvent> = this.#events.subscribe(this.#events.close);
  /** write() may accept input again (payload: bytes it accepts now). */
  readonly onWritable: EventRegistration<number> = this.#events.writable.event;

  /** @internal Resolves when the shell / command runs. */
  readonly _opened: Promise<void>;

  /** @internal Use conn.openSession(). */
  constructor(
    token: symbol,
    conn: ConnectionBase,
    channel: SshWire,
    engine: SshEngineHandle,
    options: SshSessionOptions,
    known: KnownHosts,
    layer?: SessionLayerOptions,
  ) {
    if (token !== internalToken)
      throw new TypeError('use conn.openSession() to open an SSH session');
    this.target = { host: options.target.host, port: options.target.port };
    this.username = options.username;
    this.#layer = layer;
    this.#flow = new OutputFlow(options.flow ?? 'auto', (n) => {
      if (this.#engine === undefined) return;
      this.#engine.consume(n);
      this.#pump();
    });
    this.#conn = conn;
    this.#channel = channel;
    this.#host = conn._sessionHost();
    this.#io = new SshPump(engine, channel, {
      handle: (ev) => {
        this.#handle(ev);
      },
      pumped: (e) => {
        this.#pumped(e);
      },
    });
    this.#handshake = new SshHandshake(this.target, known, options, {
      engine: () => this.#engine,
      pump: () => {
        this.#pump();
      },
      diag: (code: string, detail: string) => {
        this.#diag(code, detail);
      },
    });
    this.#resizer = new ResizeCoalescer((cols, rows) => {
      if (this.#engine === undefined) return;
      this.#engine.resize(cols, rows);
      this.#pump();
    });
    this.#opening = new Opening(options.timeoutMs ?? 30000, (error) => {
      this.#fail(error(this.#engine?.state() ?? ''));
    });
    this._opened = this.#opening.promise;

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
        this.#fail(channelRefusedError(this.target, e));
      },
    );
    this.#pump();
  }

  get state(): SshSessionState {
    return this.#state;
  }

  /** Negotiated algorithms, host key fingerprint and auth method (filled during the open). */
  get info(): SshSessionInfo {
    return this.#handshake.fullInfo();
  }

  /** Id of the mana channel carrying the session (with `via`: the channel to the bastion). */
  get channelId(): number {
    return this.#channel.id;
  }

  /** `auto`: output counts as consumed after the onData listeners ran; `manual`: consume(n). */
  get flow(): 'auto' | 'manual' {
    return this.#flow.mode;
  }

  /**
   * Switches the flow mode (ManaAttachAddon makes an `auto` session `manual` while it is attached).
   * Switching to `auto` consumes every byte still unconsumed.
   */
  setFlow(mode: 'auto' | 'manual'): void {
    this.#flow.setMode(mode);
  }

  /** Output delivered by onData/onStderr and not consumed yet. */
  get unconsumed(): number {
    return this.#flow.unconsumed;
  }

  /** Byte counters (for status bars and tests). */
  stats(): SshSessionStats {
    return {
      ...this.#io.counts(),
      unconsumed: this.#flow.unconsumed,
      writeQueued: this.#engine?.writeQueued() ?? 0,
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
    this.#flow.consume(n);
  }

  /** New terminal size; coalesced to at most one window-change per animation frame. */
  resize(cols: number, rows: number): void {
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw invalid(`resize: ${cols}x${rows} is not a terminal size`);
    }
    if (this.#closed) return;
    this.#resizer.request(cols, rows);
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
    this.#events.clear();
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
    return lostMetadata(options.storage ?? 'session', storageKeyOf(options), options.clear ?? true);
  }

  // ---- the pump --------------------------------------------------------------------------------

  get #engine(): SshEngineHandle | undefined {
    return this.#io.engine;
  }

  #pump(): void {
    this.#io.pump();
  }

  // End of a pump: onWritable when write() was refused and the engine has room again.
  #pumped(engine: SshEngineHandle): void {
    if (this.#wantWritable && this.#state === 'open') {
      const room = engine.writeRoom();
      if (room > 0) {
        this.#wantWritable = false;
        this.#events.writable.fire(room);
      }
    }
  }

  #handle(ev: SshEngineEvent): void {
    if (this.#events.hold(ev, this.#opening.done) || this.#handshake.handle(ev)) return;
    switch (ev.type) {
      case 'stateChanged':
        this.#engineState(ev.to);
        return;
      case 'ready':
        this.#opened();
        return;
      case 'data':
        this.#deliver(ev.stream, ev.data);
        return;
      case 'exit':
        this.#diag(
          'ssh_exit',
          ev.signal !== null ? `signal ${ev.signal}` : `code ${ev.code ?? ''}`,
        );
        this.#events.exit.fire(exitEventOf(ev));
        return;
      case 'diagnostic':
        this.#diag(ev.code, ev.detail);
        return;
      case 'closed':
        this.#engineClosed(ev);
        return;
    }
  }

  #engineState(to: SshEngineState): void {
    const next = sessionStateOf(to, this.#state);
    if (next !== undefined) this.#setState(next);
  }

  #deliver(stream: 'stdout' | 'stderr', data: Uint8Array): void {
    this.#flow.delivering(data.length);
    (stream === 'stderr' ? this.#events.stderr : this.#events.data).fire(data);
    this.#flow.delivered();
  }

  #opened(): void {
    this.#opening.opened();
    this.#setState('open');
    if (this.#layer?.tunnelTo !== undefined) return; // the chain's target keeps the metadata
    const via = this.#layer?.via;
    storeMetadata(this.#host, {
      host: this.target.host,
      port: this.target.port,
      username: this.username,
      channelId: this.#channel.id,
      openedAt: Date.now(),
      ...this.#handshake.info,
      ...(via !== undefined ? { via } : {}),
    });
  }

  // ---- endings ---------------------------------------------------------------------------------

  #engineClosed(ev: Extract<SshEngineEvent, { type: 'closed' }>): void {
    const error = engineCloseError(ev, {
      username: this.username,
      hostKeyError: (sshCode) => this.#handshake.hostKeyError(sshCode),
      authError: () => this.#handshake.authError(),
      lost: (message) => this.#lost(message),
      tunnelTo: this.#layer?.tunnelTo,
    });
    this.#diag(
      'ssh_closed',
      `${ev.reason}${ev.code !== 0 ? ` ${ev.code}` : ''} (sent=${this.#engine?.bytesSent() ?? 0})`,
    );
    this.#finish(error, false);
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
      if (!this.#closed) this.#fail(this.#lost(`the SSH channel closed (${reason})`));
    });
  }

  /** The error of a lost transport: the bastion's when a tunnel carried the session. */
  #lost(message: string): ManaError {
    return this.#channel.failure ?? lostError(this.#conn, message);
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
    if (error !== undefined && this.#layer !== undefined) tagLayer(error, this.#layer.layer);
    this.#closeError = error;
    // What the engine still wants to send (e.g. its DISCONNECT) goes out if credit allows.
    this.#io.end(abrupt);
    for (const s of this.#subs.splice(0)) s.dispose();
    this.#resizer.cancel();
    if (this.#channel.state === 'open' || this.#channel.state === 'opening') {
      try {
        this.#channel.close(error === undefined ? 'ssh session ended' : error.code, abrupt);
      } catch {
        // The connection is gone already.
      }
    }
    if (this.#layer?.tunnelTo === undefined) removeMetadata(this.#host, this.#channel.id);
    this.#setState('closed');
    this.#opening.ended(
      () =>
        error ??
        new SshError('SSH session closed before it opened', { code: 'closed', origin: 'local' }),
    );
    this.#events.close.fire(error === undefined ? {} : { error });
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
    if (!this.#closed) {
      if (this.writable > 0) return Promise.resolve();
      this.#wantWritable = true;
    }
    return nextWritableOrClose(
      this.onWritable,
      this.#events.close.event,
      this.#closed,
      (already) =>
        new InvalidStateError(`the SSH session ${already ? 'is closed' : 'closed'}`, {
          code: 'invalid_state',
          origin: 'local',
        }),
    );
  }

  #diag(code: string, detail: string): void {
    const l = this.#layer?.layer;
    const where = l === undefined ? '' : ` ${l.role} ${l.hop}`;
    this.#host.diagnostic(code, `ch ${this.#channel.id}${where}: ${detail}`);
  }
}
