// SPDX-License-Identifier: Apache-2.0
// Where a page keeps the attach secrets of its worker sessions, connections and channels
// (ManaWorkerClient): one JSON object in sessionStorage (per tab, survives a reload), by key.
// A storage that fails (quota, disabled, a sandboxed iframe) only costs the reattach.

/** What is kept per key: an id and its attach secret (and a channel's target, a connection's URL). */
export interface Stored {
  sessionId: string;
  secret: string;
  target?: { host: string; port: number };
  /** A connection's gateway URL. */
  url?: string;
}

type StorageLike = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

function defaultStorage(): StorageLike | null {
  try {
    return (globalThis as { sessionStorage?: Storage }).sessionStorage ?? null;
  } catch {
    return null; // sandboxed iframes throw on access
  }
}

export class StoredSecrets {
  readonly #storage: StorageLike | null;
  readonly #key: string;

  /** `storage` undefined: sessionStorage; null: nowhere. */
  constructor(storage: StorageLike | null | undefined, key?: string) {
    this.#storage = storage === undefined ? defaultStorage() : storage;
    this.#key = key ?? 'mana-websocket:worker-sessions';
  }

  all(): Record<string, Stored> {
    try {
      const raw = this.#storage?.getItem(this.#key);
      const v: unknown = raw ? JSON.parse(raw) : {};
      return typeof v === 'object' && v !== null ? (v as Record<string, Stored>) : {};
    } catch {
      return {};
    }
  }

  remember(
    key: string,
    sessionId: string,
    secret: string,
    target?: { host: string; port: number },
    url?: string,
  ): void {
    const all = this.all();
    const entry: Stored = { sessionId, secret };
    if (target !== undefined) entry.target = target;
    if (url !== undefined) entry.url = url;
    all[key] = entry;
    this.#write(all);
  }

  /** Drops every key that names `sessionId` (a session, channel or connection id). */
  forget(sessionId: string): void {
    const entries = Object.entries(this.all());
    const all = Object.fromEntries(entries.filter(([, v]) => v.sessionId !== sessionId));
    if (Object.keys(all).length === entries.length) return;
    this.#write(all);
  }

  #write(all: Record<string, Stored>): void {
    try {
      this.#storage?.setItem(this.#key, JSON.stringify(all));
    } catch {
      // Quota or a disabled storage: the session works, a reload cannot reattach.
    }
  }
}
