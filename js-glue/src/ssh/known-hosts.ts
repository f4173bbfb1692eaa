// Trust on first use: the host key of each host:port, kept in browser storage.
//
// One entry per host:port under `mana.ssh.known_host:<host>:<port>` (host lower-cased), value an
// OpenSSH-style line "<key type> <base64 key blob>" so it can be compared with a known_hosts file.

/** Storage-like object (window.localStorage fits). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** Where host keys persist: `local` = localStorage (default; memory when unavailable). */
export type KnownHostsOption = 'local' | 'memory' | KeyValueStorage;

export interface KnownHostKey {
  keyType: string;
  /** The public key blob, base64 (with padding, as in known_hosts files). */
  key: string;
}

const memory = new Map<string, string>();
const memoryStorage: KeyValueStorage = {
  getItem: (k) => memory.get(k) ?? null,
  setItem: (k, v) => void memory.set(k, v),
  removeItem: (k) => void memory.delete(k),
};

function resolveStorage(option: KnownHostsOption | undefined): KeyValueStorage {
  if (option === 'memory') return memoryStorage;
  if (option === undefined || option === 'local') {
    try {
      const ls = (globalThis as { localStorage?: KeyValueStorage }).localStorage;
      if (ls !== undefined) return ls;
    } catch {
      // Blocked (sandboxed iframe, privacy settings): fall back to memory.
    }
    return memoryStorage;
  }
  return option;
}

function entryKey(host: string, port: number): string {
  return `mana.ssh.known_host:${host.toLowerCase()}:${port}`;
}

export function base64Of(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export class KnownHosts {
  readonly #storage: KeyValueStorage;

  constructor(option?: KnownHostsOption) {
    this.#storage = resolveStorage(option);
  }

  get(host: string, port: number): KnownHostKey | undefined {
    let line: string | null;
    try {
      line = this.#storage.getItem(entryKey(host, port));
    } catch {
      return undefined;
    }
    if (line === null) return undefined;
    const [keyType, key] = line.split(' ');
    if (keyType === undefined || key === undefined || keyType === '' || key === '') {
      return undefined;
    }
    return { keyType, key };
  }

  set(host: string, port: number, entry: KnownHostKey): void {
    try {
      this.#storage.setItem(entryKey(host, port), `${entry.keyType} ${entry.key}`);
    } catch {
      // Storage full or blocked: trust stays for this session only.
    }
  }

  remove(host: string, port: number): void {
    try {
      this.#storage.removeItem(entryKey(host, port));
    } catch {
      // Nothing stored.
    }
  }
}

/**
 * Host-key algorithm preference (libssh2 list): `all` (the session's host-key list) with the
 * algorithms of the stored key's type first, in `all`'s order (an RSA key: rsa-sha2-512,
 * rsa-sha2-256, and ssh-rsa when `all` has it).
 */
export function hostKeyPreference(keyType: string | undefined, all: readonly string[]): string {
  if (keyType === undefined) return all.join(',');
  const ofType = keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
  const first = all.filter((a) => ofType.includes(a));
  return [...first, ...all.filter((a) => !first.includes(a))].join(',');
}

/**
 * Removes the stored host key of host:port (the way to accept a legitimately changed key: verify
 * the new fingerprint out of band, forget the old one, connect again).
 */
export function forgetHostKey(host: string, port: number, knownHosts?: KnownHostsOption): void {
  new KnownHosts(knownHosts).remove(host, port);
}
