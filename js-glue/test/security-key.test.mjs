// SPDX-License-Identifier: Apache-2.0
// enrollSecurityKey() and the signing of a security-key login (src/ssh/security-key.ts, issue #24)
// in Node against a software WebAuthn authenticator installed as navigator.credentials (node:crypto
// P-256, the formats a browser returns): the authorized_keys line and stored credential of an
// enrolment, a signature sshd-style verifiable over the data to sign, and each SecurityKeyError
// code: no WebAuthn, cancelled (NotAllowedError), rpId not valid for the page (SecurityError), the
// key's application differing from the rpId, presence not given, a non-ES256 credential.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { install, sha256, SoftAuthenticator, u8 } from './soft-authenticator.mjs';

const distDir = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'build',
  'js',
  'package',
  'dist',
);
const sk = await import(join(distDir, 'ssh', 'security-key.js'));
const wb = await import(join(distDir, 'ssh', 'webauthn-blob.js'));

/** sshd's check of a webauthn blob (ssh-ecdsa-sk.c) against an authorized_keys public key. */
function sshdAccepts(publicKeyLine, blob, signed) {
  const key = wb.parseSkEcdsaPublicKey(publicKeyLine);
  const kr = new wb.SshReader(key.blob);
  kr.string();
  kr.string();
  const point = kr.string();
  const r = new wb.SshReader(blob);
  assert.equal(r.text(), wb.WEBAUTHN_SIG_TYPE);
  const rs = new wb.SshReader(r.string());
  const [sr, ss] = [rs.string(), rs.string()];
  const off = 4 + wb.WEBAUTHN_SIG_TYPE.length + 4 + 8 + sr.length + ss.length;
  const flagsCounter = blob.subarray(off, off + 5);
  const t = new wb.SshReader(blob.subarray(off + 5));
  const origin = t.text();
  const clientData = t.string();
  const ext = t.string();
  const prefix = `{"type":"webauthn.get","challenge":"${Buffer.from(signed).toString('base64url')}","origin":"${origin}"`;
  if (!Buffer.from(clientData).toString().startsWith(prefix))
    return { ok: false, flags: flagsCounter[0] };
  const fix = (v) => Buffer.from(v).subarray(-32).toString('hex').padStart(64, '0');
  const pub = crypto.createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: Buffer.from(point.subarray(1, 33)).toString('base64url'),
      y: Buffer.from(point.subarray(33)).toString('base64url'),
    },
    format: 'jwk',
  });
  const ok = crypto.verify(
    'sha256',
    Buffer.concat([sha256(key.application), flagsCounter, ext, sha256(clientData)]),
    { key: pub, dsaEncoding: 'ieee-p1363' },
    Buffer.from(fix(sr) + fix(ss), 'hex'),
  );
  return { ok, flags: flagsCounter[0] };
}

const toSign = () => u8(crypto.randomBytes(180));

describe('security keys through a software WebAuthn authenticator', () => {
  afterEach(() => {
    delete globalThis.navigator;
  });

  test('enrol, then sign: sshd-style verification of the blob, flags UP|UV', async () => {
    const auth = new SoftAuthenticator();
    install(auth);
    const e = await sk.enrollSecurityKey({ rpId: 'localhost', user: 'alice' });
    assert.match(
      e.authorizedKeysLine,
      /^sk-ecdsa-sha2-nistp256@openssh\.com AAAA[A-Za-z0-9+/=]+ alice@localhost$/u,
    );
    assert.deepEqual(Object.keys(e.credential).sort(), ['credentialId', 'publicKey', 'rpId']);
    assert.equal(wb.parseSkEcdsaPublicKey(e.credential.publicKey).application, 'localhost');
    const data = toSign();
    const blob = await sk.signWithSecurityKey(e.credential, data);
    const v = sshdAccepts(e.authorizedKeysLine, blob, data);
    assert.ok(v.ok);
    assert.equal(v.flags, 0x05);
    assert.ok(!sshdAccepts(e.authorizedKeysLine, blob, toSign()).ok, 'other data must fail');
  });

  test('verifyRequired: the line carries verify-required and the credential asks for UV', async () => {
    install(new SoftAuthenticator());
    const e = await sk.enrollSecurityKey({ rpId: 'localhost', user: 'bob', verifyRequired: true });
    assert.match(e.authorizedKeysLine, /^verify-required sk-ecdsa-sha2-nistp256@openssh\.com /u);
    assert.equal(e.credential.userVerification, 'required');
  });

  test('typed errors', async () => {
    const auth = new SoftAuthenticator();
    install(auth);
    const e = await sk.enrollSecurityKey({ rpId: 'localhost', user: 'carol' });
    const code = async (p) => {
      try {
        await p;
      } catch (err) {
        assert.ok(err instanceof sk.SecurityKeyError, String(err));
        return err.code;
      }
      return 'no error';
    };
    // Presence not given: refused in the page, nothing would be sent.
    auth.presence = false;
    assert.equal(await code(sk.signWithSecurityKey(e.credential, toSign())), 'presence_not_given');
    auth.presence = true;
    // A credential the authenticator does not hold: NotAllowedError.
    const other = { ...e.credential, credentialId: Buffer.from('nope').toString('base64url') };
    assert.equal(await code(sk.signWithSecurityKey(other, toSign())), 'security_key_cancelled');
    // The stored key's application is not the rpId: refused before get().
    assert.equal(
      await code(sk.signWithSecurityKey({ ...e.credential, rpId: 'example.org' }, toSign())),
      'rp_id_mismatch',
    );
    // An rpId the page may not use (the browser's SecurityError; an IP is never a valid rpId).
    const ip = await sk.enrollSecurityKey({ rpId: '127.0.0.1', user: 'erin' });
    assert.equal(await code(sk.signWithSecurityKey(ip.credential, toSign())), 'rp_id_mismatch');
    // Ed25519 (COSE -8) has no OpenSSH webauthn form.
    auth.alg = -8;
    assert.equal(
      await code(sk.enrollSecurityKey({ rpId: 'localhost', user: 'dave' })),
      'security_key_unsupported',
    );
    // No WebAuthn at all (a worker, an insecure context).
    delete globalThis.navigator;
    assert.equal(
      await code(sk.signWithSecurityKey(e.credential, toSign())),
      'security_key_unavailable',
    );
  });
});
