// xterm.js adapter: attachTerminal(term, session) wires a terminal to an SSH session (or any
// byte stream with the same shape) with credit that follows rendering.
//
// Output: every chunk from session.onData / onStderr goes to term.write(data, callback). The
// callback fires once xterm has parsed the chunk; only then is credit granted
// (session.consume(n)), so the server can never send more than the credit window ahead of what
// the terminal really processed. On top of that the adapter counts the bytes handed to xterm
// and not yet parsed (`pending`): when it reaches `highWaterMark` the adapter stops granting
// credit until `pending` falls to `lowWaterMark`, then grants everything withheld at once. The
// session must run with `flow: 'manual'` (its own consumption is the adapter's).
//
// Input: term.onData (strings, UTF-8 encoded) and term.onBinary (one char per byte) go to
// session.write(); what the session does not accept yet (no credit, transport paused) waits in
// a bounded queue and is retried on session.onWritable (or a short timer). Input beyond
// `maxInputBytes` is dropped and reported through `onInputDropped`; nothing is reordered.
//
// Resize: the terminal's size is sent on attach and on every term.onResize (the session
// coalesces).
//
// @xterm/xterm is not a dependency: the adapter uses the structural TerminalLike below.
import type { Disposable, EventRegistration } from './emitter.js';

/** The part of xterm.js's `Terminal` the adapter uses. */
export interface TerminalLike {
  readonly cols: number;
  readonly rows: number;
  write(data: string | Uint8Array, callback?: () => void): void;
  onData(listener: (data: string) => void): Disposable;
  onBinary(listener: (data: string) => void): Disposable;
  onResize(listener: (size: { cols: number; rows: number }) => void): Disposable;
}

/** Payload of a session's onData / onStderr: bytes, or an object carrying them. */
export type SessionChunk = Uint8Array | { data: Uint8Array };

/** The part of an SshSession the adapter uses (a Channel with resize fits too). */
export interface TerminalSessionLike {
  write(data: Uint8Array): number;
  consume(n: number): void;
  resize(cols: number, rows: number): void;
  readonly onData: EventRegistration<SessionChunk>;
  readonly onStderr?: EventRegistration<SessionChunk>;
  readonly onWritable?: EventRegistration<number>;
  readonly onClose?: EventRegistration<unknown>;
}

export interface AttachTerminalOptions {
  /** Unparsed bytes in xterm at which credit is withheld. Default 1 MiB. */
  highWaterMark?: number;
  /** Unparsed bytes at which withheld credit is granted again. Default 256 KiB. */
  lowWaterMark?: number;
  /** Bound of the input queue (bytes the session did not accept yet). Default 1 MiB. */
  maxInputBytes?: number;
  /** Retry interval for queued input when the session has no onWritable event. Default 10 ms. */
  inputRetryMs?: number;
  /** Send term.cols/rows on attach. Default true. */
  resizeOnAttach?: boolean;
  /** Write stderr chunks to the terminal too. Default true. */
  stderr?: boolean;
  /** Input that did not fit into the queue (bytes dropped). */
  onInputDropped?: (bytes: number) => void;
  /** pending crossed the high-water mark (true) or fell to the low-water mark (false). */
  onPause?: (paused: boolean) => void;
}

/** What attachTerminal returns: dispose() detaches; stats() for status bars and tests. */
export interface TerminalAttachment extends Disposable {
  /** Counters: bytes written to xterm, parsed, pending, credit granted, input queued/sent. */
  stats(): TerminalAttachmentStats;
  /** Credit is withheld because pending reached the high-water mark. */
  readonly paused: boolean;
}

export interface TerminalAttachmentStats {
  /** Bytes handed to term.write. */
  written: number;
  /** Bytes whose write callback fired. */
  parsed: number;
  /** written - parsed. */
  pending: number;
  /** Largest `pending` seen. */
  maxPending: number;
  /** Bytes passed to session.consume. */
  consumed: number;
  /** Parsed bytes whose credit is withheld (paused). */
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
    throw new RangeError(`attachTerminal: ${name} must be a non-negative integer (got ${v})`);
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

class Attachment implements TerminalAttachment {
  readonly #term: TerminalLike;
  readonly #session: TerminalSessionLike;
  readonly #high: number;
  readonly #low: number;
  readonly #maxInput: number;
  readonly #retryMs: number;
  readonly #onInputDropped: ((bytes: number) => void) | undefined;
  readonly #onPause: ((paused: boolean) => void) | undefined;
  readonly #subs: Disposable[] = [];
  readonly #input: Uint8Array[] = [];
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;
  #sessionClosed = false;
  #paused = false;
  #s: TerminalAttachmentStats = {
    written: 0,
    parsed: 0,
    pending: 0,
    maxPending: 0,
    consumed: 0,
    withheld: 0,
    pauses: 0,
    inputSent: 0,
    inputQueued: 0,
    inputDropped: 0,
  };

