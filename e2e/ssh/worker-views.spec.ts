// SPDX-License-Identifier: Apache-2.0
// Views of a worker session (docs/ssh-in-browser.md, "The session worker"), real gateway, real
// sshd, pages/worker.html:
//  - two tabs: the second watches read-only (its keystrokes never reach the shell, a second
//    read-only view is `busy`), then takes over with `takeOver`; the first is told `taken-over`
//    and can take it back the same way;
//  - the attach secret copied into another origin's page (sessionStorage) reaches nothing: that
//    origin has its own worker, the attach is SessionLostError and the session is untouched;
//  - a full-screen program (vi) is on the same screen after a reload, cell for cell, and answers;
//  - a network drop while the page reloads: the worker resumes the connection, the page
//    reattaches, the output made meanwhile is on the screen;
//  - without `extendedLifetime` (the option stubbed out: a browser that ignores it; and Chromium
//    started with the Blink feature off) the client picks a dedicated worker, the shell works and
//    a reload is SessionLostError;
//  - Chromium under the enterprise policy SharedWorkerExtendedLifetimeEnabled=false: the option is
//    still read (a shared worker), the worker dies with the page, a reload is SessionLostError.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { openManaPage } from '../fixtures';
import { expect, test, type Sshd } from './fixtures';
import {
  accepted,
  openShell,
  openWorkerPage,
  reloadWorkerPage,
  storedSecret,
  termMatches,
  typeIn,
} from './worker-fixtures';

