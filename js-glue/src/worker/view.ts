// SPDX-License-Identifier: Apache-2.0
// RemoteSshSession: a page's view of an SSH session that runs in the session worker. It has the
// shape ManaAttachAddon needs (onData / write / consume / resize / dispose, flow 'manual'), so
// `term.loadAddon(new ManaAttachAddon(view))` works as with an in-page SshSession: consume() goes
// to the worker after the page's xterm parsed the bytes (the addon's write callback). A terminal
// view whose page lags gets frames of the worker's screen instead of the stream (RIS, then the
// serialized screen, as ordinary output: hosted-session.ts); nothing here tells them apart.
//
// After a reattach the first onData chunk is the serialized screen of the worker's screen model
// (a terminal reset, ESC c, then escape sequences that redraw the screen and the scrollback); it
// is credited locally, never to the worker. Output is held until the first onData listener registers (bounded: the worker
// sends no more than the session's credit window ahead of consume()).
import { disposeSymbol } from '../dispose.js';
import { Emitter, type DisposableLike, type EventRegistration } from '../emitter.js';
import { InvalidStateError, invalidArgument } from '../errors.js';
import { SessionLostError } from '../ssh/errors.js';
import type { SshCloseEvent, SshExitEvent } from '../ssh/types.js';
import { limits, type PageMessage, type WorkerMessage } from './protocol.js';
import { WorkerRequestError } from './request-error.js';

const encoder = new TextEncoder();

/** What the view needs of its client. */
export interface ViewLink {
  send(msg: PageMessage, transfer?: Transferable[]): void;
  /**
   * The worker returns input room in `writable` messages: write() takes no more than that room.
   * Otherwise (an older worker) it takes up to 1 MiB per call, as before.
   */
  readonly inputRoom?: boolean;
  /** The view ended: forget its stored secret (the session is gone) or not (detached). */
  forget(sessionId: string, ended: boolean): void;
}

export type RemoteSessionState = 'open' | 'detached' | 'closed';

/** Why a view stopped showing its session (RemoteSshSession.onDetached). */
export type DetachReason = 'taken-over' | 'overrun' | 'replaced';

export class RemoteSshSession implements DisposableLike {
  readonly sessionId: string;
  /** This view only watches (no input, resize or close); credit follows the controlling view. */
  readonly readOnly: boolean;
  /** The serialized screen the worker sent on attach ('' for a new session or a stream). */
  readonly restoredScreen: string;
  /**
   * Output bytes of the session before the first byte this view delivers (0 for a new session):
   * for a stream session the bytes the previous controlling view consumed, so a page that saved
   * more than that skips the difference.
   */
  readonly offset: number;
  readonly #link: ViewLink;
  readonly #data = new Emitter<Uint8Array>();
  readonly #stderr = new Emitter<Uint8Array>();
  readonly #exit = new Emitter<SshExitEvent>();
  readonly #close = new Emitter<SshCloseEvent>();
  readonly #writable = new Emitter<number>();
  readonly #detached = new Emitter<DetachReason>();
  /** Held until the first onData listener: [chunk, stream]. */
  #held: [Uint8Array, 'stdout' | 'stderr'][] | null = [];
  #flow: 'auto' | 'manual' = 'manual';
  /** Delivered bytes not consumed yet; the first `#local` of them are the replayed screen. */
  #unconsumed = 0;
  #local = 0;
  #state: RemoteSessionState = 'open';
  /** Input bytes the worker's queue has room for (it returns room in `writable` messages). */
  #room: number = limits.maxInputBytes;
  #closeError: SessionLostError | WorkerRequestError | undefined;

  /** Output of the remote process. */
  readonly onData: EventRegistration<Uint8Array> = (l) => this.#subscribe(this.#data, l);
  readonly onStderr: EventRegistration<Uint8Array> = (l) => this.#subscribe(this.#stderr, l);
  readonly onExit: EventRegistration<SshExitEvent> = this.#exit.event;
  /** The session ended in the worker (`error` is a SessionLostError unless it exited). */
  readonly onClose: EventRegistration<SshCloseEvent> = this.#close.event;
  readonly onWritable: EventRegistration<number> = this.#writable.event;
  /**
   * This view no longer shows the session: another page took it over (`taken-over`), this
   * read-only view lagged too far (`overrun`), or a newer attach of this page replaced it
   * (`replaced`). The session goes on in the worker; attach again (`takeOver`) to get it back.
   */
  readonly onDetached: EventRegistration<DetachReason> = this.#detached.event;

