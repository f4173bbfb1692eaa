// SPDX-License-Identifier: Apache-2.0
// Reconnect after a resumable loss: exponential backoff with jitter, bounded by `maxAttempts` and
// the server's resume TTL; no attempt while offline, one at once when the page comes back online.
import type { ReconnectOptions } from './connection-types.js';

/** Exponential backoff with jitter: the delay before reconnect attempt `attempt` (0-based). */
export function backoffDelay(
  attempt: number,
  options: ReconnectOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 10000;
  const factor = options.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const base = Math.min(max, initial * Math.pow(factor, attempt));
  return Math.round(base * (1 - jitter) + base * jitter * random());
}

/** What the reconnect schedule needs from its connection. */
export interface ReconnectHost {
  now(): number;
  diag(code: string, detail: string): void;
  /** The connection is not disposed and its core is `reconnecting`. */
  reconnecting(): boolean;
  /** Opens a new WebSocket (the core resumes on it). */
  open(): void;
  /** Stop trying: close the connection with this message (ResumeError `resume_gave_up`). */
  giveUp(message: string): void;
}

/** The attempts of one loss (reset at `ready`) and the timer of the next one. */
export class Reconnector {
  readonly #options: ReconnectOptions;
  readonly #random: () => number;
  readonly #host: ReconnectHost;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #lostAt: number | undefined;

  constructor(options: ReconnectOptions, random: () => number, host: ReconnectHost) {
    this.#options = options;
    this.#random = random;
    this.#host = host;
  }

  /** The transport was lost (the first loss since the last `ready` starts the clock). */
  lost(): void {
    this.#lostAt ??= this.#host.now();
  }

  /** The session is ready again: the next loss starts from attempt 0. */
  reset(): void {
    this.#attempt = 0;
    this.#lostAt = undefined;
  }

  /** Schedules the next attempt, or gives up (`ttlMs`: the server's resume TTL). */
  schedule(ttlMs: number, offline: boolean): void {
    const host = this.#host;
    if (!host.reconnecting() || this.#timer !== undefined) return;
    const opts = this.#options;
    const lostFor = host.now() - (this.#lostAt ?? host.now());
    if (
      opts.enabled === false ||
      this.#attempt >= (opts.maxAttempts ?? Infinity) ||
      lostFor > ttlMs
    ) {
      host.giveUp(
        opts.enabled === false
          ? 'transport lost and reconnect is disabled'
          : `gave up resuming after ${this.#attempt} attempts (${Math.round(lostFor)} ms)`,
      );
      return;
    }
    if (offline) {
      host.diag('reconnect_waiting_online', '');
      return;
    }
    const delay = backoffDelay(this.#attempt, opts, this.#random);
    this.#attempt += 1;
    host.diag('reconnect_scheduled', `attempt ${this.#attempt} in ${delay} ms`);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!host.reconnecting()) return;
      host.diag('reconnect_attempt', `attempt ${this.#attempt}`);
      host.open();
    }, delay);
  }

  /** The page came back online: attempt at once (`idle`: no WebSocket is open). */
  attemptNow(idle: boolean): void {
    if (!this.#host.reconnecting() || !idle) return;
    this.cancel();
    this.#host.diag('reconnect_attempt', 'online');
    this.#attempt += 1;
    this.#host.open();
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
