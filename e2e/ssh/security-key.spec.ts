// SPDX-License-Identifier: Apache-2.0
// Issue #24 in Chromium: a security key logs in to a real sshd through WebAuthn, with Chromium's
// virtual authenticator (CDP WebAuthn domain: ctap2, user verification, automatic presence) and
// the test page served at http://localhost (an IP address is not a valid rpId). Each test has its
// own stock sshd (tools/devkit/sshd.mjs, no change to its algorithm settings): enrollSecurityKey()
// makes the credential, its line is appended to that sshd's authorized_keys, and
// `auth: { securityKey }` logs in. The refusals each give their typed error: presence not given
// and a malformed (zeroed) signature are refused in the page (SecurityKeyError, nothing signed is
// sent); a wrong signature and a verify-required key signed without user verification are refused
// by sshd (SshAuthError auth_failed); an rpId that is not the key's application is
// rp_id_mismatch. A credential of a fixed P-256 key (WebAuthn.addCredential) checks the golden
// authorized_keys line and the signature blob against bytes assembled here from the assertion
// and against OpenSSH's own check (ssh-keygen -Y check-novalidate on an SSHSIG).
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import crypto from 'node:crypto';
import type { Page } from '@playwright/test';
import { devkit, expect, openManaPage, type Gateway } from '../fixtures';
import { overrideBits, skLog, skTest, type Authn, type SkSshd } from './security-key-fixtures';

const test = skTest(openManaPage);
interface FingerprintModule {
  fingerprintOf: (line: string) => string;
}

interface Credential {
  credentialId: string;
  publicKey: string;
  rpId: string;
  userVerification?: string;
}
interface ManaWindow {
  mana: {
    enrollSecurityKey(o: Record<string, unknown>): Promise<{
      authorizedKeysLine: string;
      credential: Credential;
    }>;
    connect(o: Record<string, unknown>): Promise<{
      whenReady(): Promise<void>;
      openSession(o: Record<string, unknown>): Promise<{
        onData(l: (d: Uint8Array) => void): unknown;
        onExit(l: (e: { code?: number }) => void): unknown;
        info: Record<string, string>;
        dispose(): void;
      }>;
      dispose(): void;
    }>;
    SecurityKeyError: typeof Error;
    SshAuthError: typeof Error;
  };
}

type Failure = {
  ok: false;
  name: string;
  code?: string;
  origin?: string;
  methods: string[];
  securityKeyError: boolean;
  sshAuthError: boolean;
  message: string;
};

async function enrol(page: Page, o: { rpId: string; user: string; verifyRequired?: boolean }) {
  return page.evaluate(async (opts) => {
    const { mana } = window as unknown as ManaWindow;
    const e = await mana.enrollSecurityKey(opts);
    return { line: e.authorizedKeysLine, credential: e.credential };
  }, o);
}

/** Logs in with `credential` and runs a command; the output, or the error as plain data. */
async function login(authn: Authn, gw: Gateway, sshd: SkSshd, credential: Credential) {
  const args = {
    url: gw.url,
    token: gw.token(),
    target: { host: sshd.host, port: sshd.port },
    user: sshd.user,
    credential,
  };
  return authn.page.evaluate(async (a) => {
    const { mana } = window as unknown as ManaWindow;
    const conn = await mana.connect({ url: a.url, token: a.token, storage: 'none' });
    try {
      await conn.whenReady();
      const s = await conn.openSession({
        target: a.target,
        username: a.user,
        auth: { securityKey: a.credential },
        knownHosts: 'memory',
        command: 'echo "sk-$((40+2))"',
      });
      const out: number[] = [];
      s.onData((d) => out.push(...d));
      const exit = await new Promise<{ code?: number }>((r) => s.onExit(r));
      const authMethod = s.info.authMethod;
      s.dispose();
      return {
        ok: true as const,
        stdout: new TextDecoder().decode(new Uint8Array(out)),
        code: exit.code,
        authMethod,
      };
    } catch (e) {
      const x = e as Error & { code?: string; origin?: string; methods?: string[] };
      return {
        ok: false as const,
        name: x.name,
        code: x.code,
        origin: x.origin,
        methods: x.methods ?? [],
        securityKeyError: e instanceof mana.SecurityKeyError,
        sshAuthError: e instanceof mana.SshAuthError,
        message: x.message,
      };
    } finally {
      conn.dispose();
    }
  }, args);
}

function failure(r: Awaited<ReturnType<typeof login>>): Failure {
  expect(r.ok, JSON.stringify(r)).toBe(false);
  return r as Failure;
}

const authorize = (sshd: SkSshd, line: string) =>
  appendFileSync(sshd.authorizedKeysPath, line + '\n');

