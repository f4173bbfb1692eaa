#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Browser benchmarks of mana-websocket (make bench-browser): SSH in the page, in Debian's Chromium,
// against a real OpenSSH server and a real mana-gateway, all on loopback.
//
//   node bench/browser/run.mjs [--quick] [--rounds N] [--out FILE] [--profile]
//
// Per round it measures
//   - in-page SSH download MB/s (1 MB = 10^6 bytes): `head -c N /dev/zero` run by exec through
//     SshSession (the wasm SSH engine + the wasm core in the page), once per cipher
//     (chacha20-poly1305@openssh.com, aes256-gcm@openssh.com, set with the `ciphers` option and
//     checked in session.info); the byte count must equal N and every chunk must be zeros;
//   - keystroke -> glyph latency: the demo page (build/web-demo: xterm.js + attachTerminal) runs
//     `cat >/dev/null` in a pty; for each of K keys Chromium gets a real key press (CDP), and the
//     page records the keydown event's timeStamp, the moment the echoed character is in the xterm
//     buffer (onWriteParsed) and the moment the row was rendered (onRender); idle, no flood;
//   - sizes (once): raw / gzip -9 / brotli of the wasm modules, their Emscripten glue, the TS
//     output and the npm tarball (scripts/js-size.mjs, which `make js-size` prints).
// Sizes: full N = 64 MiB, K = 200 keys, 5 rounds; quick (--quick or BENCH_QUICK=1) 16 MiB, 50 keys,
// 3 rounds. Output: build/bench/browser.json (see bench/browser/README.md for the schema).
// --profile additionally records a Chromium CPU profile (CDP Profiler) of one chacha20 download
// into build/bench/browser-download.cpuprofile and prints the functions by self time.
// --latency-only skips the downloads (keystroke test only); --trace-latency also times the steps
// between each keydown and its render (keydown listener, next ordinary task, WebSocket.send, echo
// message, term.write, parsed, rendered), logs their p50/p95 per round and writes them to the JSON
// (`keystroke_phases`). For development: neither changes what the keystroke metrics measure.
//
// Environment: MANA_GATEWAY (default build/native-release/bin/mana-gateway when it exists, else
// build/native-debug/bin/mana-gateway; the build type goes into the JSON), CHROMIUM (default
// /usr/bin/chromium), BENCH_QUICK=1, BENCH_DEADLINE_S (whole-run bound; default 330, quick 110),
// BENCH_WEB_DIR (another build of the demo page, for A/B runs; default build/web-demo).
// Every listener is on 127.0.0.1 with an ephemeral port; sshd, the gateway, the page server and
// the browser are stopped on exit, on a signal and when the deadline passes.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureSizes } from '../../scripts/js-size.mjs';
import { loadPlaywright } from '../../tools/devkit/browser.mjs';
import { launchGateway } from '../../tools/devkit/gateway.mjs';
import { freePort } from '../../tools/devkit/net.mjs';
import { fingerprintOf, startSshd } from '../../tools/devkit/sshd.mjs';
import { startTarget } from '../../tools/devkit/targets.mjs';
import { FLOOD_BYTES, floodLatency, reattachTimes } from './worker.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const webDir = path.resolve(process.env.BENCH_WEB_DIR ?? path.join(root, 'build', 'web-demo'));
const pkgDir = path.join(root, 'build', 'js', 'package');
const pageScript = path.join(root, 'bench', 'browser', 'page.js');

const symbolsDir = process.env.BENCH_SSH_SYMBOLS_DIR;
const wasmNames = new Map();
if (symbolsDir) {
  for (const line of fs
    .readFileSync(path.join(symbolsDir, 'mana-ssh.mjs.symbols'), 'utf8')
    .split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) wasmNames.set(Number(line.slice(0, i)), line.slice(i + 1));
  }
}

// The plan the DevTools-free page (/bench.html) runs, and its handlers (set by runHeadless).
let benchApi = () => ({ error: 'no plan' });

// ---- options --------------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const value = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('--quick') || process.env.BENCH_QUICK === '1';
const rounds = Number(value('--rounds') ?? (quick ? 3 : 5));
const downloadBytes = (quick ? 16 : 64) * 1024 * 1024;
const keys = quick ? 50 : 200;
const outFile = path.resolve(value('--out') ?? path.join(root, 'build', 'bench', 'browser.json'));
const profileOnly = flag('--profile-only');
const profile = flag('--profile') || profileOnly;
const latencyOnly = flag('--latency-only');
const traceLatency = flag('--trace-latency');
const deadlineS = Number(process.env.BENCH_DEADLINE_S ?? (quick ? 200 : 480));
/** Keys typed during the flood, reloads for the reattach time, per round. */
const floodKeys = quick ? 30 : 100;
const reloads = quick ? 5 : 10;
const ciphers = ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com'];
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('bench-browser: --rounds must be a positive integer');
  process.exit(2);
}

