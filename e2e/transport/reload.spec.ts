// Page reload and multiple tabs (docs/browser-client.md, "Page reload and multiple tabs").
//  - reload: the new page presents the stored token; the session is resumed with no channels, so
//    the gateway frees the old page's channels (and their target connections) at once instead of
//    after the resume TTL, and the new page works on the same session;
//  - a stored token the gateway no longer knows (TTL expired): `stored_session_rejected`, a fresh
//    session, no error for the app;
//  - two tabs: a duplicated tab (window.open copies sessionStorage) finds the same stored session,
//    but the first tab holds its Web Lock, so the second starts fresh (or gets ResumeError with
//    resumeOnly) and never supersedes the first.
import { expect, openManaPage, sleep, test, waitFor } from '../fixtures';
import type { Page } from '@playwright/test';

const KEY = 'e2e-reload';
const BANNER = 'SSH-2.0-mana-e2e-target\r\n';

/** Disposes the connection connectAndEcho() left in the page. */
function disposeConnection(page: Page) {
  return page.evaluate(() => (window as any).t.conn.dispose());
}

/** Connects (storage `session`, key KEY), opens an echo channel, round-trips `text`. */
async function connectAndEcho(page: Page, url: string, token: string, port: number, text: string) {
  return page.evaluate(
    async ({ url, token, port, text, key, banner }) => {
      const w = window as any;
      const conn = await w.mana.connect({ url, token, storageKey: key });
      const rec = w.e2e.record(conn);
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const rx = w.e2e.collect(ch, { skip: banner.length });
      await ch.opened;
      await ch.writeAll(text);
      await rx.until(banner.length + text.length);
      await new Promise((r) => setTimeout(r, 10)); // deferred diagnostics
      w.t = { conn, ch, rec, rx };
      return {
        storedSession: conn.storedSession,
        state: conn.state,
        echoed: rx.hashed,
        diagnostics: [...rec.diagnostics],
        stored: JSON.parse(sessionStorage.getItem(key) ?? 'null'),
      };
    },
    { url, token, port, text, key: KEY, banner: BANNER },
  );
}

test("reload: the stored session is resumed and the old page's channel is freed at once", async ({
  manaPage,
  site,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo] }); // resume TTL 60 s
  const first = await connectAndEcho(manaPage, gw.url, gw.token(), echo.port, 'before-reload');
  expect(first.storedSession).toBe('none');
  expect(first.stored.v).toBe(1);

  const reloadedAt = Date.now();
  await manaPage.reload();
  await openManaPage(manaPage, site.origin);
  // The old page is gone: the gateway holds its session detached, the target connection open.
  await waitFor(
    'the detached session',
    async () => (await gw.metric('mana_sessions_detached')) === 1,
  );
  expect(echo.open().length).toBe(1);

  const second = await connectAndEcho(manaPage, gw.url, gw.token(), echo.port, 'after-reload');
  await waitFor(
    'the old target connection to close',
    () => echo.connections[0]!.closedAt !== undefined,
  );
  const freedAfterMs = echo.connections[0]!.closedAt! - reloadedAt;
  const note = `reload: old channel's target connection closed ${freedAfterMs} ms after the reload (TTL 60000 ms)`;
  test.info().annotations.push({ type: 'measured', description: note });
  console.log(`[reload] ${note}`);

  expect(second.storedSession).toBe('resuming');
  expect(second.state).toBe('ready');
  expect(second.diagnostics).toContain('stored_session_found');
  expect(second.diagnostics).toContain('resume_requested');
  expect(second.diagnostics).toContain('resume_accepted');
  expect(second.diagnostics).toContain('resumed_stored_session');
  expect(second.echoed).toBe('after-reload'.length);
  expect(second.stored.id).toBe(first.stored.id); // same session, same lock
  expect(second.stored.token).not.toBe(first.stored.token); // rotated
  expect(freedAfterMs).toBeLessThan(5000);
  expect(echo.connections.length).toBe(2);
  expect(echo.connections[0]!.bytesIn).toBe('before-reload'.length);
  expect(echo.connections[1]!.bytesIn).toBe('after-reload'.length);
  expect(await gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(1);
  expect(await gw.metric('mana_sessions_active')).toBe(1);
  expect(await gw.metric('mana_channels_active')).toBe(1);
  await disposeConnection(manaPage);
});

