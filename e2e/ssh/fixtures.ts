// SPDX-License-Identifier: Apache-2.0
// Fixtures of the SSH journeys (ssh/*.spec.ts), on top of ../fixtures:
//
//   sshd       (worker) real OpenSSH server from tools/devkit/sshd.mjs: ed25519 host key, user
//                       `mana-e2e` with the generated ed25519 key and a password (UsePAM no)
//   kbdSshd    (worker) a second sshd with keyboard-interactive (UsePAM yes; PAM asks
//                       "Password:") and nothing else
//   demoSite   (worker) serves the built web demo (build/web-demo, `make demo-build`): the real
//                       page with xterm.js, the xterm adapter and the bundled @mana/websocket
//                       (window.manaDemo.lib), plus /api/demo and /api/token like scripts/demo.mjs
//   sshGateway (test)   mana-gateway allowing demoSite's origin and both sshds
//   demoPage   (test)   `page` on the demo page, configured for sshGateway and sshd
import { readFileSync, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import type { Page } from '@playwright/test';
import { test as base, devkit, expect, listen, repoRoot, type Gateway } from '../fixtures';

export { expect };

/** What tools/devkit/sshd.mjs returns (the part the journeys use). */
export interface Sshd {
  host: string;
  port: number;
  user: string;
  password?: string;
  hostKeys: { ed25519?: { pub: string; fingerprint: string } };
  userKey: { privateKey: string; publicKey: string; fingerprint: string };
  log(): string;
  stop(): Promise<void>;
}
type StartSshd = (options?: Record<string, unknown>) => Promise<Sshd>;

async function loadStartSshd(): Promise<StartSshd> {
  return (await devkit<{ startSshd: StartSshd }>('sshd.mjs')).startSshd;
}

export interface DemoConfig {
  gatewayUrl: string;
  target: { host: string; port: number };
  user: string;
  privateKey?: string;
  password?: string;
  hostKey?: { algorithm: string; fingerprint: string };
  token: () => string;
}

export interface DemoSite {
  readonly origin: string;
  configure(c: DemoConfig): void;
  close(): Promise<void>;
}

export const webDemoDir = join(repoRoot, 'build', 'web-demo');
const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

async function startDemoSite(): Promise<DemoSite> {
  if (!existsSync(join(webDemoDir, 'index.html'))) {
    throw new Error(`${webDemoDir}/index.html is missing: run \`make demo-build\` first`);
  }
  let config: DemoConfig | undefined;
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const json = (code: number, body: unknown) =>
      res
        .writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify(body));
    if (path === '/api/demo') {
      if (!config) return json(503, { error: 'not configured' });
      const { token: _token, ...info } = config;
      void _token;
      return json(200, info);
    }
    if (path === '/api/token') {
      if (!config || req.method !== 'POST' || req.headers['x-mana-demo'] !== '1') {
        return json(405, { error: 'POST with x-mana-demo: 1' });
      }
      return json(200, { token: config.token(), expiresIn: 600 });
    }
    const file = normalize(join(webDemoDir, path === '/' ? 'index.html' : path.slice(1)));
    if (!file.startsWith(webDemoDir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(readFileSync(file));
  });
  const port = await listen(server);
  return {
    origin: `http://127.0.0.1:${port}`,
    configure: (c) => {
      config = c;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The terminal's text (scrollback + screen) of the demo page. */
export function termText(page: Page): Promise<string> {
  return page.evaluate(() => (window as unknown as DemoWindow).manaDemo.text());
}

/** Waits until the terminal text matches `re`; throws with the tail of the text otherwise. */
export async function waitTerm(page: Page, re: RegExp, ms = 15_000): Promise<string> {
  const end = Date.now() + ms;
  let t = '';
  while (Date.now() < end) {
    t = await termText(page);
    if (re.test(t)) return t;
    await page.waitForTimeout(30);
  }
  throw new Error(`terminal never matched ${re}; it shows:\n${t.slice(-800)}`);
}

/** Clicks into the terminal and types a line (real keyboard events through xterm.js). */
export async function typeLine(page: Page, line: string): Promise<void> {
  await page.locator('#terminal').click();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/** Logs in through the page's form (demo key prefilled), accepting the host-key prompt. */
export async function loginViaForm(page: Page, sshd: Sshd): Promise<void> {
  await page.click('#btn-connect');
  await page.locator('#hostkey-dialog[open]').waitFor({ timeout: 20_000 });
  expect((await page.textContent('#hk-fp'))?.trim()).toBe(sshd.hostKeys.ed25519?.fingerprint);
  await page.click('#hk-accept');
  await waitTerm(page, /[$#] ?$/m);
}

/** Minimal view of window.manaDemo for page.evaluate callbacks. */
export interface DemoWindow {
  manaDemo: {
    lib: Record<string, unknown> & {
      connect(o: Record<string, unknown>): Promise<DemoConnection>;
      attachTerminal(term: unknown, session: unknown, o?: Record<string, unknown>): DemoAttachment;
    };
    term: { cols: number; rows: number; write(d: Uint8Array, cb?: () => void): void };
    live(): { session?: DemoSession; exit?: { code?: number; signal?: string } } | undefined;
    text(): string;
  };
}
export interface DemoConnection {
  whenReady(): Promise<void>;
  openSession(o: Record<string, unknown>): Promise<DemoSession>;
  dispose(): void;
  state: string;
}
export interface DemoSession {
  onData(l: (d: Uint8Array) => void): { dispose(): void };
  onStderr(l: (d: Uint8Array) => void): { dispose(): void };
  onExit(l: (e: { code?: number; signal?: string }) => void): { dispose(): void };
  onClose(l: (e: { error?: Error }) => void): { dispose(): void };
  write(d: Uint8Array | string): number;
  writeAll(d: Uint8Array | string): Promise<void>;
  signal(name: string): void;
  consume(n: number): void;
  close(): void;
  dispose(): void;
  info: Record<string, string>;
  state: string;
}
export interface DemoAttachment {
  stats(): Record<string, number>;
  paused: boolean;
  dispose(): void;
}

interface SshWorkerFixtures {
  sshd: Sshd;
  kbdSshd: Sshd;
  demoSite: DemoSite;
}
interface SshTestFixtures {
  sshGateway: Gateway;
  demoPage: Page;
}

export const test = base.extend<SshTestFixtures, SshWorkerFixtures>({
  sshd: [
    async ({}, use) => {
      const startSshd = await loadStartSshd();
      const s = await startSshd({ password: true });
      await use(s);
      await s.stop();
    },
    { scope: 'worker' },
  ],
  kbdSshd: [
    async ({}, use) => {
      const startSshd = await loadStartSshd();
      const s = await startSshd({ kbdInteractive: true });
      await use(s);
      await s.stop();
    },
    { scope: 'worker' },
  ],
  demoSite: [
    async ({}, use) => {
      const s = await startDemoSite();
      await use(s);
      await s.close();
    },
    { scope: 'worker' },
  ],
  sshGateway: async ({ gatewayWith, demoSite, sshd, kbdSshd }, use) => {
    const gw = await gatewayWith({
      targets: [sshd.port, kbdSshd.port],
      origins: [demoSite.origin],
    });
    await use(gw);
  },
  demoPage: async ({ page, demoSite, sshGateway, sshd }, use) => {
    page.on('pageerror', (e) => process.stderr.write(`[page error] ${e.message}\n`));
    demoSite.configure({
      gatewayUrl: sshGateway.url,
      target: { host: sshd.host, port: sshd.port },
      user: sshd.user,
      privateKey: sshd.userKey.privateKey,
      hostKey: { algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeys.ed25519?.fingerprint ?? '' },
      token: () => sshGateway.token(),
    });
    await page.goto(demoSite.origin + '/');
    await page.waitForSelector('body[data-ready="1"]');
    await use(page);
  },
});
