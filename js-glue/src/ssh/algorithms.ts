// SPDX-License-Identifier: Apache-2.0
// SSH algorithm choice: the secure defaults, the `legacy` preset (SHA-1 and CBC for old servers,
// off by default), the check of an application's lists against what this build of libssh2 can
// negotiate, and which negotiated algorithms are weak (reported as `weak_algorithm`).
import { invalidArgument, type InvalidStateError } from '../errors.js';
import { SshAlgorithmError, type SshAlgorithmKind } from './errors.js';

/** Ordered preference lists (libssh2 / OpenSSH names); a kind left out keeps its default. */
export interface SshAlgorithms {
  kex?: readonly string[];
  hostKey?: readonly string[];
  cipher?: readonly string[];
  mac?: readonly string[];
}

export type SshAlgorithmLists = Readonly<Record<SshAlgorithmKind, readonly string[]>>;

const freeze = (lists: Record<SshAlgorithmKind, string[]>): SshAlgorithmLists =>
  Object.freeze({
    kex: Object.freeze(lists.kex),
    hostKey: Object.freeze(lists.hostKey),
    cipher: Object.freeze(lists.cipher),
    mac: Object.freeze(lists.mac),
  });

/**
 * What a session offers unless told otherwise (the wasm engine's built-in defaults, kept in step
 * with ssh-engine/src/ssh_engine.cpp): no SHA-1 key exchange, host keys or MACs, no CBC ciphers.
 */
export const defaultSshAlgorithms: SshAlgorithmLists = freeze({
  kex: [
    'curve25519-sha256',
    'curve25519-sha256@libssh.org',
    'ecdh-sha2-nistp256',
    'ecdh-sha2-nistp384',
    'ecdh-sha2-nistp521',
    'diffie-hellman-group-exchange-sha256',
    'diffie-hellman-group16-sha512',
    'diffie-hellman-group18-sha512',
    'diffie-hellman-group14-sha256',
  ],
  hostKey: [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'rsa-sha2-512',
    'rsa-sha2-256',
  ],
  cipher: [
    'chacha20-poly1305@openssh.com',
    'aes256-gcm@openssh.com',
    'aes128-gcm@openssh.com',
    'aes256-ctr',
    'aes192-ctr',
    'aes128-ctr',
  ],
  mac: [
    'hmac-sha2-256-etm@openssh.com',
    'hmac-sha2-512-etm@openssh.com',
    'hmac-sha2-256',
    'hmac-sha2-512',
  ],
});

/** What the `legacy` preset adds, after the defaults (so a modern server still gets those). */
const legacyAdditions: SshAlgorithmLists = freeze({
  kex: ['diffie-hellman-group14-sha1', 'diffie-hellman-group1-sha1'],
  hostKey: ['ssh-rsa'],
  cipher: ['aes128-cbc', 'aes192-cbc', 'aes256-cbc'],
  mac: ['hmac-sha1'],
});

/**
 * The `legacy` preset (`algorithms: 'legacy'`, or spread into lists): the defaults followed by
 * SHA-1 key exchange (diffie-hellman-group14-sha1, group1-sha1), `ssh-rsa` host keys and RSA user
 * key signatures (SHA-1), AES-CBC and hmac-sha1. Only for servers that offer nothing better; each
 * use is reported as a `weak_algorithm` diagnostic.
 */
export const legacySshAlgorithms: SshAlgorithmLists = freeze({
  kex: [...defaultSshAlgorithms.kex, ...legacyAdditions.kex],
  hostKey: [...defaultSshAlgorithms.hostKey, ...legacyAdditions.hostKey],
  cipher: [...defaultSshAlgorithms.cipher, ...legacyAdditions.cipher],
  mac: [...defaultSshAlgorithms.mac, ...legacyAdditions.mac],
});

export const algorithmKinds: readonly SshAlgorithmKind[] = ['kex', 'hostKey', 'cipher', 'mac'];

/** The engine's name of each kind (supportedAlgorithms(), the `closed` event's `mismatch`). */
export const engineKind: Readonly<Record<SshAlgorithmKind, string>> = {
  kex: 'kex',
  hostKey: 'hostkey',
  cipher: 'cipher',
  mac: 'mac',
};

/** The public kind of an engine kind name (undefined for anything else). */
export function kindOfEngine(name: string): SshAlgorithmKind | undefined {
  return algorithmKinds.find((k) => engineKind[k] === name);
}

/** Whether a negotiated algorithm is one this library calls weak (SHA-1, MD5, CBC, RC4, DSA). */
export function isWeakAlgorithm(kind: SshAlgorithmKind, name: string): boolean {
  switch (kind) {
    case 'kex':
      return name.endsWith('-sha1');
    case 'hostKey':
      return /^ssh-(rsa|dss)(-cert-v01@openssh\.com)?$/u.test(name);
    case 'cipher':
      return /-cbc(@|$)|^arcfour|^3des|^blowfish|^cast128/u.test(name);
    case 'mac':
      return /^hmac-(sha1|md5|ripemd160)/u.test(name);
  }
}

