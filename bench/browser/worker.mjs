// SPDX-License-Identifier: Apache-2.0
// The session-worker part of the browser benchmarks (bench/browser/run.mjs, README.md): keystroke
// -> glyph while a flood fills the same terminal, in the page and in the session worker, and the
// worker start + reattach time after a reload. Each function gets a Playwright page on the demo
// page (build/web-demo: window.manaDemo.term is its xterm.js terminal, window.manaDemo.lib the
// bundled @mana/websocket) whose page server serves the npm build's dist/ at /pkg/.

import { fileURLToPath } from 'node:url';

/** One pass of the flood: 100 MB of `.` lines (flood.py shows each key on the first row). */
export const FLOOD_BYTES = 100_000_000;
const FLOOD_PY = fileURLToPath(new URL('./flood.py', import.meta.url));
/** Passes are repeated so the flood outlasts the keys; ^C ends it. */
const floodCommand = (passes) => `python3 ${FLOOD_PY} ${passes} ${FLOOD_BYTES}\r`;

/** page.js (window.manaBench) in a Playwright page on the demo page. */
async function ensureBench(page) {
  if (!(await page.evaluate(() => Boolean(window.manaBench)))) {
    await page.addScriptTag({ url: '/bench/page.js' });
  }
}

/** Logs in through the demo form (in-page SshSession + attachTerminal). */
async function loginInPage(page, hostFingerprint) {
  await page.click('#btn-connect');
  await page.waitForSelector('#hostkey-dialog[open]', { timeout: 20000 });
  const fp = (await page.textContent('#hk-fp'))?.trim();
  if (fp !== hostFingerprint) throw new Error(`host key ${fp}, sshd has ${hostFingerprint}`);
  await page.click('#hk-accept');
}

/**
 * Shows the demo's terminal without its connect form (what the form's connect does, minus the
 * in-page session), sized `dims` (the in-page run's fitted size) when given.
 */
function showTerminal(dims) {
  const term = window.manaDemo.term;
  const box = document.getElementById('terminal');
  for (const f of document.querySelectorAll('form')) f.hidden = true;
  box.hidden = false;
  if (!term.element) term.open(box);
  if (dims) term.resize(dims.cols, dims.rows);
  term.focus();
}

/** Opens the shell in the session worker and attaches the demo's terminal to it. */
async function loginInWorker(page, a) {
  await ensureBench(page);
  await page.evaluate(showTerminal, a.dims ?? null);
  const mode = await page.evaluate(async (a) => {
    const client = await window.manaBench.startWorker('auto');
    const term = window.manaDemo.term;
    const view = await client.openSession(
      { url: a.url, token: a.token },
      {
        target: { host: a.host, port: a.port },
        username: a.user,
        auth: { privateKey: a.key },
        term: { cols: term.cols, rows: term.rows },
        graceMs: a.graceMs ?? 1000,
        key: a.storeKey ?? 'default',
        hostKey: { verify: (info) => info.fingerprint === a.fingerprint },
      },
    );
    window.benchView = view;
    term.loadAddon(new window.manaDemo.lib.ManaAttachAddon(view));
    return client.mode;
  }, a);
  if (mode !== 'shared') throw new Error(`session worker mode ${mode}, not shared`);
}

/**
 * Records, per expected key (`{ch, n}`), keydown -> parsed (the write after which the first row
 * reads "key <ch> #<n>", flood.py's answer) -> rendered (the next onRender).
 */
function instrument() {
  const term = window.manaDemo.term;
  const st = { expect: null, samples: [], bytes: 0, t0: 0, tLast: 0 };
  window.benchFlood = st;
  document.addEventListener(
    'keydown',
    (e) => {
      if (st.expect && st.expect.down === undefined) st.expect.down = e.timeStamp;
    },
    true,
  );
  const write = term.write.bind(term);
  term.write = (data, cb) => {
    const n = typeof data === 'string' ? data.length : data.byteLength;
    if (st.bytes === 0) st.t0 = performance.now();
    st.bytes += n;
    st.tLast = performance.now();
    write(data, cb);
  };
  term.onWriteParsed(() => {
    const x = st.expect;
    if (!x || x.down === undefined || x.parsed !== undefined) return;
    const b = term.buffer.active;
    const row = b.getLine(b.baseY)?.translateToString(true) ?? '';
    if (row === `key ${x.ch} #${x.n}`) x.parsed = performance.now();
  });
  term.onRender(() => {
    const x = st.expect;
    if (x && x.parsed !== undefined) {
      st.samples.push({
        parsed: x.parsed - x.down,
        rendered: performance.now() - x.down,
      });
      st.expect = null;
    }
  });
}

/**
 * Keystroke -> glyph while the flood runs in the same terminal. `where` is 'page' (the demo's
 * in-page session) or 'worker' (the session worker). `sent()` reads the gateway's payload bytes
 * sent to clients. Returns {samples, floodMBps (through the page's terminal), sessionMBps (what
 * the session received: a worker whose page lags sends it frames of the screen instead of every
 * byte), misses, dims}.
 */
