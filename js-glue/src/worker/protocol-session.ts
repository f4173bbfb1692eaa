// SPDX-License-Identifier: Apache-2.0
// The SSH session options of an `open` as they cross to the worker (worker/protocol.ts), and their
// checks: shape and bounds (the names of algorithms are checked by the worker's openSession).
import type { SshAlgorithms } from '../ssh/algorithms.js';
import type { SecurityKeyCredential } from '../ssh/security-key.js';
import type { SshTermOptions } from '../ssh/types.js';
import { bool, fail, int, limits, optional, rec, str, type Rec } from './protocol-read.js';

/**
 * An SshAuthMethod as it crosses to the worker: keyboard-interactive is a marker, its handler stays
 * in the page, which the worker asks each round (`kbd` / `kbd-answer`); a security key's
 * credential (no secret in it) crosses, and the worker asks the page to sign (`sign` /
 * `sign-answer`: a worker has no navigator.credentials).
 */
export type WireAuthMethod =
  | { password: string }
  | { privateKey: string; passphrase?: string }
  | { keyboardInteractive: true }
  | { securityKey: SecurityKeyCredential };

/** The part of SshSessionOptions that crosses to the worker. */
export interface WireSessionOptions {
  target: { host: string; port: number };
  username: string;
  /** One method or several (at most 8), tried in order as the server offers them. */
  auth: WireAuthMethod | WireAuthMethod[];
  term?: SshTermOptions;
  command?: string;
  keepaliveMs?: number;
  timeoutMs?: number;
  ciphers?: string;
  /** Checked against the engine by the worker's openSession (names) and here (shape, bounds). */
  algorithms?: SshAlgorithms | 'default' | 'legacy';
  /** The page answers `hostkey` prompts (hostKey.verify in the page). */
  verifyHostKey?: boolean;
  /**
   * Jump hosts (SshSessionOptions.via), outermost first (1..4): their SSH sessions run in the
   * worker too; a bastion's host key goes to the page with its `hop` when it verifies them.
   */
  via?: WireJumpHost[];
}

/**
 * One bastion of `via` as it crosses to the worker: keyboard-interactive is a marker (the worker
 * asks the page with the bastion's `hop`); no security key (not yet).
 */
export interface WireJumpHost {
  target: { host: string; port: number };
  username: string;
  auth: Exclude<WireAuthMethod, { securityKey: unknown }>[];
  algorithms?: SshAlgorithms | 'default' | 'legacy';
  ciphers?: string;
  keepaliveMs?: number;
  timeoutMs?: number;
  /** The page answers this bastion's `hostkey` prompts (`hop` = its index). */
  verifyHostKey?: boolean;
}

/** Jump hosts of one session (ssh/jump.ts takes 1..4 as well). */
export const maxJumpHosts = 4;

function parseTerm(v: unknown): SshTermOptions {
  const t = rec(v, 'term');
  const out: SshTermOptions = {
    cols: int(t, 'cols', 1, limits.maxCols),
    rows: int(t, 'rows', 1, limits.maxRows),
  };
  const type = optional(t, 'type', (r, k) => str(r, k, 64));
  if (type !== undefined) out.type = type;
  if (t.env !== undefined) {
    const env = rec(t.env, 'term.env');
    const keys = Object.keys(env);
    if (keys.length > 64) fail('term.env: more than 64 variables');
    out.env = {};
    for (const k of keys) out.env[k] = str(env, k);
  }
  return out;
}

function parseAuthMethod(v: unknown): WireAuthMethod {
  const a = rec(v, 'auth');
  if (typeof a.password === 'string') return { password: str(a, 'password', limits.maxSecretText) };
  if (typeof a.privateKey === 'string') {
    const out: { privateKey: string; passphrase?: string } = {
      privateKey: str(a, 'privateKey', limits.maxSecretText),
    };
    const p = optional(a, 'passphrase', (r, k) => str(r, k, limits.maxSecretText));
    if (p !== undefined) out.passphrase = p;
    return out;
  }
  if (a.keyboardInteractive === true) return { keyboardInteractive: true };
  if (a.securityKey !== undefined) return { securityKey: parseSecurityKey(a.securityKey) };
  return fail('auth: password, privateKey, keyboardInteractive: true or securityKey expected');
}

function parseSecurityKey(v: unknown): SecurityKeyCredential {
  const c = rec(v, 'securityKey');
  const out: SecurityKeyCredential = {
    credentialId: str(c, 'credentialId', 1024),
    publicKey: str(c, 'publicKey', limits.maxText),
    rpId: str(c, 'rpId', 253),
  };
  const uv = optional(c, 'userVerification', (r, k) => str(r, k, 16));
  if (uv !== undefined) {
    if (uv !== 'required' && uv !== 'preferred' && uv !== 'discouraged') {
      fail('securityKey.userVerification: required, preferred or discouraged expected');
    }
    out.userVerification = uv;
  }
  const timeout = optional(c, 'timeoutMs', (r, k) => int(r, k, 1, 600_000));
  if (timeout !== undefined) out.timeoutMs = timeout;
  return out;
}

