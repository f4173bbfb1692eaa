// SPDX-License-Identifier: Apache-2.0
// The byte formats of security-key logins (src/ssh/webauthn-blob.ts, issue #24), in Node without
// a browser: golden vectors of the webauthn signature blob and the authorized_keys line from a
// fixed P-256 key; the same assembly signed by a software authenticator (node:crypto) and checked
// the way sshd checks it; and offline by OpenSSH itself, `ssh-keygen -Y check-novalidate` on an
// SSHSIG whose signature is such a blob. Malformed inputs fail with FormatError.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const distDir = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'build',
  'js',
  'package',
  'dist',
);

const wb = await import(join(distDir, 'ssh', 'webauthn-blob.js'));
const hex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');
const utf8 = (s) => new Uint8Array(Buffer.from(s));

const golden = {
  // A fixed P-256 key (JWK), generated once for these vectors.
  jwk: {
    kty: 'EC',
    crv: 'P-256',
    x: 'S4zMaBH8q-Rv3N_4sLojjdMkFFRaw-ZMbVJEm7lg81I',
    y: 'MOphOr81l32q-1vuX4JyrwBj7pynnIeSyM1__CmYPZk',
    d: 'q0yIndB5v00vs3CeW8eQ4eMIlajJjw6TV55Eu8yQImw',
  },
  rpId: 'localhost',
  // What libssh2 asks to sign (session id of 0xa5 bytes, then the start of a USERAUTH_REQUEST).
  signed:
    '00000020a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a532000000086d616e612d6532' +
    '650000000e7373682d636f6e6e656374696f6e000000097075626c69636b65790100000022736b2d65636473612d7368' +
    '61322d6e69737470323536406f70656e7373682e636f6d',
  authenticatorData: '49960de5880e8c687434170f6476605b8fe4aeb9a28632c7995cf3ba831d97630500000007',
  clientDataJSON:
    '{"type":"webauthn.get","challenge":"AAAAIKWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlMgAAAAhtYW5hLWUyZQAAAA5zc2gtY29ubmVjdGlvbgAAAAlwdWJsaWNrZXkBAAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20","origin":"http://localhost:8080","crossOrigin":false}',
  // DER ECDSA signature over authenticatorData || SHA256(clientDataJSON) (r has a 0x00 pad).
  der:
    '3045022074c3af3ab45ea5e668d93eb13d4cc9d124961652c0ae73ba0e26bf33124ac7e102210088a0649ff2f9b42fbd' +
    '9b2dfc2d8e604a8d3e509beba5cc5f3f06f7e646be1d97',
  // The webauthn-sk-ecdsa-sha2-nistp256@openssh.com blob, assembled independently (by hand).
  blob:
    '0000002b776562617574686e2d736b2d65636473612d736861322d6e69737470323536406f70656e7373682e636f6d00' +
    '0000490000002074c3af3ab45ea5e668d93eb13d4cc9d124961652c0ae73ba0e26bf33124ac7e1000000210088a0649f' +
    'f2f9b42fbd9b2dfc2d8e604a8d3e509beba5cc5f3f06f7e646be1d97050000000700000015687474703a2f2f6c6f6361' +
    '6c686f73743a38303830000000fa7b2274797065223a22776562617574686e2e676574222c226368616c6c656e676522' +
    '3a2241414141494b576c7061576c7061576c7061576c7061576c7061576c7061576c7061576c7061576c7061576c7061' +
    '576c4d67414141416874595735684c5755795a5141414141357a6332677459323975626d566a64476c76626741414141' +
    '6c7764574a7361574e725a586b4241414141496e4e724c57566a5a484e684c584e6f59544974626d6c7a644841794e54' +
    '5a416233426c626e4e7a6143356a623230222c226f726967696e223a22687474703a2f2f6c6f63616c686f73743a3830' +
    '3830222c2263726f73734f726967696e223a66616c73657d00000000',
  // The ES256 COSE_Key of the credential: {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
  cose:
    'a50102032620012158204b8ccc6811fcabe46fdcdff8b0ba238dd32414545ac3e64c6d52449bb960f35222582030ea61' +
    '3abf35977daafb5bee5f8272af0063ee9ca79c8792c8cd7ffc29983d99',
  keyLine:
    'sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBEuMzGgR/Kvkb9zf+LC6I43TJBRUWsPmTG1SRJu5YPNSMOphOr81l32q+1vuX4JyrwBj7pynnIeSyM1//CmYPZkAAAAJbG9jYWxob3N0',
};

const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const key = crypto.createPrivateKey({ key: golden.jwk, format: 'jwk' });

