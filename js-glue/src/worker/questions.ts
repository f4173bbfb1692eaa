// SPDX-License-Identifier: Apache-2.0
// The questions the worker host asks a page while it opens a session for it: whether to trust a
// host key (`hostkey` / `hostkey-answer`), the answers of a keyboard-interactive round (`kbd` /
// `kbd-answer`) and a security key's signature (`sign` / `sign-answer`). Bounded: at most `max` pending questions in the host, each answered, timed out or
// cancelled (its page went away) exactly once; a question over the bounds is never sent.
import type { KeyboardInteractiveHandler, SecurityKeySigner, SshAuthMethod } from '../ssh/types.js';
import { limits, type WireAuthMethod, type WireSessionOptions } from './protocol.js';

export type QuestionKind = 'hostkey' | 'kbd' | 'sign';

interface Pending<P> {
  page: P;
  kind: QuestionKind;
  /** Settles the question with an answer, or with its fallback (timeout, page gone). */
  settle: (answer: unknown, fallback: boolean) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PageQuestions<P> {
  readonly #pending = new Map<number, Pending<P>>();
  readonly #max: number;
  readonly #timers: { set: typeof setTimeout; clear: typeof clearTimeout } | undefined;
  #next = 1;

  constructor(max: number, timers?: { set: typeof setTimeout; clear: typeof clearTimeout }) {
    this.#max = max;
    this.#timers = timers;
  }

  get size(): number {
    return this.#pending.size;
  }

  /**
   * Asks `page` (send(req) posts the question); resolves with its answer, or with `fallback`
   * after `timeoutMs`, when the page goes away, or at once when `max` questions are pending.
   */
  ask<T>(page: P, kind: QuestionKind, timeoutMs: number, fallback: T, send: (req: number) => void) {
    if (this.#pending.size >= this.#max) return Promise.resolve(fallback);
    const req = this.#next++;
    return new Promise<T>((resolve) => {
      // Called unbound: a browser's setTimeout throws `Illegal invocation` with another `this`.
      const set = this.#timers?.set ?? setTimeout;
      const timer = set(() => {
        this.#settle(req, undefined, true);
      }, timeoutMs);
      this.#pending.set(req, {
        page,
        kind,
        timer,
        settle: (answer, useFallback) => {
          resolve(useFallback ? fallback : (answer as T));
        },
      });
      send(req);
    });
  }

  /** `page` answered question `req` of `kind`; false when it has no such question. */
  answer(page: P, kind: QuestionKind, req: number, answer: unknown): boolean {
    const q = this.#pending.get(req);
    if (q?.page !== page || q.kind !== kind) return false;
    this.#settle(req, answer, false);
    return true;
  }

  /** `page` went away: its questions get their fallbacks. */
  pageGone(page: P): void {
    for (const [req, q] of [...this.#pending])
      if (q.page === page) this.#settle(req, undefined, true);
  }

  #settle(req: number, answer: unknown, fallback: boolean): void {
    const q = this.#pending.get(req);
    if (q === undefined) return;
    this.#pending.delete(req);
    (this.#timers?.clear ?? clearTimeout)(q.timer);
    q.settle(answer, fallback);
  }
}

/** Whether a keyboard-interactive round fits the `kbd` message's bounds. */
export function kbdRoundFits(
  prompts: readonly { prompt: string }[],
  info: { name: string; instruction: string },
): boolean {
  return (
    prompts.length <= limits.maxKbdPrompts &&
    prompts.every((p) => p.prompt.length <= limits.maxText) &&
    info.name.length <= limits.maxText &&
    info.instruction.length <= limits.maxText
  );
}

/**
 * The wire auth of an `open` as the SshSession's methods: `keyboardInteractive` and a security
 * key's signature ask the page.
 */
export function sessionAuth(
  auth: WireSessionOptions['auth'],
  ask: { keyboardInteractive: KeyboardInteractiveHandler; signSecurityKey: SecurityKeySigner },
): SshAuthMethod[] {
  const list: WireAuthMethod[] = Array.isArray(auth) ? auth : [auth];
  return list.map((m) =>
    'keyboardInteractive' in m
      ? { keyboardInteractive: ask.keyboardInteractive }
      : 'securityKey' in m
        ? { securityKey: m.securityKey, sign: ask.signSecurityKey }
        : m,
  );
}
