// Slow network: a throttling proxy between the page and the gateway drains the upload slowly, the
// WebSocket's bufferedAmount climbs over the high-water mark, the `transport` pause starts (write()
// takes nothing, credit for the echo direction is withheld), and it ends below the low-water mark.
// Nothing is lost: the echo target hashes what it received, the page hashes what came back.
import { expect, test, type Gateway } from '../fixtures';

const MiB = 1024 * 1024;
const TOTAL = 24 * MiB;
const UP_RATE = 6 * MiB; // bytes per second through the proxy, page -> gateway
const HIGH = 1 * MiB;
const LOW = 256 * 1024;
const BANNER = 'SSH-2.0-mana-e2e-target\r\n'.length;
const toClient = (gw: Gateway) => gw.metric('mana_payload_bytes_total{direction="to_client"}');

test('bufferedAmount over the high-water mark: transport pause, then resume, no loss', async ({
  manaPage,
  startTarget,
  gatewayWith,
  proxyTo,
}) => {
  const echo = await startTarget({ mode: 'echo' });
  // A large client->server window lets the page queue more than the kernel buffers hold.
  const gw = await gatewayWith({
    targets: [echo],
    config: { session: { window: 16 * MiB, max_window: 32 * MiB } },
  });
  const proxy = await proxyTo({ upstreamPort: gw.port, upRate: UP_RATE });
  await manaPage.exposeFunction('gatewayToClient', () => toClient(gw));

  const r = await manaPage.evaluate(
    async ({ url, token, port, total, high, low, banner }) => {
      const w = window as any;
      const conn = await w.mana.connect({
        url,
        token,
        storage: 'none',
        highWaterMark: high,
        lowWaterMark: low,
        // At least the gateway's window: it acknowledges (flow.rx) only with its next grant, at
        // half a window, so a smaller replay buffer would stall the upload.
        replayCapacity: 32 * 1024 * 1024,
      });
      const rec = w.e2e.record(conn);
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const rx = w.e2e.collect(ch, { skip: banner });
      await ch.opened;
      const pauses: any[] = [];
      let current: any = null;
      let acceptedWhilePaused = 0;
      conn.onPolicy((p: any) => {
        if (p.reason !== 'transport') return;
        if (p.kind === 'pause') {
          const st = ch.stats();
          current = {
            buffered: conn.bufferedAmount,
            outstanding: st.recvLimit - st.received,
            receivedAtPause: rx.received,
            gwAtPause: w.gatewayToClient(),
            t: performance.now(),
          };
        } else if (p.kind === 'resume' && current !== null) {
          current.ms = performance.now() - current.t;
          current.bufferedAtResume = conn.bufferedAmount;
          current.receivedWhilePaused = rx.received - current.receivedAtPause;
          current.gwAtResume = w.gatewayToClient();
          pauses.push(current);
          current = null;
        }
      });
      const sha = new w.e2e.Sha256();
      let maxBuffered = 0;
      const chunk = new Uint8Array(256 * 1024);
      const t0 = performance.now();
      for (let off = 0; off < total;) {
        w.e2e.fillSeeded(chunk, 11, off);
        let part = chunk.subarray(0, Math.min(chunk.length, total - off));
        while (part.length > 0) {
          const paused = conn.pauseReasons.includes('transport');
          const n = ch.write(part);
          if (paused) acceptedWhilePaused += n;
          maxBuffered = Math.max(maxBuffered, conn.bufferedAmount);
          sha.update(part.subarray(0, n));
          part = part.subarray(n);
          off += n;
          if (part.length > 0) {
            await new Promise<void>((resolve) => {
              const d = ch.onWritable(() => {
                d.dispose();
                resolve();
              });
            });
          }
        }
      }
      const uploadMs = performance.now() - t0;
      await rx.until(banner + total, 60_000);
      for (const p of pauses) {
        p.gwAtPause = await p.gwAtPause;
        p.gwAtResume = await p.gwAtResume;
      }
      const out = {
        sentSha: sha.hex(),
        echoSha: rx.sha.hex(),
        echoed: rx.hashed,
        maxBuffered,
        acceptedWhilePaused,
        pauses,
        policy: rec.policy,
        uploadMs,
        sent: ch.stats().sent,
      };
      conn.dispose();
      return out;
    },
    {
      url: proxy.url,
      token: gw.token(),
      port: echo.port,
      total: TOTAL,
      high: HIGH,
      low: LOW,
      banner: BANNER,
    },
  );

  const c = echo.connections[0]!;
  const p0 = r.pauses[0];
  const note =
    `upload ${TOTAL / MiB} MiB at ${UP_RATE / MiB} MiB/s in ${Math.round(r.uploadMs)} ms; peak bufferedAmount ` +
    `${r.maxBuffered} B (HWM ${HIGH}, LWM ${LOW}); ${r.pauses.length} transport pauses, first ` +
    `${Math.round(p0?.ms ?? 0)} ms, gateway sent ${p0 ? p0.gwAtResume - p0.gwAtPause : 'n/a'} B of echo while ` +
    `paused (outstanding credit ${p0?.outstanding}), page received ${p0?.receivedWhilePaused} B; write() accepted ` +
    `${r.acceptedWhilePaused} B while paused`;
  test.info().annotations.push({ type: 'measured', description: note });
  console.log(`[slow-network] ${note}`);

  expect(r.pauses.length).toBeGreaterThanOrEqual(1);
  expect(r.policy.slice(0, 2)).toEqual(['pause:transport', 'resume:transport']);
  expect(r.maxBuffered).toBeGreaterThanOrEqual(HIGH);
  for (const p of r.pauses) {
    expect(p.buffered).toBeGreaterThanOrEqual(HIGH);
    expect(p.bufferedAtResume).toBeLessThanOrEqual(LOW);
    expect(p.gwAtResume - p.gwAtPause).toBeLessThanOrEqual(p.outstanding);
    expect(p.receivedWhilePaused).toBeLessThanOrEqual(p.outstanding);
  }
  expect(r.acceptedWhilePaused).toBe(0);
  expect(r.sent).toBe(TOTAL);
  expect(c.bytesIn).toBe(TOTAL);
  expect(c.hashIn()).toBe(r.sentSha);
  expect(r.echoed).toBe(TOTAL);
  expect(r.echoSha).toBe(r.sentSha);
  expect(proxy.bytesUp()).toBeGreaterThan(TOTAL);
});