/** The ciphers with their own integrity tag: with them the negotiated MAC is not used. */
export function isAeadCipher(name: string): boolean {
  return (
    name === 'chacha20-poly1305@openssh.com' ||
    name === 'aes256-gcm@openssh.com' ||
    name === 'aes128-gcm@openssh.com'
  );
}

const maxNames = 64;
const maxNameLength = 64;

/**
 * The lists to offer: the defaults, the preset, or the application's lists (with `ciphers`, the
 * older comma-separated option, as the cipher list). Throws SshAlgorithmError
 * (`unsupported_algorithm`) for a name this build cannot negotiate and InvalidStateError
 * (`invalid_argument`) for a malformed option, before anything touches the network.
 */
export function resolveAlgorithms(
  option: SshAlgorithms | 'legacy' | 'default' | undefined,
  ciphers: string | undefined,
  supported: (kind: SshAlgorithmKind) => readonly string[],
): SshAlgorithmLists {
  let chosen: Record<SshAlgorithmKind, readonly string[]>;
  if (option === undefined || option === 'default') chosen = { ...defaultSshAlgorithms };
  else if (option === 'legacy') chosen = { ...legacySshAlgorithms };
  else if (typeof option === 'object' && option !== null) {
    chosen = { ...defaultSshAlgorithms };
    for (const key of Object.keys(option)) {
      if (!(algorithmKinds as readonly string[]).includes(key)) {
        throw malformed(`algorithms.${key} is not a kind (kex, hostKey, cipher, mac)`);
      }
    }
    for (const kind of algorithmKinds) {
      const list = option[kind];
      if (list !== undefined) chosen[kind] = checkList(kind, list);
    }
  } else {
    throw malformed(`algorithms must be 'legacy', 'default' or {kex, hostKey, cipher, mac}`);
  }
  if (ciphers !== undefined) {
    if (typeof option === 'object' && option.cipher !== undefined) {
      throw malformed('pass either `ciphers` or `algorithms.cipher`, not both');
    }
    if (typeof ciphers !== 'string') throw malformed('ciphers must be a string');
    chosen.cipher = checkList('cipher', ciphers.split(','));
  }
  for (const kind of algorithmKinds) {
    const have = supported(kind);
    const unknown = chosen[kind].filter((n) => !have.includes(n));
    if (unknown.length > 0) {
      throw new SshAlgorithmError(
        `openSession: ${kind} algorithm${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ` +
          `not supported by this build (supported: ${have.join(', ')})`,
        {
          code: 'unsupported_algorithm',
          origin: 'local',
          kind,
          clientOffer: [...chosen[kind]],
          serverOffer: [],
          unsupported: unknown,
        },
      );
    }
  }
  return freeze({
    kex: [...chosen.kex],
    hostKey: [...chosen.hostKey],
    cipher: [...chosen.cipher],
    mac: [...chosen.mac],
  });
}

function checkList(kind: SshAlgorithmKind, list: unknown): string[] {
  if (!Array.isArray(list) || list.length === 0 || list.length > maxNames) {
    throw malformed(`algorithms.${kind} must be a list of 1..${maxNames} names`);
  }
  const out: string[] = [];
  for (const n of list as unknown[]) {
    if (typeof n !== 'string' || n === '' || n.length > maxNameLength || /[\s,]/u.test(n)) {
      throw malformed(`algorithms.${kind}: ${JSON.stringify(n)} is not an algorithm name`);
    }
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

function malformed(message: string): InvalidStateError {
  return invalidArgument(`openSession: ${message}`);
}

/**
 * The weak algorithms among the negotiated ones, as `<kind> <name>` (each once; the MAC only when
 * the cipher does not carry its own tag).
 */
export function weakNegotiated(n: {
  kex: string;
  hostKey: string;
  cipherClientToServer: string;
  cipherServerToClient: string;
  macClientToServer: string;
  macServerToClient: string;
}): string[] {
  const out = new Set<string>();
  const add = (kind: SshAlgorithmKind, name: string) => {
    if (name !== '' && isWeakAlgorithm(kind, name)) out.add(`${kind} ${name}`);
  };
  add('kex', n.kex);
  add('hostKey', n.hostKey);
  add('cipher', n.cipherClientToServer);
  add('cipher', n.cipherServerToClient);
  if (!isAeadCipher(n.cipherClientToServer)) add('mac', n.macClientToServer);
  if (!isAeadCipher(n.cipherServerToClient)) add('mac', n.macServerToClient);
  return [...out];
}
