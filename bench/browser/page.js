// In-page part of the browser benchmarks (bench/browser/run.mjs), loaded into the demo page
// (build/web-demo) by the benchmark's page server. Classic script, no imports: it uses the
// @mana/websocket build the page bundles (window.manaDemo.lib).
//
// window.manaBench.download(args) runs one download and resolves with
//   {got, bad, chunks, ms, openMs, exit, cipher, error}   (chunks: onData calls)
// args: {url, token, host, port, user, key, bytes, cipher, timeoutMs, raw, plain, skip}
//   plain = false: SshSession exec `head -c bytes /dev/zero` with `ciphers: cipher`; every chunk
//                  must be zeros (first, middle, last byte checked; `bad` counts the others).
//   raw = true:    a bare WebSocket to `url` (the runner's zero-byte WebSocket server): what the
//                  browser's WebSocket alone costs.
//   plain = true:  the same kind of bytes through a plain mana `tcp` channel (no SSH), consumed
//                  at once: the transport's own ceiling in the page (the first `skip` bytes
//                  are the target's banner line).
//   worker = true: the SSH download in the session worker (ManaWorkerClient, a stream session),
//                  each chunk checked and consumed by the page (credit follows the page).
//   ms: from the open (session ready / channel open) to the last byte.
//
// Loaded as /bench.html (the demo page plus this script) it runs without any DevTools client
// attached: it fetches the plan from GET /api/bench/plan, runs the downloads one after the other
// and POSTs each result to /api/bench/result, then POST /api/bench/done. A DevTools client that
// enables the Network domain (Playwright always does) makes Chromium copy and base64-encode every
// WebSocket message for it, which costs the page more than the SSH engine does.
(() => {
  'use strict';

  const bound = (p, ms, what) => {
    let timer;
    return Promise.race([
      p,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no end after ${ms} ms`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  };

  const whenLib = async () => {
    for (let i = 0; i < 400 && !(window.manaDemo && window.manaDemo.lib); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    if (!(window.manaDemo && window.manaDemo.lib)) throw new Error('the demo page did not load');
    return window.manaDemo.lib;
  };

  /** a.raw: a bare WebSocket (no mana core) receiving a.bytes from a.url; the browser's floor. */
  async function rawDownload(a) {
    const ws = new WebSocket(a.url);
    ws.binaryType = 'arraybuffer';
    let got = 0;
    let chunks = 0;
    let t1 = 0;
    let tLast = 0;
    await bound(
      new Promise((resolve, reject) => {
        ws.onopen = () => {
          t1 = performance.now();
          tLast = t1;
        };
        ws.onmessage = (ev) => {
          got += ev.data.byteLength;
          chunks++;
          tLast = performance.now();
        };
        ws.onclose = resolve;
        ws.onerror = () => reject(new Error('raw WebSocket failed'));
      }),
      a.timeoutMs,
      'raw download',
    );
    return {
      got,
      bad: 0,
      chunks,
      ms: tLast - t1,
      openMs: 0,
      exit: 0,
      cipher: 'none',
      error: null,
    };
  }

  /** The session worker (ManaWorkerClient, `@mana/websocket/worker` served at /pkg/). */
  let workerClient;
  async function startWorker(lib, mode) {
    if (workerClient === undefined) {
      const t0 = performance.now();
      workerClient = await lib.ManaWorkerClient.start({
        workerUrl: '/pkg/mana-worker.js',
        mode: mode || 'auto',
      });
      window.manaBenchWorkerStartMs = performance.now() - t0;
    }
    return workerClient;
  }

  /**
   * a.worker: the same SSH download in the session worker (a stream session: no screen model);
   * the page checks and consumes every chunk (credit follows the page, as in a terminal).
   */
  async function workerDownload(a) {
    const lib = await whenLib();
    const client = await startWorker(lib, a.workerMode);
    const tOpen = performance.now();
    const s = await bound(
      client.openSession(
        { url: a.url, token: a.token },
        {
          target: { host: a.host, port: a.port },
          username: a.user,
          auth: { privateKey: a.key },
          command: `head -c ${a.bytes} /dev/zero`,
          ciphers: a.cipher,
          stream: true,
          key: `bench-${Math.random()}`,
        },
      ),
      15000,
      'worker openSession',
    );
    const t1 = performance.now();
    let got = 0;
    let bad = 0;
    let chunks = 0;
    let tLast = t1;
    s.onData((d) => {
      got += d.length;
      chunks++;
      if (d[0] !== 0 || d[d.length - 1] !== 0 || d[d.length >> 1] !== 0) bad++;
      tLast = performance.now();
      s.consume(d.length);
    });
    let exit;
    s.onExit((e) => {
      exit = e;
    });
    await bound(new Promise((r) => s.onClose(r)), a.timeoutMs, 'worker download');
    const error = s.error ? `${s.error.name}: ${s.error.message}` : null;
    return {
      got,
      bad,
      chunks,
      ms: tLast - t1,
      openMs: t1 - tOpen,
      exit: exit && exit.code !== undefined ? exit.code : null,
      // The worker checked the negotiated cipher set to this one (ciphers: one name).
      cipher: a.cipher,
      mode: client.mode,
      error,
    };
  }

  async function download(a) {
    if (a.raw) return rawDownload(a);
    if (a.worker) return workerDownload(a);
    const lib = await whenLib();
    const conn = await lib.connect({
      url: a.url,
      token: a.token,
      storage: 'none',
    });
    try {
      await bound(conn.whenReady(), 10000, 'connect');
      const tOpen = performance.now();
      if (a.plain) {
        const ch = conn.openChannel({
          target: { host: a.host, port: a.port },
          kind: 'tcp',
        });
        await bound(ch.opened, 10000, 'openChannel');
        const t1 = performance.now();
        let got = 0;
        let bad = 0;
        let chunks = 0;
        let tLast = t1;
        ch.onData(({ data }) => {
          got += data.length;
          chunks++;
          // The target's banner line comes first (a.skip bytes), zeros after it.
          if (got > (a.skip || 0) && data[data.length - 1] !== 0) bad++;
          tLast = performance.now();
          ch.consume(data.length);
        });
        await bound(new Promise((r) => ch.onClose(r)), a.timeoutMs, 'download');
        return {
          got,
          bad,
          chunks,
          ms: tLast - t1,
          openMs: t1 - tOpen,
          exit: 0,
          cipher: 'none',
          error: null,
        };
      }
      const s = await bound(
        conn.openSession({
          target: { host: a.host, port: a.port },
          username: a.user,
          auth: { privateKey: a.key },
          command: `head -c ${a.bytes} /dev/zero`,
          knownHosts: 'memory',
          ciphers: a.cipher,
        }),
        15000,
        'openSession',
      );
      const t1 = performance.now();
      let got = 0;
      let bad = 0;
      let chunks = 0;
      let tLast = t1;
      s.onData((d) => {
        got += d.length;
        chunks++;
        if (d[0] !== 0 || d[d.length - 1] !== 0 || d[d.length >> 1] !== 0) bad++;
        tLast = performance.now();
      });
      let exit;
      s.onExit((e) => {
        exit = e;
      });
      await bound(new Promise((r) => s.onClose(r)), a.timeoutMs, 'download');
      const info = s.info;
      const error = s.error ? `${s.error.name}: ${s.error.message}` : null;
      s.dispose();
      return {
        got,
        bad,
        chunks,
        ms: tLast - t1,
        openMs: t1 - tOpen,
        exit: exit && exit.code !== undefined ? exit.code : null,
        cipher: info.cipherServerToClient,
        error,
      };
    } finally {
      conn.dispose();
    }
  }

  const post = (what, body) =>
    fetch(`/api/bench/${what}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  async function runPlan() {
    try {
      const plan = await (await fetch('/api/bench/plan', { method: 'POST' })).json();
      for (const step of plan.steps) {
        // The runner reads CPU counters between the steps: ask for a go, report the result.
        await post('ready', { id: step.id });
        let result;
        try {
          result = await download(step.args);
        } catch (e) {
          result = { error: String(e && e.stack ? e.stack : e) };
        }
        await post('result', { id: step.id, result });
      }
      await post('done', {});
    } catch (e) {
      await post('done', { error: String(e && e.stack ? e.stack : e) });
    }
  }

  window.manaBench = {
    download,
    startWorker: async (mode) => startWorker(await whenLib(), mode),
  };
  if (location.pathname === '/bench.html') void runPlan();
})();
