// SPDX-License-Identifier: Apache-2.0
// The checks and the engine configuration shared by every SSH layer of conn.openSession(): the
// target's session and, with `via`, each bastion's (ssh/jump.ts). Algorithm lists are resolved
// against the loaded engine here, before anything is sent.
import { invalidArgument as invalid } from '../errors.js';
import type { SshEngineAuth, SshEngineConfig, SshModule } from '../internal/ssh-types.js';
import { engineKind, resolveAlgorithms } from './algorithms.js';
import type { SshAlgorithmKind } from './errors.js';
import { hostKeyPreference, type KnownHosts } from './known-hosts.js';
import { securityKeyBlob } from './security-key.js';
import type { SshAuthMethod, SshJumpHost } from './types.js';

/** What every layer has: where it goes, who logs in, how, with which algorithms. */
export type SshLogin = Pick<
  SshJumpHost,
  'target' | 'username' | 'auth' | 'algorithms' | 'ciphers' | 'keepaliveMs'
>;

function toEngineAuth(m: SshAuthMethod): SshEngineAuth {
  if ('password' in m) return { type: 'password', password: m.password };
  if ('privateKey' in m) {
    return m.passphrase !== undefined
      ? { type: 'publickey', privateKey: m.privateKey, passphrase: m.passphrase }
      : { type: 'publickey', privateKey: m.privateKey };
  }
  if ('securityKey' in m)
    return { type: 'security-key', publicKey: securityKeyBlob(m.securityKey) };
  return { type: 'keyboard-interactive' };
}

/** Checks target, username and auth of one layer (`what` names it in the message). */
export function validateLogin(o: SshLogin, what: string): void {
  const t = o.target as { host?: unknown; port?: unknown } | undefined;
  if (t === undefined || typeof t.host !== 'string' || t.host === '') {
    throw invalid(`openSession: ${what}target.host is required`);
  }
  if (typeof t.port !== 'number' || !Number.isInteger(t.port) || t.port < 1 || t.port > 65535) {
    throw invalid(`openSession: ${what}target.port must be an integer 1..65535`);
  }
  if (typeof o.username !== 'string' || o.username === '') {
    throw invalid(`openSession: ${what}username is required`);
  }
  const methods = Array.isArray(o.auth) ? o.auth : [o.auth];
  if (methods.length === 0 || methods.some((m) => typeof m !== 'object' || m === null)) {
    throw invalid(
      `openSession: ${what}auth needs {password}, {privateKey}, {keyboardInteractive} or {securityKey}`,
    );
  }
}

const supportedCache = new WeakMap<SshModule, Map<SshAlgorithmKind, string[]>>();

/** What the loaded engine can negotiate of `kind` (asked once per module). */
export function supportedOf(module: SshModule): (kind: SshAlgorithmKind) => string[] {
  let cache = supportedCache.get(module);
  if (cache === undefined) {
    cache = new Map();
    supportedCache.set(module, cache);
  }
  const c = cache;
  return (kind) => {
    let list = c.get(kind);
    if (list === undefined) {
      list = module.supportedAlgorithms(engineKind[kind]);
      c.set(kind, list);
    }
    return list;
  };
}

/**
 * The engine configuration of one layer without the channel part (pty, exec, tunnel): auth
 * methods, algorithms (host key preference from the known hosts), keepalive. Throws
 * SshAlgorithmError `unsupported_algorithm` for names this build cannot negotiate, and
 * SecurityKeyError for a securityKey whose public key is unusable or not of its rpId.
 */
export function loginConfig(
  o: SshLogin,
  known: KnownHosts,
  supported: (kind: SshAlgorithmKind) => string[],
): SshEngineConfig {
  const algorithms = resolveAlgorithms(o.algorithms, o.ciphers, supported);
  const stored = known.get(o.target.host, o.target.port);
  const methods = Array.isArray(o.auth) ? o.auth : [o.auth];
  return {
    username: o.username,
    auth: methods.map(toEngineAuth),
    kexPref: algorithms.kex.join(','),
    hostkeyPref: hostKeyPreference(stored?.keyType, algorithms.hostKey),
    cipherPref: algorithms.cipher.join(','),
    macPref: algorithms.mac.join(','),
    // ssh-rsa names both the host-key algorithm and RSA user-key SHA-1 signatures (as in OpenSSH).
    signPref: ['rsa-sha2-512', 'rsa-sha2-256']
      .concat(algorithms.hostKey.includes('ssh-rsa') ? ['ssh-rsa'] : [])
      .join(','),
    keepaliveS: Math.round((o.keepaliveMs ?? 30000) / 1000),
  };
}
