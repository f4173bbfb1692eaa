// SPDX-License-Identifier: Apache-2.0
// Jump hosts (issue #20 §3) in Chromium: through the API of the package the demo page bundles
// (window.manaDemo.lib), a session to sshd B through sshd A. The gateway allows A only; B listens
// on another loopback port that its policy denies. Both SSH sessions run in the page.
import { test as sshTest, expect, type DemoWindow, type Sshd } from './fixtures';
import { devkit } from '../fixtures';

interface Sshds {
  a: Sshd & { pid: number };
  b: Sshd;
}
type StartSshd = (options?: Record<string, unknown>) => Promise<Sshd & { pid: number }>;

const test = sshTest.extend<{ jump: Sshds }>({
  jump: async ({}, use) => {
    const { startSshd } = await devkit<{ startSshd: StartSshd }>('sshd.mjs');
    const b = await startSshd();
    const a = await startSshd({ extraConfig: `PermitOpen 127.0.0.1:${b.port}` });
    await use({ a, b });
    await a.stop();
    await b.stop();
  },
});

interface Args {
  url: string;
  token: string;
  a: { port: number; user: string; key: string };
  b: { port: number; user: string; key: string; wrongKnownKey: string };
}

test('B through bastion A in the page; direct B denied; changed key of B names the target', async ({
  page,
  demoSite,
  gatewayWith,
  jump,
}) => {
  const { a, b } = jump;
  page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
  const gw = await gatewayWith({ targets: [a.port], origins: [demoSite.origin] });
  demoSite.configure({
    gatewayUrl: gw.url,
    target: { host: a.host, port: a.port },
    user: a.user,
    token: () => gw.token(),
  });
  await page.goto(demoSite.origin + '/');
  await page.waitForSelector('body[data-ready="1"]');
  const pub = (s: Sshd) => (s.hostKeys.ed25519?.pub ?? '').split(' ').slice(0, 2).join(' ');
  const args: Args = {
    url: gw.url,
    token: gw.token(),
    a: { port: a.port, user: a.user, key: a.userKey.privateKey },
    b: { port: b.port, user: b.user, key: b.userKey.privateKey, wrongKnownKey: pub(a) },
  };
  const r = await page.evaluate(async (x) => {
    const { lib } = (window as unknown as DemoWindow).manaDemo;
    const conn = await lib.connect({ url: x.url, token: x.token, storage: 'none' });
    const known = new Map<string, string>();
    const knownHosts = {
      getItem: (k: string) => known.get(k) ?? null,
      setItem: (k: string, v: string) => void known.set(k, v),
      removeItem: (k: string) => void known.delete(k),
    };
    const login = (extra: Record<string, unknown>) => ({
      target: { host: '127.0.0.1', port: x.b.port },
      username: x.b.user,
      auth: { privateKey: x.b.key },
      knownHosts,
      via: {
        target: { host: '127.0.0.1', port: x.a.port },
        username: x.a.user,
        auth: { privateKey: x.a.key },
      },
      ...extra,
    });
    const fail = async (o: Record<string, unknown>) => {
      try {
        await conn.openSession(o);
        return { name: 'none' };
      } catch (e) {
        const err = e as Error & { code?: string; sshLayer?: { role: string; port: number } };
        return { name: err.name, code: err.code, layer: err.sshLayer ?? null };
      }
    };
    try {
      await conn.whenReady();
      const s = await conn.openSession(
        login({ command: 'echo "conn=$SSH_CONNECTION"; echo jump-$((6*7))' }),
      );
      const out: number[] = [];
      s.onData((d) => out.push(...d));
      const exited = new Promise<{ code?: number }>((res) => s.onExit(res));
      const closed = new Promise((res) => s.onClose(res));
      const exit = await exited;
      await closed;
      const info = s.info;
      const direct = await fail(login({ via: undefined, command: 'true' }));
      known.set(`mana.ssh.known_host:127.0.0.1:${x.b.port}`, x.b.wrongKnownKey);
      const changed = await fail(login({ command: 'true' }));
      return {
        stdout: new TextDecoder().decode(new Uint8Array(out)),
        exit,
        fingerprint: info.fingerprint,
        knownKeys: [...known.keys()].sort(),
        direct,
        changed,
      };
    } finally {
      conn.dispose();
    }
  }, args);

  expect(r.stdout).toMatch(
    new RegExp(`^conn=127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${b.port}\\njump-42\\n$`),
  );
  expect(r.exit.code).toBe(0);
  expect(r.fingerprint).toBe(b.hostKeys.ed25519?.fingerprint);
  expect(r.knownKeys).toEqual(
    [a.port, b.port].map((p) => `mana.ssh.known_host:127.0.0.1:${p}`).sort(),
  );
  expect(r.direct).toEqual({ name: 'ChannelOpenError', code: 'policy_denied', layer: null });
  expect(r.changed.name).toBe('HostKeyError');
  expect(r.changed.code).toBe('hostkey_changed');
  expect(r.changed.layer).toMatchObject({ role: 'target', port: b.port });
  expect(b.log()).toMatch(new RegExp(`Accepted publickey for ${b.user} from 127\\.0\\.0\\.1`));
});