/** A software authenticator: signs `challenge` as navigator.credentials.get() would. */
function assertion(
  challenge,
  { flags = 0x05, counter = 1, origin = 'http://localhost:8080' } = {},
) {
  const clientDataJSON = utf8(
    `{"type":"webauthn.get","challenge":"${Buffer.from(challenge).toString('base64url')}",` +
      `"origin":"${origin}","crossOrigin":false}`,
  );
  const counterBytes = Buffer.alloc(4);
  counterBytes.writeUInt32BE(counter);
  const authenticatorData = new Uint8Array(
    Buffer.concat([sha256(golden.rpId), Buffer.from([flags]), counterBytes]),
  );
  const signature = new Uint8Array(
    crypto.sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), {
      key,
      dsaEncoding: 'der',
    }),
  );
  return { authenticatorData, clientDataJSON, signature };
}

/** What sshd does with the blob (ssh-ecdsa-sk.c, ssh_ecdsa_sk_verify), in node:crypto. */
function sshdVerifies(blob, signed, application) {
  const r = new wb.SshReader(blob);
  assert.equal(r.text(), wb.WEBAUTHN_SIG_TYPE);
  const rs = new wb.SshReader(r.string());
  const sigR = rs.string();
  const sigS = rs.string();
  assert.ok(rs.done);
  // flags and counter follow the (r, s) string directly.
  const off = 4 + wb.WEBAUTHN_SIG_TYPE.length + 4 + (8 + sigR.length + sigS.length);
  const flags = blob[off];
  const counter = blob.subarray(off + 1, off + 5);
  const tail = new wb.SshReader(blob.subarray(off + 5));
  const origin = tail.text();
  const clientData = tail.string();
  const extensions = tail.string();
  assert.ok(tail.done);
  const prefix = `{"type":"webauthn.get","challenge":"${Buffer.from(signed).toString('base64url')}","origin":"${origin}"`;
  if (!Buffer.from(clientData).toString().startsWith(prefix)) return false;
  const p1363 = Buffer.concat(
    [
      Buffer.from(sigR).subarray(-32).toString('hex').padStart(64, '0'),
      Buffer.from(sigS).subarray(-32).toString('hex').padStart(64, '0'),
    ].map((h) => Buffer.from(h, 'hex')),
  );
  const data = Buffer.concat([
    sha256(application),
    Buffer.from([flags]),
    counter,
    extensions,
    sha256(clientData),
  ]);
  return crypto.verify(
    'sha256',
    data,
    { key: crypto.createPublicKey(key), dsaEncoding: 'ieee-p1363' },
    p1363,
  );
}

describe('webauthn signature blob and sk-ecdsa public key', () => {
  test('golden vector: the blob of a fixed assertion', () => {
    const blob = wb.webauthnSignatureBlob(
      {
        authenticatorData: hex(golden.authenticatorData),
        clientDataJSON: utf8(golden.clientDataJSON),
        signature: hex(golden.der),
      },
      hex(golden.signed),
    );
    assert.equal(toHex(blob), golden.blob);
    assert.ok(sshdVerifies(blob, hex(golden.signed), golden.rpId));
  });

  test('golden vector: the authorized_keys line from the COSE key', () => {
    const blob = wb.skEcdsaPublicKeyBlob(wb.coseEs256Point(hex(golden.cose)), golden.rpId);
    assert.equal(`${wb.SK_ECDSA_KEY_TYPE} ${wb.toBase64(blob)}`, golden.keyLine);
    assert.equal(
      wb.authorizedKeysLine(blob, { verifyRequired: true, comment: 'alice@localhost' }),
      `verify-required ${golden.keyLine} alice@localhost`,
    );
    const parsed = wb.parseSkEcdsaPublicKey(`verify-required ${golden.keyLine} alice@localhost`);
    assert.equal(parsed.application, 'localhost');
    assert.equal(toHex(parsed.blob), toHex(blob));
  });

  test('attested credential data of create(): credential id and COSE key', () => {
    const id = crypto.randomBytes(48);
    const cose = Buffer.from(golden.cose, 'hex');
    const ad = Buffer.concat([
      sha256(golden.rpId),
      Buffer.from([0x45, 0, 0, 0, 0]), // UP | UV | AT, counter 0
      Buffer.alloc(16), // AAGUID
      Buffer.from([0, id.length]),
      id,
      cose,
    ]);
    const parsed = wb.parseAuthenticatorData(new Uint8Array(ad));
    assert.equal(toHex(parsed.credentialId), id.toString('hex'));
    assert.equal(toHex(parsed.cosePublicKey), golden.cose);
    assert.equal(parsed.flags, 0x45);
  });

  test('a software authenticator: sshd-style verification of many assertions', () => {
    for (let i = 0; i < 50; i++) {
      const signed = crypto.randomBytes(100 + i);
      const blob = wb.webauthnSignatureBlob(assertion(signed, { counter: i }), signed);
      assert.ok(sshdVerifies(blob, signed, golden.rpId), `assertion ${i}`);
      assert.ok(!sshdVerifies(blob, signed, 'example.org'), 'another application must fail');
    }
  });

  test('malformed inputs fail with FormatError', () => {
    const signed = crypto.randomBytes(64);
    const a = assertion(signed);
    // A challenge that is not the data to sign.
    assert.throws(() => wb.webauthnSignatureBlob(a, crypto.randomBytes(64)), wb.FormatError);
    // A truncated DER signature.
    assert.throws(
      () => wb.webauthnSignatureBlob({ ...a, signature: a.signature.subarray(0, 20) }, signed),
      wb.FormatError,
    );
    // create() data in an assertion: trailing bytes without flag ED.
    assert.throws(
      () =>
        wb.webauthnSignatureBlob(
          { ...a, authenticatorData: new Uint8Array([...a.authenticatorData, 0]) },
          signed,
        ),
      wb.FormatError,
    );
    // An Ed25519 COSE key (alg -8) has no webauthn form in OpenSSH.
    const ed = hex('a4010103272006215820' + '11'.repeat(32));
    assert.throws(() => wb.coseEs256Point(ed), wb.FormatError);
    assert.throws(
      () => wb.parseSkEcdsaPublicKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA'),
      wb.FormatError,
    );
  });

  test('extensions (flag ED) go into the blob and into what is signed', () => {
    const signed = crypto.randomBytes(80);
    const ext = Buffer.from('a16b6372656450726f7465637402', 'hex'); // {"credProtect": 2}
    const a = assertion(signed, { flags: 0x85 });
    const ad = Buffer.concat([Buffer.from(a.authenticatorData), ext]);
    const clientHash = sha256(a.clientDataJSON);
    const sig = crypto.sign('sha256', Buffer.concat([ad, clientHash]), { key, dsaEncoding: 'der' });
    const blob = wb.webauthnSignatureBlob(
      {
        authenticatorData: new Uint8Array(ad),
        clientDataJSON: a.clientDataJSON,
        signature: new Uint8Array(sig),
      },
      signed,
    );
    assert.ok(blob.length > 0 && toHex(blob).endsWith(ext.toString('hex')));
    assert.ok(sshdVerifies(blob, signed, golden.rpId));
  });
});

