// The wasm SSH engine driven directly over a TCP socket to a real sshd (no gateway): strict KEX,
// bounded queues, randomness that fails closed, and a security-key login (the wasm libssh2 with
// our webauthn patch, signed by a software WebAuthn authenticator). Each test instantiates its own
// module.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { clearInterval, setImmediate, setInterval } from 'node:timers';
import { distDir } from './helpers.mjs';
import { install, SoftAuthenticator } from './soft-authenticator.mjs';
import { sshBuilt, sshWasm, startSshd } from './ssh-helpers.mjs';

const skip = sshBuilt ? false : 'mana-ssh.wasm is not in the package (MANA_WASM_SSH is OFF)';

async function freshModule(extra = {}) {
  const { default: createManaSsh } = await import(
    join(distDir, 'internal', 'mana-ssh.mjs') + `?instance=${Math.random()}`
  );
  const { wrapSshModule } = await import(join(distDir, 'internal', 'ssh-engine.js'));
  return wrapSshModule(await createManaSsh({ wasmBinary: readFileSync(sshWasm), ...extra }));
}

/** Runs one engine over TCP until it closes; `drain` false stops taking its output. */
function drive(engine, port, { onEvent = () => {}, drain = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const events = [];
    const sock = tcpConnect(port, '127.0.0.1');
    let done = false;
    const pump = () => {
      if (done) return;
      try {
        engine.step(performance.now());
        if (drain()) {
          const out = engine.takeOutput(1 << 20);
          if (out.length > 0) sock.write(out);
        }
        engine.takeInputConsumed();
        let any = false;
        for (let ev = engine.pollEvent(); ev !== null; ev = engine.pollEvent()) {
          any = true;
          events.push(ev);
          onEvent(ev, engine, pump);
          if (ev.type === 'closed') {
            done = true;
            const out = engine.takeOutput(1 << 20);
            if (out.length > 0) sock.write(out);
            sock.end();
            resolve(events);
            return;
          }
        }
        if (any) setImmediate(pump); // the listeners may have answered (host key, consume)
      } catch (e) {
        done = true;
        sock.destroy();
        reject(e);
      }
    };
    sock.on('connect', pump);
    sock.on('data', (d) => {
      engine.pushInput(d);
      pump();
    });
    sock.on('close', () => {
      if (done) return;
      engine.transportClosed();
      pump();
    });
    sock.on('error', () => undefined);
    engine._pump = pump;
  });
}