  constructor(term: TerminalLike, session: TerminalSessionLike, options: AttachTerminalOptions) {
    this.#term = term;
    this.#session = session;
    this.#high = checkedSize('highWaterMark', options.highWaterMark, MIB);
    this.#low = checkedSize('lowWaterMark', options.lowWaterMark, 256 * 1024);
    if (this.#low > this.#high) {
      throw new RangeError(
        `attachTerminal: lowWaterMark (${this.#low}) exceeds highWaterMark (${this.#high})`,
      );
    }
    this.#maxInput = checkedSize('maxInputBytes', options.maxInputBytes, MIB);
    this.#retryMs = checkedSize('inputRetryMs', options.inputRetryMs, 10);
    this.#onInputDropped = options.onInputDropped;
    this.#onPause = options.onPause;

    const output = (chunk: SessionChunk): void => {
      this.#output(chunkBytes(chunk));
    };
    this.#subs.push(session.onData(output));
    if ((options.stderr ?? true) && session.onStderr) this.#subs.push(session.onStderr(output));
    if (session.onWritable) {
      this.#subs.push(
        session.onWritable(() => {
          this.#pumpInput();
        }),
      );
    }
    if (session.onClose) {
      this.#subs.push(
        session.onClose(() => {
          this.#sessionClosed = true;
          this.#dropInput();
        }),
      );
    }
    this.#subs.push(
      term.onData((s) => {
        this.#queueInput(new TextEncoder().encode(s));
      }),
    );
    this.#subs.push(
      term.onBinary((s) => {
        this.#queueInput(binaryStringBytes(s));
      }),
    );
    this.#subs.push(
      term.onResize(({ cols, rows }) => {
        this.#resize(cols, rows);
      }),
    );
    if (options.resizeOnAttach ?? true) this.#resize(term.cols, term.rows);
  }

  get paused(): boolean {
    return this.#paused;
  }

  stats(): TerminalAttachmentStats {
    return { ...this.#s };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const d of this.#subs.splice(0)) d.dispose();
    this.#dropInput();
    // Credit withheld for bytes xterm already parsed is granted now, so a session that outlives
    // this terminal does not stall; callbacks of bytes still in xterm keep granting theirs.
    this.#paused = false;
    this.#grant();
  }

  // ---- output: session -> xterm ---------------------------------------------------------------

  #output(data: Uint8Array): void {
    if (this.#disposed || data.length === 0) return;
    const n = data.length;
    const s = this.#s;
    s.written += n;
    s.pending += n;
    if (s.pending > s.maxPending) s.maxPending = s.pending;
    if (!this.#paused && s.pending >= this.#high) {
      this.#paused = true;
      s.pauses++;
      this.#onPause?.(true);
    }
    this.#term.write(data, () => {
      this.#parsed(n);
    });
  }

  #parsed(n: number): void {
    const s = this.#s;
    s.parsed += n;
    s.pending -= n;
    s.withheld += n;
    if (this.#paused && s.pending <= this.#low) {
      this.#paused = false;
      if (!this.#disposed) this.#onPause?.(false);
    }
    if (!this.#paused) this.#grant();
  }

  #grant(): void {
    const s = this.#s;
    const n = s.withheld;
    if (n === 0 || this.#sessionClosed) return;
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
 * Attaches an xterm.js Terminal to a session opened with `flow: 'manual'`: input, resize and
 * output, with credit granted in xterm's write callback (see the top of this file). Returns a
 * disposable that detaches every listener; the session stays open.
 * Throws RangeError for invalid options (lowWaterMark > highWaterMark, negative sizes).
 */
export function attachTerminal(
  term: TerminalLike,
  session: TerminalSessionLike,
  options: AttachTerminalOptions = {},
): TerminalAttachment {
  return new Attachment(term, session, options);
}
