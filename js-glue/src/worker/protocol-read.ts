// SPDX-License-Identifier: Apache-2.0
// The bounds of the page <-> session worker messages and the typed field readers that
// protocol.ts checks every message with: each failure is a WorkerProtocolError naming the field.
import { ProtocolError, nameErrorClasses, type ManaErrorInit } from '../errors.js';

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
