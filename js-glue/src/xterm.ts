// xterm.js addon: `term.loadAddon(new ManaAttachAddon(session, options))` wires a terminal to an
// SSH session (or any byte stream with the same shape) with credit that follows rendering;
// `attachTerminal(term, session, options)` is the same addon, created and activated in one call.
//
// Output: every chunk from session.onData / onStderr passes the optional `filter` (which may
// replace it or swallow it, e.g. for trzsz / zmodem handlers) and goes to term.write(data,
// callback). The callback fires once xterm has parsed the chunk; only then is credit granted
// (session.consume(n) for the n bytes the session delivered, whatever the filter made of them),
// so the server can never send more than the credit window ahead of what the terminal really
// processed. A swallowed chunk is credited at once. On top of that the addon counts the bytes
// handed to xterm and not yet parsed (`pending`): when it reaches `highWaterMark` the addon stops
// granting credit until `pending` falls to `lowWaterMark`, then grants everything withheld at once.
// The addon is the session's only consumer: a session in `flow: 'auto'` is switched to 'manual'
// on activation (and back on dispose); a stream that consumes by itself and cannot be switched
// (a Channel with autoConsume) is refused with InvalidStateError.
//
// Input (unless `bidirectional: false`): term.onData (strings, UTF-8 encoded) and term.onBinary
// (one char per byte) go to session.write(); what the session does not accept yet (no credit,
// transport paused) waits in a bounded queue and is retried on session.onWritable (or a short
// timer). Input beyond `maxInputBytes` is dropped and reported through `onInputDropped`; nothing is
// reordered.
//
// Resize (unless `bidirectional: false`): the terminal's size is sent on activation and on every
// term.onResize (the session coalesces).
//
// Every subscription is in one disposables list; dispose() (also run by term.dispose(), or by
// `using`) releases all of them.
//
// @xterm/xterm is not a dependency: the addon uses the structural TerminalLike below.
import { disposeSymbol } from './dispose.js';
import type { DisposableLike, EventRegistration } from './emitter.js';
import { InvalidStateError } from './errors.js';

/** The part of xterm.js's `Terminal` the addon uses. */
export interface TerminalLike {
  readonly cols: number;
  readonly rows: number;
  write(data: string | Uint8Array, callback?: () => void): void;
  onData(listener: (data: string) => void): DisposableLike;
  onBinary(listener: (data: string) => void): DisposableLike;
  onResize(listener: (size: { cols: number; rows: number }) => void): DisposableLike;
}

/** Payload of a session's onData / onStderr: bytes, or an object carrying them (a Channel's). */
export type SessionChunk = Uint8Array | { data: Uint8Array; stream?: 'stdout' | 'stderr' };

/** The part of an SshSession the addon uses (a Channel with resize fits too). */
export interface TerminalSessionLike {
  write(data: Uint8Array): number;
  consume(n: number): void;
  resize(cols: number, rows: number): void;
  readonly onData: EventRegistration<SessionChunk>;
  readonly onStderr?: EventRegistration<SessionChunk>;
  readonly onWritable?: EventRegistration<number>;
  readonly onClose?: EventRegistration<unknown>;
  /** SshSession: `auto` is switched to `manual` (setFlow) while the addon is active. */
  readonly flow?: 'auto' | 'manual';
  setFlow?(mode: 'auto' | 'manual'): void;
  /** Channel: a stream that consumes by itself cannot be attached. */
  readonly autoConsume?: boolean;
  /** Called on the addon's dispose with `disposeSession: true`. */
  dispose?(): void;
}

/** Which stream of the session a chunk came from. */
export type TerminalStream = 'stdout' | 'stderr';

/**
 * Sees every output chunk before xterm does. Return the chunk (or a replacement) to write it,
 * or null to swallow it (e.g. a trzsz / zmodem handler took it). Either way the session's bytes
 * are credited: a swallowed chunk at once, a written one when xterm parsed it.
 */
export type TerminalOutputFilter = (chunk: Uint8Array, stream: TerminalStream) => Uint8Array | null;

