// SPDX-License-Identifier: Apache-2.0
// The application's side of an SshSession's credit (session.ts, invariant 2): output delivered by
// onData/onStderr counts as unconsumed until the application consumes it (flow 'manual') or the
// listeners ran (flow 'auto'); every consumed byte is granted back to the engine, which reads the
// SSH channel only while less than its high-water mark is unconsumed.
import { invalidArgument as invalid } from '../errors.js';

export type FlowMode = 'auto' | 'manual';

export class OutputFlow {
  #mode: FlowMode;
  #unconsumed = 0;
  readonly #grant: (n: number) => void;

  /** `grant(n)`: the application consumed `n` bytes (the engine may read that much more). */
  constructor(mode: FlowMode, grant: (n: number) => void) {
    this.#mode = mode;
    this.#grant = grant;
  }

  get mode(): FlowMode {
    return this.#mode;
  }

  get unconsumed(): number {
    return this.#unconsumed;
  }

  /** Switching to `auto` consumes every byte still unconsumed. */
  setMode(mode: FlowMode): void {
    if (mode !== 'auto' && mode !== 'manual') {
      throw invalid(`setFlow: ${String(mode)} is not a mode`);
    }
    this.#mode = mode;
    if (mode === 'auto' && this.#unconsumed > 0) this.consume(this.#unconsumed);
  }

  consume(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.#unconsumed) {
      throw invalid(`consume: ${n} is not within 0..${this.#unconsumed}`);
    }
    if (n === 0) return;
    this.#unconsumed -= n;
    this.#grant(n);
  }

  /** `n` bytes are about to be delivered to the listeners. */
  delivering(n: number): void {
    this.#unconsumed += n;
  }

  /** The listeners ran: with `auto` everything delivered counts as consumed. */
  delivered(): void {
    if (this.#mode === 'auto' && this.#unconsumed > 0) this.consume(this.#unconsumed);
  }
}
