// SPDX-License-Identifier: Apache-2.0
// Pause reasons and the page environment that sets two of them: `hidden` from the document's
// visibility and page lifecycle (visibilitychange, freeze, resume), `offline` from the window's
// online / offline events. `transport` (bufferedAmount) and `app` are set by the connection.
import type {
  ConnectEnvironment,
  DocumentLike,
  EventTargetLike,
  PauseReason,
} from './connection-types.js';

/** The core's bit of each pause reason (ClientSession.setPaused). */
export const pauseBits: Readonly<Record<PauseReason, number>> = {
  transport: 1,
  hidden: 2,
  offline: 4,
  app: 8,
};
const pauseOrder: readonly PauseReason[] = ['transport', 'hidden', 'offline', 'app'];

/** The set of active pause reasons. */
export class PauseSet {
  #bits = 0;

  has(reason: PauseReason): boolean {
    return (this.#bits & pauseBits[reason]) !== 0;
  }

  /** Sets or clears `reason`; false when it already was so. */
  set(reason: PauseReason, on: boolean): boolean {
    if (this.has(reason) === on) return false;
    const bit = pauseBits[reason];
    this.#bits = on ? this.#bits | bit : this.#bits & ~bit;
    return true;
  }

  /** The active reasons, in a fixed order. */
  list(): PauseReason[] {
    return pauseOrder.filter((r) => this.has(r));
  }
}

/** What the environment watcher drives. */
export interface EnvironmentHost {
  setPause(reason: 'hidden' | 'offline', on: boolean): void;
  /** The page came back online. */
  online(): void;
}

/**
 * Listens to the document and the window of `env` (default the globals; `null` disables one) and
 * applies their current state at once. Returns the functions that remove the listeners.
 */
export function watchEnvironment(env: ConnectEnvironment, host: EnvironmentHost): (() => void)[] {
  const cleanups: (() => void)[] = [];
  const doc =
    env.document === undefined
      ? (globalThis as { document?: DocumentLike }).document
      : (env.document ?? undefined);
  if (doc !== undefined) {
    const onVisibility = () => {
      host.setPause('hidden', doc.visibilityState === 'hidden');
    };
    const onFreeze = () => {
      host.setPause('hidden', true);
    };
    const onResume = () => {
      host.setPause('hidden', doc.visibilityState === 'hidden');
    };
    doc.addEventListener('visibilitychange', onVisibility);
    doc.addEventListener('freeze', onFreeze);
    doc.addEventListener('resume', onResume);
    cleanups.push(() => {
      doc.removeEventListener('visibilitychange', onVisibility);
      doc.removeEventListener('freeze', onFreeze);
      doc.removeEventListener('resume', onResume);
    });
    if (doc.visibilityState === 'hidden') host.setPause('hidden', true);
  }
  const win =
    env.window === undefined
      ? typeof (globalThis as Partial<EventTargetLike>).addEventListener === 'function'
        ? (globalThis as unknown as EventTargetLike)
        : undefined
      : (env.window ?? undefined);
  if (win !== undefined) {
    const onOffline = () => {
      host.setPause('offline', true);
    };
    const onOnline = () => {
      host.setPause('offline', false);
      host.online();
    };
    win.addEventListener('offline', onOffline);
    win.addEventListener('online', onOnline);
    cleanups.push(() => {
      win.removeEventListener('offline', onOffline);
      win.removeEventListener('online', onOnline);
    });
    const onLine =
      env.onLine ??
      (() => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true);
    if (!onLine()) host.setPause('offline', true);
  }
  return cleanups;
}
