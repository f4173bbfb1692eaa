// SPDX-License-Identifier: Apache-2.0
// The one JWT minter of the JS tools: HS256 tokens for mana-gateway ([auth] jwt_secret_file),
// base64url(header).base64url(claims).base64url(HMAC-SHA-256 over the key file's bytes),
// RS256/ES256/EdDSA tokens with a `kid` ([auth] jwks_file), and the keys for them (node:crypto
// only). Python twin: tokens.py. Keys come from the CSPRNG; nothing here logs one.
//
//   const key = newKeyPair('ES256');
//   writeJwks(path, { 'ec-2025': key }); // the public halves only
//   const tok = mintJwt(key, { sub: 'alice' }, { kid: 'ec-2025' });
import { createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';

const KEY_TYPES = {
  RS256: ['rsa', { modulusLength: 2048 }],
  ES256: ['ec', { namedCurve: 'P-256' }],
  EdDSA: ['ed25519', {}],
};

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
 * A fresh key pair for `alg`: RSA 2048 (RS256), EC P-256 (ES256), Ed25519 (EdDSA), as
 * `{ alg, privateKey, publicKey }` (node:crypto KeyObjects). mintJwt() signs with it.
 */
export function newKeyPair(alg) {
  const type = KEY_TYPES[alg];
  if (!type)
    throw new Error(`newKeyPair: ${alg} is not one of ${Object.keys(KEY_TYPES).join(', ')}`);
  return { alg, ...generateKeyPairSync(type[0], type[1]) };
}

/** The public JWK (RFC 7517) of a newKeyPair() result, with `kid`; never the private part. */
export function publicJwk(keyPair, kid) {
  return { ...keyPair.publicKey.export({ format: 'jwk' }), kid };
}

/** The SubjectPublicKeyInfo PEM of a newKeyPair() result (tests forge HS256 tokens with it). */
export function publicPem(keyPair) {
  return keyPair.publicKey.export({ type: 'spki', format: 'pem' });
}

/** Writes the JWKS `{"keys": [...]}` of `keys` (`{ kid: keyPair }`) to `path`; returns `path`. */
export function writeJwks(path, keys) {
  const doc = { keys: Object.entries(keys).map(([kid, k]) => publicJwk(k, kid)) };
  writeFileSync(path, `${JSON.stringify(doc, null, 1)}\n`);
  return path;
}

/**
 * A JWT over `claims`. `secret` a string: HMAC-SHA-256 (HS256). `secret` a newKeyPair() result:
 * signed with its private key under its algorithm (RS256, ES256 as R || S, EdDSA).
 * `options.kid` goes into the header when given (the gateway picks a JWKS key by kid).
 * `exp` defaults to now + 300 s; `{ exp: null }` mints a token without `exp`.
 * Claims the gateway reads: sub (required), exp, nbf, iss, aud, targets (`host:port`
 * allowlist), iat.
 */
export function mintJwt(secret, claims = {}, options = {}) {
  const all = { exp: Math.floor(Date.now() / 1000) + 300, ...claims };
  if (all.exp === null) delete all.exp;
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const alg = typeof secret === 'string' ? 'HS256' : secret.alg;
  const header = { alg, typ: 'JWT', ...(options.kid === undefined ? {} : { kid: options.kid }) };
  const body = `${b64(header)}.${b64(all)}`;
  if (alg === 'HS256') {
    return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  }
  const key = { key: secret.privateKey, dsaEncoding: 'ieee-p1363' };
  const sig = sign(alg === 'EdDSA' ? null : 'sha256', Buffer.from(body), key);
  return `${body}.${sig.toString('base64url')}`;
}
