// Flow and resume journeys of the web demo's terminal path (xterm.js + ManaAttachAddon) against a
// real sshd: a network drop mid-session, and a 100 MB `cat` flood.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../fixtures';
import {
  test,
  expect,
  loginViaForm,
  termText,
  typeLine,
  waitTerm,
  type DemoWindow,
} from './fixtures';

test('network drop mid-session (RST + offline/online): the session survives, markers arrive once and in order', async ({
  demoPage: page,
  demoSite,
  sshGateway,
  sshd,
  proxyTo,
  context,
}) => {
  const proxy = await proxyTo({ upstreamPort: sshGateway.port });
  demoSite.configure({
    gatewayUrl: proxy.url,
    target: { host: sshd.host, port: sshd.port },
    user: sshd.user,
    privateKey: sshd.userKey.privateKey,
    token: () => sshGateway.token(),
  });
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  await loginViaForm(page, sshd);

  const N = 300;
  await typeLine(
    page,
    `for i in $(seq 1 ${N}); do echo "M$i"; sleep 0.01; done; echo DONE-$((1+1))`,
  );
  await waitTerm(page, /^M20$/m);
  expect(proxy.cut()).toBeGreaterThan(0);
  await context.setOffline(true);
  await page.waitForTimeout(700);
  await context.setOffline(false);
  await waitTerm(page, /^DONE-2$/m, 30_000);
  // typing continues after the drop
  await typeLine(page, 'echo "after-$((3*3))"');
  await waitTerm(page, /^after-9$/m);

  const lines = (await termText(page)).split('\n').filter((l) => /^M\d+$/.test(l));
  expect(lines.length).toBe(N);
  lines.forEach((l, i) => expect(l).toBe(`M${i + 1}`));
  const resumes = await page.evaluate(() => {
    const l = (window as unknown as DemoWindow).manaDemo.live() as unknown as { resumes: number };
    return l.resumes;
  });
  expect(resumes).toBeGreaterThanOrEqual(1);
  expect(proxy.accepted()).toBeGreaterThanOrEqual(2);
});

// The incremental SHA-256 of e2e/pages/harness.js, injected into the demo page.
function sha256Source(): string {
  const src = readFileSync(join(repoRoot, 'e2e', 'pages', 'harness.js'), 'utf8');
  const start = src.indexOf('const K = new Uint32Array');
  const end = src.indexOf('export function fillSeeded');
  if (start < 0 || end < 0) throw new Error('harness.js: Sha256 not found');
  return `${src.slice(start, end).replace('export class Sha256', 'class Sha256')}\nwindow.E2eSha256 = Sha256;`;
}

