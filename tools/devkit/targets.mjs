// SPDX-License-Identifier: Apache-2.0
// The one launcher of loopback TCP targets for the gateway's relay in the JS tools (js-glue tests,
// e2e, bench/browser). Python twin: targets.py. Each target listens on 127.0.0.1 with a
// kernel-chosen port, greets with an `SSH-2.0-` line first (the gateway's banner gate stays on),
// then behaves by mode:
//   echo    writes back every byte it receives
//   stream  writes `bytes` bytes (seeded pseudo-random, or zeros with fill: 'zeros') as fast as
//           the socket drains, hashing them (SHA-256) as it goes; then keeps the connection open,
//           or ends it (TCP FIN) with end: true
//   sink    reads and hashes everything, writes nothing more
// Every connection records its own counters so a test can assert exact byte counts and hashes.
//
// startTarget({ mode, banner?, bytes?, seed?, chunk?, fill?, end? }) -> Promise<Target>
//   banner  the line without CR LF (default 'SSH-2.0-mana-dev-target')
//   bytes   stream: bytes after the banner (default 64 MiB); seed: default 1; chunk: bytes per
//           write (default 64 KiB)
//   hash    false: no SHA-256 of either direction (benchmarks; hashIn/hashOut then throw)
// Target: { port, mode, banner, connections: TargetConnection[], open(), close() }
// TargetConnection: { index, bytesIn, bytesOut (flushed to the kernel), hashIn(), hashOut(),
//                     streamDone, openedAt, closedAt, socket }
import { createHash } from 'node:crypto';
import net from 'node:net';
import { listen } from './net.mjs';

/**
 * Byte i of the seeded stream depends only on (seed, i), so chunks can be produced
 * independently: xorshift32 over 32-bit words. The same function is in e2e/pages/harness.js
 * (the page's side of the comparison).
 */
export function fillSeeded(out, seed, offset) {
  // One xorshift word per 4 stream positions (byte k of the word is position 4w + k).
  const s = Math.imul(seed, 0x85ebca6b);
  let i = 0;
  while (i < out.length) {
    const pos = offset + i;
    const w = pos >>> 2;
    let x = (Math.imul(w, 0x9e3779b1) ^ s ^ 0x27d4eb2f) >>> 0;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    for (let k = pos & 3; k < 4 && i < out.length; k++, i++) out[i] = (x >>> (k * 8)) & 0xff;
  }
}

export async function startTarget(options) {
  const mode = options.mode;
  if (!['echo', 'stream', 'sink'].includes(mode)) throw new Error(`startTarget: mode ${mode}`);
  const banner = options.banner ?? 'SSH-2.0-mana-dev-target';
  const total = options.bytes ?? 64 * 1024 * 1024;
  const chunk = options.chunk ?? 64 * 1024;
  const seed = options.seed ?? 1;
  const zeros = options.fill === 'zeros' ? Buffer.alloc(chunk) : undefined;
  const connections = [];
  const sockets = new Set();

  const server = net.createServer((socket) => {
    sockets.add(socket);
    const hashing = options.hash !== false;
    const hin = hashing ? createHash('sha256') : undefined;
    const hout = hashing ? createHash('sha256') : undefined;
    const c = {
      index: connections.length,
      bytesIn: 0,
      bytesOut: 0,
      hashIn: () => hin.copy().digest('hex'),
      hashOut: () => hout.copy().digest('hex'),
      streamDone: false,
      closedAt: undefined,
      openedAt: Date.now(),
      socket,
    };
    connections.push(c);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      c.closedAt ??= Date.now();
      sockets.delete(socket);
    });
    socket.write(`${banner}\r\n`);
    socket.on('data', (d) => {
      c.bytesIn += d.length;
      hin?.update(d);
      if (mode === 'echo') {
        socket.write(d, () => {
          c.bytesOut += d.length;
        });
      }
    });
    if (mode !== 'stream') return;
    let offset = 0;
    const pump = () => {
      while (offset < total && !socket.destroyed) {
        const n = Math.min(chunk, total - offset);
        let buf;
        if (zeros) buf = n === chunk ? zeros : zeros.subarray(0, n);
        else fillSeeded((buf = Buffer.allocUnsafe(n)), seed, offset);
        offset += n;
        hout?.update(buf);
        const ok = socket.write(buf, (err) => {
          if (err) return;
          c.bytesOut += n;
          if (c.bytesOut === total) c.streamDone = true;
        });
        if (!ok) {
          socket.once('drain', pump);
          return;
        }
      }
      if (offset >= total && options.end) socket.end();
    };
    pump();
  });
  const port = await listen(server);
  return {
    port,
    mode,
    banner,
    connections,
    open: () => connections.filter((c) => c.closedAt === undefined),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(() => r()));
    },
  };
}
