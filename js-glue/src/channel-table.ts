// SPDX-License-Identifier: Apache-2.0
// The channels of a connection: opened through the core, their calls (write, consume, close,
// resize) turned into core calls, and the core's channel events delivered to them.
import { Channel, type ChannelInternals, type OpenChannelOptions } from './channel.js';
import { errorFromCall } from './errors.js';
import { isCoreError, type CoreEvent, type CoreSession } from './internal/core-types.js';
import { truncateUtf8 } from './transport.js';

/** What the channels need from their connection. */
export interface ChannelHost {
  core(): CoreSession;
  disposed(): boolean;
  /** The connection is `closed` (or disposed). */
  closed(): boolean;
  now(): number;
  pump(): void;
  transportPaused(): boolean;
  /** Throws InvalidStateError once the connection is closed or disposed. */
  assertUsable(what: string): void;
}

export class ChannelTable {
  readonly #host: ChannelHost;
  readonly #channels = new Map<number, Channel>();
  readonly #internals: ChannelInternals;

  constructor(host: ChannelHost) {
    this.#host = host;
    this.#internals = {
      write: (id, data) => this.#write(id, data),
      consume: (id, n) => {
        this.#consume(id, n);
      },
      close: (id, reason) => {
        this.#close(id, reason);
      },
      resize: (id, cols, rows) => {
        this.#resize(id, cols, rows);
      },
      available: (id) => (host.disposed() ? 0 : host.core().available(id)),
      stats: (id) => (host.disposed() ? null : host.core().channelStats(id)),
      transportPaused: () => host.transportPaused(),
    };
  }

  open(options: OpenChannelOptions): Channel {
    this.#host.assertUsable('openChannel');
    const host = this.#host;
    const kind = options.kind ?? 'tcp';
    const r = host.core().openChannel(options.target.host, options.target.port, kind, host.now());
    if (isCoreError(r)) throw errorFromCall('openChannel', r);
    const ch = new Channel(r, options, this.#internals);
    this.#channels.set(r, ch);
    host.pump();
    return ch;
  }

  /** Delivers a channel event of the core; false for the events of other kinds. */
  handle(ev: CoreEvent): boolean {
    switch (ev.type) {
      case 'channelOpened':
        this.#channels.get(ev.id)?._opened();
        return true;
      case 'channelOpenFailed':
        this.#take(ev.id)?._openFailed(ev.code, ev.message);
        return true;
      case 'channelData':
        this.#channels.get(ev.id)?._data(ev.data, ev.stream);
        return true;
      case 'channelWritable':
        this.#channels.get(ev.id)?._writable();
        return true;
      case 'channelExit':
        this.#channels.get(ev.id)?._exit(ev.code, ev.signal);
        return true;
      case 'channelClosed':
        this.#take(ev.id)?._closed(ev.reason, ev.origin);
        return true;
      case 'channelResized':
      case 'channelSignal':
        return true;
      default:
        return false;
    }
  }

  /** Removes the channel from the table (its last event). */
  #take(id: number): Channel | undefined {
    const ch = this.#channels.get(id);
    this.#channels.delete(id);
    return ch;
  }

  /** Every channel may write again (ready, the `transport` pause ended). */
  writable(): void {
    for (const ch of this.#channels.values()) ch._writable();
  }

  /** The connection is disposed: detach every channel. */
  release(): void {
    for (const ch of this.#channels.values()) ch._release();
    this.#channels.clear();
  }

  #write(id: number, data: Uint8Array): number {
    this.#host.assertUsable('write');
    const host = this.#host;
    if (host.transportPaused()) return 0;
    const r = host.core().write(id, data, host.now());
    if (isCoreError(r)) throw errorFromCall('write', r);
    host.pump();
    return r;
  }

  #consume(id: number, n: number): void {
    const host = this.#host;
    if (host.disposed() || host.closed()) return;
    const r = host.core().consume(id, n, host.now());
    if (r !== undefined && r.error !== 'unknown_channel') throw errorFromCall('consume', r);
    host.pump();
  }

  #close(id: number, reason: string): void {
    const host = this.#host;
    if (host.disposed() || host.closed()) return;
    const r = host.core().closeChannel(id, truncateUtf8(reason, 256), host.now());
    if (r !== undefined && r.error !== 'unknown_channel') throw errorFromCall('close', r);
    host.pump();
  }

  #resize(id: number, cols: number, rows: number): void {
    this.#host.assertUsable('resize');
    const host = this.#host;
    const r = host.core().resize(id, cols, rows, host.now());
    if (r !== undefined) throw errorFromCall('resize', r);
    host.pump();
  }
}
