// SPDX-License-Identifier: Apache-2.0
// Security-key logins of sessions hosted by the session worker (issue #24 with #17): a worker has no
// navigator.credentials, so the worker's session asks the opening page (`sign` / `sign-answer`),
// whose signer (the method's `sign`, else signWithSecurityKey) answers; the worker hands the blob to
// the engine and nothing else. Real mana-gateway, real stock sshd (the line of an enrolment in its
// authorized_keys), the real WorkerHost and open.ts (worker-conn-host.mjs; ManaWorkerClient in page
// mode), a software WebAuthn authenticator (soft-authenticator.mjs) as navigator.credentials.
// The page's `sign` is a function, which cannot cross to the worker: that it ran proves the
// signature came from the page.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { collect, lib, memoryStorage, sshBuilt, startGateway, startSshd } from './ssh-helpers.mjs';
import { install, SoftAuthenticator } from './soft-authenticator.mjs';
import { closeAll, useGateway } from './worker-conn-host.mjs';

const skip = sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)';
const workerUrl = import.meta.resolve('./worker-conn-host.mjs');

describe('security keys through the session worker', { skip }, () => {
  let sshd, gw, storage, credential, authn;
  const start = () => lib.ManaWorkerClient.start({ mode: 'page', workerUrl, storage });
  const connect = () => ({
    url: gw.url,
    token: gw.token({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }),
  });
  const accepted = () => (sshd.log().match(/Accepted publickey for \S+ .*ECDSA-SK/g) ?? []).length;
  const options = (auth, extra = {}) => ({
    target: { host: '127.0.0.1', port: sshd.port },
    username: sshd.user,
    auth,
    command: 'echo "sk-$((6*7))"',
    stream: true,
    ...extra,
  });

  before(async () => {
    sshd = await startSshd();
    gw = await startGateway([sshd.port]);
    useGateway(gw);
    storage = memoryStorage();
    authn = new SoftAuthenticator();
    install(authn);
    const e = await lib.enrollSecurityKey({ rpId: 'localhost', user: sshd.user });
    credential = e.credential;
    appendFileSync(sshd.authorizedKeysPath, e.authorizedKeysLine + '\n');
  });

  after(async () => {
    delete globalThis.navigator;
    closeAll();
    await gw?.stop();
    await sshd?.stop();
  });

  test('the page signs (its `sign` ran once), sshd logs ECDSA-SK, the command runs', async () => {
    const client = await start();
    const signed = [];
    const sign = async (c, data) => {
      signed.push({ rpId: c.rpId, bytes: data.byteLength });
      return lib.signWithSecurityKey(c, data);
    };
    const before = accepted();
    const s = await client.openSession(connect(), options({ securityKey: credential, sign }));
    s.setFlow('auto');
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'sk-42\n');
    assert.deepEqual(out.exit, { code: 0 });
    assert.equal(signed.length, 1, JSON.stringify(signed));
    assert.equal(signed[0].rpId, 'localhost');
    // The session id (32 bytes + length) and the USERAUTH_REQUEST with the key blob.
    assert.ok(signed[0].bytes > 150 && signed[0].bytes < 1024, `${signed[0].bytes} bytes signed`);
    assert.equal(accepted(), before + 1);
    client.dispose();
  });

  test('without `sign`: signWithSecurityKey in the page; a password first, then the key', async () => {
    const client = await start();
    const before = accepted();
    const s = await client.openSession(
      connect(),
      options([{ password: 'not the password' }, { securityKey: credential }]),
    );
    s.setFlow('auto');
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'sk-42\n');
    assert.equal(accepted(), before + 1);
    client.dispose();
  });

  test("the page's refusal reaches openSession as SecurityKeyError with its code", async () => {
    const client = await start();
    const refuse = (code) => async () => {
      throw new lib.SecurityKeyError('refused in the test', { code, origin: 'local', methods: [] });
    };
    for (const [sign, code] of [
      [refuse('presence_not_given'), 'presence_not_given'],
      [refuse('security_key_cancelled'), 'security_key_cancelled'],
      [
        async () => {
          throw new Error('not a SecurityKeyError');
        },
        'security_key_unavailable',
      ],
    ]) {
      const before = accepted();
      const err = await client
        .openSession(connect(), options({ securityKey: credential, sign }))
        .then(
          () => assert.fail('must not open'),
          (e) => e,
        );
      assert.ok(err instanceof lib.SecurityKeyError, `${err?.name}: ${err?.message}`);
      assert.ok(err instanceof lib.SshAuthError);
      assert.equal(err.code, code);
      assert.equal(accepted(), before, 'nothing signed reached sshd');
    }
    // The presence bit off in the authenticator: the page refuses the assertion itself.
    authn.presence = false;
    try {
      const err = await client.openSession(connect(), options({ securityKey: credential })).then(
        () => assert.fail('must not open'),
        (e) => e,
      );
      assert.equal(err.code, 'presence_not_given', `${err?.name}: ${err?.message}`);
    } finally {
      authn.presence = true;
    }
    client.dispose();
  });

  test('a security key on a bastion is refused up front: invalid_argument', async () => {
    const client = await start();
    const err = await client
      .openSession(
        connect(),
        options(
          { securityKey: credential },
          {
            via: {
              target: { host: '127.0.0.1', port: sshd.port },
              username: sshd.user,
              auth: { securityKey: credential },
            },
          },
        ),
      )
      .then(
        () => assert.fail('must not open'),
        (e) => e,
      );
    assert.equal(err.code, 'invalid_argument', `${err?.name}: ${err?.message}`);
    assert.match(err.message, /security key on a bastion/);
    client.dispose();
  });
});
