// SPDX-License-Identifier: Apache-2.0
// conn.openSession() against real OpenSSH servers through the real mana-gateway: the SSH engine
// (libssh2 in wasm) runs in this process, the gateway relays bytes only.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import {
  collect,
  connectOptions,
  cutMidSession,
  lib,
  memoryStorage,
  sleep,
  sshBuilt,
  startGateway,
  startSshd,
} from './ssh-helpers.mjs';

const skip = sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)';

describe('SSH sessions through mana-gateway', { skip }, () => {
  let keySshd; // root, public key only, ecdsa + ed25519 + rsa host keys
  let pwSshd; // mana-e2e, password + keyboard-interactive (PAM)
  let gw;
  const conns = [];

  before(async () => {
    keySshd = await startSshd({ hostKeyTypes: ['ecdsa', 'ed25519', 'rsa'] });
    pwSshd = await startSshd({ password: true, kbdInteractive: true });
    gw = await startGateway([keySshd.port, pwSshd.port]);
  });

  after(async () => {
    for (const c of conns.splice(0)) c.dispose();
    await gw?.stop();
    await keySshd?.stop();
    await pwSshd?.stop();
  });

  async function connection(extra = {}) {
    // One connection at a time (the gateway limits sessions per user).
    for (const c of conns.splice(0)) c.dispose();
    const conn = await lib.connect(connectOptions(gw, extra));
    conns.push(conn);
    await conn.whenReady();
    return conn;
  }

  const keyTarget = () => ({ host: '127.0.0.1', port: keySshd.port });
  // openSession() options: key login on keySshd / password login on pwSshd, host keys kept in
  // memory; `extra` adds to or overrides them (command or term, auth, knownHosts, ...).
  const keyLogin = (extra) => ({
    target: keyTarget(),
    username: keySshd.user,
    auth: { privateKey: keySshd.userKey.privateKey },
    knownHosts: 'memory',
    ...extra,
  });
  const pwLogin = (extra) => ({
    target: { host: '127.0.0.1', port: pwSshd.port },
    username: pwSshd.user,
    auth: { password: pwSshd.password },
    knownHosts: 'memory',
    ...extra,
  });

  test('ed25519 key login, exec echo, negotiated algorithms, TOFU, diagnostics', async () => {
    const conn = await connection();
    const diags = [];
    conn.onDiagnostic((d) => d.code.startsWith('ssh_') && diags.push(d));
    const knownHosts = memoryStorage();
    const t0 = performance.now();
    const s = await conn.openSession(keyLogin({ command: 'echo hello-$((6*7))', knownHosts }));
    const openMs = performance.now() - t0;
    const out = collect(s);
    await out.until((o) => o.exit !== undefined && o.closed !== undefined);
    assert.equal(out.stdout, 'hello-42\n');
    assert.deepEqual(out.exit, { code: 0 });
    assert.equal(out.closed.error, undefined, 'normal end');
    assert.equal(s.state, 'closed');
    const info = s.info;
    assert.equal(info.kex, 'curve25519-sha256');
    assert.equal(info.cipherClientToServer, 'chacha20-poly1305@openssh.com');
    assert.equal(info.cipherServerToClient, 'chacha20-poly1305@openssh.com');
    assert.equal(info.hostKeyAlgorithm, 'ssh-ed25519', 'ed25519 preferred over the ECDSA key');
    assert.equal(info.fingerprint, keySshd.hostKeys.ed25519.fingerprint);
    assert.equal(info.authMethod, 'publickey');
    const stored = knownHosts.getItem(`mana.ssh.known_host:127.0.0.1:${keySshd.port}`);
    assert.equal(stored, keySshd.hostKeys.ed25519.pub.split(' ').slice(0, 2).join(' '));
    const codes = diags.map((d) => d.code);
    for (const c of ['ssh_kex_done', 'ssh_hostkey', 'ssh_auth_methods', 'ssh_auth_result']) {
      assert.ok(codes.includes(c), `diagnostic ${c} (${codes.join(' ')})`);
    }
    assert.match(diags.find((d) => d.code === 'ssh_hostkey').detail, / new -> accepted /);
    for (const d of diags) {
      assert.ok(!d.detail.includes('PRIVATE KEY'), 'no key material in diagnostics');
    }
    console.log(`# open (handshake + auth + exec) ${openMs.toFixed(0)} ms`);

    // Second session: the stored key matches and verify() sees it.
    const seen = [];
    const s2 = await conn.openSession(
      keyLogin({
        command: 'true',
        knownHosts,
        hostKey: { verify: async (i) => (seen.push(i), true) },
      }),
    );
    await collect(s2).closedP();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].known, 'match');
    assert.equal(seen[0].algorithm, 'ssh-ed25519');
    assert.equal(seen[0].fingerprint, keySshd.hostKeys.ed25519.fingerprint);
  });

  test('a stored RSA key makes the host-key preference follow it', async () => {
    const conn = await connection();
    const rsa = keySshd.hostKeys.rsa.pub.split(' ');
    const knownHosts = memoryStorage({
      [`mana.ssh.known_host:127.0.0.1:${keySshd.port}`]: `${rsa[0]} ${rsa[1]}`,
    });
    const s = await conn.openSession(keyLogin({ command: 'true', knownHosts }));
    assert.match(s.info.hostKeyAlgorithm, /^rsa-sha2-(256|512)$/);
    assert.equal(s.info.fingerprint, keySshd.hostKeys.rsa.fingerprint);
    await collect(s).closedP();
  });

  test('password login (shell in a pty) and exit 3 -> onExit code 3', async () => {
    const conn = await connection();
    const s = await conn.openSession(pwLogin({ term: { cols: 80, rows: 24 } }));
    assert.equal(s.info.authMethod, 'password');
    assert.equal(s.state, 'open');
    const out = collect(s);
    s.write('echo pw-$((40+2)); exit 3\n');
    await out.until((o) => o.closed !== undefined);
    assert.match(out.stdout, /pw-42/);
    assert.deepEqual(out.exit, { code: 3 });
    assert.equal(out.closed.error, undefined);
  });

  test('keyboard-interactive: prompts answered by the async handler', async () => {
    const conn = await connection();
    const rounds = [];
    const s = await conn.openSession(
      pwLogin({
        auth: {
          keyboardInteractive: async (prompts, info) => {
            rounds.push({ prompts, info });
            await sleep(10);
            return prompts.map(() => pwSshd.password);
          },
        },
        command: 'echo kbd-ok',
      }),
    );
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'kbd-ok\n');
    assert.equal(s.info.authMethod, 'keyboard-interactive');
    assert.equal(rounds.length, 1, 'asked once; the retry used the cached answer');
    assert.equal(rounds[0].prompts.length, 1);
    assert.match(rounds[0].prompts[0].prompt, /password/i);
    assert.equal(rounds[0].prompts[0].echo, false);
  });

  test('wrong password -> SshAuthError (an AuthError) with the allowed methods', async () => {
    const conn = await connection();
    const err = await conn
      .openSession(pwLogin({ auth: { password: 'definitely-wrong' }, command: 'true' }))
      .then(
        () => assert.fail('must not authenticate'),
        (e) => e,
      );
    assert.ok(err instanceof lib.SshAuthError, String(err));
    assert.ok(err instanceof lib.AuthError);
    assert.equal(err.code, 'auth_failed');
    assert.ok(err.methods.includes('password'), err.methods.join(','));
    assert.ok(err.methods.includes('publickey'));
    assert.ok(err.methods.includes('keyboard-interactive'));
    assert.ok(!err.message.includes('definitely-wrong'), 'the secret is not in the message');
    assert.equal(conn.state, 'ready', 'the transport is unaffected');
  });

  test('methods tried in order as offered: a bad key, then the password', async () => {
    const conn = await connection();
    // keySshd's user key is not authorized on pwSshd.
    const s = await conn.openSession(
      pwLogin({
        auth: [{ privateKey: keySshd.userKey.privateKey }, { password: pwSshd.password }],
        command: 'echo second-method',
      }),
    );
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'second-method\n');
    assert.equal(s.info.authMethod, 'password');
  });

  test('an encrypted key needs its passphrase; a garbage key is a key_error', async () => {
    const enc = await startSshd({ userKeyPassphrase: 'correct horse' });
    const conn = await connection();
    const gw2 = await startGateway([enc.port]);
    try {
      const conn2 = await lib.connect(connectOptions(gw2));
      conns.push(conn2);
      await conn2.whenReady();
      const target = { host: '127.0.0.1', port: enc.port };
      const s = await conn2.openSession({
        target,
        username: enc.user,
        auth: { privateKey: enc.userKey.privateKey, passphrase: 'correct horse' },
        command: 'echo decrypted',
        knownHosts: 'memory',
      });
      const out = collect(s);
      await out.closedP();
      assert.equal(out.stdout, 'decrypted\n');
      const bad = await conn2
        .openSession({
          target,
          username: enc.user,
          auth: { privateKey: enc.userKey.privateKey, passphrase: 'wrong' },
          command: 'true',
          knownHosts: 'memory',
        })
        .then(
          () => assert.fail('wrong passphrase'),
          (e) => e,
        );
      assert.ok(bad instanceof lib.SshAuthError);
      assert.equal(bad.code, 'key_error');
      const garbage = await conn
        .openSession(
          keyLogin({
            auth: { privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n' },
            command: 'true',
          }),
        )
        .then(
          () => assert.fail('garbage key'),
          (e) => e,
        );
      assert.equal(garbage.code, 'key_error');
    } finally {
      await gw2.stop();
      await enc.stop();
    }
  });

  test('changed host key -> HostKeyError, nothing sent after the key exchange', async () => {
    const conn = await connection();
    const diags = [];
    conn.onDiagnostic((d) => d.code.startsWith('ssh_') && diags.push(d));
    // Another ed25519 key stored for this host:port (as if the server had been replaced).
    const fake = keySshd.userKey.publicKey.split(' ');
    const knownHosts = memoryStorage({
      [`mana.ssh.known_host:127.0.0.1:${keySshd.port}`]: `${fake[0]} ${fake[1]}`,
    });
    let verifyCalled = false;
    const err = await conn
      .openSession(
        keyLogin({
          command: 'echo must-not-run',
          knownHosts,
          hostKey: { verify: () => ((verifyCalled = true), true) },
        }),
      )
      .then(
        () => assert.fail('must not open'),
        (e) => e,
      );
    assert.ok(err instanceof lib.HostKeyError, String(err));
    assert.equal(err.code, 'hostkey_changed');
    assert.equal(err.hostKey.known, 'changed');
    assert.equal(err.hostKey.fingerprint, keySshd.hostKeys.ed25519.fingerprint);
    assert.equal(verifyCalled, false, 'a changed key is a hard failure');
    const decision = diags.find((d) => d.code === 'ssh_hostkey').detail;
    const closed = diags.filter((d) => d.code === 'ssh_closed').pop().detail;
    const sentAtDecision = Number(/sent=(\d+)/.exec(decision)[1]);
    const sentAtClose = Number(/sent=(\d+)/.exec(closed)[1]);
    assert.ok(sentAtDecision > 0);
    assert.equal(sentAtClose, sentAtDecision, 'no byte after the handshake');
    assert.equal(
      knownHosts.getItem(`mana.ssh.known_host:127.0.0.1:${keySshd.port}`),
      `${fake[0]} ${fake[1]}`,
      'the stored key is kept',
    );
    // A verify() that says no is a HostKeyError too (hostkey_rejected).
    const rejected = await conn
      .openSession(
        keyLogin({
          command: 'true',
          knownHosts: memoryStorage(),
          hostKey: { verify: async () => false },
        }),
      )
      .then(
        () => assert.fail('must not open'),
        (e) => e,
      );
    assert.ok(rejected instanceof lib.HostKeyError);
    assert.equal(rejected.code, 'hostkey_rejected');
    assert.equal(rejected.hostKey.known, 'new');
  });

  test('pty: stty size follows resize (coalesced), env, signal(), exit signal', async () => {
    const conn = await connection();
    const s = await conn.openSession(
      keyLogin({ term: { cols: 80, rows: 24, env: { MANA_TEST: 'env-ok' } } }),
    );
    const out = collect(s);
    s.write('stty size; echo "M=$MANA_TEST"; echo T=$TERM\n');
    await out.text(/24 80[\s\S]*M=env-ok[\s\S]*T=xterm-256color/);
    s.resize(90, 30);
    s.resize(120, 50);
    s.resize(100, 40); // only the last one within a frame is sent
    await sleep(60);
    s.write('stty size\n');
    await out.text(/40 100/);
    assert.ok(!/30 90|50 120/.test(out.stdout), 'intermediate sizes were coalesced away');
    s.write('kill -KILL $$\n'); // an interactive bash ignores TERM
    await out.closedP();
    assert.deepEqual(out.exit, { signal: 'KILL' });
    assert.equal(out.closed.error, undefined);

    // OpenSSH refuses signal requests in root sessions ("session signalling requires
    // privilege separation"): the non-root test user.
    const s2 = await conn.openSession(pwLogin({ command: 'echo started; exec sleep 30' }));
    const out2 = collect(s2);
    await out2.text(/started/); // a signal before the process exists is dropped by sshd
    await sleep(100);
    s2.signal('SIGTERM');
    await out2.closedP(5000);
    assert.deepEqual(out2.exit, { signal: 'TERM' });
  });

  test('exec: stdout and stderr separated; exit code', async () => {
    const conn = await connection();
    const s = await conn.openSession(
      keyLogin({ command: 'echo out-1; echo err-1 >&2; echo out-2; exit 7' }),
    );
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'out-1\nout-2\n');
    assert.equal(out.stderr, 'err-1\n');
    assert.deepEqual(out.exit, { code: 7 });
  });

  test('stdin upload with writeAll + sendEof: sha256 of 8 MiB matches', async () => {
    const conn = await connection();
    const s = await conn.openSession(keyLogin({ command: 'sha256sum' }));
    const out = collect(s);
    const data = randomBytes(8 << 20);
    const t0 = performance.now();
    await s.writeAll(data);
    s.sendEof();
    await out.closedP(60000);
    const ms = performance.now() - t0;
    assert.equal(out.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'));
    console.log(`# upload 8 MiB: ${((8 / ms) * 1000).toFixed(1)} MiB/s`);
  });

  for (const cipher of ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com']) {
    test(`64 MiB download (${cipher}): sha256 matches, MB/s printed`, async () => {
      const size = 64 << 20;
      const file = join(keySshd.dir, `blob-${cipher.slice(0, 6)}`);
      const data = randomBytes(size);
      writeFileSync(file, data);
      const conn = await connection();
      const s = await conn.openSession(keyLogin({ command: `cat ${file}`, ciphers: cipher }));
      assert.equal(s.info.cipherServerToClient, cipher);
      const hash = createHash('sha256');
      let got = 0;
      const t0 = performance.now();
      s.onData((d) => {
        hash.update(d);
        got += d.length;
      });
      await new Promise((r) => s.onClose(r));
      const ms = performance.now() - t0;
      assert.equal(got, size);
      assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
      const mbs = size / 1e6 / (ms / 1000);
      console.log(`# download 64 MiB ${cipher}: ${mbs.toFixed(1)} MB/s (${ms.toFixed(0)} ms)`);
    });
  }

  test('slow consumer (flow manual): SSH window + mana credit stop sshd, nothing lost', async () => {
    const size = 32 << 20;
    const file = join(keySshd.dir, 'blob-slow');
    const data = randomBytes(size);
    writeFileSync(file, data);
    const conn = await connection();
    const s = await conn.openSession(
      keyLogin({ command: `cat ${file}`, flow: 'manual', highWaterMark: 256 * 1024 }),
    );
    const chunks = [];
    s.onData((d) => chunks.push(d));
    // Wait until the flow settles (under load the first window can take longer than 0.8 s to
    // arrive); it must settle, bounded, within 8 s.
    let a = s.stats();
    let b = a;
    for (let i = 0; i < 25; i++) {
      await sleep(i === 0 ? 800 : 300);
      a = b;
      b = s.stats();
      if (i > 0 && b.received === a.received) break;
    }
    assert.ok(a.unconsumed <= 256 * 1024, `unconsumed ${a.unconsumed} within the high-water mark`);
    // In flight at most: app high-water + libssh2's 2 MiB channel window + mana credit + slack.
    assert.ok(b.received < 4 * 1024 * 1024, `received ${b.received} bounded while paused`);
    assert.equal(b.received, a.received, 'nothing more arrives while the app does not consume');
    console.log(`# paused consumer: ${b.received} bytes received, ${b.unconsumed} unconsumed`);
    // Consume everything from now on (including what is held).
    s.onData((d) => process.nextTick(() => s.consume(d.length)));
    s.consume(s.unconsumed);
    await new Promise((r) => s.onClose(r));
    const got = Buffer.concat(chunks);
    assert.equal(got.length, size);
    assert.equal(
      createHash('sha256').update(got).digest('hex'),
      createHash('sha256').update(data).digest('hex'),
    );
  });

  test('transport cut mid-session: the SSH session survives, markers without loss/dup', async () => {
    const conn = await connection();
    await cutMidSession(conn, (o) => conn.openSession(keyLogin(o)));
  });

  test('metadata next to the resume token; connection closed -> SessionLostError', async () => {
    const store = memoryStorage();
    globalThis.sessionStorage = store;
    try {
      const conn = await connection({ storage: 'session' });
      const s = await conn.openSession(keyLogin({ term: { cols: 80, rows: 24 } }));
      const key = `mana.websocket.resume:${gw.url}:ssh`;
      const meta = JSON.parse(store.getItem(key));
      assert.equal(meta.length, 1);
      assert.equal(meta[0].host, '127.0.0.1');
      assert.equal(meta[0].port, keySshd.port);
      assert.equal(meta[0].username, keySshd.user);
      assert.equal(meta[0].channelId, s.channelId);
      assert.equal(meta[0].fingerprint, keySshd.hostKeys.ed25519.fingerprint);
      assert.equal(meta[0].cipherServerToClient, 'chacha20-poly1305@openssh.com');
      assert.ok(!JSON.stringify(meta).includes('PRIVATE'), 'no secrets stored');
      assert.ok(store.getItem(`mana.websocket.resume:${gw.url}`), 'resume token stored too');
      assert.deepEqual(
        lib.SshSession.lostSessions({ url: gw.url, clear: false }),
        [],
        'a live session is not lost',
      );
      const out = collect(s);
      conn.close();
      await out.closedP();
      assert.ok(out.closed.error instanceof lib.SessionLostError, String(out.closed.error));
      assert.equal(out.closed.error.code, 'session_lost');
      assert.equal(store.getItem(key), null, 'metadata removed with the session');
      assert.throws(() => s.write('x'), lib.InvalidStateError);
    } finally {
      delete globalThis.sessionStorage;
    }
  });

  test('bad options reject with InvalidStateError before any channel opens', async () => {
    const conn = await connection();
    await assert.rejects(
      conn.openSession({ target: keyTarget(), username: 'x', auth: { password: 'p' } }),
      (e) => e instanceof lib.InvalidStateError && /term.*command/.test(e.message),
    );
    await assert.rejects(
      conn.openSession({ target: { host: '', port: 22 }, username: 'x', auth: [], command: 'x' }),
      lib.InvalidStateError,
    );
    // A target outside the gateway's policy: the transport's ChannelOpenError, no engine left.
    await assert.rejects(
      conn.openSession({
        target: { host: '127.0.0.1', port: 1 },
        username: 'x',
        auth: { password: 'p' },
        command: 'x',
        knownHosts: 'memory',
      }),
      (e) => e instanceof lib.ChannelOpenError && e.code === 'policy_denied',
    );
    assert.equal(await lib.liveSshEngines(), 0);
    assert.equal(conn.state, 'ready');
  });

  test('keepalives are sent and answered', async () => {
    const conn = await connection();
    const diags = [];
    conn.onDiagnostic((d) => d.code.startsWith('ssh_keepalive') && diags.push(d.code));
    const s = await conn.openSession(keyLogin({ command: 'sleep 2.5', keepaliveMs: 1000 }));
    await collect(s).closedP();
    assert.ok(diags.includes('ssh_keepalive_sent'), diags.join(','));
    assert.ok(diags.includes('ssh_keepalive_answered'), diags.join(','));
  });

  test('the npm tarball ships the SSH engine and its declarations', () => {
    const tarball = process.env.MANA_NPM_TARBALL;
    if (tarball === undefined) return; // set by make test-js
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const f of [
      'mana-ssh.mjs',
      'mana-ssh.wasm',
      'mana-ssh.d.mts',
      'ssh.js',
      'ssh-types.d.ts',
    ]) {
      assert.ok(files.includes(`package/dist/internal/${f}`), f);
    }
    assert.ok(files.includes('package/dist/ssh/session.d.ts'));
  });

  test('every wasm handle released after teardown', async () => {
    for (const c of conns.splice(0)) c.dispose();
    assert.equal(await lib.liveSshEngines(), 0);
    assert.equal(await lib.liveCoreSessions(), 0);
  });
});
