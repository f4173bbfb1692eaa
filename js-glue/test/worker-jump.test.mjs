// SPDX-License-Identifier: Apache-2.0
// Jump hosts through the session worker (issue #20 §3 with #17): client.openSession({ via }) runs
// the bastion chain in the worker, as ssh-jump.test.mjs runs it in-page. sshd A is the bastion,
// the only target the gateway allows; sshd B is reachable only through A (PermitOpen). The page
// verifies both host keys (the worker asks with the bastion's `hop`); a "reload" (the page goes
// away, a second client reattaches) keeps the shell on B without a new login at A or B.
// ManaWorkerClient runs in page mode against one real WorkerHost (worker-conn-host.mjs).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  collect,
  lib,
  memoryStorage,
  sleep,
  sshBuilt,
  startGateway,
  startSshd,
} from './ssh-helpers.mjs';
import { closeAll, sharedHost, useGateway } from './worker-conn-host.mjs';

const skip = sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)';
const workerUrl = import.meta.resolve('./worker-conn-host.mjs');

describe('SSH through a jump host (via) in the session worker', { skip }, () => {
  let a, b, k, gw, storage;
  const start = () => lib.ManaWorkerClient.start({ mode: 'page', workerUrl, storage });
  const connect = () => ({
    url: gw.url,
    token: gw.token({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }),
  });
  const logins = (sshd) => (sshd.log().match(/Accepted publickey/g) ?? []).length;

  before(async () => {
    b = await startSshd();
    a = await startSshd({ extraConfig: `PermitOpen 127.0.0.1:${b.port}` });
    // A second bastion that logs in with keyboard-interactive (PAM asks "Password:").
    k = await startSshd({
      password: true,
      kbdInteractive: true,
      extraConfig: `PermitOpen 127.0.0.1:${b.port}`,
    });
    gw = await startGateway([a.port, k.port]);
    useGateway(gw);
    storage = memoryStorage();
  });

  after(async () => {
    closeAll();
    await gw?.stop();
    await a?.stop();
    await b?.stop();
    await k?.stop();
  });

  const bastion = (extra) => ({
    target: { host: '127.0.0.1', port: a.port },
    username: a.user,
    auth: { privateKey: a.userKey.privateKey },
    ...extra,
  });
  const viaA = (extra) => ({
    target: { host: '127.0.0.1', port: b.port },
    username: b.user,
    auth: { privateKey: b.userKey.privateKey },
    via: bastion(),
    ...extra,
  });

  test('exec on B through A: both host keys verified by the page, per layer', async () => {
    const client = await start();
    const asked = [];
    const verifyA = (info) => (
      asked.push(`A ${info.port} ${info.fingerprint} ${info.known}`),
      true
    );
    const verifyB = (info) => (
      asked.push(`B ${info.port} ${info.fingerprint} ${info.known}`),
      true
    );
    const before = [logins(a), logins(b)];
    const s = await client.openSession(
      connect(),
      viaA({
        via: bastion({ hostKey: { verify: verifyA } }),
        hostKey: { verify: verifyB },
        command: 'echo "conn=$SSH_CONNECTION"; echo hello-$((6*7))',
        stream: true,
      }),
    );
    assert.deepEqual(asked, [
      `A ${a.port} ${a.hostKeys.ed25519.fingerprint} new`,
      `B ${b.port} ${b.hostKeys.ed25519.fingerprint} new`,
    ]);
    s.setFlow('auto');
    const out = collect(s);
    await out.closedP();
    const m = /^conn=(\S+) (\d+) (\S+) (\d+)\nhello-42\n$/u.exec(out.stdout);
    assert.ok(m, JSON.stringify(out.stdout));
    assert.equal(Number(m[4]), b.port);
    assert.deepEqual(out.exit, { code: 0 });
    assert.equal(out.closed.error, undefined);
    assert.deepEqual([logins(a), logins(b)], [before[0] + 1, before[1] + 1]);
    const targets = gw.log.filter((l) => l.event === 'open' || l.event === 'policy');
    assert.deepEqual([...new Set(targets.map((l) => l.port))], [a.port], 'the gateway never saw B');
    client.dispose();
  });

  test("the bastion's key refused in the page -> HostKeyError of A; B never reached", async () => {
    const client = await start();
    const before = logins(b);
    let askedB = 0;
    const err = await client
      .openSession(
        connect(),
        viaA({
          via: bastion({ hostKey: { verify: () => false } }),
          hostKey: {
            verify: () => {
              askedB++;
              return true;
            },
          },
          command: 'true',
        }),
      )
      .then(
        () => assert.fail('must not open'),
        (e) => e,
      );
    assert.ok(err instanceof lib.HostKeyError, `${err?.name}: ${err?.message}`);
    assert.equal(err.hostKey.port, a.port, 'the refused key is the bastion');
    assert.equal(askedB, 0);
    assert.equal(logins(b), before);
    client.dispose();
  });

  test('a shell on B through A survives a reload: same $X, no new login at A or B', async () => {
    const pageA = await start();
    const s = await pageA.openSession(
      connect(),
      viaA({ term: { cols: 80, rows: 24 }, key: 'jump', graceMs: 20_000 }),
    );
    s.setFlow('auto');
    const out = collect(s);
    const x = String(Math.floor(Math.random() * 1e9));
    s.write(new TextEncoder().encode(`X=${x}; echo "x=$X"\n`));
    await out.text(new RegExp(`x=${x}\\r?\\n`));
    const before = [logins(a), logins(b)];
    pageA.dispose(); // the page goes away; the chain stays in the worker for its grace
    await sleep(300);
    const pageB = await start();
    const v = await pageB.reattach({ key: 'jump' });
    assert.ok(v, 'the session is stored in this tab');
    assert.match(v.restoredScreen, new RegExp(`x=${x}`), 'the screen came back');
    v.setFlow('auto');
    const out2 = collect(v);
    v.write(new TextEncoder().encode('echo "again=$X"; exit 3\n'));
    await out2.closedP();
    assert.match(out2.stdout, new RegExp(`again=${x}`));
    assert.deepEqual(out2.exit, { code: 3 });
    assert.deepEqual([logins(a), logins(b)], before, 'no new SSH authentication');
    assert.equal(sharedHost().sessionCount, 0);
    pageB.dispose();
  });

  test("keyboard-interactive on the bastion: its rounds reach the bastion's handler (hop 0)", async () => {
    const client = await start();
    const rounds = [];
    let targetAsked = 0;
    const before = logins(b);
    const s = await client.openSession(connect(), {
      target: { host: '127.0.0.1', port: b.port },
      username: b.user,
      auth: [
        { privateKey: b.userKey.privateKey },
        {
          keyboardInteractive: async () => {
            targetAsked++;
            return ['x'];
          },
        },
      ],
      via: {
        target: { host: '127.0.0.1', port: k.port },
        username: k.user,
        auth: {
          keyboardInteractive: async (prompts, info) => {
            rounds.push({ prompts: prompts.map((p) => p.prompt), name: info.name });
            return prompts.map(() => k.password);
          },
        },
      },
      command: 'echo "kbd-$((6*7))"',
      stream: true,
    });
    s.setFlow('auto');
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'kbd-42\n');
    assert.ok(rounds.length >= 1, JSON.stringify(rounds));
    assert.match(rounds[0].prompts[0], /password/i);
    assert.equal(targetAsked, 0, "the target's handler is not asked for the bastion's rounds");
    assert.match(k.log(), /Accepted keyboard-interactive\/pam for /);
    assert.equal(logins(b), before + 1);
    client.dispose();
  });

  test('what the worker cannot run is refused up front (invalid_argument)', async () => {
    const client = await start();
    const sk = bastion({
      auth: { securityKey: { credentialId: 'aWQ', publicKey: 'k', rpId: 'localhost' } },
    });
    await assert.rejects(client.openSession(connect(), viaA({ via: sk, command: 'true' })), {
      code: 'invalid_argument',
    });
    const five = Array.from({ length: 5 }, () => bastion());
    await assert.rejects(client.openSession(connect(), viaA({ via: five, command: 'true' })), {
      code: 'invalid_argument',
    });
    await assert.rejects(
      client.openSession(
        connect(),
        viaA({ via: bastion({ knownHosts: 'memory' }), command: 'true' }),
      ),
      { code: 'invalid_argument' },
    );
    client.dispose();
  });
});
