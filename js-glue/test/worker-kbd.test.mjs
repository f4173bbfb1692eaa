// SPDX-License-Identifier: Apache-2.0
// Keyboard-interactive and auth lists through the session worker (src/worker/questions.ts, the
// host's `kbd` / `kbd-answer`, the client's handler, failure.ts): the host asks the opening page
// each round and hands the answers to the session only; a page that goes away, does not answer in
// time, or answers null cancels the attempt; a round over the bounds is not sent; a failed open
// reaches the page as the session's typed error (SshAuthError, HostKeyError) of the same class.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { lib } from './helpers.mjs';
import { FakeSession, TestPage, WorkerHost, headlessScreen, tick } from './worker-helpers.mjs';
import { PASSWORD, closeAll, script } from './fake-worker-host.mjs';

const SECRET = 'hunter2-kbd-secret';

/** A host whose open() runs `round(ask)` (keyboard-interactive rounds) before it succeeds. */
function setup(round, options = {}) {
  const outcomes = [];
  const host = new WorkerHost(
    {
      mode: 'shared',
      open: async (_c, session, ask) => {
        try {
          const r = await round(ask, session);
          outcomes.push({ ok: true, r });
        } catch (e) {
          outcomes.push({ ok: false, message: e.message });
          throw new lib.SshAuthError('keyboard-interactive authentication was cancelled', {
            code: 'auth_cancelled',
            origin: 'local',
            methods: ['keyboard-interactive'],
          });
        }
        return { session: new FakeSession(), release: () => {} };
      },
      screen: headlessScreen,
    },
    options,
  );
  return { host, outcomes };
}

function open(page, req, auth = [{ password: 'x' }, { keyboardInteractive: true }]) {
  page.send({
    v: 1,
    type: 'open',
    req,
    connect: { url: 'ws://127.0.0.1:1/ws' },
    session: { target: { host: 'h', port: 22 }, username: 'u', auth, command: 'true' },
  });
}

const pamRound = (ask) =>
  ask.keyboardInteractive(
    [
      { prompt: 'Password: ', echo: false },
      { prompt: 'Code: ', echo: true },
    ],
    { name: 'pam', instruction: 'two factors' },
  );

test('a round goes to the opening page; its answers reach the session and no message', async () => {
  const { host, outcomes } = setup(pamRound);
  const a = new TestPage(host, 'a');
  const other = new TestPage(host, 'other');
  try {
    open(a, 7);
    const q = await a.type('kbd');
    assert.deepEqual(
      { open: q.open, name: q.name, instruction: q.instruction, prompts: q.prompts },
      {
        open: 7,
        name: 'pam',
        instruction: 'two factors',
        prompts: [
          { prompt: 'Password: ', echo: false },
          { prompt: 'Code: ', echo: true },
        ],
      },
    );
    // Another page cannot answer it, a wrong number is refused; neither echoes the answers.
    other.send({ v: 1, type: 'kbd-answer', req: q.req, answers: [SECRET, '1'] });
    const refused = await other.type('error');
    assert.equal(refused.code, 'protocol');
    a.send({ v: 1, type: 'kbd-answer', req: q.req + 100, answers: [SECRET, '1'] });
    assert.equal((await a.type('error')).code, 'protocol');
    a.send({ v: 1, type: 'kbd-answer', req: q.req, answers: [SECRET, 5] }); // malformed
    assert.equal((await a.type('error')).code, 'protocol');
    a.send({ v: 1, type: 'kbd-answer', req: q.req, answers: [SECRET, '123456'] });
    const opened = await a.type('opened');
    assert.equal(opened.req, 7);
    assert.deepEqual(outcomes, [{ ok: true, r: [SECRET, '123456'] }]);
    for (const m of [...a.all, ...other.all]) {
      assert.ok(!JSON.stringify(m).includes('hunter2'), `an answer leaked into ${m.type}`);
    }
  } finally {
    a.close();
    other.close();
  }
});