/** One method stays one method, a list stays a list (1..maxAuthMethods), as in SshSessionOptions. */
function parseAuth(v: unknown): WireSessionOptions['auth'] {
  if (!Array.isArray(v)) return parseAuthMethod(v);
  if (v.length === 0 || v.length > limits.maxAuthMethods) {
    fail(`auth: a list of 1..${limits.maxAuthMethods} methods expected`);
  }
  return v.map((m: unknown) => parseAuthMethod(m));
}

function parseAlgorithms(m: Rec, k: string): NonNullable<WireSessionOptions['algorithms']> {
  const v = m[k];
  if (v === 'default' || v === 'legacy') return v;
  const a = rec(v, k);
  const out: SshAlgorithms = {};
  for (const [kind, list] of Object.entries(a)) {
    if (kind !== 'kex' && kind !== 'hostKey' && kind !== 'cipher' && kind !== 'mac') {
      fail(`${k}.${kind}: not an algorithm kind`);
    }
    if (!Array.isArray(list) || list.length > 64) fail(`${k}.${kind}: not a list of <= 64 names`);
    out[kind] = (list as unknown[]).map((n) => {
      if (typeof n !== 'string' || n.length > 64) fail(`${k}.${kind}: not a name of <= 64 chars`);
      return n;
    });
  }
  return out;
}

function parseTarget(v: unknown, what: string): { host: string; port: number } {
  const t = rec(v, what);
  return { host: str(t, 'host', 255), port: int(t, 'port', 1, 65535) };
}

function parseJumpHost(v: unknown): WireJumpHost {
  const h = rec(v, 'via');
  const auth = parseAuth(h.auth);
  const methods = Array.isArray(auth) ? auth : [auth];
  const out: WireJumpHost = {
    target: parseTarget(h.target, 'via.target'),
    username: str(h, 'username', 255),
    auth: methods.map((m) =>
      'securityKey' in m
        ? fail('via.auth: a security key on a bastion is not supported by the worker')
        : m,
    ),
  };
  const algorithms = optional(h, 'algorithms', parseAlgorithms);
  if (algorithms !== undefined) out.algorithms = algorithms;
  const ciphers = optional(h, 'ciphers', (r, k) => str(r, k, 1024));
  if (ciphers !== undefined) out.ciphers = ciphers;
  const keepalive = optional(h, 'keepaliveMs', (r, k) => int(r, k, 0, 3_600_000));
  if (keepalive !== undefined) out.keepaliveMs = keepalive;
  const timeout = optional(h, 'timeoutMs', (r, k) => int(r, k, 1, 600_000));
  if (timeout !== undefined) out.timeoutMs = timeout;
  const verify = optional(h, 'verifyHostKey', bool);
  if (verify !== undefined) out.verifyHostKey = verify;
  return out;
}

export function parseSession(v: unknown): WireSessionOptions {
  const s = rec(v, 'session');
  const target = rec(s.target, 'target');
  const out: WireSessionOptions = {
    target: { host: str(target, 'host', 255), port: int(target, 'port', 1, 65535) },
    username: str(s, 'username', 255),
    auth: parseAuth(s.auth),
  };
  if (s.term !== undefined) out.term = parseTerm(s.term);
  const command = optional(s, 'command', (r, k) => str(r, k, limits.maxSecretText));
  if (command !== undefined) out.command = command;
  const keepalive = optional(s, 'keepaliveMs', (r, k) => int(r, k, 0, 3_600_000));
  if (keepalive !== undefined) out.keepaliveMs = keepalive;
  const timeout = optional(s, 'timeoutMs', (r, k) => int(r, k, 1, 600_000));
  if (timeout !== undefined) out.timeoutMs = timeout;
  const ciphers = optional(s, 'ciphers', (r, k) => str(r, k, 1024));
  if (ciphers !== undefined) out.ciphers = ciphers;
  const algorithms = optional(s, 'algorithms', parseAlgorithms);
  if (algorithms !== undefined) out.algorithms = algorithms;
  const verify = optional(s, 'verifyHostKey', bool);
  if (verify !== undefined) out.verifyHostKey = verify;
  if (s.via !== undefined) {
    if (!Array.isArray(s.via) || s.via.length === 0 || s.via.length > maxJumpHosts) {
      fail(`via: a list of 1..${maxJumpHosts} jump hosts expected`);
    }
    out.via = s.via.map((h: unknown) => parseJumpHost(h));
  }
  return out;
}