test('100 MB cat through xterm.js: SHA-256 matches, heap bounded, keystroke echo p95', async ({
  demoPage: page,
  sshd,
}) => {
  test.setTimeout(240_000);
  // ~100 MB of base64 text (printable: xterm parses it like any output), readable by the user.
  const file = `/tmp/mana-e2e-flood-${process.pid}.txt`;
  const raw = randomBytes(75 * 1024 * 1024).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < raw.length; i += 100) lines.push(raw.slice(i, i + 100));
  const body = Buffer.from(lines.join('\n') + '\n');
  writeFileSync(file, body);
  chmodSync(file, 0o644);
  const expected = createHash('sha256').update(body).digest('hex');
  try {
    await page.addScriptTag({ content: sha256Source() });
    await loginViaForm(page, sshd);
    // A second session on the same connection for the echo probe (its pty echoes `cat` input).
    await page.evaluate(
      async ({ size, key, user, host, port }) => {
        const w = window as unknown as DemoWindow & { flood: Record<string, unknown> };
        const live = w.manaDemo.live() as unknown as {
          conn: { openSession(o: unknown): Promise<import('./fixtures').DemoSession> };
          session: import('./fixtures').DemoSession;
        };
        const Sha = (
          window as unknown as {
            E2eSha256: new () => { update(b: Uint8Array): void; hex(): string };
          }
        ).E2eSha256;
        const begin = new TextEncoder().encode('@@FLOOD-BEGIN@@\n');
        const latin1 = new TextDecoder('latin1'); // one char per byte
        const st = {
          phase: 'before' as 'before' | 'body' | 'after',
          tail: '',
          got: 0,
          sha: new Sha(),
          hex: '',
          heapMax: 0,
          heapBase: (performance as unknown as { memory: { usedJSHeapSize: number } }).memory
            .usedJSHeapSize,
          echo: [] as number[],
          started: 0,
          finished: 0,
        };
        w.flood = st;
        live.session.onData((d) => {
          let chunk = d;
          if (st.phase === 'before') {
            const s = st.tail + latin1.decode(d);
            const at = s.indexOf('@@FLOOD-BEGIN@@\n');
            if (at < 0) {
              st.tail = s.slice(-begin.length);
              return;
            }
            const consumed = at + begin.length - st.tail.length;
            chunk = d.subarray(consumed);
            st.phase = 'body';
            st.started = performance.now();
          }
          if (st.phase === 'body') {
            const take = Math.min(chunk.length, size - st.got);
            st.sha.update(chunk.subarray(0, take));
            st.got += take;
            if (st.got === size) {
              st.phase = 'after';
              st.hex = st.sha.hex();
              st.finished = performance.now();
            }
          }
        });
        const heap = setInterval(() => {
          const m = (performance as unknown as { memory: { usedJSHeapSize: number } }).memory;
          st.heapMax = Math.max(st.heapMax, m.usedJSHeapSize);
          if (st.phase === 'after') clearInterval(heap);
        }, 100);
        const probe = await live.conn.openSession({
          target: { host, port },
          username: user,
          auth: { privateKey: key },
          term: { cols: 80, rows: 24 },
          command: 'cat',
        });
        let waiting: { t: number; ch: string } | undefined;
        probe.onData((d) => {
          if (waiting && latin1.decode(d).includes(waiting.ch)) {
            st.echo.push(performance.now() - waiting.t);
            waiting = undefined;
          }
        });
        const tick = setInterval(() => {
          if (st.phase === 'after') {
            clearInterval(tick);
            probe.dispose();
            return;
          }
          if (st.phase !== 'body' || waiting) return;
          const ch = String.fromCharCode(97 + (st.echo.length % 26));
          waiting = { t: performance.now(), ch };
          probe.write(ch);
        }, 50);
      },
      {
        size: body.length,
        key: sshd.userKey.privateKey,
        user: sshd.user,
        host: sshd.host,
        port: sshd.port,
      },
    );
    await typeLine(
      page,
      `stty raw -echo; printf '\\100\\100FLOOD-BEGIN\\100\\100\\n'; cat ${file}; stty sane; echo; echo "flood-$((5*5))"`,
    );
    const t0 = Date.now();
    await expect
      .poll(
        () => page.evaluate(() => (window as unknown as { flood: { phase: string } }).flood.phase),
        {
          timeout: 200_000,
          intervals: [500],
        },
      )
      .toBe('after');
    const wallS = (Date.now() - t0) / 1000;
    await waitTerm(page, /^flood-25$/m, 60_000);
    const r = await page.evaluate(() => {
      const f = (window as unknown as { flood: Record<string, unknown> }).flood as {
        hex: string;
        got: number;
        heapMax: number;
        heapBase: number;
        echo: number[];
        started: number;
        finished: number;
      };
      const att = (window as unknown as DemoWindow).manaDemo.live() as unknown as {
        attachment: { stats(): Record<string, number> };
      };
      return { ...f, sha: undefined, stats: att.attachment.stats() };
    });
    const echo = [...r.echo].sort((a, b) => a - b);
    const p95 = echo[Math.floor(echo.length * 0.95)] ?? NaN;
    const p50 = echo[Math.floor(echo.length * 0.5)] ?? NaN;
    const mbps = body.length / 1e6 / ((r.finished - r.started) / 1000);
    const heapGrowth = (r.heapMax - r.heapBase) / 1024 / 1024;
    console.log(
      `[flood] ${body.length} bytes in ${((r.finished - r.started) / 1000).toFixed(1)} s ` +
        `(${mbps.toFixed(1)} MB/s through xterm; wall ${wallS.toFixed(1)} s); heap base ` +
        `${(r.heapBase / 1048576).toFixed(1)} MiB, max +${heapGrowth.toFixed(1)} MiB; ` +
        `echo probes ${echo.length}: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms; ` +
        `xterm maxPending ${r.stats.maxPending} B, pauses ${r.stats.pauses}`,
    );
    expect(r.got).toBe(body.length);
    expect(r.hex).toBe(expected);
    expect(heapGrowth).toBeLessThan(128);
    expect(r.stats.maxPending).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(echo.length).toBeGreaterThan(5);
    expect(p95).toBeLessThan(1000);
  } finally {
    rmSync(file, { force: true });
  }
});