async function signCount(authn: Authn): Promise<number> {
  const { credentials } = await authn.cdp.send('WebAuthn.getCredentials', {
    authenticatorId: authn.authenticatorId,
  });
  return credentials.reduce((n, c) => n + c.signCount, 0);
}

/** Adds a non-resident credential of `key` (P-256) for rpId localhost to the authenticator. */
async function addCredential(authn: Authn, id: Buffer, key: crypto.KeyObject, count = 0) {
  await authn.cdp.send('WebAuthn.addCredential', {
    authenticatorId: authn.authenticatorId,
    credential: {
      credentialId: id.toString('base64'),
      isResidentCredential: false,
      rpId: 'localhost',
      privateKey: key.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
      signCount: count,
    },
  });
}

// --- SSH wire helpers (Node side, independent of the package) ----------------------------------
const sshString = (b: Buffer | string) => {
  const v = typeof b === 'string' ? Buffer.from(b) : b;
  const n = Buffer.alloc(4);
  n.writeUInt32BE(v.length);
  return Buffer.concat([n, v]);
};
const keyBlob = (line: string) =>
  Buffer.from(line.split(' ').find((f) => f.startsWith('AAAA')) ?? '', 'base64');

/** The four strings of an sk-ecdsa public key line's blob (type, curve, point, application). */
function keyFields(line: string): [Buffer, Buffer, Buffer, Buffer] {
  const blob = keyBlob(line);
  const out: Buffer[] = [];
  for (let i = 0; i < blob.length;) {
    const n = blob.readUInt32BE(i);
    out.push(blob.subarray(i + 4, i + 4 + n));
    i += 4 + n;
  }
  const [type, curve, point, application, ...rest] = out;
  if (!type || !curve || !point || !application || rest.length > 0) {
    throw new Error(`not an sk-ecdsa key: ${line}`);
  }
  return [type, curve, point, application];
}

