// SPDX-License-Identifier: Apache-2.0
// Attach secrets: 256 bits from crypto.getRandomValues, hex encoded; compared in constant time (the
// time of a comparison does not depend on where the strings differ, only on their length, which
// is fixed).

/** Bytes of entropy in a secret (>= 128 bits). */
export const SECRET_BYTES = 32;

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** A new random secret (64 hex characters). Throws without crypto.getRandomValues. */
export function newSecret(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c === undefined || typeof c.getRandomValues !== 'function') {
    throw new Error('crypto.getRandomValues is unavailable: no attach secret can be made');
  }
  return hex(c.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** A new random session id (128 bits, hex): not a secret, only a name. */
export function newSessionId(): string {
  return hex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * Constant-time equality of `given` against `expected`: every character of `expected` is looked
 * at, whatever `given` is; a length mismatch is folded into the result, not returned early.
 */
export function secretsEqual(given: string, expected: string): boolean {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    diff |= (given.charCodeAt(i % Math.max(given.length, 1)) ^ expected.charCodeAt(i)) | 0;
  }
  return diff === 0 && given.length > 0;
}