test('reload after the resume TTL: stored_session_rejected, then a fresh session', async ({
  manaPage,
  site,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo], config: { session: { resume_ttl_ms: 300 } } });
  const first = await connectAndEcho(manaPage, gw.url, gw.token(), echo.port, 'one');
  await manaPage.reload();
  await openManaPage(manaPage, site.origin);
  await waitFor('the TTL to expire', () => echo.connections[0]!.closedAt !== undefined);
  await sleep(100);
  const second = await connectAndEcho(manaPage, gw.url, gw.token(), echo.port, 'two');
  const states = await manaPage.evaluate(() => [...(window as any).t.rec.states]);

  expect(second.storedSession).toBe('none'); // the refused session was dropped
  expect(second.state).toBe('ready');
  expect(second.diagnostics).toContain('resume_rejected');
  expect(second.diagnostics).toContain('stored_session_rejected');
  expect(states).toEqual(['authenticating', 'connecting', 'authenticating', 'ready']);
  expect(second.stored.id).not.toBe(first.stored.id); // a new session with its own id
  expect(second.echoed).toBe(3);
  expect(await gw.metric('mana_resumes_total{outcome="rejected"}')).toBe(1);
  expect(await gw.metric('mana_sessions_active')).toBe(1);
  await disposeConnection(manaPage);
});

test('two tabs: the duplicated tab cannot take the held session (Web Locks) and starts fresh', async ({
  manaPage,
  context,
  site,
  startTarget,
  gatewayWith,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  const gw = await gatewayWith({ targets: [echo] });
  const a = await connectAndEcho(manaPage, gw.url, gw.token(), echo.port, 'tab-a');
  const held = await manaPage.evaluate(async () =>
    (await navigator.locks.query()).held?.map((l) => l.name),
  );
  expect(held).toEqual([`mana-resume:${a.stored.id}`]);

  const [tabB] = await Promise.all([
    context.waitForEvent('page'),
    manaPage.evaluate((origin) => void window.open(origin + '/'), site.origin),
  ]);
  await openManaPage(tabB, site.origin);
  const copied = await tabB.evaluate(
    (key) => JSON.parse(sessionStorage.getItem(key) ?? 'null'),
    KEY,
  );
  expect(copied).toEqual(a.stored); // window.open copied tab A's sessionStorage

  const only = await tabB.evaluate(
    ({ url, token, key }) => {
      const { mana } = window as any;
      return mana.connect({ url, token, storageKey: key, resumeOnly: true }).then(
        () => 'connected',
        (e: any) => `${e.name}:${e.code}:${e.origin}`,
      );
    },
    { url: gw.url, token: gw.token(), key: KEY },
  );
  expect(only).toBe('ResumeError:resume_lock_busy:local');

  const b = await connectAndEcho(tabB, gw.url, gw.token(), echo.port, 'tab-b!');
  expect(b.storedSession).toBe('lock_busy');
  expect(b.diagnostics).toContain('resume_lock_busy');
  expect(b.diagnostics).not.toContain('resume_requested');
  expect(b.stored.id).not.toBe(a.stored.id);

  // Tab A was not superseded: still ready, its channel still echoes.
  const aAfter = await manaPage.evaluate(async () => {
    const t = (window as any).t;
    await t.ch.writeAll('again');
    await t.rx.until(t.rx.received + 5);
    return { state: t.conn.state, states: [...t.rec.states] };
  });
  expect(aAfter).toEqual({ state: 'ready', states: ['authenticating', 'ready'] });
  expect(await gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(0);
  expect(await gw.metric('mana_sessions_active')).toBe(2);
  await disposeConnection(tabB);
  await disposeConnection(manaPage);
  const afterDispose = await manaPage.evaluate(
    async () => (await navigator.locks.query()).held?.length,
  );
  expect(afterDispose).toBe(0);
});