test('null answers, a page gone, a timeout cancel the attempt: auth_cancelled', async () => {
  const { host, outcomes } = setup(pamRound, { kbdTimeoutMs: 150 });
  const a = new TestPage(host, 'a');
  const b = new TestPage(host, 'b');
  const c = new TestPage(host, 'c');
  try {
    open(a, 1);
    const q = await a.type('kbd');
    a.send({ v: 1, type: 'kbd-answer', req: q.req, answers: null });
    const err = await a.type('error');
    assert.equal(err.req, 1);
    assert.equal(err.code, 'open-failed');
    assert.deepEqual(
      { name: err.failure.name, code: err.failure.code, origin: err.failure.origin },
      { name: 'SshAuthError', code: 'auth_cancelled', origin: 'local' },
    );
    assert.deepEqual(err.failure.methods, ['keyboard-interactive']);

    open(b, 2);
    await b.type('kbd');
    b.send({ v: 1, type: 'bye' }); // the page unloads while its prompt is open
    await tick(20);
    assert.deepEqual(outcomes.at(-1), {
      ok: false,
      message: 'keyboard-interactive: no answer from the page',
    });
    assert.ok(!b.all.some((m) => m.type === 'error'), 'a page that left is not written to');

    open(c, 3);
    const t0 = Date.now();
    await c.type('kbd');
    const late = await c.type('error', 2000); // nobody answers
    assert.equal(late.failure.code, 'auth_cancelled');
    assert.ok(Date.now() - t0 >= 140, 'not before kbdTimeoutMs');
    assert.equal(host.sessionCount, 0);
  } finally {
    for (const p of [a, b, c]) p.close();
  }
});

test('a round over the bounds is cancelled without a message', async () => {
  const { host, outcomes } = setup((ask) =>
    ask.keyboardInteractive(
      Array.from({ length: 17 }, (_, i) => ({ prompt: `p${i}`, echo: false })),
      { name: '', instruction: '' },
    ),
  );
  const long = setup((ask) =>
    ask.keyboardInteractive([{ prompt: 'p', echo: false }], {
      name: '',
      instruction: 'x'.repeat(5000),
    }),
  );
  const a = new TestPage(host, 'a');
  const b = new TestPage(long.host, 'b');
  try {
    open(a, 1);
    open(b, 1);
    assert.equal((await a.type('error')).failure.code, 'auth_cancelled');
    assert.equal((await b.type('error')).failure.code, 'auth_cancelled');
    assert.ok(![...a.all, ...b.all].some((m) => m.type === 'kbd'));
    assert.match(outcomes[0].message, /bounds/);
  } finally {
    a.close();
    b.close();
  }
});

test('the auth list crosses as it was given; keyboardInteractive is a marker', async () => {
  const seen = [];
  const { host } = setup(async (_ask, session) => {
    seen.push(session.auth);
  });
  const a = new TestPage(host, 'a');
  try {
    const list = [
      { privateKey: 'k', passphrase: 'p' },
      { password: 'pw' },
      { keyboardInteractive: true },
    ];
    open(a, 1, list);
    await a.type('opened');
    open(a, 2, { password: 'pw' });
    await a.type('opened');
    assert.deepEqual(seen, [list, { password: 'pw' }]);
  } finally {
    a.close();
  }
});

// ManaWorkerClient in its in-page mode against fake-worker-host.mjs: the page's handler, the
// typed errors as in-page.
const client = await lib.ManaWorkerClient.start({
  mode: 'page',
  workerUrl: import.meta.resolve('./fake-worker-host.mjs'),
  storage: null,
});
after(() => {
  client.dispose();
  closeAll();
});
const connect = { url: 'ws://127.0.0.1:1/ws' };
const base = { target: { host: 'h', port: 22 }, username: 'u', command: 'true' };

test('client: the handler answers through the worker; a list is tried in order', async () => {
  script.opens.length = 0;
  script.answers.length = 0;
  const rounds = [];
  const view = await client.openSession(connect, {
    ...base,
    auth: [
      { password: 'wrong' },
      {
        keyboardInteractive: async (prompts, info) => {
          rounds.push({ prompts, info });
          await tick(5);
          return prompts.map(() => PASSWORD);
        },
      },
    ],
  });
  assert.ok(view instanceof lib.RemoteSshSession);
  assert.deepEqual(script.opens, [['password', 'keyboardInteractive']]);
  assert.deepEqual(rounds, [
    { prompts: [{ prompt: 'Password: ', echo: false }], info: { name: 'pam', instruction: '' } },
  ]);
  assert.deepEqual(script.answers, [[PASSWORD]]);
  view.close(); // ends it in the worker (dispose() would leave it there for its grace)
  // One method alone travels alone (what workers of before understand).
  const v2 = await client.openSession(connect, { ...base, auth: { password: PASSWORD } });
  assert.deepEqual(script.opens.at(-1), ['password']);
  v2.close();
});