export async function floodLatency(page, where, a, keys, sent) {
  if (where === 'page') await loginInPage(page, a.fingerprint);
  else await loginInWorker(page, a);
  await page.waitForFunction(() => /[$#] ?$/m.test(window.manaDemo.text()), null, {
    timeout: 20000,
  });
  await page.evaluate(instrument);
  await page.locator('#terminal').click();
  const base = await sent();
  await page.evaluate((cmd) => window.manaDemo.term.input(cmd, true), floodCommand(20));
  // The flood runs once more than a few MB went to the session (a worker whose page lags sends
  // it frames of the screen, so the bytes through the terminal say little).
  const floodBy = Date.now() + 20000;
  while ((await sent()) - base < 4e6) {
    if (Date.now() > floodBy) throw new Error(`flood latency (${where}): no flood within 20 s`);
    await page.waitForTimeout(50);
  }
  const start = await page.evaluate(() => ({
    b: window.benchFlood.bytes,
    t: performance.now(),
  }));
  const sent0 = { b: await sent(), t: Date.now() };
  const samples = [];
  let misses = 0;
  for (let i = 0; i < keys; i++) {
    const ch = String.fromCharCode(97 + (i % 26));
    await page.evaluate(
      ([ch, n]) => {
        window.benchFlood.expect = { ch, n };
      },
      [ch, i + 1],
    );
    await page.keyboard.press(ch);
    try {
      await page.waitForFunction(() => window.benchFlood.samples.length >= 1, null, {
        timeout: 15000,
        polling: 10,
      });
      samples.push(...(await page.evaluate(() => window.benchFlood.samples.splice(0))));
    } catch {
      // Not echoed within 15 s (a saturated page): counted, and the run goes on.
      misses++;
      if (misses > keys / 4) throw new Error(`flood latency (${where}): ${misses} keys lost`);
    }
    await page.waitForTimeout(20 + Math.floor(Math.random() * 20));
  }
  const end = await page.evaluate(() => ({
    b: window.benchFlood.bytes,
    t: performance.now(),
  }));
  const sent1 = { b: await sent(), t: Date.now() };
  const stillFlooding = await page.evaluate(
    () => performance.now() - window.benchFlood.tLast < 500,
  );
  if (!stillFlooding) throw new Error(`flood latency (${where}): the flood ended before the keys`);
  await page.keyboard.press('Control+C');
  if (where === 'worker') {
    await page.evaluate(() => {
      try {
        window.benchView.close();
      } catch {
        // already closed
      }
    });
  }
  const dims = await page.evaluate(() => ({
    cols: window.manaDemo.term.cols,
    rows: window.manaDemo.term.rows,
  }));
  return {
    samples,
    floodMBps: (end.b - start.b) / 1e6 / ((end.t - start.t) / 1000),
    sessionMBps: (sent1.b - sent0.b) / 1e6 / ((sent1.t - sent0.t) / 1000),
    misses,
    dims,
  };
}

/**
 * Worker start + reattach after a reload, `n` reloads: per reload the ms from the reloaded page's
 * ManaWorkerClient.start() call to the restored screen written into its xterm (`total`), the part
 * until the worker answered (`start`), and the ms since the navigation began (`sinceNav`).
 */
export async function reattachTimes(page, a, n) {
  await loginInWorker(page, {
    ...a,
    storeKey: 'bench-reattach',
    graceMs: 30000,
  });
  await page.waitForFunction(() => /[$#] ?$/m.test(window.manaDemo.text()), null, {
    timeout: 20000,
  });
  await page.evaluate(() => window.manaDemo.term.input('seq 1 200\r', true));
  await page.waitForFunction(() => /^200$/m.test(window.manaDemo.text()), null, { timeout: 10000 });
  const out = [];
  for (let i = 0; i < n; i++) {
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
    await page.evaluate(showTerminal, a.dims ?? null);
    const r = await page.evaluate(async () => {
      const lib = window.manaDemo.lib;
      const t0 = performance.now();
      const client = await lib.ManaWorkerClient.start({
        workerUrl: '/pkg/mana-worker.js',
      });
      const t1 = performance.now();
      const view = await client.reattach({ key: 'bench-reattach' });
      if (view === undefined) throw new Error('nothing to reattach');
      const term = window.manaDemo.term;
      const done = new Promise((resolve) => {
        const d = term.onWriteParsed(() => {
          d.dispose();
          resolve();
        });
      });
      term.loadAddon(new lib.ManaAttachAddon(view));
      await done;
      const t2 = performance.now();
      window.benchView = view;
      return {
        mode: client.mode,
        start: t1 - t0,
        total: t2 - t0,
        sinceNav: t2,
        restored: /^200$/m.test(window.manaDemo.text()),
      };
    });
    if (r.mode !== 'shared' || !r.restored) {
      throw new Error(`reattach ${i + 1}: mode ${r.mode}, screen restored ${r.restored}`);
    }
    out.push(r);
  }
  await page.evaluate(() => window.benchView.close());
  return out;
}
