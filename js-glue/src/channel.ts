// Channel: one relayed byte stream (e.g. a TCP connection to an SSH server) inside a Connection.
//
// Credit follows real consumption: the server may only send as many bytes as this side granted,
// and grants are made only for bytes the application consumed (consume(n), or automatically after
// the onData listeners ran when `autoConsume` is set).
import { ChannelOpenError, InvalidStateError, ManaError, type ErrorOrigin } from './errors.js';
import { Emitter, nextWritableOrClose, type EventRegistration } from './emitter.js';
import { disposeSymbol } from './dispose.js';
import type { CoreChannelStats } from './internal/core-types.js';

export interface OpenChannelOptions {
  target: { host: string; port: number };
  /** `tcp` (default) relays bytes to target; `ssh` is reserved. */
  kind?: 'tcp' | 'ssh';
  /** Consume every delivered chunk right after the onData listeners ran. Default false. */
  autoConsume?: boolean;
}

export type ChannelState = 'opening' | 'open' | 'closing' | 'closed';

export interface ChannelData {
  data: Uint8Array;
  stream: 'stdout' | 'stderr';
}

export interface ChannelCloseEvent {
  reason: string;
  origin: ErrorOrigin;
}

export interface ChannelExitEvent {
  code: number | null;
  signal: string | null;
}

export type ChannelStats = CoreChannelStats;

/** @internal What a Channel needs from its Connection. */
export interface ChannelInternals {
  write(id: number, data: Uint8Array): number;
  consume(id: number, n: number): void;
  close(id: number, reason: string): void;
  resize(id: number, cols: number, rows: number): void;
  available(id: number): number;
  stats(id: number): CoreChannelStats | null;
  transportPaused(): boolean;
}

export class Channel {
  readonly id: number;
  readonly target: { host: string; port: number };
  readonly autoConsume: boolean;
  /** Resolves when the gateway accepted the channel; rejects with ChannelOpenError otherwise. */
  readonly opened: Promise<void>;

  readonly #conn: ChannelInternals;
  #state: ChannelState = 'opening';
  #resolveOpened!: () => void;
  #rejectOpened!: (e: ManaError) => void;
  #unconsumed = 0;
  readonly #onData = new Emitter<ChannelData>();
  readonly #onWritable = new Emitter<number>();
  readonly #onClose = new Emitter<ChannelCloseEvent>();
  readonly #onExit = new Emitter<ChannelExitEvent>();

  /** Bytes arrived. Call consume(n) once they are really consumed (unless autoConsume). */
  readonly onData: EventRegistration<ChannelData> = this.#onData.event;
  /** Writing may continue: credit arrived or the transport drained (payload: bytes writable now). */
  readonly onWritable: EventRegistration<number> = this.#onWritable.event;
  /** The channel is closed on both sides (its id is free again). */
  readonly onClose: EventRegistration<ChannelCloseEvent> = this.#onClose.event;
  /** The remote process exited (ssh kind; tcp channels never report it). */
  readonly onExit: EventRegistration<ChannelExitEvent> = this.#onExit.event;

  /** @internal Created by Connection.openChannel(). */
  constructor(id: number, options: OpenChannelOptions, conn: ChannelInternals) {
    this.id = id;
    this.target = { host: options.target.host, port: options.target.port };
    this.autoConsume = options.autoConsume ?? false;
    this.#conn = conn;
    this.opened = new Promise<void>((resolve, reject) => {
      this.#resolveOpened = resolve;
      this.#rejectOpened = reject;
    });
    this.opened.catch(() => undefined);
  }

  get state(): ChannelState {
    return this.#state;
  }

