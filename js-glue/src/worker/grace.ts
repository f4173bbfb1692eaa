// SPDX-License-Identifier: Apache-2.0
// The grace timer of what the worker host keeps without a view (a hosted session, a hosted
// connection): started when the last view goes, cancelled when one comes back, fires once.
export interface Timers {
  set: typeof setTimeout;
  clear: typeof clearTimeout;
}

export class GraceTimer {
  readonly #ms: number;
  readonly #timers: Timers | undefined;
  readonly #expired: () => void;
  #handle: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number, timers: Timers | undefined, expired: () => void) {
    this.#ms = ms;
    this.#timers = timers;
    this.#expired = expired;
  }

  get running(): boolean {
    return this.#handle !== undefined;
  }

  start(): void {
    if (this.#handle !== undefined) return;
    // Called unbound: a browser's setTimeout throws `Illegal invocation` with another `this`.
    const set = this.#timers?.set ?? setTimeout;
    this.#handle = set(() => {
      this.#handle = undefined;
      this.#expired();
    }, this.#ms);
  }

  cancel(): void {
    if (this.#handle === undefined) return;
    (this.#timers?.clear ?? clearTimeout)(this.#handle);
    this.#handle = undefined;
  }
}
