// SPDX-License-Identifier: Apache-2.0
// The byte formats between WebAuthn and OpenSSH's security keys, with no browser API (golden-vector
// tested in Node): the sk-ecdsa-sha2-nistp256@openssh.com public key made from the ES256 COSE key
// of navigator.credentials.create(), and the webauthn-sk-ecdsa-sha2-nistp256@openssh.com
// signature made from an assertion of navigator.credentials.get() (OpenSSH's PROTOCOL.u2f and
// ssh-ecdsa-sk.c, >= 8.4):
//   string "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
//   string (mpint r, mpint s)        from the DER signature
//   byte   flags                     authenticatorData[32]
//   uint32 counter                   authenticatorData[33..37]
//   string origin                    the origin written in clientDataJSON
//   string clientDataJSON
//   string extensions                authenticatorData[37..] (empty unless flag ED)
// sshd recomputes what the authenticator signed, SHA256(rpId) || flags || counter || extensions
// || SHA256(clientDataJSON), with the key's application as rpId, and checks that clientDataJSON
// starts with {"type":"webauthn.get","challenge":"<base64url of the signed data>","origin":"<origin>".
// Every parser here is bounded and throws FormatError on anything else.

export const SK_ECDSA_KEY_TYPE = 'sk-ecdsa-sha2-nistp256@openssh.com';
export const WEBAUTHN_SIG_TYPE = 'webauthn-sk-ecdsa-sha2-nistp256@openssh.com';

/** authenticatorData flags (WebAuthn §6.1). */
export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_AT = 0x40;
export const FLAG_ED = 0x80;

/** A malformed WebAuthn or SSH structure. */
export class FormatError extends Error {}

const utf8 = new TextEncoder();

function u32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** b[i], 0 past the end (callers check lengths first). */
function byteAt(b: Uint8Array, i: number): number {
  return b[i] ?? 0;
}