  /** @internal Made by ManaWorkerClient. */
  constructor(link: ViewLink, sessionId: string, readOnly: boolean, screen: string, offset = 0) {
    this.#link = link;
    this.offset = offset;
    this.sessionId = sessionId;
    this.readOnly = readOnly;
    this.restoredScreen = screen;
    if (screen.length > 0) {
      // RIS first: a terminal that showed something before (this tab's view before a takeOver,
      // a reused xterm) is reset, so what it shows afterwards is the worker's screen exactly.
      const bytes = encoder.encode(`\x1bc${screen}`);
      this.#local = bytes.length;
      this.#deliver(bytes, 'stdout');
    }
  }

  get state(): RemoteSessionState {
    return this.#state;
  }

  get flow(): 'auto' | 'manual' {
    return this.#flow;
  }

  get error(): SessionLostError | WorkerRequestError | undefined {
    return this.#closeError;
  }

  get unconsumed(): number {
    return this.#unconsumed;
  }

  /** ManaAttachAddon switches to 'manual' while attached; 'auto' consumes what is delivered. */
  setFlow(mode: 'auto' | 'manual'): void {
    if (mode !== 'auto' && mode !== 'manual') throw invalidArgument(`setFlow: ${String(mode)}`);
    this.#flow = mode;
    if (mode === 'auto' && this.#unconsumed > 0) this.consume(this.#unconsumed);
  }

  /** Input bytes write() would take now (the room of the worker's input queue). */
  get writable(): number {
    if (this.#state !== 'open' || this.readOnly) return 0;
    return this.#link.inputRoom === true ? this.#room : limits.maxInputBytes;
  }

  /**
   * Sends input to the worker; returns the bytes taken: at most the room of the worker's input
   * queue (1 MiB), which comes back as the session takes the bytes (onWritable).
   */
  write(data: Uint8Array): number {
    if (this.readOnly) this.#assertControl('write');
    if (this.#state !== 'open') return 0;
    const n = Math.min(
      data.length,
      this.#link.inputRoom === true ? this.#room : limits.maxInputBytes,
    );
    if (n === 0) return 0;
    if (this.#link.inputRoom === true) this.#room -= n;
    // A copy of exactly n bytes: `slice` of a Node Buffer is a view on the whole (often pooled or
    // larger) ArrayBuffer, which the worker refuses (over its input limit) or would over-read.
    const buf = new Uint8Array(data.subarray(0, n)).buffer;
    this.#link.send({ v: 1, type: 'input', sessionId: this.sessionId, data: buf }, [buf]);
    return n;
  }

  /** The page processed `n` delivered bytes (the addon calls it from xterm's write callback). */
  consume(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#unconsumed) {
      throw invalidArgument(`consume: ${n} is not within 0..${this.#unconsumed}`);
    }
    this.#unconsumed -= n;
    const local = Math.min(n, this.#local);
    this.#local -= local;
    const remote = n - local;
    if (remote > 0 && this.#state === 'open') {
      this.#link.send({ v: 1, type: 'consume', sessionId: this.sessionId, n: remote });
    }
  }

  resize(cols: number, rows: number): void {
    if (this.readOnly || this.#state !== 'open') return;
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 1 || rows < 1) {
      throw invalidArgument(`resize: ${cols}x${rows} is not a terminal size`);
    }
    this.#link.send({ v: 1, type: 'resize', sessionId: this.sessionId, cols, rows });
  }

  /** Ends the SSH session in the worker (for every page). */
  close(): void {
    this.#assertControl('close');
    this.#link.send({ v: 1, type: 'close', sessionId: this.sessionId });
  }

  /**
   * Detaches this view; the session stays in the worker (its grace timer starts) and the stored
   * attach secret is kept, so this tab can reattach. close() ends the session itself.
   */
  dispose(): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'open')
      this.#link.send({ v: 1, type: 'detach', sessionId: this.sessionId });
    this.#state = 'closed';
    this.#link.forget(this.sessionId, false);
    this.#clear();
  }

  [disposeSymbol](): void {
    this.dispose();
  }

  /** @internal A newer view of this page replaced this one: it ends without telling the worker. */
  _replaced(): void {
    if (this.#state === 'closed') return;
    this.#state = 'detached';
    this.#detached.fire('replaced');
    this.#state = 'closed';
    this.#clear();
  }

  /** @internal A message of the worker for this session. */
  _receive(msg: WorkerMessage): void {
    if (this.#state === 'closed') return;
    switch (msg.type) {
      case 'data':
        this.#deliver(new Uint8Array(msg.data), msg.stream);
        return;
      case 'exit': {
        const e: SshExitEvent = {};
        if (msg.code !== undefined) e.code = msg.code;
        if (msg.signal !== undefined) e.signal = msg.signal;
        this.#exit.fire(e);
        return;
      }
      case 'writable':
        this.#room = Math.min(limits.maxInputBytes, this.#room + msg.room);
        this.#writable.fire(this.#room);
        return;
      case 'detached':
        this.#state = 'detached';
        this.#detached.fire(msg.reason);
        return;
      case 'session-ended': {
        this.#state = 'closed';
        const error =
          msg.reason === 'exit'
            ? undefined
            : new SessionLostError(
                `the SSH session ended in the worker (${msg.reason}${msg.code ? `: ${msg.code}` : ''})`,
                {
                  code: msg.reason === 'detached-too-long' ? 'detached_too_long' : 'session_lost',
                  origin: 'local',
                },
              );
        this.#closeError = error;
        this.#link.forget(this.sessionId, true);
        this.#close.fire(error === undefined ? {} : { error });
        this.#clear();
        return;
      }
      case 'error': {
        // The worker refused a message of this view that has no reply of its own: an `input`
        // (bytes write() had taken are not queued), a consume over what was sent, a message after
        // the worker dropped the view. What the session got is no longer what the application
        // wrote, so the view ends with the worker's reason, never silently; it detaches (the
        // session stays for its grace and can be attached again with the kept secret).
        if (this.#state !== 'open') return;
        const error = new WorkerRequestError(
          `the session worker refused this view's message: ${msg.message}`,
          { code: msg.code, origin: 'remote' },
        );
        this.#link.send({ v: 1, type: 'detach', sessionId: this.sessionId });
        this.#state = 'closed';
        this.#closeError = error;
        this.#link.forget(this.sessionId, false);
        this.#close.fire({ error });
        this.#clear();
        return;
      }
      default:
        return;
    }
  }

  #subscribe(emitter: Emitter<Uint8Array>, listener: (d: Uint8Array) => void): DisposableLike {
    const d = emitter.event(listener);
    if (this.#held !== null) {
      queueMicrotask(() => {
        const held = this.#held;
        this.#held = null;
        for (const [chunk, stream] of held ?? []) this.#fire(chunk, stream);
      });
    }
    return d;
  }

  #deliver(chunk: Uint8Array, stream: 'stdout' | 'stderr'): void {
    this.#unconsumed += chunk.length;
    if (this.#held !== null) {
      this.#held.push([chunk, stream]);
      return;
    }
    this.#fire(chunk, stream);
  }

  #fire(chunk: Uint8Array, stream: 'stdout' | 'stderr'): void {
    (stream === 'stderr' ? this.#stderr : this.#data).fire(chunk);
    if (this.#flow === 'auto' && this.#unconsumed > 0) this.consume(this.#unconsumed);
  }

  #assertControl(what: string): void {
    if (this.readOnly || this.#state !== 'open') {
      throw new InvalidStateError(
        `${what}: the view is ${this.readOnly ? 'read-only' : this.#state}`,
        { code: 'invalid_state', origin: 'local' },
      );
    }
  }

  #clear(): void {
    this.#data.clear();
    this.#stderr.clear();
    this.#exit.clear();
    this.#writable.clear();
    this.#detached.clear();
    this.#held = null;
  }
}
