// SPDX-License-Identifier: Apache-2.0
// Loopback helpers of the dev harness: listen on a kernel-chosen port, a port for programs that
// cannot bind port 0 themselves (sshd), waiting for a port, bounded waits.
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Listens on 127.0.0.1 with a kernel-chosen port; resolves with the port. */
export function listen(server, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      const a = server.address();
      if (a === null || typeof a === 'string') reject(new Error('no TCP address'));
      else resolve(a.port);
    });
  });
}

/**
 * A port that was free a moment ago. Only for programs that cannot listen on port 0 and report
 * the port (sshd; a port that must be closed); anything else listens on 0 itself.
 */
export async function freePort() {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

/** True when nothing listens on 127.0.0.1:port right now. */
export function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Resolves once 127.0.0.1:port accepts a TCP connection; throws after `ms`. */
export async function waitPort(port, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`127.0.0.1:${port} did not accept connections within ${ms} ms`);
}
