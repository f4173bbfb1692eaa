// SPDX-License-Identifier: Apache-2.0
// The open of an SshSession: the promise openSession() awaits, resolved when the shell or command
// runs, and its deadline (`timeoutMs`: handshake + authentication + channel start).
import type { ManaError } from '../errors.js';

export class Opening {
  /** Resolves when the session opened; rejects with the error that ended it before. */
  readonly promise: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: ManaError) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;

  /** `onTimeout` runs when the session is not open after `timeoutMs`. */
  constructor(timeoutMs: number, onTimeout: () => void) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.promise.catch(() => undefined);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#done) onTimeout();
    }, timeoutMs);
  }

  /** Whether the session opened. */
  get done(): boolean {
    return this.#done;
  }

  opened(): void {
    this.#done = true;
    this.#stop();
    this.#resolve();
  }

  /** The session ended: stops the deadline; rejects with `error()` if it never opened. */
  ended(error: () => ManaError): void {
    this.#stop();
    if (!this.#done) this.#reject(error());
  }

  #stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
