// SPDX-License-Identifier: Apache-2.0
// Jump hosts in the browser (issue #20 §3): conn.openSession({ via }) through the real
// mana-gateway. sshd A is the bastion, the only target the gateway allows; sshd B listens on
// another loopback port that the gateway's policy denies, so B is reachable only through A. Both
// SSH sessions run in this process (libssh2 in wasm): A's engine opens a direct-tcpip channel to
// B and B's engine runs over it. A allows tunnels to B only (PermitOpen), so any other
// destination is refused with "administratively prohibited".
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../tools/devkit/net.mjs';
import { killTree, processTree } from '../../tools/devkit/sshd.mjs';
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

describe('SSH through a jump host (via)', { skip }, () => {
  let a; // bastion: allowed at the gateway, tunnels to B only
  let b; // target: denied at the gateway
  let gw;
  const conns = [];

  before(async () => {
    b = await startSshd();
    a = await startSshd({ extraConfig: `PermitOpen 127.0.0.1:${b.port}` });
    gw = await startGateway([a.port]);
  });

  after(async () => {
    for (const c of conns.splice(0)) c.dispose();
    await gw?.stop();
    await a?.stop();
    await b?.stop();
  });

  async function connection() {
    for (const c of conns.splice(0)) c.dispose();
    const conn = await lib.connect(connectOptions(gw));
    conns.push(conn);
    await conn.whenReady();
    return conn;
  }

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
    knownHosts: memoryStorage(),
    ...extra,
  });
  const failure = (p) =>
    p.then(
      () => assert.fail('must not open'),
      (e) => e,
    );
  // The bastion's close ends with the bastion's reply to its channel close: wait for it.
  async function noEngines() {
    for (let i = 0; i < 100 && (await lib.liveSshEngines()) > 0; i++) await sleep(20);
    return lib.liveSshEngines();
  }
  // The known-hosts value of an sshd's ed25519 host key: "<type> <base64>" (no comment).
  const keyOf = (sshd) => sshd.hostKeys.ed25519.pub.split(' ').slice(0, 2).join(' ');
  const logins = (sshd) => (sshd.log().match(/Accepted publickey/g) ?? []).length;

  test('login to B through A: exec output, both host keys (TOFU), B sees A as the client', async () => {
    const conn = await connection();
    const knownHosts = memoryStorage();
    const diags = [];
    conn.onDiagnostic((d) => d.code === 'ssh_hostkey' && diags.push(d.detail));
    const before = logins(b);
    const t0 = performance.now();
    const s = await conn.openSession(
      viaA({ knownHosts, command: 'echo "conn=$SSH_CONNECTION"; echo hello-$((6*7))' }),
    );
    console.log(
      `# open through A (two handshakes + auths + exec) ${(performance.now() - t0).toFixed(0)} ms`,
    );
    const out = collect(s);
    await out.until((o) => o.exit !== undefined && o.closed !== undefined);
    const m = /^conn=(\S+) (\d+) (\S+) (\d+)\nhello-42\n$/u.exec(out.stdout);
    assert.ok(m, JSON.stringify(out.stdout));
    assert.equal(m[1], '127.0.0.1', 'the client B sees is the bastion (loopback)');
    assert.equal(Number(m[4]), b.port);
    assert.deepEqual(out.exit, { code: 0 });
    assert.equal(out.closed.error, undefined);
    // B's own log: the login came from A's connection (the source port B logged is the one in
    // SSH_CONNECTION), with B's user key.
    assert.equal(logins(b), before + 1);
    assert.match(
      b.log(),
      new RegExp(`Accepted publickey for ${b.user} from 127.0.0.1 port ${m[2]}`),
    );
    assert.match(a.log(), new RegExp(`Accepted publickey for ${a.user} from 127.0.0.1`));
    assert.equal(s.info.fingerprint, b.hostKeys.ed25519.fingerprint);
    assert.equal(s.target.port, b.port);
    // Both layers' keys were checked and stored, each under its own host:port.
    assert.equal(knownHosts.getItem(`mana.ssh.known_host:127.0.0.1:${a.port}`), keyOf(a));
    assert.equal(knownHosts.getItem(`mana.ssh.known_host:127.0.0.1:${b.port}`), keyOf(b));
    assert.equal(diags.length, 2, diags.join('\n'));
    assert.match(diags[0], new RegExp(`127.0.0.1:${a.port} .* new -> accepted`));
    assert.match(diags[1], new RegExp(`127.0.0.1:${b.port} .* new -> accepted`));
    // The gateway relayed one channel, to A; B never was its target.
    const targets = gw.log.filter((l) => l.event === 'open' || l.event === 'policy');
    assert.ok(targets.length > 0, 'the gateway logged its opens');
    assert.deepEqual([...new Set(targets.map((l) => l.port))], [a.port], 'the gateway never saw B');
    assert.equal(await noEngines(), 0, 'both engines released');
  });

  test('algorithms apply per layer: AES-GCM to the bastion, the defaults to the target', async () => {
    const conn = await connection();
    const kex = [];
    conn.onDiagnostic((d) => d.code === 'ssh_kex_done' && kex.push(d.detail));
    const s = await conn.openSession(
      viaA({
        via: bastion({ algorithms: { cipher: ['aes256-gcm@openssh.com'] } }),
        command: 'true',
      }),
    );
    await collect(s).closedP();
    assert.equal(s.info.cipherServerToClient, 'chacha20-poly1305@openssh.com');
    assert.equal(kex.length, 2, kex.join('\n'));
    assert.match(kex[0], /^ch \d+ bastion 0: .*c2s=aes256-gcm@openssh\.com/);
    assert.match(kex[1], /^ch \d+ target 1: .*c2s=chacha20-poly1305@openssh\.com/);
  });

  test('a direct open to B is denied by the gateway (policy_denied)', async () => {
    const conn = await connection();
    const err = await failure(conn.openSession(viaA({ via: undefined, command: 'true' })));
    assert.ok(err instanceof lib.ChannelOpenError, String(err));
    assert.equal(err.code, 'policy_denied');
    assert.equal(err.sshLayer, undefined, 'no jump chain, no layer');
    assert.equal(conn.state, 'ready');
  });

  test('a shell on B through A: pty, resize, exit status; per-layer hostKey.verify', async () => {
    const conn = await connection();
    const asked = [];
    const verify = (info) => {
      asked.push(`${info.port} ${info.fingerprint} ${info.known}`);
      return true;
    };
    const s = await conn.openSession(
      viaA({
        via: bastion({ hostKey: { verify } }),
        hostKey: { verify },
        term: { cols: 80, rows: 24 },
      }),
    );
    assert.deepEqual(asked, [
      `${a.port} ${a.hostKeys.ed25519.fingerprint} new`,
      `${b.port} ${b.hostKeys.ed25519.fingerprint} new`,
    ]);
    const out = collect(s);
    s.resize(101, 33);
    await new Promise((r) => setTimeout(r, 50));
    s.write('stty size; echo marker-$((2*21)); exit 7\n');
    await out.closedP();
    assert.match(out.stdout, /33 101/);
    assert.match(out.stdout, /marker-42/);
    assert.deepEqual(out.exit, { code: 7 });
    assert.equal(out.closed.error, undefined);
  });

  test('transport cut mid-session: both layers resume, markers without loss/dup', async () => {
    const conn = await connection();
    const out = await cutMidSession(conn, (o) => conn.openSession(viaA(o)));
    assert.equal(out.closed.error, undefined);
  });

  test('16 MiB from B through A, byte-exact (SHA-256), with a slow manual reader', async () => {
    const conn = await connection();
    const size = 16 * 1024 * 1024;
    const data = randomBytes(size);
    const file = join(b.dir, 'blob.bin');
    writeFileSync(file, data, { mode: 0o644 });
    const s = await conn.openSession(viaA({ command: `cat ${file}`, flow: 'manual' }));
    const hash = createHash('sha256');
    let got = 0;
    let maxUnconsumed = 0;
    s.onData((d) => {
      hash.update(d);
      got += d.length;
      maxUnconsumed = Math.max(maxUnconsumed, s.unconsumed);
      // Consume later: the whole chain must hold back meanwhile.
      setTimeout(() => s.consume(d.length), got < 2 * 1024 * 1024 ? 5 : 0);
    });
    await new Promise((r) => s.onClose(r));
    assert.equal(got, size);
    assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
    assert.ok(maxUnconsumed <= 512 * 1024 + 128 * 1024, `unconsumed peaked at ${maxUnconsumed}`);
  });

  test('8 MiB upload to B through A (sha256sum on B); refused writes wait for onWritable', async () => {
    const conn = await connection();
    const s = await conn.openSession(viaA({ command: 'sha256sum' }));
    const out = collect(s);
    const data = randomBytes(8 << 20);
    const t0 = performance.now();
    let refused = 0;
    s.onWritable(() => refused++);
    await s.writeAll(data);
    s.sendEof();
    await out.closedP(60000);
    const ms = performance.now() - t0;
    assert.equal(out.stdout.split(' ')[0], createHash('sha256').update(data).digest('hex'));
    assert.ok(refused > 0, 'the 1 MiB input queue filled and drained through the bastion');
    console.log(`# upload 8 MiB through the bastion: ${((8 / ms) * 1000).toFixed(1)} MiB/s`);
  });

  test('64 MiB download: through A vs from A directly, MB/s printed', async () => {
    const size = 64 << 20;
    const data = randomBytes(size);
    const want = createHash('sha256').update(data).digest('hex');
    const conn = await connection();
    const rates = {};
    for (const [name, sshd, options] of [
      ['direct (A)', a, { ...bastion(), via: undefined, knownHosts: memoryStorage() }],
      ['through A (B)', b, {}],
    ]) {
      const file = join(sshd.dir, 'blob-64.bin');
      writeFileSync(file, data, { mode: 0o644 });
      const s = await conn.openSession(viaA({ ...options, command: `cat ${file}` }));
      const hash = createHash('sha256');
      let got = 0;
      const t0 = performance.now();
      s.onData((d) => {
        hash.update(d);
        got += d.length;
      });
      await new Promise((r) => s.onClose(r));
      const ms = performance.now() - t0;
      assert.equal(got, size, name);
      assert.equal(hash.digest('hex'), want, name);
      rates[name] = (size / 1e6 / (ms / 1000)).toFixed(1);
    }
    console.log(`# download 64 MiB MB/s: ${JSON.stringify(rates)}`);
  });

  test('wrong host key of B -> HostKeyError naming the target layer; A was fine', async () => {
    const conn = await connection();
    // B's entry holds A's key: B presents another one (a possible man in the middle).
    const knownHosts = memoryStorage({
      [`mana.ssh.known_host:127.0.0.1:${b.port}`]: keyOf(a),
    });
    const before = logins(b);
    const err = await failure(conn.openSession(viaA({ knownHosts, command: 'true' })));
    assert.ok(err instanceof lib.HostKeyError, String(err));
    assert.equal(err.code, 'hostkey_changed');
    assert.deepEqual(err.sshLayer, { role: 'target', hop: 1, host: '127.0.0.1', port: b.port });
    assert.equal(err.hostKey.fingerprint, b.hostKeys.ed25519.fingerprint);
    assert.match(err.message, new RegExp(`^target 127.0.0.1:${b.port}: host key`));
    assert.equal(logins(b), before, 'nothing authenticated at B');
    assert.equal(await noEngines(), 0, 'the bastion closed with it');
    // A's key was new and accepted; B's stored (A's) key is kept.
    assert.equal(knownHosts.getItem(`mana.ssh.known_host:127.0.0.1:${a.port}`), keyOf(a));
    assert.equal(knownHosts.getItem(`mana.ssh.known_host:127.0.0.1:${b.port}`), keyOf(a));
    assert.equal(conn.state, 'ready');
  });

  test('authentication failure names its layer: bastion vs target', async () => {
    const conn = await connection();
    const atA = await failure(
      conn.openSession(
        viaA({ via: bastion({ auth: { privateKey: b.userKey.privateKey } }), command: 'true' }),
      ),
    );
    assert.ok(atA instanceof lib.SshAuthError, String(atA));
    assert.equal(atA.code, 'auth_failed');
    assert.deepEqual(atA.sshLayer, { role: 'bastion', hop: 0, host: '127.0.0.1', port: a.port });
    assert.match(atA.message, /^bastion 127\.0\.0\.1:\d+: SSH authentication/);
    const atB = await failure(
      conn.openSession(viaA({ auth: { privateKey: a.userKey.privateKey }, command: 'true' })),
    );
    assert.ok(atB instanceof lib.SshAuthError, String(atB));
    assert.equal(atB.sshLayer.role, 'target');
    assert.equal(atB.sshLayer.port, b.port);
    assert.equal(await noEngines(), 0);
  });

  test('the bastion refuses the tunnel -> SshTunnelError with the open-failure reason', async () => {
    const conn = await connection();
    // A's PermitOpen allows B only.
    const err = await failure(
      conn.openSession(viaA({ target: { host: '127.0.0.1', port: a.port }, command: 'true' })),
    );
    assert.ok(err instanceof lib.SshTunnelError, String(err));
    assert.ok(err instanceof lib.SshError);
    assert.equal(err.code, 'tunnel_refused');
    assert.equal(err.reasonCode, 1);
    assert.equal(err.reason, 'administratively_prohibited');
    assert.deepEqual(err.to, { host: '127.0.0.1', port: a.port });
    assert.deepEqual(err.sshLayer, { role: 'bastion', hop: 0, host: '127.0.0.1', port: a.port });
    assert.equal(await noEngines(), 0);
  });

  test('the second bastion cannot connect -> SshTunnelError reason 2 naming bastion hop 1', async () => {
    const conn = await connection();
    const closed = await freePort(); // nothing listens there
    const viaB = {
      target: { host: '127.0.0.1', port: b.port },
      username: b.user,
      auth: { privateKey: b.userKey.privateKey },
    };
    const err = await failure(
      conn.openSession(
        viaA({
          via: [bastion(), viaB],
          target: { host: '127.0.0.1', port: closed },
          command: 'true',
        }),
      ),
    );
    assert.ok(err instanceof lib.SshTunnelError, String(err));
    assert.equal(err.reasonCode, 2);
    assert.equal(err.reason, 'connect_failed');
    assert.deepEqual(err.sshLayer, { role: 'bastion', hop: 1, host: '127.0.0.1', port: b.port });
    assert.equal(await noEngines(), 0);
  });

  test('the bastion going away ends the target session with the bastion error', async () => {
    const conn = await connection();
    const s = await conn.openSession(viaA({ command: 'sleep 30' }));
    const out = collect(s);
    // A's per-connection processes (not the listener): the bastion's SSH connection dies.
    const children = processTree(a.pid).filter((p) => p !== a.pid);
    assert.ok(children.length > 0);
    killTree(children, 'SIGKILL');
    await out.closedP(15000);
    const err = out.closed.error;
    assert.ok(err instanceof lib.SshError, String(err));
    assert.equal(err.sshLayer?.role, 'bastion', String(err));
    assert.equal(err.code, 'transport_closed');
    assert.match(err.message, /^bastion 127\.0\.0\.1:\d+: the transport of the SSH session closed/);
    assert.equal(err.sshLayer.port, a.port);
    assert.equal(await noEngines(), 0);
    assert.equal(conn.state, 'ready', 'the connection is unaffected');
  });

  test('dispose() releases both engines at once; close() ends both politely', async () => {
    const conn = await connection();
    const s1 = await conn.openSession(viaA({ command: 'sleep 30' }));
    assert.equal(await lib.liveSshEngines(), 2, 'bastion + target');
    s1.dispose();
    assert.equal(await lib.liveSshEngines(), 0, 'released synchronously');
    const s2 = await conn.openSession(viaA({ term: { cols: 80, rows: 24 } }));
    const out = collect(s2);
    s2.close();
    await out.closedP();
    assert.equal(out.closed.error, undefined);
    assert.equal(await noEngines(), 0);
    assert.equal(conn.state, 'ready');
  });

  test('a chain of two bastions (A, then B) to B; bad options are refused up front', async () => {
    const conn = await connection();
    const s = await conn.openSession(
      viaA({
        via: [
          bastion(),
          {
            target: { host: '127.0.0.1', port: b.port },
            username: b.user,
            auth: { privateKey: b.userKey.privateKey },
          },
        ],
        command: 'echo chained',
      }),
    );
    const out = collect(s);
    await out.closedP();
    assert.equal(out.stdout, 'chained\n');
    assert.equal(out.closed.error, undefined);
    await assert.rejects(
      conn.openSession(viaA({ via: [], command: 'true' })),
      (e) => e instanceof lib.InvalidStateError && /via takes/.test(e.message),
    );
    await assert.rejects(
      conn.openSession(viaA({ target: { host: 'h'.repeat(256), port: 22 }, command: 'true' })),
      (e) => e instanceof lib.InvalidStateError && /target\.host is longer/.test(e.message),
    );
    await assert.rejects(
      conn.openSession(viaA({ via: bastion({ username: '' }), command: 'true' })),
      (e) => e instanceof lib.InvalidStateError && /via\[0\]\.username/.test(e.message),
    );
    await assert.rejects(
      conn.openSession(
        viaA({ via: bastion({ algorithms: { cipher: ['nope'] } }), command: 'true' }),
      ),
      (e) => e instanceof lib.SshAlgorithmError && e.code === 'unsupported_algorithm',
    );
    assert.equal(await noEngines(), 0);
  });

  test('every wasm handle released after teardown', async () => {
    for (const c of conns.splice(0)) c.dispose();
    assert.equal(await noEngines(), 0);
    assert.equal(await lib.liveCoreSessions(), 0);
  });
});