// An SSHSIG (OpenSSH's PROTOCOL.sshsig) whose signature is a webauthn blob: the message's
// SHA-512 is wrapped as "SSHSIG" || namespace || reserved || hash || H(message), that wrapper is
// the WebAuthn challenge, and ssh-keygen verifies the result with OpenSSH's own sk code.
const sshKeygen = spawnSync('ssh-keygen', ['-?']).error ? null : 'ssh-keygen';

describe(
  'OpenSSH checks the same assembly offline',
  { skip: sshKeygen === null && 'no ssh-keygen' },
  () => {
    const str = (v) => wb.sshString(typeof v === 'string' ? v : new Uint8Array(v));
    const sshsig = (message, namespace, corrupt = false) => {
      const h = crypto.createHash('sha512').update(message).digest();
      const toSign = wb.concat(utf8('SSHSIG'), str(namespace), str(''), str('sha512'), str(h));
      const blob = wb.webauthnSignatureBlob(assertion(toSign), toSign);
      if (corrupt) blob[blob.length - 20] ^= 1; // inside clientDataJSON
      const keyBlob = wb.parseSkEcdsaPublicKey(golden.keyLine).blob;
      const sig = wb.concat(
        utf8('SSHSIG'),
        new Uint8Array([0, 0, 0, 1]),
        str(keyBlob),
        str(namespace),
        str(''),
        str('sha512'),
        str(blob),
      );
      const b64 = wb.toBase64(sig).replace(/.{1,70}/gu, '$&\n');
      return `-----BEGIN SSH SIGNATURE-----\n${b64}-----END SSH SIGNATURE-----\n`;
    };
    const check = (armored, message, namespace) => {
      const dir = mkdtempSync(join(tmpdir(), 'mana-sshsig-'));
      try {
        writeFileSync(join(dir, 'msg.sig'), armored);
        return spawnSync(
          sshKeygen,
          ['-Y', 'check-novalidate', '-n', namespace, '-s', join(dir, 'msg.sig')],
          {
            input: message,
            encoding: 'utf8',
          },
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };

    test('ssh-keygen -Y check-novalidate accepts it, and refuses a changed one', () => {
      const message = 'mana-websocket security key, checked offline\n';
      const good = check(sshsig(message, 'file'), message, 'file');
      assert.equal(good.status, 0, good.stdout + good.stderr);
      assert.match(good.stdout, /Good "file" signature with ECDSA-SK key SHA256:/u);
      const bad = check(sshsig(message, 'file', true), message, 'file');
      assert.notEqual(bad.status, 0);
      const other = check(sshsig(message, 'file'), message + 'x', 'file');
      assert.notEqual(other.status, 0);
    });
  },
);
