// SPDX-License-Identifier: Apache-2.0
// SSH algorithm choice (issue #20 §1) against real OpenSSH servers through the real mana-gateway:
// an sshd that offers only the legacy set (SHA-1 key exchange, an ssh-rsa host key, AES-CBC,
// hmac-sha1) refuses the secure defaults with a typed error naming each kind that did not match,
// and gives a shell with `algorithms: 'legacy'` or the preset's lists, reporting every weak
// algorithm used as a `weak_algorithm` diagnostic. Names this build cannot negotiate fail before
// anything is sent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  collect,
  connectOptions,
  lib,
  memoryStorage,
  sshBuilt,
  startGateway,
  startSshd,
} from './ssh-helpers.mjs';

const skip = sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)';

// What a server from before OpenSSH 7 (or a network appliance) may still offer, and nothing else.
const legacyOnly = [
  'KexAlgorithms diffie-hellman-group14-sha1,diffie-hellman-group1-sha1',
  'HostKeyAlgorithms ssh-rsa',
  'Ciphers aes128-cbc,aes256-cbc',
  'MACs hmac-sha1',
].join('\n');

describe('SSH algorithm choice and the legacy preset', { skip }, () => {
  let legacySshd; // RSA host key, offers only the legacy set
  let modernSshd; // Debian's defaults (ed25519 host key)
  let gw;
  const conns = [];

  before(async () => {
    legacySshd = await startSshd({ hostKeyTypes: ['rsa'], extraConfig: legacyOnly });
    modernSshd = await startSshd();
    gw = await startGateway([legacySshd.port, modernSshd.port]);
  });

  after(async () => {
    for (const c of conns.splice(0)) c.dispose();
    await gw?.stop();
    await legacySshd?.stop();
    await modernSshd?.stop();
  });

  async function connection() {
    for (const c of conns.splice(0)) c.dispose();
    const conn = await lib.connect(connectOptions(gw));
    conns.push(conn);
    await conn.whenReady();
    return conn;
  }

  const login = (sshd, extra) => ({
    target: { host: '127.0.0.1', port: sshd.port },
    username: sshd.user,
    auth: { privateKey: sshd.userKey.privateKey },
    knownHosts: 'memory',
    ...extra,
  });

  const { defaultSshAlgorithms: defaults, legacySshAlgorithms: legacy } = lib;

  test('the presets: defaults without SHA-1/CBC, legacy = defaults + the weak set', () => {
    const all = (l) => [...l.kex, ...l.hostKey, ...l.cipher, ...l.mac];
    for (const weak of ['-sha1', 'ssh-rsa', '-cbc', 'hmac-sha1', 'md5']) {
      assert.ok(!all(defaults).some((n) => n.includes(weak)), `no ${weak} in the defaults`);
    }
    assert.deepEqual(legacy.kex.slice(-2), [
      'diffie-hellman-group14-sha1',
      'diffie-hellman-group1-sha1',
    ]);
    assert.deepEqual(legacy.hostKey.slice(-1), ['ssh-rsa']);
    assert.deepEqual(legacy.cipher.slice(-3), ['aes128-cbc', 'aes192-cbc', 'aes256-cbc']);
    assert.deepEqual(legacy.mac.slice(-1), ['hmac-sha1']);
    for (const k of ['kex', 'hostKey', 'cipher', 'mac']) {
      assert.deepEqual(
        legacy[k].slice(0, defaults[k].length),
        defaults[k],
        `${k} starts as default`,
      );
    }
    assert.ok(Object.isFrozen(legacy) && Object.isFrozen(legacy.kex), 'presets are frozen');
  });

  test('defaults against a legacy-only server: SshAlgorithmError names each kind in turn', async () => {
    const conn = await connection();
    // Each step adds the legacy list of the kind that failed before, so the next kind fails.
    const steps = [
      { algorithms: undefined, kind: 'kex', server: 'diffie-hellman-group14-sha1' },
      { algorithms: { kex: legacy.kex }, kind: 'hostKey', server: 'ssh-rsa' },
      {
        algorithms: { kex: legacy.kex, hostKey: legacy.hostKey },
        kind: 'cipher',
        server: 'aes128-cbc',
      },
      // hmac-sha1 was in libssh2's own default MAC list: the defaults no longer offer it.
      {
        algorithms: { kex: legacy.kex, hostKey: legacy.hostKey, cipher: legacy.cipher },
        kind: 'mac',
        server: 'hmac-sha1',
      },
    ];
    for (const step of steps) {
      const extra = { command: 'echo must-not-run' };
      if (step.algorithms !== undefined) extra.algorithms = step.algorithms;
      const err = await conn.openSession(login(legacySshd, extra)).then(
        () => assert.fail(`${step.kind}: the session opened`),
        (e) => e,
      );
      assert.ok(err instanceof lib.SshAlgorithmError, `${step.kind}: ${err}`);
      assert.ok(err instanceof lib.SshError);
      assert.equal(err.code, 'algorithm_mismatch', String(err));
      assert.equal(err.kind, step.kind, String(err));
      assert.ok(err.serverOffer.includes(step.server), `${step.kind}: ${err.serverOffer}`);
      const ours = step.algorithms?.[step.kind] ?? defaults[step.kind];
      assert.deepEqual(err.clientOffer, [...ours]);
      assert.match(err.message, /no common .* algorithm with the server/);
      assert.match(err.message, /algorithms: 'legacy'/, 'the hint names the preset');
      assert.ok(err.message.includes(step.server), err.message);
      assert.notEqual(err.sshCode, 0);
      console.log(`# ${step.kind}: ${err.message}`);
    }
    assert.equal(await lib.liveSshEngines(), 0);
    assert.equal(conn.state, 'ready', 'the connection survives the failed sessions');
  });

  test("algorithms: 'legacy' -> a shell, weak_algorithm for each weak algorithm used", async () => {
    const conn = await connection();
    const weak = [];
    conn.onDiagnostic((d) => d.code === 'weak_algorithm' && weak.push(d.detail));
    const knownHosts = memoryStorage();
    const s = await conn.openSession(
      login(legacySshd, { algorithms: 'legacy', term: { cols: 80, rows: 24 }, knownHosts }),
    );
    const out = collect(s);
    s.write('echo legacy-$((6*7)); exit 0\n');
    await out.text(/legacy-42/);
    await out.closedP();
    assert.equal(out.closed.error, undefined);
    assert.deepEqual(s.info.kex, 'diffie-hellman-group14-sha1');
    assert.equal(s.info.hostKeyAlgorithm, 'ssh-rsa');
    assert.equal(s.info.fingerprint, legacySshd.hostKeys.rsa.fingerprint);
    assert.equal(s.info.cipherClientToServer, 'aes128-cbc');
    assert.equal(s.info.cipherServerToClient, 'aes128-cbc');
    assert.equal(s.info.macClientToServer, 'hmac-sha1');
    const details = weak.map((d) => d.replace(/^ch \d+: /, ''));
    assert.deepEqual(details.sort(), [
      'cipher aes128-cbc',
      'hostKey ssh-rsa',
      'kex diffie-hellman-group14-sha1',
      'mac hmac-sha1',
    ]);

    // The stored ssh-rsa key: the next session puts RSA first and sees it as `match`.
    const seen = [];
    const s2 = await conn.openSession(
      login(legacySshd, {
        algorithms: 'legacy',
        command: 'echo again',
        knownHosts,
        hostKey: { verify: (i) => (seen.push(i.known), true) },
      }),
    );
    const out2 = collect(s2);
    await out2.closedP();
    assert.equal(out2.stdout, 'again\n');
    assert.deepEqual(seen, ['match']);
  });

  test('the preset spread into lists -> a shell (group1-sha1, aes256-cbc)', async () => {
    const conn = await connection();
    const weak = [];
    conn.onDiagnostic((d) => d.code === 'weak_algorithm' && weak.push(d.detail));
    const s = await conn.openSession(
      login(legacySshd, {
        algorithms: {
          kex: ['diffie-hellman-group1-sha1', ...defaults.kex],
          hostKey: [...legacy.hostKey],
          cipher: ['aes256-cbc', ...defaults.cipher],
          mac: [...legacy.mac],
        },
        term: { cols: 80, rows: 24 },
      }),
    );
    const out = collect(s);
    s.write('echo spread-$((6*7)); exit 0\n');
    await out.text(/spread-42/);
    await out.closedP();
    assert.equal(s.info.kex, 'diffie-hellman-group1-sha1');
    assert.equal(s.info.cipherClientToServer, 'aes256-cbc');
    assert.ok(
      weak.some((d) => d.endsWith('kex diffie-hellman-group1-sha1')),
      weak.join('; '),
    );
    assert.ok(
      weak.some((d) => d.endsWith('cipher aes256-cbc')),
      weak.join('; '),
    );
  });

  test('the legacy preset does not downgrade a modern server (no weak_algorithm)', async () => {
    const conn = await connection();
    const weak = [];
    conn.onDiagnostic((d) => d.code === 'weak_algorithm' && weak.push(d.detail));
    for (const algorithms of ['legacy', undefined, 'default']) {
      const s = await conn.openSession(
        login(modernSshd, { command: 'true', ...(algorithms ? { algorithms } : {}) }),
      );
      await collect(s).closedP();
      assert.equal(s.info.kex, 'curve25519-sha256');
      assert.equal(s.info.hostKeyAlgorithm, 'ssh-ed25519');
      assert.equal(s.info.cipherClientToServer, 'chacha20-poly1305@openssh.com');
    }
    // A custom MAC list with a modern server: an -etm MAC (chacha20 does not use it).
    const s = await conn.openSession(
      login(modernSshd, {
        command: 'true',
        algorithms: { cipher: ['aes256-ctr'], mac: ['hmac-sha2-512-etm@openssh.com'] },
      }),
    );
    await collect(s).closedP();
    assert.equal(s.info.cipherClientToServer, 'aes256-ctr');
    assert.equal(s.info.macClientToServer, 'hmac-sha2-512-etm@openssh.com');
    assert.deepEqual(weak, []);
  });

  test('unknown or malformed algorithm names -> typed errors before any network use', async () => {
    const conn = await connection();
    const connections = () => (legacySshd.log().match(/Connection from /g) ?? []).length;
    const before = connections();
    const unsupported = [
      [{ cipher: ['aes128-cbc', 'des-cbc'] }, 'cipher', ['des-cbc']],
      [
        { kex: ['sntrup761x25519-sha512@openssh.com'] },
        'kex',
        ['sntrup761x25519-sha512@openssh.com'],
      ],
      [{ kex: ['ext-info-c'] }, 'kex', ['ext-info-c']],
      [
        { hostKey: ['ssh-ed25519', 'sk-ssh-ed25519@openssh.com'] },
        'hostKey',
        ['sk-ssh-ed25519@openssh.com'],
      ],
      [{ mac: ['umac-64@openssh.com', 'none'] }, 'mac', ['umac-64@openssh.com', 'none']],
      [{ cipher: ['none'] }, 'cipher', ['none']],
    ];
    for (const [algorithms, kind, names] of unsupported) {
      await assert.rejects(
        conn.openSession(login(legacySshd, { command: 'true', algorithms })),
        (e) =>
          e instanceof lib.SshAlgorithmError &&
          e.code === 'unsupported_algorithm' &&
          e.origin === 'local' &&
          e.kind === kind &&
          JSON.stringify(e.unsupported) === JSON.stringify(names),
        JSON.stringify(algorithms),
      );
    }
    // The older `ciphers` option is checked the same way.
    await assert.rejects(
      conn.openSession(login(legacySshd, { command: 'true', ciphers: 'aes128-ctr,rc4' })),
      (e) =>
        e instanceof lib.SshAlgorithmError && e.kind === 'cipher' && e.unsupported[0] === 'rc4',
    );
    const malformed = [
      'weak',
      { hostkey: ['ssh-rsa'] },
      { cipher: [] },
      { cipher: 'aes128-ctr' },
      { mac: ['hmac-sha2-256,hmac-sha1'] },
      { kex: [42] },
    ];
    for (const algorithms of malformed) {
      await assert.rejects(
        conn.openSession(login(legacySshd, { command: 'true', algorithms })),
        (e) => e instanceof lib.InvalidStateError && e.code === 'invalid_argument',
        JSON.stringify(algorithms),
      );
    }
    await assert.rejects(
      conn.openSession(
        login(legacySshd, {
          command: 'true',
          ciphers: 'aes128-ctr',
          algorithms: { cipher: ['aes128-ctr'] },
        }),
      ),
      (e) => e instanceof lib.InvalidStateError && /either `ciphers`/.test(e.message),
    );
    assert.equal(connections(), before, 'sshd saw no connection');
    assert.equal(await lib.liveSshEngines(), 0);
    assert.equal(conn.state, 'ready');
  });

  test('every wasm handle released after teardown', async () => {
    for (const c of conns.splice(0)) c.dispose();
    assert.equal(await lib.liveSshEngines(), 0);
  });
});
