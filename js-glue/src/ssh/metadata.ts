// SPDX-License-Identifier: Apache-2.0
// SSH metadata kept next to the transport's resume token (`<storageKey>:ssh`, no secrets): which
// sessions were open, so that a reloaded page can name the ones it lost (SshSession.lostSessions).
// The keys of an SSH session live in the page's memory only: after a reload it can be reopened,
// never resumed.
import type { SessionHost } from '../connection-types.js';
import { createTokenStore, type StorageMode } from '../storage.js';
import type { SshSessionMetadata } from './types.js';

/** `<storageKey>#<channel id>` of the sessions open in this realm. */
const liveMetadata = new Set<string>();

function metadataStore(storage: StorageMode, storageKey: string) {
  return createTokenStore(storage, `${storageKey}:ssh`);
}

function readMetadata(storage: StorageMode, storageKey: string): SshSessionMetadata[] {
  const text = metadataStore(storage, storageKey).load();
  if (text === undefined) return [];
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? (v as SshSessionMetadata[]) : [];
  } catch {
    return [];
  }
}

function writeMetadata(storage: StorageMode, storageKey: string, list: SshSessionMetadata[]) {
  const store = metadataStore(storage, storageKey);
  if (list.length === 0) store.clear();
  else store.save(JSON.stringify(list.slice(-16)));
}

/** Records an open session (the newest 16 are kept). */
export function storeMetadata(host: SessionHost, meta: SshSessionMetadata): void {
  const { storage, storageKey } = host;
  liveMetadata.add(`${storageKey}#${meta.channelId}`);
  const list = readMetadata(storage, storageKey).filter((m) => m.channelId !== meta.channelId);
  writeMetadata(storage, storageKey, [...list, meta]);
}

/** Forgets a session that ended (if it was recorded). */
export function removeMetadata(host: SessionHost, channelId: number): void {
  const { storage, storageKey } = host;
  if (!liveMetadata.delete(`${storageKey}#${channelId}`)) return;
  writeMetadata(
    storage,
    storageKey,
    readMetadata(storage, storageKey).filter((m) => m.channelId !== channelId),
  );
}

/** The recorded sessions not open in this realm; `clear` forgets them. */
export function lostMetadata(
  storage: StorageMode,
  key: string,
  clear: boolean,
): SshSessionMetadata[] {
  const all = readMetadata(storage, key);
  const lost = all.filter((m) => !liveMetadata.has(`${key}#${m.channelId}`));
  if (clear) {
    writeMetadata(
      storage,
      key,
      all.filter((m) => liveMetadata.has(`${key}#${m.channelId}`)),
    );
  }
  return lost;
}
