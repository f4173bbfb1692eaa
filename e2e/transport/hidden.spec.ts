// Hidden tab: credit is withheld while the page is hidden or frozen, so the gateway stops sending
// within one window; visible again, the stream completes byte-exact. Counted with the gateway's
// own /metrics (mana_payload_bytes_total{direction="to_client"}).
import { expect, test, type Gateway, sleep } from '../fixtures';
import type { Page } from '@playwright/test';

const MiB = 1024 * 1024;
const TOTAL = 48 * MiB;
const BANNER = 'SSH-2.0-mana-e2e-target\r\n'.length;
const HOLD_MS = 1500;
const toClient = (gw: Gateway) => gw.metric('mana_payload_bytes_total{direction="to_client"}');

async function startDownload(page: Page, gw: Gateway, port: number) {
  await page.evaluate(
    async ({ url, token, port, banner }) => {
      const w = window as any;
      const conn = await w.mana.connect({ url, token, storage: 'none' });
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const rec = w.e2e.record(conn);
      const rx = w.e2e.collect(ch, { skip: banner });
      const t: any = { conn, ch, rec, rx, atPause: null, atResume: null };
      conn.onPolicy((p: any) => {
        if (p.kind === 'pause' && t.atPause === null)
          t.atPause = { ...ch.stats(), at: performance.now() };
        if (p.kind === 'resume' && t.atResume === null)
          t.atResume = { ...ch.stats(), at: performance.now() };
      });
      w.t = t;
      await ch.opened;
      await rx.until(banner + 6 * 1024 * 1024);
    },
    { url: gw.url, token: gw.token(), port, banner: BANNER },
  );
}

async function finish(page: Page) {
  return page.evaluate(
    async ({ total, banner }) => {
      const t = (window as any).t;
      try {
        await t.rx.until(banner + total, 25_000);
      } catch (e) {
        const st = t.ch.stats();
        throw new Error(
          `${String(e)}; state ${t.conn.state}, pause [${t.conn.pauseReasons}], policy ${t.rec.policy}, ` +
            `received ${st.received}, consumed ${st.consumed}, recvLimit ${st.recvLimit}`,
        );
      }
      const out = {
        sha: t.rx.sha.hex(),
        hashed: t.rx.hashed,
        policy: t.rec.policy,
        atPause: t.atPause,
        atResume: t.atResume,
        window: t.ch.stats().window,
      };
      t.conn.dispose();
      return out;
    },
    { total: TOTAL, banner: BANNER },
  );
}

interface Mechanism {
  name: string;
  hide(page: Page): Promise<void>;
  show(page: Page): Promise<void>;
}

const mechanisms: Mechanism[] = [
  {
    // Page lifecycle: `freeze` then `resume` (what Chromium dispatches when it freezes a hidden
    // tab). Headless Chromium 156 keeps every page visible and ignores
    // Page.setWebLifecycleState('frozen') for a visible page (measured: no event, timers keep
    // running), so the events are dispatched in the page.
    name: 'page lifecycle freeze/resume',
    hide: async (page) => {
      await page.evaluate(() => document.dispatchEvent(new Event('freeze')));
    },
    show: async (page) => {
      await page.evaluate(() => document.dispatchEvent(new Event('resume')));
    },
  },
  {
    // Emulated visibility: document.visibilityState overridden + a real visibilitychange event.
    name: 'visibilityState hidden (emulated visibilitychange)',
    hide: async (page) => {
      await page.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', {
          configurable: true,
          get: () => 'hidden',
        });
        document.dispatchEvent(new Event('visibilitychange'));
      });
    },
    show: async (page) => {
      await page.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', {
          configurable: true,
          get: () => 'visible',
        });
        document.dispatchEvent(new Event('visibilitychange'));
      });
    },
  },
];

for (const m of mechanisms) {
  test(`hidden tab, ${m.name}: credit withheld, <= one window sent while paused, then byte-exact`, async ({
    manaPage,
    startTarget,
    gatewayWith,
  }) => {
    const stream = await startTarget({ mode: 'stream', bytes: TOTAL, seed: 5 });
    const gw = await gatewayWith({ targets: [stream] });
    await startDownload(manaPage, gw, stream.port);

    await m.hide(manaPage);
    const atHide = await toClient(gw);
    await sleep(HOLD_MS / 3);
    const settled = await toClient(gw);
    await sleep((2 * HOLD_MS) / 3);
    const atShow = await toClient(gw);
    await m.show(manaPage);
    const r = await finish(manaPage);

    const sentWhilePaused = atShow - atHide;
    const sentInLastPart = atShow - settled;
    // The credit the gateway still had when the pause began bounds what it may send.
    const outstanding = r.atPause.recvLimit - r.atPause.received;
    const note =
      `${m.name}: gateway sent ${sentWhilePaused} B while paused (${sentInLastPart} B in the last ` +
      `${Math.round((2 * HOLD_MS) / 3)} ms); outstanding credit at pause ${outstanding} B, window ${r.atPause.window} B`;
    test.info().annotations.push({ type: 'measured', description: note });
    console.log(`[hidden] ${note}`);

    expect(r.policy).toEqual(['pause:hidden', 'resume:hidden']);
    expect(sentWhilePaused).toBeLessThanOrEqual(outstanding);
    expect(sentWhilePaused).toBeLessThanOrEqual(r.atPause.window);
    expect(sentInLastPart).toBe(0);
    expect(atShow).toBeLessThan(TOTAL); // the stream really was stopped midway
    expect(r.hashed).toBe(TOTAL);
    expect(r.sha).toBe(stream.connections[0]!.hashOut());
    expect(await toClient(gw)).toBe(TOTAL + BANNER);
  });
}
