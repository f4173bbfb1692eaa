// Where the resume token is kept between transports and page loads.
import { isRouteId } from './route.js';

export type StorageMode = 'session' | 'memory' | 'none';

export interface TokenStore {
  readonly mode: StorageMode;
  load(): string | undefined;
  save(token: string): void;
  clear(): void;
}

const memory = new Map<string, string>();

interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Returns the store for `mode`. `session` uses sessionStorage (per tab, survives reloads) and falls
 * back to `memory` when sessionStorage is unavailable or throws (private mode, sandboxed iframe).
 */
export function createTokenStore(
  mode: StorageMode,
  key: string,
  sessionStorage: KeyValueStorage | undefined = globalSessionStorage(),
): TokenStore {
  if (mode === 'none') {
    return { mode, load: () => undefined, save: () => undefined, clear: () => undefined };
  }
  if (mode === 'session' && sessionStorage !== undefined) {
    const s = sessionStorage;
    return {
      mode,
      load: () => {
        try {
          return s.getItem(key) ?? undefined;
        } catch {
          return undefined;
        }
      },
      save: (token) => {
        try {
          s.setItem(key, token);
        } catch {
          memory.set(key, token);
        }
      },
      clear: () => {
        try {
          s.removeItem(key);
        } catch {
          // Nothing stored.
        }
        memory.delete(key);
      },
    };
  }
  return {
    mode: 'memory',
    load: () => memory.get(key),
    save: (token) => void memory.set(key, token),
    clear: () => void memory.delete(key),
  };
}

function globalSessionStorage(): KeyValueStorage | undefined {
  try {
    const s = (globalThis as { sessionStorage?: KeyValueStorage }).sessionStorage;
    return s ?? undefined;
  } catch {
    return undefined;
  }
}

/** What is kept under the storage key: the newest resume token and the session's lock id. */
export interface StoredSession {
  token: string;
  /** Stable for the session's life (the token rotates); names its Web Lock. */
  id: string;
  /** The gateway's route id (hello_ok.route): a reload's resume goes to that gateway. */
  route?: string;
}

export function encodeStoredSession(s: StoredSession): string {
  return JSON.stringify(
    s.route === undefined
      ? { v: 1, token: s.token, id: s.id }
      : { v: 1, token: s.token, id: s.id, route: s.route },
  );
}

/** Parses a stored value; a bare token (older format) is its own id. Undefined when unusable. */
export function decodeStoredSession(text: string): StoredSession | undefined {
  if (!text.startsWith('{'))
    return /^[A-Za-z0-9_-]{16,256}$/.test(text) ? { token: text, id: text } : undefined;
  try {
    const v = JSON.parse(text) as { v?: unknown; token?: unknown; id?: unknown; route?: unknown };
    if (v.v !== 1 || typeof v.token !== 'string' || typeof v.id !== 'string' || v.id === '') {
      return undefined;
    }
    // A route that is not a route id is dropped (it would go into a URL), the session kept.
    return isRouteId(v.route)
      ? { token: v.token, id: v.id, route: v.route }
      : { token: v.token, id: v.id };
  } catch {
    return undefined;
  }
}
