// SPDX-License-Identifier: Apache-2.0
// TunnelWire: the SshWire of the next hop of a jump-host session, over a bastion's SshSession in
// tunnel mode (its engine opened a direct-tcpip channel instead of a shell). The bastion's output
// is the next SSH connection's inbound wire; what the next engine writes is the bastion's input.
//
// Credit stays bounded on both sides:
//   * inbound: the bastion runs with flow 'manual'; its output counts as unconsumed until the
//     next engine took it (consume()), and the bastion's engine reads its channel only below its
//     high-water mark, so the bastion's SSH window stops the bastion server;
//   * outbound: write() is the bastion's write() (its 1 MiB queue drains within the bastion's SSH
//     window and the mana credit); a refused write arms onWritable.
// What the bastion delivers before the next session registered its onData (the next server's
// banner can arrive while openSession() is still between two awaits) is held, in order with the
// close, and handed over in a microtask after that registration; it is not consumed meanwhile, so
// the bastion's high-water mark bounds it.
import type { EventRegistration } from '../emitter.js';
import { Emitter } from '../emitter.js';
import type { ManaError } from '../errors.js';
import type { SshSession } from './session.js';
import type { SshWire } from './wire.js';

export class TunnelWire implements SshWire {
  readonly id: number;
  readonly opened: Promise<void> = Promise.resolve();
  readonly #bastion: SshSession;
  readonly #data = new Emitter<{ data: Uint8Array }>();
  readonly #close = new Emitter<{ reason: string }>();
  #failure: ManaError | undefined;
  /** Data and close held until the first onData registration; null once handed over. */
  #held: ({ data: Uint8Array } | { reason: string })[] | null = [];

  readonly onData: EventRegistration<{ data: Uint8Array }> = (listener) => {
    const d = this.#data.event(listener);
    if (this.#held !== null) {
      queueMicrotask(() => {
        this.#release();
      });
    }
    return d;
  };
  readonly onClose = this.#close.event;
  readonly onWritable;

  /** `bastion` is open, in tunnel mode, with flow 'manual'. */
  constructor(bastion: SshSession) {
    this.#bastion = bastion;
    this.id = bastion.channelId;
    this.onWritable = bastion.onWritable;
    bastion.onData((data) => {
      if (this.#held !== null) this.#held.push({ data });
      else this.#data.fire({ data });
    });
    bastion.onClose(({ error }) => {
      this.#failure = error;
      const ev = { reason: error?.code ?? 'bastion session closed' };
      if (this.#held !== null) this.#held.push(ev);
      else this.#close.fire(ev);
    });
  }

  #release(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    for (const ev of held) {
      if ('data' in ev) this.#data.fire(ev);
      else this.#close.fire(ev);
    }
  }

  get failure(): ManaError | undefined {
    return this.#failure;
  }

  get state(): SshWire['state'] {
    const s = this.#bastion.state;
    return s === 'open' || s === 'closing' || s === 'closed' ? s : 'opening';
  }

  get writable(): number {
    return this.#bastion.writable;
  }

  write(data: Uint8Array): number {
    return this.#bastion.state === 'open' ? this.#bastion.write(data) : 0;
  }

  consume(n: number): void {
    const k = Math.min(n, this.#bastion.unconsumed);
    if (k > 0) this.#bastion.consume(k);
  }

  close(_reason: string, abrupt = false): void {
    if (abrupt) this.#bastion.dispose();
    else this.#bastion.close();
  }
}
