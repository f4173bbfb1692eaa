// Exclusive ownership of a stored session across tabs (Web Locks API).
//
// A tab that holds a session keeps the lock `mana-resume:<id>` for as long as the session lives;
// a tab that finds the same stored session (a duplicated tab copies sessionStorage) asks for the
// lock with `ifAvailable` and, when another tab holds it, does not resume. Without
// `navigator.locks` (Node, old browsers, some sandboxed frames) locks are exclusive only within
// this JavaScript realm.

/** A held lock; release() is idempotent. */
export interface HeldLock {
  readonly name: string;
  /** `web-locks` (navigator.locks) or `realm` (the in-memory fallback). */
  readonly kind: 'web-locks' | 'realm';
  release(): void;
}

interface LockManagerLike {
  request(
    name: string,
    options: { ifAvailable: boolean },
    callback: (lock: unknown) => Promise<void> | undefined,
  ): Promise<unknown>;
}

const realmLocks = new Set<string>();

function lockManager(): LockManagerLike | undefined {
  try {
    const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
    return nav?.locks ?? undefined;
  } catch {
    return undefined;
  }
}

function realmLock(name: string): HeldLock | null {
  if (realmLocks.has(name)) return null;
  realmLocks.add(name);
  let held = true;
  return {
    name,
    kind: 'realm',
    release: () => {
      if (held) realmLocks.delete(name);
      held = false;
    },
  };
}

/** The lock name for a stored session id. */
export function resumeLockName(id: string): string {
  return `mana-resume:${id}`;
}

/**
 * Takes `name` if nobody holds it; resolves null when another holder (this or another tab) has it.
 * Never waits for a holder to let go.
 */
export function tryLock(name: string): Promise<HeldLock | null> {
  const locks = lockManager();
  if (locks === undefined) return Promise.resolve(realmLock(name));
  return new Promise<HeldLock | null>((resolve) => {
    let settled = false;
    locks
      .request(name, { ifAvailable: true }, (lock) => {
        settled = true;
        if (lock === null) {
          resolve(null);
          return undefined;
        }
        // The lock is held until the promise returned here settles.
        return new Promise<void>((release) => {
          let held = true;
          resolve({
            name,
            kind: 'web-locks',
            release: () => {
              if (held) release();
              held = false;
            },
          });
        });
      })
      .catch(() => {
        // The LockManager refused (e.g. an opaque origin): fall back to this realm.
        if (!settled) resolve(realmLock(name));
      });
  });
}

/** A random id for a new stored session (128 bits, base64url). */
export function newSessionId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