test.describe('security key (WebAuthn) login, issue #24', () => {
  test('enrol with the virtual authenticator, add the line, log in: Accepted publickey ECDSA-SK', async ({
    authn,
    skGateway,
    skSshd,
  }) => {
    // A secure context with a host name: WebAuthn is usable from this page.
    expect(
      await authn.page.evaluate(() => [
        location.hostname,
        isSecureContext,
        typeof PublicKeyCredential,
      ]),
    ).toEqual(['localhost', true, 'function']);
    const e = await enrol(authn.page, { rpId: 'localhost', user: skSshd.user });
    expect(e.line).toMatch(
      new RegExp(
        `^sk-ecdsa-sha2-nistp256@openssh\\.com AAAA[A-Za-z0-9+/=]+ ${skSshd.user}@localhost$`,
      ),
    );
    const [type, curve, point, application] = keyFields(e.line);
    expect(type.toString()).toBe('sk-ecdsa-sha2-nistp256@openssh.com');
    expect(curve.toString()).toBe('nistp256');
    expect(point.length).toBe(65);
    expect(point[0]).toBe(4);
    expect(application.toString()).toBe('localhost');
    expect(e.credential.rpId).toBe('localhost');
    const enrolled = await signCount(authn); // create() counts too

    // Not yet in authorized_keys: sshd refuses the key before anything is signed.
    const before = failure(await login(authn, skGateway, skSshd, e.credential));
    expect(before.code).toBe('auth_failed');
    expect(before.securityKeyError).toBe(false);
    expect(before.methods).toContain('publickey');
    expect(skLog(skSshd, 'Found')).toHaveLength(0);
    expect(await signCount(authn)).toBe(enrolled);

    authorize(skSshd, e.line);
    const r = await login(authn, skGateway, skSshd, e.credential);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.stdout).toMatch(/^sk-42\r?$/m);
    expect(r.code).toBe(0);
    expect(r.authMethod).toBe('security-key');
    expect(await signCount(authn)).toBe(enrolled + 1);
    const { fingerprintOf } = await devkit<FingerprintModule>('sshd.mjs');
    const accepted = skLog(skSshd, 'Accepted');
    expect(accepted).toHaveLength(1);
    expect(accepted[0]).toContain(`Accepted publickey for ${skSshd.user} from 127.0.0.1`);
    expect(accepted[0]).toContain(`ECDSA-SK ${fingerprintOf(e.line)}`);
  });

  test('presence bit off -> SecurityKeyError presence_not_given, nothing signed reaches sshd', async ({
    authn,
    skGateway,
    skSshd,
  }) => {
    const e = await enrol(authn.page, { rpId: 'localhost', user: skSshd.user });
    authorize(skSshd, e.line);
    const enrolled = await signCount(authn);
    await overrideBits(authn, { up: true });
    const f = failure(await login(authn, skGateway, skSshd, e.credential));
    expect(f.securityKeyError, JSON.stringify(f)).toBe(true);
    expect(f.code).toBe('presence_not_given');
    expect(f.origin).toBe('local');
    expect(await signCount(authn)).toBe(enrolled + 1); // the authenticator signed; the page refused
    expect(skLog(skSshd, 'Found')).toHaveLength(1); // sshd knew the key (PK_OK)
    expect(skSshd.log()).toContain('security key signature cancelled');
    expect(skLog(skSshd, 'Failed')).toHaveLength(0);
    expect(skLog(skSshd, 'Accepted')).toHaveLength(0);
    // The same credential with presence logs in.
    await overrideBits(authn, {});
    expect((await login(authn, skGateway, skSshd, e.credential)).ok).toBe(true);
    expect(skLog(skSshd, 'Accepted')).toHaveLength(1);
  });

  test('bogus signature: malformed -> refused in the page; a wrong one -> SshAuthError auth_failed from sshd', async ({
    authn,
    skGateway,
    skSshd,
  }) => {
    const e = await enrol(authn.page, { rpId: 'localhost', user: skSshd.user });
    authorize(skSshd, e.line);
    // isBogusSignature zeroes the signature: not DER, so the page refuses it and sends nothing.
    await overrideBits(authn, { sig: true });
    const m = failure(await login(authn, skGateway, skSshd, e.credential));
    expect(m.securityKeyError, JSON.stringify(m)).toBe(true);
    expect(m.code).toBe('security_key_unsupported');
    expect(skLog(skSshd, 'Found')).toHaveLength(1);
    expect(skLog(skSshd, 'Failed')).toHaveLength(0);
    await overrideBits(authn, {});
    // A well-formed signature that does not verify: sshd has the golden key for this credential
    // id, the authenticator signs with another private key.
    authorize(skSshd, golden.keyLine);
    const id = crypto.randomBytes(16);
    await addCredential(
      authn,
      id,
      crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    );
    const f = failure(
      await login(authn, skGateway, skSshd, {
        credentialId: id.toString('base64url'),
        publicKey: golden.keyLine,
        rpId: 'localhost',
      }),
    );
    expect(f.sshAuthError, JSON.stringify(f)).toBe(true);
    expect(f.securityKeyError).toBe(false);
    expect(f.code).toBe('auth_failed');
    expect(f.methods).toEqual(expect.arrayContaining(['publickey', 'password']));
    const { fingerprintOf } = await devkit<FingerprintModule>('sshd.mjs');
    const failed = skLog(skSshd, 'Failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toContain(`ECDSA-SK ${fingerprintOf(golden.keyLine)}`);
    expect(skLog(skSshd, 'Accepted')).toHaveLength(0);
  });

  test('verify-required without user verification -> refused (page and sshd)', async ({
    authn,
    skGateway,
    skSshd,
  }) => {
    const e = await enrol(authn.page, {
      rpId: 'localhost',
      user: skSshd.user,
      verifyRequired: true,
    });
    expect(e.line).toMatch(/^verify-required sk-ecdsa-sha2-nistp256@openssh\.com /);
    expect(e.credential.userVerification).toBe('required');
    authorize(skSshd, e.line);
    await authn.cdp.send('WebAuthn.setUserVerified', {
      authenticatorId: authn.authenticatorId,
      isUserVerified: false,
    });
    // As stored (userVerification: required): the authenticator cannot verify, get() fails.
    const local = failure(await login(authn, skGateway, skSshd, e.credential));
    expect(local.securityKeyError, JSON.stringify(local)).toBe(true);
    expect(local.code).toBe('security_key_cancelled');
    expect(skLog(skSshd, 'Failed')).toHaveLength(0);
    // Signed without verification (userVerification: discouraged): sshd refuses it.
    const f = failure(
      await login(authn, skGateway, skSshd, { ...e.credential, userVerification: 'discouraged' }),
    );
    expect(f.sshAuthError, JSON.stringify(f)).toBe(true);
    expect(f.securityKeyError).toBe(false);
    expect(f.code).toBe('auth_failed');
    expect(f.methods).toContain('publickey');
    expect(skSshd.log()).toContain('user verification requirement not met');
    expect(skLog(skSshd, 'Accepted')).toHaveLength(0);
    // With verification back on, the same stored credential logs in.
    await authn.cdp.send('WebAuthn.setUserVerified', {
      authenticatorId: authn.authenticatorId,
      isUserVerified: true,
    });
    const ok = await login(authn, skGateway, skSshd, e.credential);
    expect(ok.ok, JSON.stringify(ok)).toBe(true);
    expect(skLog(skSshd, 'Accepted')).toHaveLength(1);
  });

  test("an rpId that is not the key's application -> SecurityKeyError rp_id_mismatch", async ({
    authn,
    skGateway,
    skSshd,
  }) => {
    const e = await enrol(authn.page, { rpId: 'localhost', user: skSshd.user });
    authorize(skSshd, e.line);
    const enrolled = await signCount(authn);
    // The stored credential names another rpId than its key's application: refused before
    // anything is asked of the authenticator or sent.
    const a = failure(
      await login(authn, skGateway, skSshd, { ...e.credential, rpId: 'example.com' }),
    );
    expect(a.securityKeyError, JSON.stringify(a)).toBe(true);
    expect(a.code).toBe('rp_id_mismatch');
    expect(skLog(skSshd, 'Found')).toHaveLength(0);
    // The same point under the application example.com, authorized: sshd accepts the key, the
    // page (http://localhost) may not use the rpId example.com, so nothing is signed.
    const [type, curve, point] = keyFields(e.line);
    const other = Buffer.concat(
      [type, curve, point, Buffer.from('example.com')].map((b) => sshString(b)),
    );
    const otherKey = `sk-ecdsa-sha2-nistp256@openssh.com ${other.toString('base64')}`;
    authorize(skSshd, otherKey);
    const b = failure(
      await login(authn, skGateway, skSshd, {
        ...e.credential,
        publicKey: otherKey,
        rpId: 'example.com',
      }),
    );
    expect(b.securityKeyError, JSON.stringify(b)).toBe(true);
    expect(b.code).toBe('rp_id_mismatch');
    expect(skLog(skSshd, 'Found')).toHaveLength(1);
    expect(skLog(skSshd, 'Failed')).toHaveLength(0);
    expect(skLog(skSshd, 'Accepted')).toHaveLength(0);
    expect(await signCount(authn)).toBe(enrolled);
  });
});

