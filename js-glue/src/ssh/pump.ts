// SPDX-License-Identifier: Apache-2.0
// The pump of an SshSession: steps the wasm SSH engine, writes what it produced into its wire (the
// mana channel, or a bastion's tunnel; only as much as it accepts), grants credit for the bytes
// libssh2 read, hands the engine's events to the session and re-arms the keepalive timer. Re-entrancy safe: a
// nested pump() only asks the running loop for one more round.
import { DeadlineTimer } from '../deadline.js';
import type { SshEngineEvent, SshEngineHandle } from '../internal/ssh-types.js';
import type { SshWire } from './wire.js';

/** What the pump calls back into. */
export interface PumpHost {
  /** One engine event (the pump stops dispatching once the engine was released). */
  handle(ev: SshEngineEvent): void;
  /** End of a pump with the engine still there. */
  pumped(engine: SshEngineHandle): void;
}

export class SshPump {
  readonly #channel: SshWire;
  readonly #host: PumpHost;
  #engine: SshEngineHandle | undefined;
  #pendingOut: Uint8Array | undefined;
  #pumping = false;
  #pumpAgain = false;
  readonly #timer = new DeadlineTimer(() => {
    this.pump();
  });

  constructor(engine: SshEngineHandle, channel: SshWire, host: PumpHost) {
    this.#engine = engine;
    this.#channel = channel;
    this.#host = host;
  }

  #lastCounts = { received: 0, sent: 0 };

  /** The engine; undefined once released (end()). */
  get engine(): SshEngineHandle | undefined {
    return this.#engine;
  }

  pump(): void {
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
          this.#host.handle(ev);
          if (this.#engine === undefined) break;
        }
        if (events.length > 0) progressed = true;
        if (progressed) this.#pumpAgain = true;
        if (++rounds >= 1000 && this.#pumpAgain) {
          // Yield to the event loop; continue right after.
          setTimeout(() => {
            this.pump();
          }, 0);
          break;
        }
      } while (this.#pumpAgain && this.#engine !== undefined);
      this.#afterPump();
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Releases the engine: what it still wants to send (e.g. its DISCONNECT) goes out first if
   * credit allows, unless `abrupt`. Returns its final byte counters (undefined if released).
   */
  end(abrupt: boolean): { received: number; sent: number } | undefined {
    const engine = this.#engine;
    let counts: { received: number; sent: number } | undefined;
    if (engine !== undefined) {
      if (!abrupt) this.#flush(engine);
      counts = this.counts();
      this.#engine = undefined;
      engine.delete();
    }
    this.#pendingOut = undefined;
    this.#timer.cancel();
    return counts;
  }

  /** Bytes the engine received and sent (its last counters once released). */
  counts(): { received: number; sent: number } {
    const e = this.#engine;
    if (e !== undefined) this.#lastCounts = { received: e.bytesReceived(), sent: e.bytesSent() };
    return this.#lastCounts;
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
    this.#host.pumped(engine);
    this.#timer.arm(engine.nextTimeout(), performance.now());
  }
}
