// SPDX-License-Identifier: Apache-2.0
// The bounds of the page <-> session worker messages and the typed field readers that
// protocol.ts checks every message with: each failure is a WorkerProtocolError naming the field.
import { ProtocolError, nameErrorClasses, type ManaErrorInit } from '../errors.js';
import type { HostKeyInfo } from '../ssh/errors.js';
import type { WireFailure } from './protocol.js';

/** Bounds of what one message may carry. */
export const limits = {
  /** Input bytes in one `input` message. */
  maxInputBytes: 1024 * 1024,
  /** Characters of a serialized screen (scrollback 1 000 lines of 500 columns, with SGR). */
  maxScreenChars: 16 * 1024 * 1024,
  /** Length of ids, names, reasons and text fields. */
  maxText: 4096,
  /** Length of a private key or password. */
  maxSecretText: 64 * 1024,
  /** Terminal columns / rows. */
  maxCols: 4096,
  maxRows: 4096,
  /** Auth methods of one `open` (tried in order, as in-page). */
  maxAuthMethods: 8,
  /** Prompts of one keyboard-interactive round (`kbd`) and answers of one `kbd-answer`. */
  maxKbdPrompts: 16,
  /** Bytes a security key signs (`sign`: the session id and the USERAUTH_REQUEST, ~300). */
  maxSignBytes: 16 * 1024,
  /** Bytes of a webauthn signature blob (`sign-answer`: clientDataJSON and origin inside). */
  maxSignatureBytes: 16 * 1024,
  /** Grace a page may ask for, ms (the browser keeps a worker ~30 s after its last page). */
  minGraceMs: 100,
  maxGraceMs: 5 * 60 * 1000,
} as const;

/**
 * A message that failed validation (a ProtocolError: a bug or a hostile peer). `code` is
 * `version` for a message of another protocol version, else `protocol`.
 */
export class WorkerProtocolError extends ProtocolError {
  constructor(message: string, init: ManaErrorInit = { code: 'protocol', origin: 'remote' }) {
    super(message, init);
  }
}
nameErrorClasses({ WorkerProtocolError });

export type Rec = Record<string, unknown>;

export function fail(message: string): never {
  throw new WorkerProtocolError(message);
}

export function str(m: Rec, k: string, max: number = limits.maxText): string {
  const v = m[k];
  if (typeof v !== 'string' || v.length > max) fail(`${k}: not a string of <= ${max} chars`);
  return v;
}

export function int(m: Rec, k: string, min: number, max: number): number {
  const v = m[k];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(`${k}: not an integer in ${min}..${max}`);
  }
  return v;
}

export function bool(m: Rec, k: string): boolean {
  const v = m[k];
  if (typeof v !== 'boolean') fail(`${k}: not a boolean`);
  return v;
}

export function rec(v: unknown, what: string): Rec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what}: not an object`);
  return v as Rec;
}

export function buffer(m: Rec, k: string, max: number): ArrayBuffer {
  const v = m[k];
  if (!(v instanceof ArrayBuffer) || v.byteLength > max) {
    fail(`${k}: not an ArrayBuffer of <= ${max} bytes`);
  }
  return v;
}

export function optional<T>(m: Rec, k: string, read: (m: Rec, k: string) => T): T | undefined {
  return m[k] === undefined ? undefined : read(m, k);
}

/** A list of at most `max` strings of at most `maxChars` each. */
export function strings(v: unknown, what: string, max: number, maxChars: number): string[] {
  if (!Array.isArray(v) || v.length > max) fail(`${what}: not a list of <= ${max} strings`);
  return v.map((x: unknown) => {
    // The values are not in the message: they may be secrets (keyboard-interactive answers).
    if (typeof x !== 'string' || x.length > maxChars) {
      fail(`${what}: not a list of strings of <= ${maxChars} chars`);
    }
    return x;
  });
}

export function parseHostKeyInfo(v: unknown, what: string, known: readonly string[]): HostKeyInfo {
  const i = rec(v, what);
  const k = str(i, 'known', 16);
  if (!known.includes(k)) fail(`${what}.known: unknown`);
  return {
    host: str(i, 'host', 255),
    port: int(i, 'port', 1, 65535),
    algorithm: str(i, 'algorithm', 64),
    fingerprint: str(i, 'fingerprint', 256),
    known: k as HostKeyInfo['known'],
  };
}

export function parseFailure(v: unknown): WireFailure {
  const f = rec(v, 'failure');
  const origin = str(f, 'origin', 8);
  if (origin !== 'local' && origin !== 'remote') fail('failure.origin: unknown');
  const out: WireFailure = {
    name: str(f, 'name', 64),
    code: str(f, 'code', 64),
    origin,
    message: str(f, 'message'),
  };
  const sshCode = optional(f, 'sshCode', (r, k) => int(r, k, -(2 ** 31), 2 ** 31));
  if (sshCode !== undefined) out.sshCode = sshCode;
  if (f.methods !== undefined) out.methods = strings(f.methods, 'failure.methods', 16, 64);
  if (f.hostKey !== undefined) {
    out.hostKey = parseHostKeyInfo(f.hostKey, 'failure.hostKey', ['new', 'match', 'changed']);
  }
  const wsCode = optional(f, 'wsCode', (r, k) => int(r, k, 0, 65535));
  if (wsCode !== undefined) out.wsCode = wsCode;
  const appCode = optional(f, 'appCode', (r, k) => int(r, k, 0, 65535));
  if (appCode !== undefined) out.appCode = appCode;
  return out;
}