// The golden key of js-glue/test/webauthn-blob.test.mjs (a fixed P-256 key) and its line.
const golden = {
  jwk: {
    kty: 'EC',
    crv: 'P-256',
    x: 'S4zMaBH8q-Rv3N_4sLojjdMkFFRaw-ZMbVJEm7lg81I',
    y: 'MOphOr81l32q-1vuX4JyrwBj7pynnIeSyM1__CmYPZk',
    d: 'q0yIndB5v00vs3CeW8eQ4eMIlajJjw6TV55Eu8yQImw',
  },
  keyLine:
    'sk-ecdsa-sha2-nistp256@openssh.com AAAAInNrLWVjZHNhLXNoYTItbmlzdHAyNTZAb3BlbnNzaC5jb20AAAAIbmlzdHAyNTYAAABBBEuMzGgR/Kvkb9zf+LC6I43TJBRUWsPmTG1SRJu5YPNSMOphOr81l32q+1vuX4JyrwBj7pynnIeSyM1//CmYPZkAAAAJbG9jYWxob3N0',
};

/**
 * navigator.credentials.get() over `data` with the credential `id` (rpId localhost), in the page;
 * the raw assertion and the package's webauthnSignatureBlob() of it.
 */
function assertOver(authn: Authn, id: Buffer, data: Buffer) {
  return authn.page.evaluate(
    async ({ idB64, data }) => {
      const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
      const hex = (b: ArrayBuffer | Uint8Array) =>
        Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
      const challenge = b64(data);
      const cred = (await navigator.credentials.get({
        publicKey: {
          challenge,
          rpId: 'localhost',
          allowCredentials: [{ type: 'public-key', id: b64(idB64) }],
          userVerification: 'preferred',
        },
      })) as PublicKeyCredential;
      const res = cred.response as AuthenticatorAssertionResponse;
      const wb = (await import(`${location.origin}/pkg/ssh/webauthn-blob.js`)) as {
        webauthnSignatureBlob(x: Record<string, Uint8Array>, signed: Uint8Array): Uint8Array;
      };
      const assertion = {
        authenticatorData: new Uint8Array(res.authenticatorData),
        clientDataJSON: new Uint8Array(res.clientDataJSON),
        signature: new Uint8Array(res.signature),
      };
      return {
        authenticatorData: hex(assertion.authenticatorData),
        clientDataJSON: new TextDecoder().decode(assertion.clientDataJSON),
        signature: hex(assertion.signature),
        blob: hex(wb.webauthnSignatureBlob(assertion, challenge)),
      };
    },
    { idB64: id.toString('base64'), data: data.toString('base64') },
  );
}

