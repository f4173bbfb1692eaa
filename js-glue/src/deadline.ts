// SPDX-License-Identifier: Apache-2.0
// One timer for an absolute deadline (the core's next timeout, the SSH engine's next keepalive),
// re-armed only when the deadline moves.

export class DeadlineTimer {
  readonly #fire: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at: number | undefined;

  constructor(fire: () => void) {
    this.#fire = fire;
  }

  /** Fires at `at` (null: never); `now` is the current time on the clock of `at`, ms. */
  arm(at: number | null, now: number): void {
    if (at === null) {
      this.cancel();
      return;
    }
    if (this.#timer !== undefined && this.#at === at) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#at = undefined;
        this.#fire();
      },
      Math.max(0, Math.ceil(at - now)),
    );
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = undefined;
  }
}