test('hidden tab while the shell prints: credit paused (gateway stops sending), visible: nothing lost', async ({
  demoPage: page,
  sshGateway,
  sshd,
}) => {
  test.setTimeout(120_000);
  await loginViaForm(page, sshd);
  const N = 2_000_000;
  // Count seq's lines in the page as they are handed to the terminal: consecutive, none missing.
  await page.evaluate(() => {
    const w = window as unknown as DemoWindow & { seqCheck: Record<string, number | boolean> };
    const st = { last: 0, bad: 0, started: false };
    w.seqCheck = st;
    let carry = '';
    const dec = new TextDecoder();
    w.manaDemo.live()?.session?.onData((d) => {
      const parts = (carry + dec.decode(d, { stream: true })).split('\r\n');
      carry = parts.pop() ?? '';
      for (const part of parts) {
        // bash switches bracketed paste off ("\x1b[?2004l\r") before the first output line
        const p = part.slice(part.lastIndexOf('\r') + 1);
        if (!st.started) {
          if (p === '1') {
            st.started = true;
            st.last = 1;
          }
          continue;
        }
        if (!/^\d+$/.test(p)) continue;
        const n = Number(p);
        if (n !== st.last + 1) st.bad++;
        st.last = n;
      }
    });
  });
  const toClient = 'mana_payload_bytes_total{direction="to_client"}';
  await typeLine(page, `seq 1 ${N}`);
  await expect
    .poll(() =>
      page.evaluate(() => (window as unknown as { seqCheck: { last: number } }).seqCheck.last),
    )
    .toBeGreaterThan(1000);
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  const reasons = await page.evaluate(
    () =>
      (
        window as unknown as { manaDemo: { live(): { conn: { pauseReasons: string[] } } } }
      ).manaDemo.live().conn.pauseReasons,
  );
  expect(reasons).toContain('hidden');
  const atHide = await sshGateway.metric(toClient);
  await page.waitForTimeout(2500);
  const afterHidden = await sshGateway.metric(toClient);
  const lastWhileHidden = await page.evaluate(
    () => (window as unknown as { seqCheck: { last: number } }).seqCheck.last,
  );
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', {
      configurable: true,
      get: () => 'visible',
    });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await expect
    .poll(
      () =>
        page.evaluate(() => (window as unknown as { seqCheck: { last: number } }).seqCheck.last),
      {
        timeout: 90_000,
        intervals: [250],
      },
    )
    .toBe(N);
  const st = await page.evaluate(
    () => (window as unknown as { seqCheck: { last: number; bad: number } }).seqCheck,
  );
  const sentWhileHidden = afterHidden - atHide;
  // The counter is the right one: the rest of seq's output went through it after the page showed.
  expect((await sshGateway.metric(toClient)) - afterHidden).toBeGreaterThan(8_000_000);
  console.log(
    `[hidden ssh] gateway sent ${sentWhileHidden} bytes to the page during 2.5 s hidden ` +
      `(line ${lastWhileHidden} of ${N} when shown again); ${st.bad} gaps`,
  );
  // At most one mana window (gateway max_window 2 MiB) after the pause, then nothing.
  expect(sentWhileHidden).toBeLessThanOrEqual(2 * 1024 * 1024 + 65536);
  expect(lastWhileHidden).toBeLessThan(N);
  expect(st.bad).toBe(0);
});

test('reference: the same kind of download without the terminal (exec cat, flow auto)', async ({
  demoPage: page,
  sshGateway,
  sshd,
}) => {
  test.setTimeout(120_000);
  const file = `/tmp/mana-e2e-dl-${process.pid}.bin`;
  const body = randomBytes(64 * 1024 * 1024);
  writeFileSync(file, body);
  chmodSync(file, 0o644);
  const expected = createHash('sha256').update(body).digest('hex');
  try {
    await page.addScriptTag({ content: sha256Source() });
    const r = await page.evaluate(
      async (a) => {
        const w = window as unknown as DemoWindow & {
          E2eSha256: new () => { update(b: Uint8Array): void; hex(): string };
        };
        const conn = await w.manaDemo.lib.connect({ url: a.url, token: a.token, storage: 'none' });
        await conn.whenReady();
        const sha = new w.E2eSha256();
        let got = 0;
        const t0 = performance.now();
        const s = await conn.openSession({
          target: { host: a.host, port: a.port },
          username: a.user,
          auth: { privateKey: a.key },
          command: `cat ${a.file}`,
          knownHosts: 'memory',
        });
        const t1 = performance.now();
        s.onData((d) => {
          sha.update(d);
          got += d.length;
        });
        await new Promise((res) => s.onClose(res));
        const t2 = performance.now();
        const info = s.info;
        s.dispose();
        conn.dispose();
        return {
          got,
          hex: sha.hex(),
          openMs: t1 - t0,
          ms: t2 - t1,
          cipher: info.cipherServerToClient,
        };
      },
      {
        url: sshGateway.url,
        token: sshGateway.token(),
        host: sshd.host,
        port: sshd.port,
        user: sshd.user,
        key: sshd.userKey.privateKey,
        file,
      },
    );
    console.log(
      `[download] ${r.got} bytes, ${r.cipher}: ${(r.got / 1e6 / (r.ms / 1000)).toFixed(1)} MB/s in the page ` +
        `(incl. in-page SHA-256); connect+auth+exec ${r.openMs.toFixed(0)} ms`,
    );
    expect(r.got).toBe(body.length);
    expect(r.hex).toBe(expected);
  } finally {
    rmSync(file, { force: true });
  }
});
