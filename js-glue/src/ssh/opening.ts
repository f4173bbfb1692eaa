// SPDX-License-Identifier: Apache-2.0
// The open of an SshSession: the promise openSession() awaits, resolved when the shell or command
// runs, and its deadline (`timeoutMs`: handshake + authentication + channel start).
import type { ManaError } from '../errors.js';
import { SshError } from './errors.js';

export class Opening {
  /** Resolves when the session opened; rejects with the error that ended it before. */
  readonly promise: Promise<void>;
  #resolve!: () => void;
  #reject!: (e: ManaError) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;

  /**
   * `onTimeout` runs when the session is not open after `timeoutMs`, with the maker of its
   * SshError `timeout` (given the engine state it was stuck in).
   */
  constructor(timeoutMs: number, onTimeout: (error: (state: string) => ManaError) => void) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.promise.catch(() => undefined);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#done) {
        onTimeout(
          (state) =>
            new SshError(`SSH session not open after ${timeoutMs} ms (${state})`, {
              code: 'timeout',
              origin: 'local',
            }),
        );
      }
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