describe('SSH engine over plain TCP', { skip }, () => {
  let sshd;
  before(async () => {
    sshd = await startSshd({ extraConfig: 'LogLevel DEBUG3' });
  });
  after(async () => {
    await sshd?.stop();
  });

  const config = (extra = {}) => ({
    username: sshd.user,
    auth: [{ type: 'publickey', privateKey: sshd.userKey.privateKey }],
    ...extra,
  });

  test('exec over TCP; strict KEX negotiated with OpenSSH (sshd log)', async () => {
    const mod = await freshModule();
    const engine = new mod.SshEngine(config({ command: 'echo direct' }));
    let out = '';
    const events = await drive(engine, sshd.port, {
      onEvent: (ev, e) => {
        if (ev.type === 'hostKey') e.hostKeyDecision(true);
        if (ev.type === 'data') {
          out += new TextDecoder().decode(ev.data);
          e.consume(ev.data.length);
        }
      },
    });
    assert.ok(out.endsWith('direct\n'), out); // (sshd at DEBUG3 also writes debug lines there)
    const closed = events.find((e) => e.type === 'closed');
    assert.equal(closed.reason, 'none');
    assert.deepEqual(
      events.filter((e) => e.type === 'exit').map((e) => e.code),
      [0],
    );
    engine.delete();
    assert.equal(mod.liveEngines(), 0);
    // OpenSSH 9.2p1 (Debian, with the Terrapin fix) logs the strict-KEX decision at DEBUG3.
    assert.match(sshd.log(), /KEX algorithms: [^\n]*,ext-info-c,kex-strict-c-v00@openssh.com/);
    assert.match(sshd.log(), /will use strict KEX ordering/, 'strict KEX (Terrapin fix) is on');
    assert.match(sshd.log(), /kex: client->server cipher: chacha20-poly1305@openssh.com/);
  });

  test('security key: a webauthn signature logs in (ECDSA-SK in sshd log); cancel closes', async () => {
    const sk = await import(join(distDir, 'ssh', 'security-key.js'));
    install(new SoftAuthenticator());
    try {
      const { authorizedKeysLine, credential } = await sk.enrollSecurityKey({
        rpId: 'localhost',
        user: 'wasm',
      });
      appendFileSync(join(sshd.dir, 'authorized_keys'), authorizedKeysLine + '\n'); // read per login
      const mod = await freshModule();
      const login = async (answer) => {
        const engine = new mod.SshEngine({
          username: sshd.user,
          auth: [{ type: 'security-key', publicKey: sk.securityKeyBlob(credential) }],
          command: 'echo signed-in',
        });
        let out = '';
        const states = [];
        const events = await drive(engine, sshd.port, {
          onEvent: (ev, e, pump) => {
            if (ev.type === 'hostKey') e.hostKeyDecision(true);
            if (ev.type === 'signRequest') {
              states.push(e.state());
              void answer(ev.data).then((sig) => {
                e.signResult(sig);
                pump();
              });
            }
            if (ev.type === 'data') {
              out += new TextDecoder().decode(ev.data);
              e.consume(ev.data.length);
            }
          },
        });
        engine.delete();
        return { out, states, closed: events.find((e) => e.type === 'closed') };
      };
      const ok = await login((data) => sk.signWithSecurityKey(credential, data));
      assert.equal(ok.closed.reason, 'none', JSON.stringify(ok.closed));
      assert.ok(ok.out.endsWith('signed-in\n'), ok.out);
      assert.deepEqual(ok.states, ['auth_sign']); // waiting, not blocked, until get() resolved
      assert.match(sshd.log(), /Accepted publickey for \S+ from [^\n]* ECDSA-SK SHA256:/u);
      const cancelled = await login(async () => null);
      assert.equal(cancelled.closed.reason, 'auth_cancelled');
      assert.equal(mod.liveEngines(), 0);
    } finally {
      delete globalThis.navigator;
    }
  });

  test('outbound queue stays bounded while the transport does not drain', async () => {
    const mod = await freshModule();
    const engine = new mod.SshEngine(config({ command: 'cat >/dev/null', outBound: 64 * 1024 }));
    let draining = true;
    let max = 0;
    let pushed = 0;
    let maxQueued = 0;
    const big = new Uint8Array(256 * 1024);
    const p = drive(engine, sshd.port, {
      drain: () => draining,
      onEvent: (ev, e, pump) => {
        if (ev.type === 'hostKey') e.hostKeyDecision(true);
        if (ev.type === 'ready') {
          draining = false; // the "transport" stops accepting: libssh2 must see EAGAIN
          for (let i = 0; i < 64; i++) {
            pushed += e.write(big);
            e.step(performance.now());
            max = Math.max(max, e.outputBytes());
            maxQueued = Math.max(maxQueued, e.writeQueued());
          }
          setTimeout(() => {
            max = Math.max(max, e.outputBytes());
            draining = true;
            e.sendEof();
            pump();
          }, 200);
        }
      },
    });
    const iv = setInterval(() => engine._pump?.(), 5);
    const events = await p;
    clearInterval(iv);
    assert.ok(maxQueued <= 1024 * 1024, `write queue bounded (${maxQueued})`);
    assert.ok(pushed < 2 * 1024 * 1024, `input stopped being accepted (${pushed})`);
    assert.ok(max <= 64 * 1024 + 256 * 1024, `output queue bounded (${max})`);
    assert.equal(events.find((e) => e.type === 'closed').reason, 'none');
    engine.delete();
  });

  test('randomness fails closed: broken crypto.getRandomValues -> no handshake', async () => {
    const mod = await freshModule({ printErr: () => undefined, onAbort: () => undefined });
    const original = globalThis.crypto.getRandomValues;
    let calls = 0;
    globalThis.crypto.getRandomValues = () => {
      calls += 1;
      throw new Error('entropy source unavailable');
    };
    let events;
    let error;
    try {
      const engine = new mod.SshEngine(config({ command: 'echo must-not-run' }));
      events = await drive(engine, sshd.port, {
        onEvent: (ev, e) => ev.type === 'hostKey' && e.hostKeyDecision(true),
      });
    } catch (e) {
      error = e;
    } finally {
      globalThis.crypto.getRandomValues = original;
    }
    assert.ok(calls > 0, 'the engine asked crypto.getRandomValues');
    if (error === undefined) {
      assert.ok(!events.some((e) => e.type === 'kexDone'), 'no key exchange completed');
      assert.notEqual(events.find((e) => e.type === 'closed').reason, 'none');
    } else {
      assert.match(String(error), /abort|entropy|RuntimeError/i);
    }
  });
});
