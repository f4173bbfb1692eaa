// SSH authentication and host-key trust in Chromium against a real sshd, through the API of the
// package the demo page bundles (window.manaDemo.lib).
import { test, expect, type DemoWindow, type Sshd } from './fixtures';

/** What a test varies; run() adds the gateway (URL, token) and the sshd (host, port, user). */
interface Options {
  auth: Record<string, unknown>;
  command?: string;
  kbdAnswer?: string;
  seedKnownHost?: string;
}

interface Args extends Options {
  url: string;
  token: string;
  host: string;
  port: number;
  user: string;
}

/** Opens a session in the page as `sshd`'s user through `gateway`; returns what happened. */
async function run(
  page: import('@playwright/test').Page,
  gateway: { url: string; token: () => string },
  sshd: Sshd,
  options: Options,
) {
  const args: Args = {
    url: gateway.url,
    token: gateway.token(),
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    ...options,
  };
  return page.evaluate(async (a) => {
    const { lib } = (window as unknown as DemoWindow).manaDemo;
    if (a.seedKnownHost) {
      localStorage.setItem(`mana.ssh.known_host:${a.host}:${a.port}`, a.seedKnownHost);
    }
    const conn = await lib.connect({ url: a.url, token: a.token, storage: 'none' });
    const prompts: string[] = [];
    try {
      await conn.whenReady();
      const auth = a.kbdAnswer
        ? {
            keyboardInteractive: (ps: { prompt: string }[]) => {
              prompts.push(...ps.map((p) => p.prompt));
              return ps.map(() => a.kbdAnswer ?? '');
            },
          }
        : a.auth;
      const s = await conn.openSession({
        target: { host: a.host, port: a.port },
        username: a.user,
        auth,
        knownHosts: 'memory',
        ...(a.seedKnownHost ? { knownHosts: localStorage } : {}),
        ...(a.command ? { command: a.command } : { term: { cols: 80, rows: 24 } }),
      });
      const out: number[] = [];
      const err: number[] = [];
      s.onData((d) => out.push(...d));
      s.onStderr((d) => err.push(...d));
      const exit = new Promise<{ code?: number; signal?: string }>((r) => s.onExit(r));
      if (!a.command) s.write('echo "ok-$((40+2))"; exit 0\n');
      const e = await Promise.race([
        exit,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 15000)),
      ]);
      const info = s.info;
      s.dispose();
      const dec = new TextDecoder();
      return {
        ok: true as const,
        stdout: dec.decode(new Uint8Array(out)),
        stderr: dec.decode(new Uint8Array(err)),
        exit: e ?? null,
        authMethod: info.authMethod,
        prompts,
      };
    } catch (e) {
      const x = e as Error & { code?: string; methods?: string[] };
      return {
        ok: false as const,
        name: x.name,
        code: x.code,
        methods: x.methods ?? [],
        isAuthError: e instanceof (lib.AuthError as typeof Error),
        message: x.message,
        prompts,
      };
    } finally {
      conn.dispose();
    }
  }, args);
}

test('password login + echo', async ({ demoPage: page, sshGateway, sshd }) => {
  const r = await run(page, sshGateway, sshd, { auth: { password: sshd.password } });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  if (!r.ok) return;
  expect(r.stdout).toMatch(/^ok-42\r?$/m);
  expect(r.authMethod).toBe('password');
  expect(r.exit?.code).toBe(0);
});

test('wrong password -> AuthError with the methods the server allows', async ({
  demoPage: page,
  sshGateway,
  sshd,
}) => {
  const r = await run(page, sshGateway, sshd, {
    auth: { password: 'definitely-not-the-password' },
  });
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.isAuthError, JSON.stringify(r)).toBe(true);
  expect(r.methods).toContain('password');
  expect(r.methods).toContain('publickey');
});

test('keyboard-interactive: the prompt is answered', async ({
  demoPage: page,
  sshGateway,
  kbdSshd,
}) => {
  const r = await run(page, sshGateway, kbdSshd, { auth: {}, kbdAnswer: kbdSshd.password });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  if (!r.ok) return;
  expect(r.prompts.join('|')).toMatch(/Password/i);
  expect(r.authMethod).toBe('keyboard-interactive');
  expect(r.stdout).toMatch(/^ok-42\r?$/m);
});

test('changed host key -> HostKeyError, no authentication attempted', async ({
  demoPage: page,
  sshGateway,
  sshd,
}) => {
  const before = (sshd.log().match(/Accepted |Failed /g) ?? []).length;
  // A different ed25519 key (the user key's public half) stored for this host:port.
  const r = await run(page, sshGateway, sshd, {
    auth: { privateKey: sshd.userKey.privateKey },
    seedKnownHost: sshd.userKey.publicKey.split(' ').slice(0, 2).join(' '),
  });
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.name).toBe('HostKeyError');
  expect(r.code).toBe('hostkey_changed');
  await page.waitForTimeout(200);
  expect((sshd.log().match(/Accepted |Failed /g) ?? []).length).toBe(before);
});

test('exec: stdout and stderr separated, exit code', async ({
  demoPage: page,
  sshGateway,
  sshd,
}) => {
  const r = await run(page, sshGateway, sshd, {
    auth: { privateKey: sshd.userKey.privateKey },
    command: 'echo to-out; echo to-err >&2; exit 7',
  });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  if (!r.ok) return;
  expect(r.stdout).toBe('to-out\n');
  expect(r.stderr).toBe('to-err\n');
  expect(r.exit?.code).toBe(7);
});

test('exit signal', async ({ demoPage: page, sshGateway, sshd }) => {
  const r = await run(page, sshGateway, sshd, {
    auth: { privateKey: sshd.userKey.privateKey },
    command: 'kill -TERM $$',
  });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  if (!r.ok) return;
  expect(r.exit?.signal).toMatch(/^(SIG)?TERM$/);
});