export interface AttachTerminalOptions {
  /** Unparsed bytes in xterm at which credit is withheld. Default 1 MiB. */
  highWaterMark?: number;
  /** Unparsed bytes at which withheld credit is granted again. Default 256 KiB. */
  lowWaterMark?: number;
  /** Bound of the input queue (bytes the session did not accept yet). Default 1 MiB. */
  maxInputBytes?: number;
  /** Retry interval for queued input when the session has no onWritable event. Default 10 ms. */
  inputRetryMs?: number;
  /** Send term.cols/rows on activation. Default true (ignored when not bidirectional). */
  resizeOnAttach?: boolean;
  /** Write stderr chunks to the terminal too. Default true. */
  stderr?: boolean;
  /** false: read-only, output only (no keystrokes, paste or resize reach the session). Default true. */
  bidirectional?: boolean;
  /** Output filter between the session and term.write (see TerminalOutputFilter). */
  filter?: TerminalOutputFilter;
  /** Dispose the session together with the addon (so term.dispose() releases it). Default false. */
  disposeSession?: boolean;
  /** Input that did not fit into the queue (bytes dropped). */
  onInputDropped?: (bytes: number) => void;
  /** pending crossed the high-water mark (true) or fell to the low-water mark (false). */
  onPause?: (paused: boolean) => void;
}

/** What attachTerminal returns (a ManaAttachAddon): dispose() detaches; stats() for status bars. */
export interface TerminalAttachment extends DisposableLike {
  /** Counters: bytes written to xterm, parsed, pending, credit granted, input queued/sent. */
  stats(): TerminalAttachmentStats;
  /** Credit is withheld because pending reached the high-water mark. */
  readonly paused: boolean;
  /** dispose() ran (directly, through term.dispose() or `using`). */
  readonly disposed: boolean;
  /** `using attachment = attachTerminal(...)`: dispose() at the end of the scope. */
  [disposeSymbol](): void;
}

export interface TerminalAttachmentStats {
  /** Bytes handed to term.write (after the filter). */
  written: number;
  /** Bytes whose write callback fired. */
  parsed: number;
  /** written - parsed. */
  pending: number;
  /** Largest `pending` seen. */
  maxPending: number;
  /** Session bytes the filter swallowed (credited without reaching xterm). */
  filtered: number;
  /** Bytes passed to session.consume. */
  consumed: number;
  /** Session bytes whose credit is withheld (paused). */
  withheld: number;
  /** Times the high-water mark was reached. */
  pauses: number;
  /** Input bytes accepted by session.write. */
  inputSent: number;
  /** Input bytes waiting for the session. */
  inputQueued: number;
  /** Input bytes dropped because the queue was full. */
  inputDropped: number;
}

const MIB = 1024 * 1024;

function checkedSize(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 0) {
    throw new RangeError(`ManaAttachAddon: ${name} must be a non-negative integer (got ${v})`);
  }
  return v;
}

function chunkBytes(chunk: SessionChunk): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : chunk.data;
}

/** xterm's onBinary delivers one char per byte (code points 0..255). */
function binaryStringBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function misuse(message: string): InvalidStateError {
  return new InvalidStateError(`ManaAttachAddon: ${message}`, {
    code: 'invalid_state',
    origin: 'local',
  });
}

/**
 * xterm.js addon (ITerminalAddon) for a session opened with `conn.openSession()`:
 * `term.loadAddon(new ManaAttachAddon(session, options))`. term.dispose() disposes it.
 * Throws RangeError for invalid options (lowWaterMark > highWaterMark, negative sizes).
 */