/** Big-endian uint32 at b[i..i+4]. */
function be32(b: Uint8Array, i: number): number {
  return (
    ((byteAt(b, i) << 24) |
      (byteAt(b, i + 1) << 16) |
      (byteAt(b, i + 2) << 8) |
      byteAt(b, i + 3)) >>>
    0
  );
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** SSH `string`: uint32 length + bytes. */
export function sshString(v: Uint8Array | string): Uint8Array {
  const b = typeof v === 'string' ? utf8.encode(v) : v;
  return concat(u32(b.length), b);
}

/** SSH `mpint` of a non-negative big-endian integer (leading zeros dropped, 0x00 before a high bit). */
export function sshMpint(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return sshString((m[0] ?? 0) & 0x80 ? concat(new Uint8Array([0]), m) : m);
}

/** Reads SSH strings in sequence. */
export class SshReader {
  #at = 0;
  constructor(readonly bytes: Uint8Array) {}
  string(): Uint8Array {
    const b = this.bytes;
    if (this.#at + 4 > b.length) throw new FormatError('truncated SSH string length');
    const n = be32(b, this.#at);
    this.#at += 4;
    if (n > b.length - this.#at) throw new FormatError('SSH string longer than its data');
    const out = b.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
  text(): string {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.string());
  }
  get done(): boolean {
    return this.#at === this.bytes.length;
  }
}

// --- ECDSA DER signature (X9.62 Ecdsa-Sig-Value) --------------------------------------------------

/** r and s of a DER `SEQUENCE { INTEGER r, INTEGER s }` (a P-256 signature: at most 72 bytes). */
export function derSignatureToRs(der: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  if (der.length < 8 || der.length > 72 || der[0] !== 0x30 || der[1] !== der.length - 2) {
    throw new FormatError('not a DER ECDSA signature');
  }
  let at = 2;
  const integer = (): Uint8Array => {
    if (der[at] !== 0x02) throw new FormatError('DER signature: INTEGER expected');
    const n = der[at + 1] ?? 0;
    if (n < 1 || n > 33 || at + 2 + n > der.length)
      throw new FormatError('DER signature: bad INTEGER');
    const v = der.subarray(at + 2, at + 2 + n);
    if ((byteAt(v, 0) & 0x80) !== 0) throw new FormatError('DER signature: negative INTEGER');
    at += 2 + n;
    return v;
  };
  const r = integer();
  const s = integer();
  if (at !== der.length) throw new FormatError('DER signature: trailing bytes');
  return { r, s };
}

// --- authenticatorData ------------------------------------------------------------------------------

export interface AuthenticatorData {
  rpIdHash: Uint8Array;
  flags: number;
  counter: number;
  /** The attested credential data (create() only): credential id and its COSE public key. */
  credentialId?: Uint8Array;
  cosePublicKey?: Uint8Array;
  /** The CBOR extension outputs (flag ED), as bytes. */
  extensions: Uint8Array;
}

export function parseAuthenticatorData(ad: Uint8Array): AuthenticatorData {
  if (ad.length < 37) throw new FormatError('authenticatorData shorter than 37 bytes');
  const flags = byteAt(ad, 32);
  const counter = be32(ad, 33);
  const out: AuthenticatorData = {
    rpIdHash: ad.subarray(0, 32),
    flags,
    counter,
    extensions: new Uint8Array(0),
  };
  let at = 37;
  if (flags & FLAG_AT) {
    if (ad.length < at + 18) throw new FormatError('attested credential data truncated');
    const idLen = (byteAt(ad, at + 16) << 8) | byteAt(ad, at + 17);
    at += 18;
    if (ad.length < at + idLen) throw new FormatError('credential id truncated');
    out.credentialId = ad.subarray(at, at + idLen);
    at += idLen;
    const keyEnd = at + cborItemLength(ad, at);
    out.cosePublicKey = ad.subarray(at, keyEnd);
    at = keyEnd;
  }
  if (flags & FLAG_ED) out.extensions = ad.subarray(at);
  else if (at !== ad.length)
    throw new FormatError('authenticatorData has trailing bytes without flag ED');
  return out;
}

// --- CBOR (the subset of COSE keys: maps, integers, byte/text strings) ------------------------------

type Cbor = number | Uint8Array | string | Map<Cbor, Cbor> | Cbor[] | boolean | null;

function cborHead(b: Uint8Array, at: number): { major: number; value: number; next: number } {
  if (at >= b.length) throw new FormatError('CBOR truncated');
  const ib = byteAt(b, at);
  const major = ib >> 5;
  const info = ib & 31;
  if (info < 24) return { major, value: info, next: at + 1 };
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : 0;
  if (size === 0 || at + 1 + size > b.length) throw new FormatError('CBOR: unsupported length');
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + byteAt(b, at + 1 + i);
  return { major, value, next: at + 1 + size };
}

function cborDecode(b: Uint8Array, at: number, depth: number): { v: Cbor; next: number } {
  if (depth > 8) throw new FormatError('CBOR nested too deep');
  const { major, value, next } = cborHead(b, at);
  switch (major) {
    case 0:
      return { v: value, next };
    case 1:
      return { v: -1 - value, next };
    case 2:
    case 3: {
      if (next + value > b.length) throw new FormatError('CBOR string truncated');
      const s = b.subarray(next, next + value);
      return { v: major === 2 ? s : new TextDecoder().decode(s), next: next + value };
    }
    case 4: {
      if (value > 64) throw new FormatError('CBOR array too long');
      const arr: Cbor[] = [];
      let p = next;
      for (let i = 0; i < value; i++) {
        const item = cborDecode(b, p, depth + 1);
        arr.push(item.v);
        p = item.next;
      }
      return { v: arr, next: p };
    }
    case 5: {
      if (value > 64) throw new FormatError('CBOR map too long');
      const map = new Map<Cbor, Cbor>();
      let p = next;
      for (let i = 0; i < value; i++) {
        const k = cborDecode(b, p, depth + 1);
        const v = cborDecode(b, k.next, depth + 1);
        map.set(k.v, v.v);
        p = v.next;
      }
      return { v: map, next: p };
    }
    case 7:
      if (value === 20 || value === 21) return { v: value === 21, next };
      if (value === 22) return { v: null, next };
      throw new FormatError('CBOR: unsupported simple value');
    default:
      throw new FormatError('CBOR: unsupported type');
  }
}

function cborItemLength(b: Uint8Array, at: number): number {
  return cborDecode(b, at, 0).next - at;
}

/** The uncompressed P-256 point (0x04 || x || y) of an ES256 COSE_Key (kty 2, alg -7, crv 1). */
export function coseEs256Point(cose: Uint8Array): Uint8Array {
  const { v, next } = cborDecode(cose, 0, 0);
  if (!(v instanceof Map) || next !== cose.length)
    throw new FormatError('COSE key: not a CBOR map');
  const x = v.get(-2);
  const y = v.get(-3);
  if (v.get(1) !== 2 || v.get(3) !== -7 || v.get(-1) !== 1) {
    throw new FormatError('COSE key: not ES256 on P-256 (only ES256 has an OpenSSH webauthn form)');
  }
  if (
    !(x instanceof Uint8Array) ||
    !(y instanceof Uint8Array) ||
    x.length !== 32 ||
    y.length !== 32
  ) {
    throw new FormatError('COSE key: bad coordinates');
  }
  return concat(new Uint8Array([4]), x, y);
}

// --- OpenSSH public key -----------------------------------------------------------------------------

/** sk-ecdsa-sha2-nistp256@openssh.com blob: type, "nistp256", point, application (= rpId). */
export function skEcdsaPublicKeyBlob(point: Uint8Array, application: string): Uint8Array {
  if (point.length !== 65 || point[0] !== 4)
    throw new FormatError('not an uncompressed P-256 point');
  return concat(
    sshString(SK_ECDSA_KEY_TYPE),
    sshString('nistp256'),
    sshString(point),
    sshString(application),
  );
}

/** An sk-ecdsa public key from "sk-ecdsa-sha2-nistp256@openssh.com AAAA... [comment]" (options
 *  in front allowed) or from the base64 blob alone. */
export function parseSkEcdsaPublicKey(text: string): { blob: Uint8Array; application: string } {
  const words = text.trim().split(/\s+/u);
  const i = words.indexOf(SK_ECDSA_KEY_TYPE);
  const b64 = i >= 0 ? words[i + 1] : words.length === 1 ? words[0] : undefined;
  if (b64 === undefined || !/^[A-Za-z0-9+/]+={0,2}$/u.test(b64) || b64.length > 2048) {
    throw new FormatError(`not an ${SK_ECDSA_KEY_TYPE} public key`);
  }
  const blob = fromBase64(b64);
  const r = new SshReader(blob);
  if (r.text() !== SK_ECDSA_KEY_TYPE || r.text() !== 'nistp256') {
    throw new FormatError(`not an ${SK_ECDSA_KEY_TYPE} public key`);
  }
  const point = r.string();
  const application = r.text();
  if (point.length !== 65 || point[0] !== 4 || !r.done)
    throw new FormatError('bad sk-ecdsa key blob');
  return { blob, application };
}

/** The authorized_keys line of a key blob. */
export function authorizedKeysLine(
  blob: Uint8Array,
  o: { verifyRequired?: boolean; comment?: string } = {},
): string {
  const comment = o.comment?.replace(/[\r\n]/gu, ' ').trim();
  return (
    (o.verifyRequired ? 'verify-required ' : '') +
    `${SK_ECDSA_KEY_TYPE} ${toBase64(blob)}` +
    (comment ? ` ${comment}` : '')
  );
}

// --- the signature --------------------------------------------------------------------------------

export interface Assertion {
  authenticatorData: Uint8Array;
  clientDataJSON: Uint8Array;
  /** DER ECDSA signature, as navigator.credentials.get() returns it. */
  signature: Uint8Array;
}

/**
 * The webauthn-sk-ecdsa-sha2-nistp256@openssh.com signature blob of an assertion over `signed`
 * (the data libssh2 asked to sign, given to get() as the challenge). Checks what sshd will check
 * of clientDataJSON, so a mismatch fails here with a clear message rather than as a refusal.
 */
export function webauthnSignatureBlob(a: Assertion, signed: Uint8Array): Uint8Array {
  const ad = parseAuthenticatorData(a.authenticatorData);
  const client = new TextDecoder('utf-8', { fatal: true }).decode(a.clientDataJSON);
  let parsed: unknown;
  try {
    parsed = JSON.parse(client);
  } catch {
    throw new FormatError('clientDataJSON is not JSON');
  }
  const origin = (parsed as { origin?: unknown }).origin;
  if (typeof origin !== 'string' || origin.includes('"')) {
    throw new FormatError('clientDataJSON has no usable origin');
  }
  const prefix =
    `{"type":"webauthn.get","challenge":"${toBase64Url(signed)}","origin":"` + origin + '"';
  if (!client.startsWith(prefix)) {
    throw new FormatError(
      'clientDataJSON does not start as OpenSSH expects (type, challenge, origin)',
    );
  }
  const { r, s } = derSignatureToRs(a.signature);
  return concat(
    sshString(WEBAUTHN_SIG_TYPE),
    sshString(concat(sshMpint(r), sshMpint(s))),
    new Uint8Array([ad.flags]),
    u32(ad.counter),
    sshString(origin),
    sshString(a.clientDataJSON),
    sshString(ad.extensions),
  );
}

// --- base64 ---------------------------------------------------------------------------------------

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw new FormatError('bad base64');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64Url(b: Uint8Array): string {
  return toBase64(b).replace(/\+/gu, '-').replace(/\//gu, '_').replace(/=+$/u, '');
}

export function fromBase64Url(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/u.test(s)) throw new FormatError('bad base64url');
  const b64 = s.replace(/-/gu, '+').replace(/_/gu, '/');
  return fromBase64(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
}
