// SPDX-License-Identifier: Apache-2.0
// A download through the session worker survives a reload (docs/ssh-in-browser.md, "The session
// worker"): the SSH session runs in the SharedWorker as a stream session (pages/worker-transfer.js);
// the page hashes every chunk, saves the hash state, then consumes it, so credit follows what the
// page made safe. The test file is 64 MiB of random bytes on the sshd side, `cat` by the session.
//  - while the page holds chunks unconsumed, the gateway sends nothing more (credit follows the
//    page);
//  - while no page is attached (the reload), the gateway sends nothing more either (pause reason
//    `detached`: the worker consumes nothing, so nothing is lost or buffered without bound);
//  - after the reload the page reattaches, the worker replays what it had not consumed, and the
//    download completes byte-exact (SHA-256), with no new WebSocket and no new SSH authentication.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { openManaPage } from '../fixtures';
import { expect, test, type Sshd } from './fixtures';

declare global {
  interface Window {
    manaTransfer: TransferApi;
  }
}
interface TransferApi {
  state: {
    offset: number;
    chunks: number;
    held: number;
    exit?: number;
    closed: boolean;
    events: { type: string; name?: string; code?: string }[];
  };
  start(o?: Record<string, unknown>): Promise<string>;
  open(
    c: { url: string; token: string },
    s: Record<string, unknown>,
    o?: { pauseAt?: number },
  ): Promise<string>;
  resume(): Promise<{
    ok: boolean;
    why?: string;
    saved: number;
    workerOffset: number;
    skip: number;
  }>;
  release(): void;
  hex(): string;
}

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const PAUSE_AT = 16 * MiB;

const accepted = (sshd: Sshd) => (sshd.log().match(/Accepted /g) ?? []).length;
const state = (page: Page) => page.evaluate(() => window.manaTransfer.state);

test.describe.configure({ timeout: 120_000 });

test('reload during a 64 MiB download: it completes byte-exact (SHA-256) after the reload', async ({
  page,
  site,
  sshd,
  gatewayWith,
}) => {
  const dir = mkdtempSync(join(tmpdir(), 'mana-e2e-transfer-'));
  try {
    chmodSync(dir, 0o755); // sshd's session runs as the test user
    const file = join(dir, 'blob');
    const blob = randomBytes(SIZE);
    writeFileSync(file, blob, { mode: 0o644 });
    const want = createHash('sha256').update(blob).digest('hex');

    const gw = await gatewayWith({ targets: [sshd.port] });
    const toClient = () => gw.metric('mana_payload_bytes_total{direction="to_client"}');
    await openManaPage(page, site.origin, '/worker-transfer.html');
    expect(await page.evaluate(() => window.manaTransfer.start())).toBe('shared');
    await page.evaluate(
      ({ url, token, port, user, key, file, pauseAt }) =>
        window.manaTransfer.open(
          { url, token },
          {
            target: { host: '127.0.0.1', port },
            username: user,
            auth: { privateKey: key },
            command: `cat ${file}`,
            graceMs: 30_000,
          },
          { pauseAt },
        ),
      {
        url: gw.url,
        token: gw.token(),
        port: sshd.port,
        user: sshd.user,
        key: sshd.userKey.privateKey,
        file,
        pauseAt: PAUSE_AT,
      },
    );
    const authBefore = accepted(sshd);

    // The page stops consuming at 16 MiB: the gateway stops sending a window later.
    await expect.poll(async () => (await state(page)).held, { timeout: 30_000 }).toBeGreaterThan(0);
    await page.waitForTimeout(500);
    const heldAt = await toClient();
    await page.waitForTimeout(700);
    expect(await toClient()).toBe(heldAt);
    const before = await state(page);
    expect(before.offset).toBeGreaterThanOrEqual(PAUSE_AT);
    expect(before.offset + before.held).toBeLessThan(SIZE);
    // Unconsumed bytes in flight: the page's held chunks, the worker's, the gateway's window.
    expect(heldAt - before.offset).toBeLessThan(8 * MiB);

    // The reload drops the held chunks (never consumed): the worker still has them.
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { manaLoaded?: unknown }).manaLoaded);
    // Detached (no page attached to the session): nothing consumed, nothing more sent.
    await page.waitForTimeout(1_000);
    expect(await toClient()).toBe(heldAt);

    expect(await page.evaluate(() => window.manaTransfer.start())).toBe('shared');
    const r = await page.evaluate(() => window.manaTransfer.resume());
    expect(r).toMatchObject({ ok: true, saved: before.offset });
    expect(r.skip).toBeGreaterThanOrEqual(0);
    expect(r.workerOffset).toBeLessThanOrEqual(before.offset);

    await expect
      .poll(async () => (await state(page)).exit, { timeout: 90_000, intervals: [100] })
      .toBe(0);
    const after = await state(page);
    expect(after.offset).toBe(SIZE);
    expect(await page.evaluate(() => window.manaTransfer.hex())).toBe(want);
    // The same WebSocket and the same SSH authentication all along.
    expect(await gw.metric('mana_connections_total')).toBe(1);
    expect(await gw.metric('mana_resumes_total{outcome="accepted"}')).toBe(0);
    expect(accepted(sshd)).toBe(authBefore);
    await expect.poll(() => state(page).then((s) => s.closed)).toBe(true);
    expect((await state(page)).events).toEqual([{ type: 'close' }]);
    await expect.poll(() => gw.metric('mana_sessions_active')).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