  /** Bytes write() would accept now (server credit; 0 while the transport is paused). */
  get writable(): number {
    if (this.#state !== 'open' || this.#conn.transportPaused()) return 0;
    return this.#conn.available(this.id);
  }

  /** Bytes delivered by onData and not consumed yet. */
  get unconsumed(): number {
    return this.#unconsumed;
  }

  /**
   * Queues up to `writable` bytes of `data` and returns how many were accepted (0..length). The
   * rest is not kept: write it again after onWritable. Never buffers beyond the server's credit,
   * and accepts nothing while the WebSocket's bufferedAmount is above the high-water mark.
   * Throws InvalidStateError when the channel or connection is closed.
   */
  write(data: Uint8Array | string): number {
    if (this.#state === 'closing' || this.#state === 'closed') {
      throw new InvalidStateError(`write: channel ${this.id} is ${this.#state}`, {
        code: 'invalid_state',
        origin: 'local',
      });
    }
    if (this.#state === 'opening') return 0;
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    if (bytes.length === 0) return 0;
    return this.#conn.write(this.id, bytes);
  }

  /** Writes all of `data`, waiting for credit and transport drain as needed. */
  async writeAll(data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    await this.opened;
    let offset = 0;
    while (offset < bytes.length) {
      const n = this.write(bytes.subarray(offset));
      offset += n;
      if (offset < bytes.length) await this.#nextWritableOrClose();
    }
  }

  /** The application consumed `n` bytes delivered by onData: credit may be granted. */
  consume(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#unconsumed) {
      throw new InvalidStateError(`consume: ${n} is not within 0..${this.#unconsumed}`, {
        code: 'invalid_argument',
        origin: 'local',
      });
    }
    if (n === 0 || this.#state === 'closed') return;
    this.#unconsumed -= n;
    this.#conn.consume(this.id, n);
  }

  /** Terminal size (ssh kind); ignored by tcp targets. */
  resize(cols: number, rows: number): void {
    this.#conn.resize(this.id, cols, rows);
  }

  /** `using ch = conn.openChannel(...)`: close() at the end of the scope. */
  [disposeSymbol](): void {
    this.close('disposed');
  }

  /** Closes the channel; onClose fires when the gateway confirms. */
  close(reason = ''): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#state = 'closing';
    this.#conn.close(this.id, reason);
  }

  /** Credit and byte counters of the channel (undefined once it is gone). */
  stats(): ChannelStats | undefined {
    return this.#conn.stats(this.id) ?? undefined;
  }

  #nextWritableOrClose(): Promise<void> {
    return nextWritableOrClose(
      this.onWritable,
      this.onClose,
      this.#state === 'closed',
      () =>
        new InvalidStateError(`channel ${this.id} closed`, {
          code: 'invalid_state',
          origin: 'local',
        }),
    );
  }

  // ---- called by Connection -------------------------------------------------------------------

  /** @internal */
  _opened(): void {
    if (this.#state === 'opening') this.#state = 'open';
    this.#resolveOpened();
    this._writable();
  }

  /** @internal */
  _openFailed(code: string, message: string): void {
    this.#state = 'closed';
    this.#rejectOpened(
      new ChannelOpenError(
        `channel ${this.id} to ${this.target.host}:${this.target.port} refused: ${code}` +
          (message ? ` (${message})` : ''),
        { code, origin: 'remote' },
      ),
    );
    this.#onClose.fire({ reason: code, origin: 'remote' });
    this._release();
  }

  /** @internal */
  _data(data: Uint8Array, stream: 'stdout' | 'stderr'): void {
    this.#unconsumed += data.length;
    this.#onData.fire({ data, stream });
    if (this.autoConsume && this.#unconsumed > 0 && this.#state !== 'closed') {
      this.consume(this.#unconsumed);
    }
  }

  /** @internal */
  _writable(): void {
    const n = this.writable;
    if (n > 0) this.#onWritable.fire(n);
  }

  /** @internal */
  _exit(code: number | null, signal: string | null): void {
    this.#onExit.fire({ code, signal });
  }

  /** @internal */
  _closed(reason: string, origin: ErrorOrigin): void {
    const wasOpening = this.#state === 'opening';
    this.#state = 'closed';
    if (wasOpening) {
      this.#rejectOpened(
        new ChannelOpenError(`channel ${this.id} closed before it opened: ${reason}`, {
          code: 'closed',
          origin,
        }),
      );
    }
    this.#onClose.fire({ reason, origin });
    this._release();
  }

  /** @internal Drops every listener (the connection is gone or the channel closed). */
  _release(): void {
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#rejectOpened(
        new InvalidStateError('connection disposed', { code: 'invalid_state', origin: 'local' }),
      );
      this.#onClose.fire({ reason: 'connection disposed', origin: 'local' });
    }
    this.#onData.clear();
    this.#onWritable.clear();
    this.#onClose.clear();
    this.#onExit.clear();
  }
}
