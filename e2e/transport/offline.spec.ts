// Offline plus a cut connection: `context.setOffline(true)` (the page gets `offline`, credit is
// withheld) and the proxy resets the TCP connection (no close frame, 1006). The connection goes to
// `reconnecting`, waits for `online`, resumes, and the stream completes with 0 bytes lost and 0
// duplicated: exact length and SHA-256 against the target's.
import { expect, sleep, test, waitFor, type Gateway } from '../fixtures';

const MiB = 1024 * 1024;
const TOTAL = 32 * MiB;
const BANNER = 'SSH-2.0-mana-e2e-target\r\n'.length;
const toClient = (gw: Gateway) => gw.metric('mana_payload_bytes_total{direction="to_client"}');

test('offline + cut: reconnecting, then resumed with 0 lost and 0 duplicated bytes', async ({
  manaPage,
  context,
  startTarget,
  gatewayWith,
  proxyTo,
}) => {
  const stream = await startTarget({ mode: 'stream', bytes: TOTAL, seed: 9 });
  const gw = await gatewayWith({ targets: [stream] });
  const proxy = await proxyTo({ upstreamPort: gw.port });

  await manaPage.evaluate(
    async ({ url, token, port, banner }) => {
      const w = window as any;
      const conn = await w.mana.connect({
        url,
        token,
        storage: 'memory',
        reconnect: { initialDelayMs: 1500, jitter: 0 },
      });
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const rec = w.e2e.record(conn);
      const rx = w.e2e.collect(ch, { skip: banner });
      const t: any = { conn, ch, rec, rx, atPause: null };
      conn.onPolicy((p: any) => {
        if (p.kind === 'pause' && p.reason === 'offline')
          t.atPause = { ...ch.stats(), rx: rx.received };
      });
      w.t = t;
      await ch.opened;
      await rx.until(banner + 4 * 1024 * 1024);
    },
    { url: proxy.url, token: gw.token(), port: stream.port, banner: BANNER },
  );

  // Cut first (a reset: the page sees 1006 at once; an offline Chromium would hold the error back),
  // then go offline before the first reconnect attempt (initialDelayMs 1500).
  expect(proxy.cut()).toBe(1);
  await waitFor('reconnecting', () =>
    manaPage.evaluate(() => (window as any).t.conn.state === 'reconnecting'),
  );
  await context.setOffline(true);
  await waitFor('the offline pause', () =>
    manaPage.evaluate(() => (window as any).t.conn.pauseReasons.includes('offline')),
  );
  const atOffline = await toClient(gw);
  await sleep(2500);
  const atOnline = await toClient(gw);
  const mid = await manaPage.evaluate(() => {
    const t = (window as any).t;
    return { state: t.conn.state, received: t.rx.received, diagnostics: t.rec.diagnostics };
  });
  const accepted = proxy.accepted();
  await context.setOffline(false);

  const r = await manaPage.evaluate(
    async ({ total, banner }) => {
      const t = (window as any).t;
      await t.rx.until(banner + total, 40_000);
      const out = {
        sha: t.rx.sha.hex(),
        hashed: t.rx.hashed,
        received: t.rx.received,
        states: [...t.rec.states],
        policy: [...t.rec.policy],
        diagnostics: [...t.rec.diagnostics],
        atPause: t.atPause,
        state: t.conn.state,
      };
      t.conn.dispose();
      return out;
    },
    { total: TOTAL, banner: BANNER },
  );

  const sentWhileOffline = atOnline - atOffline;
  const outstanding = r.atPause.recvLimit - r.atPause.received;
  const note =
    `offline at ${r.atPause.rx} B received; gateway sent ${sentWhileOffline} B while offline ` +
    `(outstanding credit ${outstanding} B); page state while offline '${mid.state}'; after online: ` +
    `${r.hashed} B hashed of ${TOTAL}, ${proxy.accepted()} TCP connections`;
  test.info().annotations.push({ type: 'measured', description: note });
  console.log(`[offline] ${note}`);

  expect(mid.state).toBe('reconnecting');
  expect(mid.diagnostics).toContain('reconnect_waiting_online');
  expect(sentWhileOffline).toBeLessThanOrEqual(outstanding);
  expect(r.policy).toEqual(['pause:offline', 'resume:offline']);
  expect(accepted).toBe(1); // no connection got through while offline
  expect(r.states).toEqual(['reconnecting:TransportError', 'authenticating', 'ready']);
  expect(r.diagnostics).toContain('resume_accepted');
  // 0 lost, 0 duplicated: exact length and the same SHA-256 as the target wrote.
  expect(r.received).toBe(BANNER + TOTAL);
  expect(r.hashed).toBe(TOTAL);
  expect(r.sha).toBe(stream.connections[0]!.hashOut());
  expect(stream.connections.length).toBe(1);
  expect(proxy.accepted()).toBe(2);
  expect(await gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(1);
});