const t0 = Date.now();
const log = (...m) =>
  console.log(`[bench-browser ${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...m);

function pickGateway() {
  if (process.env.MANA_GATEWAY) {
    const p = process.env.MANA_GATEWAY;
    const m = /build\/([^/]+)\/bin\/mana-gateway$/.exec(p);
    return { bin: p, build: m ? m[1] : 'custom' };
  }
  for (const build of ['native-release', 'native-debug']) {
    const bin = path.join(root, 'build', build, 'bin', 'mana-gateway');
    if (fs.existsSync(bin)) return { bin, build };
  }
  return undefined;
}

// ---- processes and cleanup ------------------------------------------------------------------------
let sshd;
let gateway;
let server;
let browser;
let stopping;
const sockets = new Set();

async function stopAll() {
  stopping ??= (async () => {
    await stopHeadless();
    if (browser) await browser.close().catch(() => undefined);
    if (server) {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
    if (gateway) await gateway.stop();
    if (sshd) await sshd.stop();
    if (zeroServer) await zeroServer.close();
    if (rawWsServer) {
      rawWsServer.closeAllConnections?.();
      await new Promise((r) => rawWsServer.close(r));
    }
  })();
  return stopping;
}
process.on('exit', () => {
  if (gateway && gateway.process.exitCode === null) gateway.process.kill('SIGKILL');
  if (headless && headless.exitCode === null) {
    try {
      process.kill(-headless.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  // An abrupt exit (an uncaught error, a closed stdout): the temp dirs go too.
  for (const dir of [gateway?.dir, headlessProfileDir]) {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    void stopAll().then(() => process.exit(1));
  });
}
const deadline = setTimeout(() => {
  console.error(`bench-browser: not done after ${deadlineS} s: stopping`);
  void stopAll().then(() => process.exit(1));
}, deadlineS * 1000);
deadline.unref();

// ---- helpers --------------------------------------------------------------------------------------
/** Median / min / max of `values` (median of an even count: mean of the two middle values). */
export function summary(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : Math.round(((v[mid - 1] + v[mid]) / 2) * 1000) / 1000;
  return { median, min: v[0], max: v[v.length - 1] };
}

/** Nearest-rank percentile (p in 0..100) of `values`. */
export function percentile(values, p) {
  const v = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * v.length));
  return v[Math.min(rank, v.length) - 1];
}

const round3 = (x) => Math.round(x * 1000) / 1000;

// ---- CPU time per process (from /proc; robust against other load on the machine) ----------------
const clockTicks =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function procStat(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    // utime + stime, plus cutime + cstime: the CPU of children that exited and were reaped (an
    // sshd session process, the remote command) stays counted in the live parent.
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    return { ppid: Number(f[1]), cpuMs: (ticks * 1000) / clockTicks };
  } catch {
    return undefined;
  }
}

/** pid -> ppid of every process. */
function processTable() {
  const table = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(d);
    if (st) table.set(Number(d), st);
  }
  return table;
}

/** Chromium process class from its command line: browser, renderer, gpu, network, utility. */
function chromiumClass(pid) {
  let cmd = '';
  try {
    cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return 'gone';
  }
  const type = /--type=([a-z-]+)/.exec(cmd)?.[1];
  if (type === undefined) return 'browser';
  if (type === 'gpu-process') return 'gpu';
  if (type === 'utility') return /network/i.test(cmd) ? 'network' : 'utility';
  return type === 'zygote' ? 'browser' : type;
}

/** The Chromium process Playwright started (a child of this process; /usr/bin/chromium may be a
 *  shell wrapper that execs the real binary, which keeps the pid). */
function chromiumRoot() {
  for (const [pid, st] of processTable()) {
    if (st.ppid !== process.pid) continue;
    try {
      if (/chromium/.test(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) return pid;
    } catch {
      // gone
    }
  }
  return undefined;
}

const cpuRoots = (chromiumPid) => ({
  chromium: chromiumPid,
  gateway: gateway?.pid,
  sshd: sshd?.pid,
});

/** CPU ms so far per class: chromium's processes by type, the gateway, sshd and its sessions. */
function cpuSnapshot(roots) {
  const table = processTable();
  const children = new Map();
  for (const [pid, st] of table) {
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(pid);
  }
  const tree = (pid) => {
    const out = [pid];
    for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
    return out.filter((p) => table.has(p));
  };
  const snap = {};
  const addTo = (k, ms) => {
    snap[k] = (snap[k] ?? 0) + ms;
  };
  if (roots.chromium) {
    for (const p of tree(roots.chromium)) {
      const cls = chromiumClass(p);
      addTo(
        `chromium-${cls === 'renderer' || cls === 'network' || cls === 'gpu' ? cls : 'other'}`,
        table.get(p).cpuMs,
      );
      if (cls === 'renderer') {
        // Per thread (main thread, IO thread, compositor, V8 workers), for the log.
        let tids = [];
        try {
          tids = fs.readdirSync(`/proc/${p}/task`);
        } catch {
          // gone
        }
        for (const tid of tids) {
          try {
            const st = fs.readFileSync(`/proc/${p}/task/${tid}/stat`, 'utf8');
            const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
            const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
            addTo(`thread:${comm}`, ((Number(f[11]) + Number(f[12])) * 1000) / clockTicks);
          } catch {
            // gone
          }
        }
      }
    }
  }
  if (roots.gateway) for (const p of tree(roots.gateway)) addTo('gateway', table.get(p).cpuMs);
  if (roots.sshd) for (const p of tree(roots.sshd)) addTo('sshd', table.get(p).cpuMs);
  return snap;
}

/** CPU ms per MB between two snapshots (a process that exited in between is not counted). */
function cpuPerMB(before, after, bytes) {
  const out = {};
  // Clamped at 0: a process that exited in between and was not reaped yet drops out of the tree.
  for (const k of Object.keys(after)) {
    out[k] = Math.max(0, after[k] - (before[k] ?? 0)) / (bytes / 1e6);
  }
  return out;
}

// ---- servers ---------------------------------------------------------------------------------------
const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

/** build/web-demo plus the demo API (GET /api/demo, POST /api/token), like scripts/demo.mjs. */
function startPageServer(port, demo, mintToken) {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const json = (code, body) =>
      res
        .writeHead(code, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
        })
        .end(JSON.stringify(body));
    if (url.pathname === '/api/demo') return json(200, demo);
    if (url.pathname.startsWith('/api/bench/') && req.method === 'POST') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        let body = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        } catch {
          // empty
        }
        Promise.resolve(benchApi(url.pathname.slice('/api/bench/'.length), body)).then(
          (reply) => json(200, reply ?? {}),
          (e) => json(500, { error: String(e) }),
        );
      });
      return undefined;
    }
    // The npm build's dist/ (the session worker dist/mana-worker.js and the wasm it loads).
    if (url.pathname.startsWith('/pkg/')) {
      const distDir = path.join(pkgDir, 'dist');
      const file = path.resolve(distDir, '.' + decodeURIComponent(url.pathname.slice(4)));
      if (!file.startsWith(distDir + path.sep) || !fs.existsSync(file)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return undefined;
      }
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(fs.readFileSync(file));
      return undefined;
    }
    if (url.pathname === '/bench/page.js') {
      res.writeHead(200, {
        'content-type': MIME['.js'],
        'cache-control': 'no-store',
      });
      res.end(fs.readFileSync(pageScript));
      return undefined;
    }
    if (url.pathname === '/bench.html') {
      const html = fs
        .readFileSync(path.join(webDir, 'index.html'), 'utf8')
        .replace('</body>', '<script src="/bench/page.js"></script></body>');
      res.writeHead(200, {
        'content-type': MIME['.html'],
        'cache-control': 'no-store',
      });
      res.end(html);
      return undefined;
    }
    if (url.pathname === '/api/token') {
      if (req.method !== 'POST' || req.headers['x-mana-demo'] !== '1') {
        return json(405, { error: 'POST with x-mana-demo: 1' });
      }
      return json(200, { token: mintToken(), expiresIn: 600 });
    }
    // Profiling aid (BENCH_SSH_SYMBOLS_DIR): the SSH engine from a link with --emit-symbol-map, so
    // the profile can name its wasm functions (the release build carries no name section).
    if (symbolsDir && /^\/assets\/mana-ssh(-[\w-]+)?\.(js|wasm)$/.test(url.pathname)) {
      const wasm = url.pathname.endsWith('.wasm');
      res.writeHead(200, {
        'content-type': wasm ? MIME['.wasm'] : MIME['.js'],
        'cache-control': 'no-store',
      });
      res.end(fs.readFileSync(path.join(symbolsDir, wasm ? 'mana-ssh.wasm' : 'mana-ssh.mjs')));
      return undefined;
    }
    let rel = decodeURIComponent(url.pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(webDir, '.' + rel);
    if (
      !file.startsWith(webDir + path.sep) ||
      !fs.existsSync(file) ||
      !fs.statSync(file).isFile()
    ) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return undefined;
    }
    res.writeHead(200, {
      'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(fs.readFileSync(file));
    return undefined;
  });
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

/** A minimal WebSocket server (RFC 6455, server side only as far as needed): after the upgrade
 *  it sends `bytes` zero bytes in 64 KiB binary messages, then a close frame, then FIN. */
let rawWsServer;
function frameHeader(n) {
  if (n < 126) return Buffer.from([0x82, n]);
  if (n < 65536) return Buffer.from([0x82, 126, n >> 8, n & 255]);
  const h = Buffer.alloc(10);
  h[0] = 0x82;
  h[1] = 127;
  h.writeBigUInt64BE(BigInt(n), 2);
  return h;
}
function startRawWsServer(bytes) {
  const payload = Buffer.alloc(64 * 1024);
  rawWsServer = http.createServer((req, res) => res.writeHead(426).end());
  rawWsServer.on('upgrade', (req, sock) => {
    sock.on('error', () => undefined);
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string') {
      sock.destroy();
      return;
    }
    const accept = createHash('sha1')
      .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
      .digest('base64');
    sock.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    sock.on('data', () => undefined); // the client's frames (its close) are not needed
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, payload.length);
        left -= n;
        const headOk = sock.write(frameHeader(n));
        if (!sock.write(payload.subarray(0, n)) || !headOk) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end(Buffer.from([0x88, 2, 0x03, 0xe8]));
    };
    pump();
  });
  return new Promise((resolve, reject) => {
    rawWsServer.once('error', reject);
    rawWsServer.listen(0, '127.0.0.1', () => resolve(rawWsServer.address().port));
  });
}

/** TCP target for the baseline (tools/devkit/targets.mjs): an SSH-like banner line (the gateway
 *  waits for one), then `bytes` zero bytes, then EOF. Returns its port; the banner length is
 *  subtracted by the caller. */
const BANNER = 'SSH-2.0-mana-bench-zeros\r\n';
let zeroServer;
async function startZeroServer(bytes) {
  zeroServer = await startTarget({
    mode: 'stream',
    fill: 'zeros',
    end: true,
    hash: false,
    bytes,
    chunk: 1024 * 1024,
    banner: BANNER.slice(0, -2),
  });
  return zeroServer.port;
}

// ---- in-page measurements ---------------------------------------------------------------------------

/** One download in a Playwright page (DevTools attached): page.js's download(). */
async function download(page, a) {
  if (!(await page.evaluate(() => Boolean(window.manaBench)))) {
    await page.addScriptTag({ path: pageScript });
  }
  return page.evaluate((a) => window.manaBench.download(a), a);
}

/**
 * --trace-latency: installed before the page's scripts run (Playwright init script). Records the
 * performance.now() of every WebSocket.send and of every message event (its listener is added in
 * the constructor, so it runs before the page's own onmessage). Nothing here asks for a frame.
 */
function latencyTraceHooks() {
  const trace = { send: [], recv: [] };
  window.benchTrace = trace;
  const Native = window.WebSocket;
  const send = Native.prototype.send;
  Native.prototype.send = function (data) {
    trace.send.push(performance.now());
    return send.call(this, data);
  };
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        trace.recv.push(performance.now());
      });
    }
  };
}

/** Logs in through the demo form (host-key prompt accepted) and starts `cat >/dev/null`. */
async function openTerminal(page, hostFingerprint) {
  await page.click('#btn-connect');
  await page.waitForSelector('#hostkey-dialog[open]', { timeout: 20000 });
  const fp = (await page.textContent('#hk-fp'))?.trim();
  if (fp !== hostFingerprint)
    throw new Error(`host key prompt shows ${fp}, sshd has ${hostFingerprint}`);
  await page.click('#hk-accept');
  await page.waitForFunction(() => /[$#] ?$/m.test(window.manaDemo.text()), null, {
    timeout: 20000,
  });
  await page.locator('#terminal').click();
  await page.keyboard.type('cat >/dev/null');
  await page.keyboard.press('Enter');
  // cat runs: the line discipline echoes (cooked mode); the cursor sits at column 0 of a new row.
  await page.waitForFunction(
    () => {
      const t = window.manaDemo.text();
      const b = window.manaDemo.term.buffer.active;
      return /cat >\/dev\/null\s*$/.test(t) && b.cursorX === 0;
    },
    null,
    { timeout: 10000 },
  );
  await page.waitForTimeout(300);
  await page.evaluate((trace) => {
    const term = window.manaDemo.term;
    const st = { expect: null, samples: [] };
    window.benchLatency = st;
    // The event's timeStamp: when Chromium created the keydown (same clock as performance.now()).
    document.addEventListener(
      'keydown',
      (e) => {
        if (st.expect && st.expect.down === undefined) {
          st.expect.down = e.timeStamp;
          if (trace) {
            st.expect.handler = performance.now();
            const x = st.expect;
            // When the renderer runs the next ordinary task: a WebSocket message that is already
            // there waits as long (Chromium holds tasks after an input until a pending frame is
            // presented). A MessageChannel task asks for no frame, unlike requestAnimationFrame.
            const ch = new MessageChannel();
            ch.port1.onmessage = () => {
              x.task = performance.now();
              ch.port1.close();
            };
            ch.port2.postMessage(0);
          }
        }
      },
      true,
    );
    // --trace-latency: the steps between the keydown and the render, ms after the keydown's
    // timeStamp: the keydown listener runs, the next ordinary task runs, the key goes out
    // (first WebSocket.send after the listener), the echo arrives (first message event after
    // that send), term.write is called, xterm parsed it, xterm rendered the row.
    const phases = (x, rendered) => {
      const t = window.benchTrace;
      const after = (list, t0) => list.find((v) => v >= t0);
      const sent = after(t.send, x.handler);
      const recv = sent === undefined ? undefined : after(t.recv, sent);
      t.send.length = 0;
      t.recv.length = 0;
      const rel = (v) => (v === undefined ? null : v - x.down);
      return {
        handler: rel(x.handler),
        task: rel(x.task),
        sent: rel(sent),
        received: rel(recv),
        written: rel(x.written),
        parsed: rel(x.parsed),
        rendered: rel(rendered),
      };
    };
    if (trace) {
      const write = term.write.bind(term);
      term.write = (data, cb) => {
        const x = st.expect;
        if (x && x.handler !== undefined && x.written === undefined) x.written = performance.now();
        write(data, cb);
      };
    }
    const present = (x) => {
      const b = term.buffer.active;
      const line = b.getLine(b.baseY + b.cursorY);
      return b.cursorX === x.col + 1 && line?.getCell(x.col)?.getChars() === x.ch;
    };
    term.onWriteParsed(() => {
      const x = st.expect;
      if (x && x.down !== undefined && x.parsed === undefined && present(x)) {
        x.parsed = performance.now();
      }
    });
    term.onRender(() => {
      const x = st.expect;
      if (x && x.parsed !== undefined && present(x)) {
        const rendered = performance.now();
        st.samples.push({
          parsed: x.parsed - x.down,
          rendered: rendered - x.down,
          ...(trace ? { phases: phases(x, rendered) } : {}),
        });
        st.expect = null;
      }
    });
  }, traceLatency);
}

/** Types `count` keys (a..z, a new row every 40), one at a time; returns per-key latencies. */
async function typeKeys(page, count) {
  const perRow = 40;
  const samples = [];
  for (let i = 0; i < count; i++) {
    const col = i % perRow;
    if (i > 0 && col === 0) {
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => window.manaDemo.term.buffer.active.cursorX === 0, null, {
        timeout: 5000,
      });
    }
    const ch = String.fromCharCode(97 + (i % 26));
    await page.evaluate(
      (x) => {
        window.benchLatency.expect = x;
      },
      { ch, col },
    );
    await page.keyboard.press(ch);
    await page.waitForFunction((n) => window.benchLatency.samples.length >= n, i + 1, {
      timeout: 5000,
      polling: 5,
    });
    // Idle between keys (a typist, not a paste): 20..40 ms.
    await page.waitForTimeout(20 + Math.floor(Math.random() * 20));
  }
  samples.push(...(await page.evaluate(() => window.benchLatency.samples.splice(0))));
  return samples;
}

// ---- downloads in a Chromium without any DevTools client -------------------------------------------
let headless;
let headlessProfileDir;

/**
 * Starts Chromium headless on /bench.html with no remote debugging at all and runs `steps`
 * ({id, args}) there one after the other; `onStep` gets (id, result, cpuBefore, cpuAfter).
 */
async function runHeadless(executablePath, webPort, steps, onStep, timeoutMs, hooks = {}) {
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mana-bench-chromium-'));
  headlessProfileDir = profileDir;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  let before;
  benchApi = (what, body) => {
    if (what === 'plan') return { steps };
    if (what === 'ready') {
      return (async () => {
        await hooks.onReady?.(body.id, profileDir);
        before = cpuSnapshot(cpuRoots(headless?.pid));
        return {};
      })();
    }
    if (what === 'result') {
      return (async () => {
        const after = cpuSnapshot(cpuRoots(headless?.pid));
        await hooks.onResult?.(body.id);
        try {
          onStep(body.id, body.result, before, after);
        } catch (e) {
          finish({ error: e.message });
        }
        return {};
      })();
    }
    if (what === 'done') finish(body);
    return {};
  };
  const args = [
    '--headless=new',
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    `--user-data-dir=${profileDir}`,
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-extensions',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--window-size=1200,760',
    ...(hooks.debug ? ['--remote-debugging-port=0'] : []),
    `http://127.0.0.1:${webPort}/bench.html`,
  ];
  headless = spawn(executablePath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const stderr = [];
  headless.stderr.on('data', (d) => stderr.push(String(d)));
  const exited = new Promise((r) => headless.once('exit', r));
  try {
    const r = await Promise.race([
      done,
      exited.then(() => ({
        error: `chromium exited: ${stderr.join('').slice(-800)}`,
      })),
      new Promise((r) => setTimeout(() => r({ error: `no end after ${timeoutMs} ms` }), timeoutMs)),
    ]);
    if (r.error) throw new Error(`headless page: ${r.error}`);
  } finally {
    await stopHeadless();
    benchApi = () => ({ error: 'no plan' });
    fs.rmSync(profileDir, { recursive: true, force: true });
    headlessProfileDir = undefined;
  }
}