test('two tabs: a read-only second view, then takeOver; the first view is told taken-over', async ({
  page,
  context,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  await openWorkerPage(page, site.origin);
  const id = await openShell(page, gw, sshd, 30_000);
  const secret = await storedSecret(page);
  await typeIn(page, 'echo "first-$((10+1))"\r');
  await termMatches(page, /^first-11$/m);

  // The application hands the id and secret to a second tab (e.g. over a BroadcastChannel).
  const watcher = await context.newPage();
  expect(await openWorkerPage(watcher, site.origin)).toBe('shared');
  const args = { id, secret };
  const ro = await watcher.evaluate(
    (a) => window.manaWorker.attach(a.id, a.secret, { readOnly: true }),
    args,
  );
  expect(ro).toMatchObject({ ok: true, readOnly: true });
  // The watcher starts with the screen (from the worker's screen model), then the live stream.
  await termMatches(watcher, /^first-11$/m, 5_000);
  await typeIn(page, 'echo "live-$((20+1))"\r');
  await termMatches(watcher, /^live-21$/m);

  // A read-only view cannot write: the call throws, and keystrokes in its xterm go nowhere.
  expect(await watcher.evaluate(() => window.manaWorker.write('echo nope\r'))).toMatchObject({
    ok: false,
    name: 'InvalidStateError',
  });
  await typeIn(watcher, 'echo "from-watcher-$((1+1))"\r');
  await typeIn(page, 'echo "mark-$((3+3))"\r');
  await termMatches(page, /^mark-6$/m);
  await termMatches(watcher, /^mark-6$/m);
  expect(await page.evaluate(() => window.manaWorker.text())).not.toContain('from-watcher-2');

  // One read-only view besides the controlling one: a third tab is busy.
  const third = await context.newPage();
  await openWorkerPage(third, site.origin);
  expect(
    await third.evaluate((a) => window.manaWorker.attach(a.id, a.secret, { readOnly: true }), args),
  ).toMatchObject({ ok: false, name: 'WorkerRequestError', code: 'busy' });
  await third.close();

  // takeOver: the watcher controls the shell; the first tab's view is detached, not closed.
  const took = await watcher.evaluate(
    (a) => window.manaWorker.attach(a.id, a.secret, { takeOver: true }),
    args,
  );
  expect(took).toMatchObject({ ok: true, readOnly: false });
  await expect
    .poll(() => page.evaluate(() => window.manaWorker.state.events))
    .toContainEqual({ type: 'detached', reason: 'taken-over' });
  expect(await page.evaluate(() => window.manaWorker.viewState())).toBe('detached');
  // The watcher's read-only view was replaced by its controlling one (no detach sent for it).
  expect(await watcher.evaluate(() => window.manaWorker.state.events)).toContainEqual({
    type: 'detached',
    reason: 'replaced',
  });
  await typeIn(watcher, 'echo "took-$((2+2))"\r');
  await termMatches(watcher, /^took-4$/m);
  await termMatches(page, /^live-21$/m); // the old screen stays, nothing new arrives
  expect(await page.evaluate(() => window.manaWorker.text())).not.toContain('took-4');
  // A detached view takes no input (write() takes 0 bytes; the worker would refuse it anyway).
  expect(await page.evaluate(() => window.manaWorker.write('x'))).toMatchObject({ ok: true, n: 0 });

  // The first tab takes it back with its stored secret; the watcher is detached in turn.
  expect(await page.evaluate(() => window.manaWorker.reattach({ takeOver: true }))).toMatchObject({
    ok: true,
    readOnly: false,
  });
  await termMatches(page, /^took-4$/m, 5_000);
  await expect
    .poll(() => watcher.evaluate(() => window.manaWorker.state.events))
    .toContainEqual({ type: 'detached', reason: 'taken-over' });
  expect(await gw.metric('mana_connections_total')).toBe(1);
  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
  await watcher.close();
});

test("an attach secret copied into another origin's page is refused", async ({
  page,
  context,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  await openWorkerPage(page, site.origin);
  await openShell(page, gw, sshd, 30_000);
  const stored = await page.evaluate(() => window.manaWorker.stored());
  expect(Object.keys(stored)).toEqual(['default']);

  // Same server, another origin (localhost instead of 127.0.0.1): another SharedWorker.
  const otherOrigin = site.origin.replace('127.0.0.1', 'localhost');
  expect(otherOrigin).not.toBe(site.origin);
  const other = await context.newPage();
  expect(await openWorkerPage(other, otherOrigin)).toBe('shared');
  await other.evaluate((s) => {
    sessionStorage.setItem('mana-websocket:worker-sessions', JSON.stringify(s));
  }, stored);
  const re = await other.evaluate(() => window.manaWorker.reattach());
  expect(re).toMatchObject({ ok: false, name: 'SessionLostError', code: 'session_lost' });
  // The useless copy is dropped; the session and its view in the first tab are untouched.
  expect(await other.evaluate(() => window.manaWorker.stored())).toEqual({});
  await typeIn(page, 'echo "mine-$((5*5))"\r');
  await termMatches(page, /^mine-25$/m);
  expect(await page.evaluate(() => window.manaWorker.state.events)).toEqual([]);
  expect(await gw.metric('mana_connections_total')).toBe(1);
  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
  await other.close();
});

test('a full-screen program (vi) is repainted cell for cell after a reload and answers', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  await openWorkerPage(page, site.origin);
  await openShell(page, gw, sshd, 30_000);
  await typeIn(page, 'echo "shell-$((7*6))"; f=$(mktemp); seq -f "vi-line-%g" 1 60 >"$f"\r');
  await termMatches(page, /^shell-42$/m);
  await typeIn(page, 'vi -u NONE -n "$f"\r');
  const screen = () => page.evaluate(() => window.manaWorker.screen());
  await expect.poll(async () => (await screen()).rows[0]).toBe('vi-line-1');
  // Somewhere in the middle, with a visible status: 30G and a mark in the last line.
  await typeIn(page, '30Gzz');
  await expect.poll(async () => (await screen()).rows.join('\n')).toMatch(/^vi-line-30$/m);
  await expect.poll(async () => (await screen()).rows[0]).not.toBe('vi-line-1');
  await page.waitForTimeout(300); // let vi finish drawing (cursor, status line)
  const before = await screen();
  expect(before.type).toBe('alternate');

  expect(await reloadWorkerPage(page)).toBe('shared');
  expect(await page.evaluate(() => window.manaWorker.reattach())).toMatchObject({ ok: true });
  await expect.poll(async () => (await screen()).type).toBe('alternate');
  await expect.poll(async () => (await screen()).rows).toEqual(before.rows);
  const after = await screen();
  expect({ x: after.cursorX, y: after.cursorY }).toEqual({ x: before.cursorX, y: before.cursorY });

  // vi answers: to the top, then quit; the shell's screen (normal buffer) is back.
  await typeIn(page, 'gg');
  await expect.poll(async () => (await screen()).rows[0]).toBe('vi-line-1');
  await typeIn(page, ':q!\r');
  await expect.poll(async () => (await screen()).type).toBe('normal');
  await typeIn(page, 'rm -f "$f"; echo "back-$((8*8))"\r');
  await termMatches(page, /^back-64$/m);
  expect(await page.evaluate(() => window.manaWorker.text())).toMatch(/^shell-42$/m);
  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
});

test('a network drop during a reload: the worker resumes, the page reattaches', async ({
  page,
  site,
  sshd,
  gatewayWith,
  proxyTo,
}) => {
  const gw = await gatewayWith({ targets: [sshd.port] });
  const proxy = await proxyTo({ upstreamPort: gw.port });
  await openWorkerPage(page, site.origin);
  await openShell(page, { url: proxy.url, token: () => gw.token() }, sshd, 30_000);
  await typeIn(page, 'X=$RANDOM; echo "x=$X"\r');
  const x = /^x=(\d+)$/m.exec(await termMatches(page, /^x=\d+$/m))?.[1];
  expect(x).toBeDefined();
  // Output made while the page is away and the network is down: it must arrive after both.
  await typeIn(page, 'sleep 1; echo "late-$((3*3))"\r');
  const authBefore = accepted(sshd);

  const reload = page.reload();
  expect(proxy.cut()).toBe(1);
  await reload;
  await page.waitForFunction(() => (window as unknown as { manaLoaded?: unknown }).manaLoaded);
  expect(await page.evaluate(() => window.manaWorker.start())).toBe('shared');
  expect(await page.evaluate(() => window.manaWorker.reattach())).toMatchObject({ ok: true });
  // The worker's connection resumed on a new WebSocket (through the proxy), the same session.
  await expect.poll(() => gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(1);
  expect(proxy.accepted()).toBe(2);
  await termMatches(page, /^late-9$/m);
  expect(await page.evaluate(() => window.manaWorker.text())).toContain(`x=${x}`);
  await typeIn(page, 'echo "again=$X"\r');
  await termMatches(page, new RegExp(`^again=${x}$`, 'm'));
  expect(accepted(sshd)).toBe(authBefore);
  await typeIn(page, 'exit\r');
  await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
});

/** The fallback journey: `auto` picks a dedicated worker, the shell works, a reload loses it. */
async function dedicatedFallback(
  page: Page,
  origin: string,
  sshd: Sshd,
  gw: { url: string; token(): string; metric(name: string): Promise<number> },
): Promise<void> {
  expect(await openWorkerPage(page, origin)).toBe('dedicated');
  await openShell(page, gw, sshd, 30_000);
  await typeIn(page, 'echo "fallback-$((6*7))"\r');
  await termMatches(page, /^fallback-42$/m);
  expect(Object.keys(await page.evaluate(() => window.manaWorker.stored()))).toEqual(['default']);

  expect(await reloadWorkerPage(page)).toBe('dedicated');
  const re = await page.evaluate(() => window.manaWorker.reattach());
  expect(re).toMatchObject({ ok: false, name: 'SessionLostError', code: 'session_lost' });
  expect(await page.evaluate(() => window.manaWorker.stored())).toEqual({});
  // The dead worker's WebSocket is a dropped transport: the gateway keeps it for its resume TTL.
  await expect.poll(() => gw.metric('mana_sessions_detached'), { timeout: 10_000 }).toBe(1);
}

test('extendedLifetime stubbed out: a dedicated worker, and a reload is SessionLostError', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  // A browser that ignores the option: the SharedWorker constructor never reads it.
  await page.addInitScript(() => {
    const Original = window.SharedWorker;
    const Stub = function (url: string | URL, o?: string | WorkerOptions) {
      const options = typeof o === 'object' ? { type: o.type, name: o.name } : o;
      return new Original(url, options);
    } as unknown as typeof SharedWorker;
    Stub.prototype = Original.prototype;
    window.SharedWorker = Stub;
  });
  const gw = await gatewayWith({ targets: [sshd.port] });
  await dedicatedFallback(page, site.origin, sshd, gw);
});

test('Chromium without the extendedLifetime feature: a dedicated worker, a reload is SessionLostError', async ({
  playwright,
  site,
  sshd,
  gatewayWith,
}) => {
  test.slow(); // a second browser launch: 48 s once on the loaded 2-core machine
  // A browser of its own with the Blink runtime feature behind the option switched off (the
  // enterprise policy SharedWorkerExtendedLifetimeEnabled would need a file under /etc).
  const browser = await playwright.chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--disable-blink-features=SharedWorkerExtendedLifetime',
    ],
  });
  try {
    const page = await browser.newPage();
    const gw = await gatewayWith({ targets: [sshd.port] });
    await openManaPage(page, site.origin, '/worker.html');
    // The browser itself ignores the option now (what ManaWorkerClient's probe looks at).
    const read = await page.evaluate(() => {
      let r = false;
      const w = new SharedWorker('/pkg/mana-worker.js', {
        type: 'module',
        name: 'probe',
        get extendedLifetime() {
          r = true;
          return true;
        },
      } as WorkerOptions);
      w.port.close();
      return r;
    });
    expect(read).toBe(false);
    await dedicatedFallback(page, site.origin, sshd, gw);
  } finally {
    await browser.close();
  }
});

