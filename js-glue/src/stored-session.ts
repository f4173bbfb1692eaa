// SPDX-License-Identifier: Apache-2.0
// The stored session: the resume token kept in storage between transports and page loads, and the
// Web Lock (`mana-resume:<id>`) that makes one tab its owner (docs/browser-client.md, "Page reload
// and multiple tabs"). connect() claims what an earlier page stored before the Connection exists;
// the Connection then keeps it (StoredSessionKeeper): adopts it, persists each new token, releases
// the lock and clears the storage when the session ends.
import type { ConnectOptions, PersistenceEvent, StoredSessionOutcome } from './connection-types.js';
import { ResumeError } from './errors.js';
import type { CoreSession } from './internal/core-types.js';
import { newSessionId, resumeLockName, tryLock, type HeldLock } from './locks.js';
import {
  createTokenStore,
  decodeStoredSession,
  encodeStoredSession,
  type StoredSession,
  type TokenStore,
} from './storage.js';

/** The storage key of a connection's resume token (SSH metadata is kept next to it). */
export function storageKeyOf(options: Pick<ConnectOptions, 'url' | 'storageKey'>): string {
  return options.storageKey ?? `mana.websocket.resume:${options.url}`;
}

/** The stored session claimed by connect() before the Connection exists. */
export interface StoredClaim {
  store: TokenStore;
  found: boolean;
  outcome: StoredSessionOutcome;
  session: StoredSession | undefined;
  lock: HeldLock | undefined;
}

/**
 * Loads the stored session and takes its lock when it is free. With `resumeOnly`, rejects with
 * ResumeError (`no_stored_session`, `resume_lock_busy`) unless the session can be resumed.
 */
export async function claimStoredSession(options: ConnectOptions): Promise<StoredClaim> {
  const claim = await loadClaim(options);
  if (options.resumeOnly === true && claim.outcome !== 'resuming') {
    claim.lock?.release();
    throw new ResumeError(
      claim.outcome === 'lock_busy'
        ? 'the stored session is in use by another tab (Web Lock held)'
        : 'no stored session to resume',
      {
        code: claim.outcome === 'lock_busy' ? 'resume_lock_busy' : 'no_stored_session',
        origin: 'local',
      },
    );
  }
  return claim;
}

async function loadClaim(options: ConnectOptions): Promise<StoredClaim> {
  const store = createTokenStore(options.storage ?? 'session', storageKeyOf(options));
  const text = store.load();
  const base = { store, found: text !== undefined, session: undefined, lock: undefined };
  if (text === undefined || options.resume === false) return { ...base, outcome: 'none' };
  const session = decodeStoredSession(text);
  if (session === undefined) {
    store.clear();
    return { ...base, outcome: 'invalid' };
  }
  const lock = await tryLock(resumeLockName(session.id));
  if (lock === null) return { ...base, outcome: 'lock_busy' };
  return { ...base, outcome: 'resuming', session, lock };
}

/** What adopt() reports; the connection fires it on the next task (after connect() resolved). */
export interface AdoptReport {
  persistence: PersistenceEvent[];
  diagnostics: [code: string, detail: string][];
}

/** The stored session a Connection owns: its token in storage and its lock. */
export class StoredSessionKeeper {
  readonly store: TokenStore;
  readonly #fire: (e: PersistenceEvent) => void;
  /** What connect() found in storage (Connection.storedSession). */
  outcome: StoredSessionOutcome = 'none';
  /** The first hello resumes a session adopted from storage (cleared at ready). */
  adopted = false;
  /** The route id stored with the adopted session (its first hello goes there). */
  route: string | undefined;
  /** Id of the stored session this connection owns (names its Web Lock). */
  #sessionId: string | undefined;
  #lock: HeldLock | undefined;

  constructor(
    options: ConnectOptions,
    claim: StoredClaim | undefined,
    fire: (e: PersistenceEvent) => void,
  ) {
    this.store =
      claim?.store ?? createTokenStore(options.storage ?? 'session', storageKeyOf(options));
    this.#fire = fire;
  }

  // A stored session (an earlier page of this tab) is resumed with no channels: its channel
  // offsets (and any SSH state) lived in that page's memory, so the gateway frees its channels
  // and targets at once and the session continues here (docs/browser-client.md).
  adopt(claim: StoredClaim | undefined, core: CoreSession): AdoptReport {
    const mode = this.store.mode;
    const outcome = claim?.outcome ?? 'none';
    const diagnostics: [code: string, detail: string][] = [];
    const persistence: PersistenceEvent[] = [
      { kind: 'load', storage: mode, found: claim?.found ?? false },
    ];
    if (outcome === 'resuming' && claim?.session !== undefined) {
      const r = core.adoptResumeToken(claim.session.token);
      if (r === undefined) {
        this.adopted = true;
        this.route = claim.session.route;
        this.#sessionId = claim.session.id;
        this.#lock = claim.lock;
        this.outcome = 'resuming';
        diagnostics.push([
          'stored_session_found',
          `resuming it (lock ${claim.lock?.kind ?? 'none'})`,
        ]);
      } else {
        claim.lock?.release();
        this.store.clear();
        this.outcome = 'invalid';
        persistence.push({ kind: 'clear', storage: mode });
        diagnostics.push(['stored_session_invalid', r.detail]);
      }
    } else {
      this.outcome = outcome;
      if (outcome === 'lock_busy') {
        diagnostics.push([
          'resume_lock_busy',
          'another tab holds the stored session: starting fresh',
        ]);
      } else if (outcome === 'invalid') {
        persistence.push({ kind: 'clear', storage: mode });
        diagnostics.push(['stored_session_invalid', 'unreadable stored value cleared']);
      }
    }
    return { persistence, diagnostics };
  }

  /**
   * Stores the current resume token and the gateway's route id (`ended`: the connection is
   * closed or disposed).
   */
  persist(token: string | null, route: string | null, ended: () => boolean): void {
    if (token === null || this.store.mode === 'none') return;
    if (this.#sessionId === undefined) {
      // A new session: its own id and lock, held for the session's life.
      const id = newSessionId();
      this.#sessionId = id;
      void tryLock(resumeLockName(id)).then((lock) => {
        if (lock === null) return;
        if (ended() || this.#sessionId !== id) lock.release();
        else this.#lock = lock;
      });
    }
    this.store.save(
      encodeStoredSession(
        route === null ? { token, id: this.#sessionId } : { token, id: this.#sessionId, route },
      ),
    );
    this.#fire({ kind: 'persist', storage: this.store.mode });
  }

  /** Releases the lock and forgets the session's id. */
  release(): void {
    this.#lock?.release();
    this.#lock = undefined;
    this.#sessionId = undefined;
  }

  /** The session is over: release the lock and remove the token from storage. */
  discard(): void {
    this.release();
    if (this.store.mode !== 'none') {
      this.store.clear();
      this.#fire({ kind: 'clear', storage: this.store.mode });
    }
  }
}