test('golden key through WebAuthn.addCredential: its line logs in, the blob is the bytes OpenSSH verifies', async ({
  authn,
  skGateway,
  skSshd,
}) => {
  const key = crypto.createPrivateKey({ key: golden.jwk, format: 'jwk' });
  const id = Buffer.from('mana-e2e golden credential');
  await addCredential(authn, id, key, 41);
  authorize(skSshd, golden.keyLine);
  const credential = {
    credentialId: id.toString('base64url'),
    publicKey: golden.keyLine,
    rpId: 'localhost',
  };
  const r = await login(authn, skGateway, skSshd, credential);
  expect(r.ok, JSON.stringify(r)).toBe(true);
  const { fingerprintOf } = await devkit<FingerprintModule>('sshd.mjs');
  expect(skLog(skSshd, 'Accepted')[0]).toContain(`ECDSA-SK ${fingerprintOf(golden.keyLine)}`);

  // The package's assembly of an assertion over fixed data, against the same assembly done here
  // by hand from the raw assertion, and the ECDSA signature checked with the golden public key.
  const signed = crypto.randomBytes(120);
  const a = await assertOver(authn, id, signed);
  const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest();
  const authData = Buffer.from(a.authenticatorData, 'hex');
  expect(authData.subarray(0, 32).equals(sha256('localhost'))).toBe(true);
  const flags = authData.readUInt8(32);
  expect(flags & 0x01).toBe(0x01); // UP
  expect(flags & 0x04).toBe(0x04); // UV
  expect(authData.length).toBe(37); // no extensions (flag ED clear)
  const counter = authData.readUInt32BE(33);
  expect(counter).toBeGreaterThan(41);
  expect(
    a.clientDataJSON.startsWith(
      `{"type":"webauthn.get","challenge":"${signed.toString('base64url')}","origin":"${authn.origin}"`,
    ),
  ).toBe(true);
  const der = Buffer.from(a.signature, 'hex');
  const pub = crypto.createPublicKey(key);
  expect(
    crypto.verify('sha256', Buffer.concat([authData, sha256(a.clientDataJSON)]), pub, der),
  ).toBe(true);
  // DER SEQUENCE { INTEGER r, INTEGER s }: an INTEGER's content is an SSH mpint's body.
  expect(der[0]).toBe(0x30);
  const rLen = der.readUInt8(3);
  const r0 = der.subarray(4, 4 + rLen);
  const s0 = der.subarray(6 + rLen, 6 + rLen + der.readUInt8(5 + rLen));
  const expected = Buffer.concat([
    sshString('webauthn-sk-ecdsa-sha2-nistp256@openssh.com'),
    sshString(Buffer.concat([sshString(r0), sshString(s0)])),
    authData.subarray(32, 37),
    sshString(authn.origin),
    sshString(a.clientDataJSON),
    sshString(''),
  ]);
  expect(a.blob).toBe(expected.toString('hex'));

  // OpenSSH's own sk code offline: an SSHSIG (PROTOCOL.sshsig) whose signature is the package's
  // blob of a Chromium assertion over the SSHSIG wrapper of a message; ssh-keygen -Y
  // check-novalidate accepts it, and refuses it for another message.
  const message = 'mana-websocket: a Chromium security key, checked by ssh-keygen\n';
  const wrapped = (m: string) =>
    Buffer.concat([
      Buffer.from('SSHSIG'),
      ...['file', '', 'sha512'].map((v) => sshString(v)),
      sshString(crypto.createHash('sha512').update(m).digest()),
    ]);
  const sigBlob = Buffer.from((await assertOver(authn, id, wrapped(message))).blob, 'hex');
  const sshsig = Buffer.concat([
    Buffer.from('SSHSIG'),
    Buffer.from([0, 0, 0, 1]),
    ...[keyBlob(golden.keyLine), 'file', '', 'sha512', sigBlob].map((v) => sshString(v)),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'mana-e2e-sshsig-'));
  try {
    const sigFile = join(dir, 'msg.sig');
    const b64 = sshsig.toString('base64').replace(/.{1,70}/g, '$&\n');
    writeFileSync(sigFile, `-----BEGIN SSH SIGNATURE-----\n${b64}-----END SSH SIGNATURE-----\n`);
    const check = (m: string) =>
      spawnSync('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'file', '-s', sigFile], {
        input: m,
        encoding: 'utf8',
      });
    const good = check(message);
    expect(good.status, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain(
      `Good "file" signature with ECDSA-SK key ${fingerprintOf(golden.keyLine)}`,
    );
    expect(check(message + 'x').status).not.toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