test('the enterprise policy SharedWorkerExtendedLifetimeEnabled=false: the shell works, a reload is SessionLostError', async ({
  playwright,
  site,
  sshd,
  gatewayWith,
}) => {
  test.slow(); // a second browser launch
  // Chromium on Linux reads managed policies from this directory at start; the file is removed
  // at the end (the browser of the other tests started before it and keeps its policies).
  const dir = '/etc/chromium/policies/managed';
  const file = `${dir}/mana-e2e-no-extended-lifetime.json`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, JSON.stringify({ SharedWorkerExtendedLifetimeEnabled: false }));
  } catch (e) {
    throw new Error(`writing ${file} needs root (make test runs as root): ${String(e)}`);
  }
  let browser;
  try {
    browser = await playwright.chromium.launch({
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage();
    const gw = await gatewayWith({ targets: [sshd.port] });
    // The browser still reads the option (no page can see the policy), so the client picks a
    // SharedWorker; the worker just does not outlive the page.
    expect(await openWorkerPage(page, site.origin)).toBe('shared');
    await openShell(page, gw, sshd, 30_000);
    await typeIn(page, 'echo "policy-$((6*7))"\r');
    await termMatches(page, /^policy-42$/m);
    expect(Object.keys(await page.evaluate(() => window.manaWorker.stored()))).toEqual(['default']);
    expect(await reloadWorkerPage(page)).toBe('shared');
    const re = await page.evaluate(() => window.manaWorker.reattach());
    expect(re).toMatchObject({ ok: false, name: 'SessionLostError' });
    expect(await page.evaluate(() => window.manaWorker.stored())).toEqual({});
    // The worker died with the page: its WebSocket is a dropped transport at the gateway.
    await expect.poll(() => gw.metric('mana_sessions_detached'), { timeout: 10_000 }).toBe(1);
  } finally {
    await browser?.close();
    rmSync(file, { force: true });
  }
});
