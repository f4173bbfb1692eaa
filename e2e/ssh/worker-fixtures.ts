// SPDX-License-Identifier: Apache-2.0
// Shared steps of the session-worker specs (worker.spec.ts, worker-views.spec.ts): pages/worker.html
// shows a RemoteSshSession of ManaWorkerClient in a real xterm.js terminal and is driven through
// window.manaWorker (pages/worker-page.js).
import type { Page } from '@playwright/test';
import { openManaPage } from '../fixtures';
import type { Sshd } from './fixtures';

declare global {
  interface Window {
    manaWorker: WorkerApi;
  }
}

/** What a worker-page call that may fail returns (errors by name and code, never thrown). */
export interface Outcome {
  ok: boolean;
  name?: string;
  code?: string;
  message?: string;
  readOnly?: boolean;
  screenChars?: number;
  sessionId?: string;
  methods?: string[];
}

export interface WorkerApi {
  state: {
    events: { type: string; name?: string; code?: string; reason?: string }[];
    hostKeys: { fingerprint: string; known: string }[];
    kbdRounds: {
      prompts: { prompt: string; echo: boolean }[];
      info: { name: string; instruction: string };
    }[];
    /** Output chunks that started with RIS: restored screens and frames. */
    resets: number;
  };
  start(o?: Record<string, unknown>): Promise<string>;
  open(c: { url: string; token: string }, s: Record<string, unknown>): Promise<string>;
  openKbd(
    c: { url: string; token: string },
    s: Record<string, unknown>,
    kbd: { answer?: string; throws?: boolean; hang?: boolean },
  ): Promise<Outcome>;
  enrol(rpId: string, user: string): Promise<{ line: string; credential: Record<string, unknown> }>;
  openWith(
    c: { url: string; token: string },
    s: Record<string, unknown>,
    auth: Record<string, unknown> | Record<string, unknown>[],
  ): Promise<Outcome>;
  reattach(o?: Record<string, unknown>): Promise<Outcome>;
  attach(id: string, secret: string, o?: Record<string, unknown>): Promise<Outcome>;
  stored(): Record<string, { sessionId: string; secret: string }>;
  type(text: string): void;
  text(): string;
  detach(): void;
  viewState(): string | undefined;
  write(text: string): Outcome & { n?: number };
  screen(): { type: string; rows: string[]; cursorX: number; cursorY: number };
}

/** The gateway as openShell needs it (url: the gateway's, or a proxy's in front of it). */
export interface ShellGateway {
  url: string;
  token(): string;
}

/** Opens pages/worker.html on `origin` and starts ManaWorkerClient; returns its mode. */
export async function openWorkerPage(page: Page, origin: string, mode?: string): Promise<string> {
  await openManaPage(page, origin, '/worker.html');
  return page.evaluate((m) => window.manaWorker.start(m ? { mode: m } : {}), mode);
}

/** page.reload() and the client started again (same options as the first start). */
export async function reloadWorkerPage(page: Page, mode?: string): Promise<string> {
  await page.reload();
  await page.waitForFunction(() => (window as unknown as { manaLoaded?: unknown }).manaLoaded);
  return page.evaluate((m) => window.manaWorker.start(m ? { mode: m } : {}), mode);
}

/** Opens a shell in the worker (key auth, host key accepted and recorded); waits for a prompt. */
export async function openShell(
  page: Page,
  gw: ShellGateway,
  sshd: Sshd,
  graceMs: number,
): Promise<string> {
  const id = await page.evaluate(
    ({ url, token, port, user, key, graceMs }) =>
      window.manaWorker.open(
        { url, token },
        {
          target: { host: '127.0.0.1', port },
          username: user,
          auth: { privateKey: key },
          graceMs,
        },
      ),
    {
      url: gw.url,
      token: gw.token(),
      port: sshd.port,
      user: sshd.user,
      key: sshd.userKey.privateKey,
      graceMs,
    },
  );
  await termMatches(page, /[$#] ?$/m);
  return id;
}

/** Keystrokes through the page's xterm (as typed: they pass the addon). */
export async function typeIn(page: Page, text: string): Promise<void> {
  await page.evaluate((t) => {
    window.manaWorker.type(t);
  }, text);
}

/** Polls the page's terminal text (scrollback and screen) until it matches `re`. */
export async function termMatches(page: Page, re: RegExp, ms = 15_000): Promise<string> {
  const end = Date.now() + ms;
  let t = '';
  while (Date.now() < end) {
    t = await page.evaluate(() => window.manaWorker.text());
    if (re.test(t)) return t;
    await page.waitForTimeout(30);
  }
  throw new Error(`terminal never matched ${re}; it shows:\n${t.slice(-800)}`);
}

/** The stored attach secret of the tab's `default` session. */
export async function storedSecret(page: Page): Promise<string> {
  const stored = await page.evaluate(() => window.manaWorker.stored());
  return stored.default?.secret ?? '';
}

/** Authentications sshd accepted so far (from its log). */
export const accepted = (sshd: Sshd): number => (sshd.log().match(/Accepted /g) ?? []).length;
