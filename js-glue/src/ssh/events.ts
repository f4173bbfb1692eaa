// SPDX-License-Identifier: Apache-2.0
// The events an SshSession fires, and the ones it holds back. Output, exit and close that arrive
// after the session opened but before the application registered any of onData / onStderr /
// onExit / onClose are held, in order, and handed over in a microtask after the first such
// registration: `await conn.openSession(...)` resumes only after the pump that opened the session
// has run, so a fast command's output would otherwise fire to no listener. Bounded: held output is
// not consumed, so the engine stops reading at its high-water mark.
import { Emitter, type EventRegistration } from '../emitter.js';
import type { SshEngineEvent, SshEngineState } from '../internal/ssh-types.js';
import type { SshCloseEvent, SshExitEvent, SshSessionState } from './types.js';

/** The session state an engine state moves the session to (undefined: it stays). */
export function sessionStateOf(
  to: SshEngineState,
  current: SshSessionState,
): SshSessionState | undefined {
  if (to === 'closing') return 'closing';
  const authenticating = to === 'auth_list' || to === 'auth_try' || to === 'auth_prompt';
  return authenticating && current === 'connecting' ? 'authenticating' : undefined;
}

/** The onExit payload of an engine `exit` event. */
export function exitEventOf(ev: Extract<SshEngineEvent, { type: 'exit' }>): SshExitEvent {
  const e: SshExitEvent = {};
  if (ev.code !== null) e.code = ev.code;
  if (ev.signal !== null) e.signal = ev.signal;
  return e;
}

export class SessionEvents {
  readonly data = new Emitter<Uint8Array>();
  readonly stderr = new Emitter<Uint8Array>();
  readonly exit = new Emitter<SshExitEvent>();
  readonly close = new Emitter<SshCloseEvent>();
  readonly writable = new Emitter<number>();
  readonly #dispatch: (ev: SshEngineEvent) => void;
  /** null once handed over. */
  #held: SshEngineEvent[] | null = [];

  /** `dispatch` handles the held events when they are handed over. */
  constructor(dispatch: (ev: SshEngineEvent) => void) {
    this.#dispatch = dispatch;
  }

  /** The registration of `emitter`; the first registration hands the held events over. */
  subscribe<T>(emitter: Emitter<T>): EventRegistration<T> {
    return (listener) => {
      const d = emitter.event(listener);
      if (this.#held !== null) {
        queueMicrotask(() => {
          this.#release();
        });
      }
      return d;
    };
  }

  /** Holds `ev` (output, exit, close of an `open` session) until a listener is there. */
  hold(ev: SshEngineEvent, open: boolean): boolean {
    if (
      this.#held === null ||
      !open ||
      (ev.type !== 'data' && ev.type !== 'exit' && ev.type !== 'closed')
    ) {
      return false;
    }
    this.#held.push(ev);
    // The engine is done: hand over (or drop, with no listener) one task later at the latest,
    // so a session nobody listens to still releases its wasm handle and timers.
    if (ev.type === 'closed') {
      setTimeout(() => {
        this.#release();
      }, 0);
    }
    return true;
  }

  #release(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    for (const ev of held) this.#dispatch(ev);
  }

  /** Removes every listener. */
  clear(): void {
    this.data.clear();
    this.stderr.clear();
    this.exit.clear();
    this.close.clear();
    this.writable.clear();
  }
}
