// SPDX-License-Identifier: Apache-2.0
// The one JWT minter of the JS tools: HS256 tokens for mana-gateway ([auth] jwt_secret_file),
// base64url(header).base64url(claims).base64url(HMAC-SHA-256 over the key file's bytes), and the
// keys for it. Python twin: tokens.py. Keys come from the CSPRNG; nothing here logs one.
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';

/** A fresh random key: 48 base64url characters (36 random bytes; the gateway needs >= 32). */
export function newSecret() {
  return randomBytes(36).toString('base64url');
}

/** Writes `secret` to `path` with mode 0600 (also when the file existed) and returns `path`. */
export function writeSecret(path, secret) {
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/**
 * An HS256 JWT over `claims`, signed with `secret`. `exp` defaults to now + 300 s;
 * `{ exp: null }` mints a token without `exp`.
 * Claims the gateway reads: sub (required), exp, nbf, targets (`host:port` allowlist), iat.
 */
export function mintJwt(secret, claims = {}) {
  const all = { exp: Math.floor(Date.now() / 1000) + 300, ...claims };
  if (all.exp === null) delete all.exp;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(all)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
