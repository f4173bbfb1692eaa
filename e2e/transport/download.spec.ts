// 64 MiB download through the gateway, verified by SHA-256 in the page, with the page's JS heap
// growth bounded (the channel hands out chunks that are hashed and dropped at once).
import { expect, test } from '../fixtures';

const MiB = 1024 * 1024;
const TOTAL = 64 * MiB;
/** Bound on JS heap growth (CDP Runtime.getHeapUsage usedSize, peak minus start). */
const HEAP_GROWTH_BOUND = 8 * MiB;

test("64 MiB download: SHA-256 in the page equals the target's, heap growth bounded", async ({
  manaPage,
  startTarget,
  gatewayWith,
}) => {
  const stream = await startTarget({ mode: 'stream', bytes: TOTAL, seed: 3 });
  const gw = await gatewayWith({ targets: [stream] });
  const cdp = await manaPage.context().newCDPSession(manaPage);
  await cdp.send('HeapProfiler.collectGarbage');
  const heap = async () =>
    (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number };
  const start = await heap();
  let peak = start.usedSize;
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const h = await heap();
      peak = Math.max(peak, h.usedSize);
      samples += 1;
      await new Promise((r) => setTimeout(r, 25));
    }
  })();

  const r = await manaPage.evaluate(
    async ({ url, token, port, total }) => {
      const { mana, e2e } = window as any;
      const conn = await mana.connect({ url, token, storage: 'none' });
      await conn.whenReady();
      const ch = conn.openChannel({ target: { host: '127.0.0.1', port }, kind: 'tcp' });
      const banner = 'SSH-2.0-mana-e2e-target\r\n'.length;
      const rx = e2e.collect(ch, { skip: banner });
      await ch.opened;
      const t0 = performance.now();
      await rx.until(banner + total, 120_000);
      const ms = performance.now() - t0;
      const stats = ch.stats();
      const out = {
        ms,
        hashed: rx.hashed,
        sha: rx.sha.hex(),
        window: stats.window,
        received: stats.received,
        grants: 0,
      };
      conn.dispose();
      return out;
    },
    { url: gw.url, token: gw.token(), port: stream.port, total: TOTAL },
  );
  sampling = false;
  await sampler;
  await cdp.send('HeapProfiler.collectGarbage');
  const end = await heap();

  const c = stream.connections[0]!;
  expect(c.streamDone).toBe(true);
  expect(r.hashed).toBe(TOTAL);
  expect(r.sha).toBe(c.hashOut());
  const growth = peak - start.usedSize;
  const mbps = TOTAL / MiB / (r.ms / 1000);
  test.info().annotations.push({
    type: 'measured',
    description:
      `64 MiB in ${Math.round(r.ms)} ms (${mbps.toFixed(1)} MiB/s); heap used start ` +
      `${(start.usedSize / MiB).toFixed(1)} MiB, peak +${(growth / MiB).toFixed(1)} MiB over ${samples} samples, ` +
      `after GC ${(end.usedSize / MiB).toFixed(1)} MiB; final window ${r.window}`,
  });
  console.log(`[download] ${test.info().annotations.at(-1)!.description}`);
  expect(growth).toBeLessThan(HEAP_GROWTH_BOUND);
  expect(samples).toBeGreaterThan(3);
  expect(await gw.metric('mana_payload_bytes_total{direction="to_client"}')).toBe(
    TOTAL + 'SSH-2.0-mana-e2e-target\r\n'.length,
  );
});