export class ManaAttachAddon implements TerminalAttachment {
  readonly #session: TerminalSessionLike;
  readonly #high: number;
  readonly #low: number;
  readonly #maxInput: number;
  readonly #retryMs: number;
  readonly #stderr: boolean;
  readonly #bidirectional: boolean;
  readonly #resizeOnAttach: boolean;
  readonly #disposeSession: boolean;
  readonly #filter: TerminalOutputFilter | undefined;
  readonly #onInputDropped: ((bytes: number) => void) | undefined;
  readonly #onPause: ((paused: boolean) => void) | undefined;
  readonly #disposables: DisposableLike[] = [];
  readonly #input: Uint8Array[] = [];
  #term: TerminalLike | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;
  #sessionClosed = false;
  /** The addon switched the session from 'auto' to 'manual' (restored on dispose). */
  #switchedFlow = false;
  /** Credit went back to the session as a whole (flow restored): grant nothing more. */
  #creditReturned = false;
  #paused = false;
  #s: TerminalAttachmentStats = {
    written: 0,
    parsed: 0,
    pending: 0,
    maxPending: 0,
    filtered: 0,
    consumed: 0,
    withheld: 0,
    pauses: 0,
    inputSent: 0,
    inputQueued: 0,
    inputDropped: 0,
  };

  constructor(session: TerminalSessionLike, options: AttachTerminalOptions = {}) {
    this.#session = session;
    this.#high = checkedSize('highWaterMark', options.highWaterMark, MIB);
    this.#low = checkedSize('lowWaterMark', options.lowWaterMark, 256 * 1024);
    if (this.#low > this.#high) {
      throw new RangeError(
        `ManaAttachAddon: lowWaterMark (${this.#low}) exceeds highWaterMark (${this.#high})`,
      );
    }
    this.#maxInput = checkedSize('maxInputBytes', options.maxInputBytes, MIB);
    this.#retryMs = checkedSize('inputRetryMs', options.inputRetryMs, 10);
    if (options.filter !== undefined && typeof options.filter !== 'function') {
      throw new RangeError('ManaAttachAddon: filter must be a function');
    }
    this.#disposeSession = options.disposeSession ?? false;
    if (this.#disposeSession && typeof session.dispose !== 'function') {
      throw new RangeError('ManaAttachAddon: disposeSession needs a session with dispose()');
    }
    this.#stderr = options.stderr ?? true;
    this.#bidirectional = options.bidirectional ?? true;
    this.#resizeOnAttach = options.resizeOnAttach ?? true;
    this.#filter = options.filter;
    this.#onInputDropped = options.onInputDropped;
    this.#onPause = options.onPause;
  }

  /**
   * Called by term.loadAddon(). Switches a session in `flow: 'auto'` to 'manual'; throws
   * InvalidStateError when activated twice, after dispose, or for a stream that consumes by
   * itself and cannot be switched (nothing is registered then).
   */
  activate(terminal: TerminalLike): void {
    if (this.#disposed) throw misuse('activate() after dispose()');
    if (this.#term !== undefined) throw misuse('already active on a terminal');
    const session = this.#session;
    if (session.flow === 'auto') {
      if (typeof session.setFlow !== 'function') {
        throw misuse("the session runs with flow 'auto' and cannot be switched to 'manual'");
      }
      session.setFlow('manual');
      this.#switchedFlow = true;
    } else if (session.autoConsume === true) {
      throw misuse(
        'the stream consumes by itself (autoConsume): open it without, the addon consumes',
      );
    }
    this.#term = terminal;
    const subs = this.#disposables;
    subs.push(
      session.onData((chunk) => {
        this.#output(
          chunkBytes(chunk),
          chunk instanceof Uint8Array ? 'stdout' : (chunk.stream ?? 'stdout'),
        );
      }),
    );
    if (this.#stderr && session.onStderr) {
      subs.push(
        session.onStderr((chunk) => {
          this.#output(chunkBytes(chunk), 'stderr');
        }),
      );
    }
    if (session.onClose) {
      subs.push(
        session.onClose(() => {
          this.#sessionClosed = true;
          this.#dropInput();
        }),
      );
    }
    if (!this.#bidirectional) return;
    if (session.onWritable) {
      subs.push(
        session.onWritable(() => {
          this.#pumpInput();
        }),
      );
    }
    subs.push(
      terminal.onData((s) => {
        this.#queueInput(new TextEncoder().encode(s));
      }),
      terminal.onBinary((s) => {
        this.#queueInput(binaryStringBytes(s));
      }),
      terminal.onResize(({ cols, rows }) => {
        this.#resize(cols, rows);
      }),
    );
    if (this.#resizeOnAttach) this.#resize(terminal.cols, terminal.rows);
  }

  get paused(): boolean {
    return this.#paused;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  stats(): TerminalAttachmentStats {
    return { ...this.#s };
  }

  /**
   * Detaches every listener and drops queued input (idempotent; term.dispose() calls it).
   * Withheld credit is granted; a session the addon switched to 'manual' goes back to 'auto'.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const d of this.#disposables.splice(0)) d.dispose();
    this.#dropInput();
    this.#paused = false;
    if (this.#switchedFlow && !this.#sessionClosed) {
      // 'auto' consumes everything outstanding, the bytes still inside xterm included.
      this.#creditReturned = true;
      try {
        this.#session.setFlow?.('auto');
      } catch {
        // The session closed in between.
      }
    } else {
      // Credit withheld for bytes xterm already parsed is granted now, so a session that
      // outlives this terminal does not stall; callbacks of bytes still in xterm keep granting.
      this.#grant();
    }
    if (this.#disposeSession) this.#session.dispose?.();
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  // ---- output: session -> xterm ---------------------------------------------------------------

  #output(data: Uint8Array, stream: TerminalStream): void {
    const term = this.#term;
    if (this.#disposed || term === undefined || data.length === 0) return;
    const credit = data.length;
    let out: Uint8Array | null = data;
    if (this.#filter !== undefined) {
      try {
        out = this.#filter(data, stream);
      } catch (e) {
        // The chunk is lost for the terminal, not for the credit (the error is reported by the
        // session's event emitter).
        this.#swallowed(credit);
        throw e;
      }
    }
    if (out === null || out.length === 0) {
      this.#swallowed(credit);
      return;
    }
    const n = out.length;
    const s = this.#s;
    s.written += n;
    s.pending += n;
    if (s.pending > s.maxPending) s.maxPending = s.pending;
    if (!this.#paused && s.pending >= this.#high) {
      this.#paused = true;
      s.pauses++;
      this.#onPause?.(true);
    }
    term.write(out, () => {
      this.#parsed(n, credit);
    });
  }

  #swallowed(credit: number): void {
    this.#s.filtered += credit;
    this.#s.withheld += credit;
    if (!this.#paused) this.#grant();
  }

  #parsed(n: number, credit: number): void {
    const s = this.#s;
    s.parsed += n;
    s.pending -= n;
    s.withheld += credit;
    if (this.#paused && s.pending <= this.#low) {
      this.#paused = false;
      if (!this.#disposed) this.#onPause?.(false);
    }
    if (!this.#paused) this.#grant();
  }

  #grant(): void {
    const s = this.#s;
    const n = s.withheld;
    if (n === 0 || this.#sessionClosed || this.#creditReturned) return;
    s.withheld = 0;
    try {
      this.#session.consume(n);
      s.consumed += n;
    } catch {
      // The session closed in between: there is nobody left to grant credit to.
      this.#sessionClosed = true;
    }
  }

  // ---- input: xterm -> session ----------------------------------------------------------------

  #queueInput(bytes: Uint8Array): void {
    if (this.#disposed || bytes.length === 0) return;
    const s = this.#s;
    if (this.#sessionClosed || s.inputQueued + bytes.length > this.#maxInput) {
      s.inputDropped += bytes.length;
      this.#onInputDropped?.(bytes.length);
      return;
    }
    this.#input.push(bytes);
    s.inputQueued += bytes.length;
    this.#pumpInput();
  }

  #pumpInput(): void {
    if (this.#disposed) return;
    const s = this.#s;
    while (this.#input.length > 0) {
      const head = this.#input[0];
      if (head === undefined) break;
      let n: number;
      try {
        n = this.#session.write(head);
      } catch {
        this.#sessionClosed = true;
        this.#dropInput();
        return;
      }
      if (n > 0) {
        s.inputSent += n;
        s.inputQueued -= n;
      }
      if (n >= head.length) {
        this.#input.shift();
        continue;
      }
      if (n > 0) this.#input[0] = head.subarray(n);
      this.#scheduleRetry();
      return;
    }
  }

  #scheduleRetry(): void {
    if (this.#retryTimer !== undefined || this.#session.onWritable) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pumpInput();
    }, this.#retryMs);
  }

  #dropInput(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#input.length = 0;
    this.#s.inputQueued = 0;
  }

  #resize(cols: number, rows: number): void {
    if (this.#disposed || this.#sessionClosed) return;
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols <= 0 || rows <= 0) return;
    try {
      this.#session.resize(cols, rows);
    } catch {
      // A closed session ignores the size.
    }
  }
}

/**
 * Sugar for `const a = new ManaAttachAddon(session, options); a.activate(term)` (without xterm's
 * addon registry: term.dispose() does not reach it; use term.loadAddon() for that). Returns the
 * addon: dispose() detaches every listener; the session stays open (unless `disposeSession`).
 */
export function attachTerminal(
  term: TerminalLike,
  session: TerminalSessionLike,
  options: AttachTerminalOptions = {},
): TerminalAttachment {
  const addon = new ManaAttachAddon(session, options);
  addon.activate(term);
  return addon;
}
