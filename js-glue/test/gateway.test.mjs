// SPDX-License-Identifier: Apache-2.0
// Loopback test against the real mana-gateway (build/native-debug/bin/mana-gateway, or
// $MANA_GATEWAY): the npm `ws` package stands in for the browser WebSocket, and the devkit's echo
// target (tools/devkit/targets.mjs: an SSH banner, then an echo) is the target.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTarget } from '../../tools/devkit/targets.mjs';
import { gatewayConnectOptions, lib, sleep, sockets, startGateway } from './helpers.mjs';

let gateway, target, url, targetPort;
const token = (sub = 'alice') => gateway.token({ sub });

before(async () => {
  target = await startTarget({ mode: 'echo', banner: 'SSH-2.0-test' });
  targetPort = target.port;
  gateway = await startGateway({ ports: [targetPort], resumeTtlMs: 10000 });
  url = gateway.url;
});

after(async () => {
  await gateway?.stop();
  await target?.close();
});

const options = (extra = {}) => gatewayConnectOptions(url, token(), extra);

/** Collects channel bytes (consuming them) until `n` arrived. */
function collector(ch) {
  const chunks = [];
  let total = 0;
  let waiter;
  ch.onData(({ data }) => {
    chunks.push(data);
    total += data.length;
    ch.consume(data.length);
    if (waiter && total >= waiter.n) waiter.resolve();
  });
  return {
    until(n, ms = 10000) {
      if (total >= n) return Promise.resolve(Buffer.concat(chunks));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${total}/${n} bytes arrived`)), ms);
        waiter = { n, resolve: () => (clearTimeout(t), resolve(Buffer.concat(chunks))) };
      });
    },
  };
}

test('handshake, SSH banner, echo of 1 MiB under credit, close', async () => {
  const conn = await lib.connect(options());
  await conn.whenReady();
  assert.equal(conn.state, 'ready');
  assert.equal(conn.server.server.length > 0, true);
  const ch = conn.openChannel({ target: { host: '127.0.0.1', port: targetPort }, kind: 'tcp' });
  const rx = collector(ch);
  await ch.opened;
  const banner = 'SSH-2.0-test\r\n';
  assert.equal((await rx.until(banner.length)).toString(), banner);
  const payload = Buffer.alloc(1 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  await ch.writeAll(payload);
  const all = await rx.until(banner.length + payload.length, 20000);
  assert.equal(Buffer.compare(all.subarray(banner.length), payload), 0, 'echo is byte-exact');
  const stats = ch.stats();
  assert.equal(stats.sent, payload.length);
  assert.ok(stats.sendLimit >= stats.sent, 'never sent past the server credit');
  conn.close();
  assert.equal(conn.state, 'closed');
  conn.dispose();
});

test('a target outside the policy is refused with ChannelOpenError', async () => {
  const conn = await lib.connect(options());
  await conn.whenReady();
  const ch = conn.openChannel({
    target: { host: '127.0.0.1', port: targetPort === 1 ? 2 : 1 },
    kind: 'tcp',
  });
  await assert.rejects(
    ch.opened,
    (e) => e instanceof lib.ChannelOpenError && e.code === 'policy_denied',
  );
  assert.equal(conn.state, 'ready');
  conn.dispose();
});

test('a bad JWT is an AuthError (4003, remote)', async () => {
  const conn = await lib.connect(options({ token: 'not.a.jwt' }));
  await assert.rejects(
    conn.whenReady(),
    (e) =>
      e instanceof lib.AuthError &&
      e.wsCode === 4003 &&
      e.appCode === 4003 &&
      e.origin === 'remote',
  );
  assert.equal(conn.state, 'closed');
  conn.dispose();
});

test('cut transport -> reconnecting -> resumed, no byte lost or duplicated', async () => {
  const conn = await lib.connect(options());
  await conn.whenReady();
  const states = [];
  conn.onStateChange((e) => states.push(e.to));
  const ch = conn.openChannel({ target: { host: '127.0.0.1', port: targetPort }, kind: 'tcp' });
  const rx = collector(ch);
  await ch.opened;
  await rx.until(14);
  await ch.writeAll('before-');
  await rx.until(14 + 7);
  sockets[sockets.length - 1].terminate(); // abrupt: no close frame
  await sleep(5);
  assert.equal(conn.state, 'reconnecting');
  ch.write('during-'); // kept for replay
  await new Promise((r) => {
    const d = conn.onStateChange((e) => e.to === 'ready' && (d.dispose(), r()));
  });
  await ch.writeAll('after');
  const all = (await rx.until(14 + 7 + 7 + 5)).toString();
  assert.equal(all, 'SSH-2.0-test\r\nbefore-during-after');
  assert.deepEqual(states, ['reconnecting', 'authenticating', 'ready']);
  conn.dispose();
  assert.equal(await lib.liveCoreSessions(), 0, 'every wasm handle released');
});