/** A minimal CDP client on the page target of a Chromium started with --remote-debugging-port=0. */
async function cdpConnect(profileDir) {
  const portFile = path.join(profileDir, 'DevToolsActivePort');
  const end = Date.now() + 10000;
  while (!fs.existsSync(portFile) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const port = Number(fs.readFileSync(portFile, 'utf8').split('\n')[0]);
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = targets.find((t) => t.type === 'page' && t.url.includes('/bench.html'));
  if (!target) throw new Error('profile: no page target');
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('profile: CDP connection failed'));
  });
  let next = 1;
  const waiting = new Map();
  ws.onmessage = (ev) => {
    const msg = JSON.parse(String(ev.data));
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.reject(new Error(`${msg.error.message}`));
    else w.resolve(msg.result);
  };
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

async function stopHeadless() {
  const h = headless;
  headless = undefined;
  if (!h || h.exitCode !== null || h.signalCode !== null) return;
  const exited = new Promise((r) => h.once('exit', r));
  try {
    process.kill(-h.pid, 'SIGTERM');
  } catch {
    // gone
  }
  const ok = await Promise.race([
    exited.then(() => true),
    new Promise((r) => setTimeout(() => r(false), 3000)),
  ]);
  if (!ok) {
    try {
      process.kill(-h.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

// ---- profile -----------------------------------------------------------------------------------------

/** Self time per function of a CDP profile, top `n`. */
function topSelf(prof, n) {
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const self = new Map();
  const dt = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]);
    const cf = node.callFrame;
    let fn = cf.functionName || '(anonymous)';
    const idx = /^wasm-function\[(\d+)\]$/.exec(fn);
    if (idx && /mana-ssh/.test(cf.url) && wasmNames.has(Number(idx[1]))) {
      fn = wasmNames.get(Number(idx[1]));
    }
    const key = `${fn} ${cf.url ? path.basename(cf.url) : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const busy = total - (self.get('(idle)') ?? 0);
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => ({
      fn: k,
      ms: round3(us / 1000),
      pct: round3((100 * us) / total),
      pct_busy: k === '(idle)' ? null : round3((100 * us) / busy),
    }));
}

// ---- main ----------------------------------------------------------------------------------------------
async function main() {
  const gw = pickGateway();
  if (!gw)
    throw new Error('no mana-gateway: run `make build` (or build the native-release preset)');
  if (!fs.existsSync(path.join(webDir, 'index.html'))) {
    throw new Error(`${webDir}/index.html is missing: run \`make demo-build\` first`);
  }
  const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
  const { chromium } = loadPlaywright();

  // The rows of `make js-size` (scripts/js-size.mjs), cached per file content next to the output.
  const sizes = measureSizes({
    root,
    pkgDir,
    cacheFile: path.join(path.dirname(outFile), '.browser-sizes-cache.json'),
  });
  log('sizes measured');
  const user = os.userInfo().username;
  sshd = await startSshd({
    user,
    users: [user],
    extraConfig: 'ClientAliveInterval 30',
  });
  log(`sshd on 127.0.0.1:${sshd.port}`);
  const hostFp = sshd.hostKeys.ed25519.fingerprint;
  if (hostFp !== fingerprintOf(sshd.hostKeys.ed25519.pub)) throw new Error('host key mismatch');
  const webPort = await freePort();
  const zeroPort = await startZeroServer(downloadBytes);
  const rawWsPort = await startRawWsServer(downloadBytes);
  gateway = await launchGateway({
    binary: gw.bin,
    logLevel: 'warn',
    origins: [`http://127.0.0.1:${webPort}`],
    targets: [{ host: '127.0.0.1', ports: [sshd.port, zeroPort] }],
    config: {
      server: { shutdown_grace_ms: 500 },
      session: { resume_ttl_ms: 5000 },
    },
  });
  const gwInfo = { url: gateway.url };
  let tokens = 0;
  const mintToken = () => {
    const now = Math.floor(Date.now() / 1000);
    return gateway.token({
      sub: `bench-${++tokens}`,
      iat: now,
      exp: now + 600,
      targets: [`127.0.0.1:${sshd.port}`, `127.0.0.1:${zeroPort}`],
    });
  };
  server = await startPageServer(
    webPort,
    {
      gatewayUrl: gwInfo.url,
      target: { host: sshd.host, port: sshd.port },
      user,
      privateKey: sshd.userKey.privateKey,
      hostKey: { algorithm: 'ssh-ed25519', fingerprint: hostFp },
    },
    mintToken,
  );
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  const chromiumVersion = browser.version();
  log(
    `chromium ${chromiumVersion}, gateway ${gw.build} (${path.relative(root, gw.bin)}), ` +
      `sshd 127.0.0.1:${sshd.port}, ${profileOnly ? 0 : rounds} rounds${quick ? ' (quick)' : ''}`,
  );
  const pageErrors = [];
  const newPage = async () => {
    const context = await browser.newContext({
      viewport: { width: 1200, height: 760 },
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    if (traceLatency) await page.addInitScript(latencyTraceHooks);
    await page.goto(`http://127.0.0.1:${webPort}/`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
    return { context, page };
  };

  const metrics = new Map();
  const keystrokePhases = [];
  const add = (name, unit, v) => {
    if (!metrics.has(name)) metrics.set(name, { name, unit, values: [] });
    metrics.get(name).values.push(round3(v));
  };
  const dlArgs = (cipher) => ({
    url: gwInfo.url,
    token: mintToken(),
    host: sshd.host,
    port: sshd.port,
    user,
    key: sshd.userKey.privateKey,
    bytes: downloadBytes,
    cipher,
    timeoutMs: 120000,
  });
  const short = (c) => c.replace(/@openssh\.com$/, '');

  const cpuKeys = [
    'chromium-renderer',
    'chromium-network',
    'chromium-gpu',
    'chromium-other',
    'gateway',
    'sshd',
  ];
  const playwrightPid = chromiumRoot();
  /** Checks one download result, records MB/s and CPU ms/MB under `what`; returns a log line. */
  const record = (what, d, expectBytes, before, after) => {
    if (!d || d.error) throw new Error(`download ${what}: ${d?.error}`);
    if (d.got !== expectBytes || d.bad !== 0 || d.exit !== 0) {
      throw new Error(
        `download ${what}: ${d.got} of ${expectBytes} bytes, ${d.bad} bad chunks, exit ${d.exit}`,
      );
    }
    const mbps = d.got / 1e6 / (d.ms / 1000);
    add(`${what}_download`, 'MB/s', mbps);
    if (d.cipher !== 'none') add(`${what}_open`, 'ms', d.openMs);
    const cpu = cpuPerMB(before, after, d.got);
    for (const k of cpuKeys) if (cpu[k] !== undefined) add(`cpu_${what}_${k}`, 'ms/MB', cpu[k]);
    // The renderers' main threads (the page; an idle worker host's renderer adds ~0) and their
    // worker threads (the session worker): what the page's main thread pays per MB.
    const sumThreads = (re) =>
      Object.keys(cpu)
        .filter((k) => k.startsWith('thread:') && re.test(k.slice('thread:'.length)))
        .reduce((acc, k) => acc + cpu[k], 0);
    add(`cpu_${what}_renderer-main`, 'ms/MB', sumThreads(/^(CrRendererMain|chromium)$/));
    add(`cpu_${what}_renderer-workers`, 'ms/MB', sumThreads(/Worker/));
    const cpuText =
      cpuKeys
        .filter((k) => cpu[k] !== undefined)
        .map((k) => `${k.replace('chromium-', '')} ${cpu[k].toFixed(1)}`)
        .join(', ') +
      ' (renderer threads: ' +
      Object.keys(cpu)
        .filter((k) => k.startsWith('thread:') && cpu[k] >= 0.5)
        .sort((a, b) => cpu[b] - cpu[a])
        .map((k) => `${k.slice('thread:'.length)} ${cpu[k].toFixed(1)}`)
        .join(', ') +
      ')';
    return (
      `${what} ${mbps.toFixed(1)} MB/s (${d.got} B in ${d.ms.toFixed(0)} ms, ${d.chunks} chunks` +
      (d.cipher !== 'none' ? `; open ${d.openMs.toFixed(0)} ms` : '') +
      `); CPU ms/MB: ${cpuText}`
    );
  };
  // Warm-up first (not recorded): loading and compiling the two wasm modules runs on the
  // renderer's threads too and would be counted in the first downloads' CPU time.
  const warmup = () => [
    {
      id: 'warmup_plain',
      args: {
        ...dlArgs('none'),
        port: zeroPort,
        plain: true,
        skip: BANNER.length,
      },
    },
    { id: 'warmup_ssh', args: { ...dlArgs(ciphers[0]), bytes: 1024 * 1024 } },
  ];
  const steps = () => [
    ...warmup(),
    {
      id: 'raw_websocket',
      expect: downloadBytes,
      args: {
        url: `ws://127.0.0.1:${rawWsPort}/`,
        raw: true,
        bytes: downloadBytes,
        timeoutMs: 120000,
      },
    },
    {
      id: 'mana_channel',
      expect: downloadBytes + BANNER.length,
      args: {
        ...dlArgs('none'),
        port: zeroPort,
        plain: true,
        skip: BANNER.length,
      },
    },
    ...ciphers.map((c) => ({
      id: `ssh_${short(c)}`,
      expect: downloadBytes,
      args: dlArgs(c),
    })),
    // The same downloads in the session worker (a stream session; the page consumes each chunk).
    ...ciphers.map((c) => ({
      id: `worker_ssh_${short(c)}`,
      expect: downloadBytes,
      args: { ...dlArgs(c), worker: true },
    })),
  ];

  for (let r = 1; r <= (profileOnly ? 0 : rounds); r++) {
    // 1. Downloads in a fresh Chromium with no DevTools client (the user's situation).
    //    (--latency-only skips it.)
    if (!latencyOnly) {
      const plan = steps();
      await runHeadless(
        executablePath,
        webPort,
        plan.map(({ id, args }) => ({ id, args })),
        (id, result, before, after) => {
          if (id.startsWith('warmup_')) {
            if (!result || result.error) throw new Error(`${id}: ${result?.error}`);
            return;
          }
          const step = plan.find((x) => x.id === id);
          if (id.startsWith('worker_') && result?.mode !== 'shared') {
            throw new Error(`${id}: the session worker runs in mode ${result?.mode}`);
          }
          if (result?.cipher !== undefined && id.startsWith('ssh_')) {
            const want = ciphers.find((c) => id === `ssh_${short(c)}`);
            if (result.cipher !== want)
              throw new Error(`asked for ${want}, negotiated ${result.cipher}`);
          }
          log(`round ${r}: ${record(id, result, step.expect, before, after)}`);
        },
        150000,
      );
    }
    // 2. Playwright (CDP with the Network domain enabled, as in the e2e suite): one reference
    //    download, then keystroke -> glyph.
    const { context, page } = await newPage();
    try {
      if (!latencyOnly) {
        const before = cpuSnapshot(cpuRoots(playwrightPid));
        const d = await download(page, dlArgs(ciphers[0]));
        const after = cpuSnapshot(cpuRoots(playwrightPid));
        if (d.cipher !== ciphers[0])
          throw new Error(`asked for ${ciphers[0]}, negotiated ${d.cipher}`);
        log(
          `round ${r}: ${record(`devtools_ssh_${short(ciphers[0])}`, d, downloadBytes, before, after)}`,
        );
      }
      await openTerminal(page, hostFp);
      const lat = await typeKeys(page, keys);
      if (lat.length !== keys) throw new Error(`latency: ${lat.length} of ${keys} keys measured`);
      const rendered = lat.map((x) => x.rendered);
      const parsed = lat.map((x) => x.parsed);
      if (traceLatency) {
        const round = {};
        for (const n of Object.keys(lat[0].phases)) {
          const v = lat.map((x) => x.phases[n]).filter((y) => y !== null);
          round[n] = {
            p50: round3(percentile(v, 50)),
            p95: round3(percentile(v, 95)),
            n: v.length,
          };
        }
        keystrokePhases.push(round);
        log(
          `round ${r}: after the keydown, ms p50 / p95: ` +
            Object.entries(round)
              .map(([n, q]) => `${n} ${q.p50.toFixed(1)} / ${q.p95.toFixed(1)}`)
              .join(', '),
        );
      }
      for (const p of [50, 95, 99]) add(`keystroke_glyph_p${p}`, 'ms', percentile(rendered, p));
      add('keystroke_buffer_p50', 'ms', percentile(parsed, 50));
      add('keystroke_buffer_p95', 'ms', percentile(parsed, 95));
      log(
        `round ${r}: keystroke->glyph ${keys} keys p50 ${percentile(rendered, 50).toFixed(1)} ` +
          `p95 ${percentile(rendered, 95).toFixed(1)} p99 ${percentile(rendered, 99).toFixed(1)} ms ` +
          `(in the xterm buffer: p50 ${percentile(parsed, 50).toFixed(1)} ms)`,
      );
    } finally {
      await context.close();
    }
    if (!latencyOnly || flag('--flood')) {
      // 3. Keystroke -> glyph while a flood fills the same terminal: in the page, then with the
      //    session in the worker; then the worker start + reattach time after a reload.
      const wa = {
        url: gwInfo.url,
        host: sshd.host,
        port: sshd.port,
        user,
        key: sshd.userKey.privateKey,
        fingerprint: hostFp,
      };
      // --worker-only: the worker's flood only (development; no in-page baseline).
      for (const where of flag('--worker-only') ? ['worker'] : ['page', 'worker']) {
        const { context: c, page: p } = await newPage();
        try {
          const f = await floodLatency(p, where, { ...wa, token: mintToken() }, floodKeys, () =>
            gateway.metric('mana_payload_bytes_total{direction="to_client"}'),
          );
          wa.dims = f.dims; // the worker's terminal gets the in-page run's fitted size
          const rendered = f.samples.map((x) => x.rendered);
          const parsed = f.samples.map((x) => x.parsed);
          for (const q of [50, 95]) {
            add(`flood_${where}_keystroke_glyph_p${q}`, 'ms', percentile(rendered, q));
          }
          add(`flood_${where}_keystroke_buffer_p95`, 'ms', percentile(parsed, 95));
          add(`flood_${where}_terminal`, 'MB/s', f.floodMBps);
          add(`flood_${where}_session`, 'MB/s', f.sessionMBps);
          add(`flood_${where}_keys_lost`, 'keys', f.misses);
          log(
            `round ${r}: flood (${where}) keystroke->glyph ${f.samples.length} keys ` +
              `p50 ${percentile(rendered, 50).toFixed(1)} p95 ${percentile(rendered, 95).toFixed(1)} ms ` +
              `(buffer p95 ${percentile(parsed, 95).toFixed(1)}), flood ${f.floodMBps.toFixed(1)} MB/s ` +
              `through the terminal, ${f.sessionMBps.toFixed(1)} MB/s to the session` +
              (f.misses ? `, ${f.misses} keys not seen` : ''),
          );
        } finally {
          await c.close();
        }
      }
      const { context: c, page: p } = await newPage();
      try {
        const t = await reattachTimes(p, { ...wa, token: mintToken() }, reloads);
        for (const [k, pick] of [
          ['total', (x) => x.total],
          ['start', (x) => x.start],
          ['since_navigation', (x) => x.sinceNav],
        ]) {
          const v = t.map(pick);
          add(`worker_reattach_${k}_p50`, 'ms', percentile(v, 50));
          add(`worker_reattach_${k}_p95`, 'ms', percentile(v, 95));
        }
        log(
          `round ${r}: worker start + reattach after a reload (${reloads}): ` +
            `p50 ${percentile(
              t.map((x) => x.total),
              50,
            ).toFixed(1)} p95 ${percentile(
              t.map((x) => x.total),
              95,
            ).toFixed(1)} ms (start p50 ${percentile(
              t.map((x) => x.start),
              50,
            ).toFixed(1)}; since navigation p50 ${percentile(
              t.map((x) => x.sinceNav),
              50,
            ).toFixed(1)})`,
        );
      } finally {
        await c.close();
      }
    }
  }

  const profileTop = {};
  if (profile) {
    // One plain-channel and one chacha20 download in the DevTools-free setup, each under a CDP
    // client that enables only the Profiler (no Network domain), started and stopped around the
    // transfer itself.
    if (typeof WebSocket !== 'function') {
      throw new Error('--profile needs a WebSocket client: run node --experimental-websocket');
    }
    let cdp;
    const profiles = {};
    const results = {};
    const plan = [
      ...warmup(),
      {
        id: 'profile_mana_channel',
        args: {
          ...dlArgs('none'),
          port: zeroPort,
          plain: true,
          skip: BANNER.length,
        },
      },
      { id: `profile_ssh_${short(ciphers[0])}`, args: dlArgs(ciphers[0]) },
    ];
    await runHeadless(
      executablePath,
      webPort,
      plan,
      (id, r) => {
        results[id] = r;
      },
      150000,
      {
        debug: true,
        onReady: async (id, profileDir) => {
          if (!id.startsWith('profile_')) return;
          cdp ??= await cdpConnect(profileDir);
          await cdp.send('Profiler.enable');
          await cdp.send('Profiler.setSamplingInterval', { interval: 200 });
          await cdp.send('Profiler.start');
        },
        onResult: async (id) => {
          if (!id.startsWith('profile_')) return;
          profiles[id] = (await cdp.send('Profiler.stop')).profile;
        },
      },
    );
    cdp?.close();
    for (const [id, prof] of Object.entries(profiles)) {
      const file = path.join(
        path.dirname(outFile),
        `browser-${id.slice('profile_'.length)}.cpuprofile`,
      );
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(prof));
      profileTop[id] = topSelf(prof, 30);
      const r = results[id];
      log(
        `${id}: ${(r.got / 1e6 / (r.ms / 1000)).toFixed(1)} MB/s while profiling; ` +
          `${path.relative(root, file)}; top self time:`,
      );
      for (const t of profileTop[id]) {
        const busy = t.pct_busy === null ? '     ' : `${t.pct_busy.toFixed(1).padStart(5)}%`;
        console.log(
          `  ${t.pct.toFixed(1).padStart(5)}% ${busy}  ${t.ms.toFixed(0).padStart(6)} ms  ${t.fn}`,
        );
      }
    }
  }

  const result = {
    rounds: profileOnly ? 0 : rounds,
    quick,
    gateway_build: gw.build,
    chromium_version: chromiumVersion,
    download_bytes: downloadBytes,
    keys_per_round: keys,
    flood_keys_per_round: floodKeys,
    flood_pass_bytes: FLOOD_BYTES,
    reloads_per_round: reloads,
    metrics: [...metrics.values()].map((m) => ({ ...m, ...summary(m.values) })),
    sizes,
    ...(profile ? { profile_top_self: profileTop } : {}),
    ...(traceLatency ? { keystroke_phases: keystrokePhases } : {}),
    page_errors: pageErrors,
    date: new Date().toISOString(),
  };
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log('');
  for (const m of result.metrics) {
    console.log(
      `${m.name.padEnd(36)} ${String(m.median).padStart(10)} ${m.unit.padEnd(5)} ` +
        `(min ${m.min}, max ${m.max}, n=${m.values.length})`,
    );
  }
  for (const [k, s] of Object.entries(sizes)) {
    console.log(
      `${k.padEnd(36)} raw ${s.raw}` +
        (s.gzip !== undefined ? ` gzip ${s.gzip} brotli ${s.brotli}` : ''),
    );
  }
  log(`wrote ${path.relative(root, outFile)}`);
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
}

main()
  .then(async () => {
    await stopAll();
    process.exit(0);
  })
  .catch(async (e) => {
    console.error(`bench-browser: ${e.stack ?? e}`);
    await stopAll();
    process.exit(1);
  });