test('client: wrong answer, throwing or bad handler -> SshAuthError as in-page', async () => {
  const fails = async (auth) =>
    client.openSession(connect, { ...base, auth }).then(
      () => assert.fail('must not open'),
      (e) => e,
    );
  const wrong = await fails({ keyboardInteractive: (ps) => ps.map(() => 'nope') });
  assert.ok(wrong instanceof lib.SshAuthError, String(wrong));
  assert.ok(wrong instanceof lib.AuthError);
  assert.equal(wrong.code, 'auth_failed');
  assert.equal(wrong.origin, 'remote');
  assert.equal(wrong.sshCode, -18);
  assert.deepEqual(wrong.methods, ['password', 'keyboard-interactive']);
  for (const handler of [
    () => {
      throw new Error('the user closed the dialog');
    },
    async () => Promise.reject(new Error('no')),
    () => ['one', 'too many'],
    () => [42],
    () => undefined,
  ]) {
    const e = await fails([{ keyboardInteractive: handler }]);
    assert.ok(e instanceof lib.SshAuthError, String(e));
    assert.equal(e.code, 'auth_cancelled');
  }
});

test('client: bad auth is invalid_argument before anything is sent; other typed errors', async () => {
  const before = script.opens.length;
  for (const auth of [[], {}, [{ password: 1 }], Array(9).fill({ password: 'p' }), 'pw']) {
    const e = await client.openSession(connect, { ...base, auth }).then(
      () => assert.fail('must not open'),
      (x) => x,
    );
    assert.ok(e instanceof lib.InvalidStateError, String(e));
    assert.equal(e.code, 'invalid_argument');
  }
  // A bastion the worker cannot run (a security key) is refused, never dropped.
  const via = {
    target: { host: 'bastion', port: 22 },
    username: 'u',
    auth: { securityKey: { credentialId: 'aWQ', publicKey: 'k', rpId: 'localhost' } },
  };
  const viaErr = await client.openSession(connect, { ...base, auth: { password: 'p' }, via }).then(
    () => assert.fail('must not open'),
    (x) => x,
  );
  assert.ok(viaErr instanceof lib.InvalidStateError, String(viaErr));
  assert.match(viaErr.message, /bastion/);
  assert.equal(script.opens.length, before, 'nothing reached the worker');

  const hostKey = {
    host: 'h',
    port: 22,
    algorithm: 'ssh-ed25519',
    fingerprint: 'SHA256:abc',
    known: 'changed',
  };
  script.failWith = new lib.HostKeyError('host key of h:22 changed', {
    code: 'hostkey_changed',
    origin: 'local',
    hostKey,
  });
  try {
    const hk = await client.openSession(connect, { ...base, auth: { password: PASSWORD } }).then(
      () => assert.fail('must not open'),
      (x) => x,
    );
    assert.ok(hk instanceof lib.HostKeyError, String(hk));
    assert.equal(hk.code, 'hostkey_changed');
    assert.deepEqual(hk.hostKey, hostKey);
    script.failWith = new Error('not a ManaError');
    const plain = await client.openSession(connect, { ...base, auth: { password: PASSWORD } }).then(
      () => assert.fail('must not open'),
      (x) => x,
    );
    assert.ok(plain instanceof lib.WorkerRequestError, String(plain));
    assert.equal(plain.code, 'open-failed');
  } finally {
    script.failWith = undefined;
  }
});

test(
  'client: the host key of each open goes to its own hostKey.verify',
  { timeout: 10_000 },
  async () => {
    const asked = [];
    let release;
    const gate = new Promise((r) => {
      release = r;
    });
    const verify = (accept, wait) => async (info) => {
      asked.push({ port: info.port, accept });
      if (wait) await gate; // the first dialog is still open when the second key arrives
      return accept;
    };
    const open = (port, v) =>
      client
        .openSession(connect, {
          ...base,
          target: { host: 'h', port },
          auth: { password: PASSWORD },
          hostKey: { verify: v },
        })
        .then(
          (view) => view,
          (e) => e,
        );
    const first = open(2201, verify(true, true));
    const second = open(2202, verify(false, false));
    const refused = await second;
    release();
    const view = await first;
    assert.ok(refused instanceof lib.HostKeyError, String(refused));
    assert.equal(refused.hostKey.port, 2202);
    assert.ok(view instanceof lib.RemoteSshSession, String(view));
    assert.deepEqual(
      asked.sort((a, b) => a.port - b.port),
      [
        { port: 2201, accept: true },
        { port: 2202, accept: false },
      ],
    );
    view.close();
  },
);
