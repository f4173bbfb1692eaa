// SPDX-License-Identifier: Apache-2.0
// The session worker's entry (shipped bundled as dist/mana-worker.js, `@mana/websocket/worker`):
// in a SharedWorker it serves every connecting page, in a dedicated Worker its one page; imported
// into a page (the last-resort in-page mode of worker/client.ts) it only exports startPageHost().
import { Connection, connect } from '../connect.js';
import type { SshSessionOptions } from '../ssh/types.js';
import {
  WorkerHost,
  type HostDeps,
  type HostPort,
  type OpenedSession,
  type PageAsk,
} from './host.js';
import type { WireConnectOptions, WireSessionOptions } from './protocol.js';
import { sessionAuth } from './questions.js';
import { headlessScreen } from './screen.js';

/** SSH channel window and high-water mark of a terminal session in the worker. */
const TERMINAL_CHANNEL_WINDOW = 64 * 1024;
const TERMINAL_HIGH_WATER = 32 * 1024;

async function openSession(
  c: WireConnectOptions,
  s: WireSessionOptions,
  ask: PageAsk,
): Promise<OpenedSession> {
  // The worker has no sessionStorage: the resume token stays in memory (the worker is what
  // survives a reload now), and no document: no hidden pause.
  const conn: Connection = await connect({
    url: c.url,
    ...(c.token !== undefined ? { token: c.token } : {}),
    storage: 'memory',
  });
  try {
    await conn.whenReady();
    const options: SshSessionOptions = {
      target: s.target,
      username: s.username,
      // Keyboard-interactive prompts go to the opening page (host.ts), as hostKey.verify does.
      auth: sessionAuth(s.auth, ask.keyboardInteractive),
      flow: 'manual',
      knownHosts: 'memory',
      ...(s.term !== undefined
        ? {
            term: s.term,
            // A terminal: less output in flight ahead of a keystroke's echo under a flood (the
            // channel window and the unconsumed bytes are all ahead of it). bench/browser
            // measures it (flood_worker_*); bulk streams keep the defaults.
            channelWindow: TERMINAL_CHANNEL_WINDOW,
            highWaterMark: TERMINAL_HIGH_WATER,
          }
        : {}),
      ...(s.command !== undefined ? { command: s.command } : {}),
      ...(s.keepaliveMs !== undefined ? { keepaliveMs: s.keepaliveMs } : {}),
      ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
      ...(s.ciphers !== undefined ? { ciphers: s.ciphers } : {}),
      ...(s.algorithms !== undefined ? { algorithms: s.algorithms } : {}),
      ...(ask.verifyHostKey !== undefined ? { hostKey: { verify: ask.verifyHostKey } } : {}),
    };
    const session = await conn.openSession(options);
    return {
      session,
      release: () => {
        conn.dispose();
      },
    };
  } catch (e) {
    conn.dispose();
    throw e;
  }
}

function watchLock(name: string): Promise<void> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks === undefined) return new Promise<void>(() => undefined);
  // Granted only once the page that holds it is gone (it holds it for its whole life).
  return locks.request(name, () => undefined).then(() => undefined);
}

function deps(mode: HostDeps['mode']): HostDeps {
  return { mode, open: openSession, screen: headlessScreen, watchLock };
}

/** In-page mode: a host in this page, reached over a MessageChannel. Returns the page's port. */
export function startPageHost(): MessagePort {
  const host = new WorkerHost(deps('page'));
  const channel = new MessageChannel();
  host.addPort(channel.port1);
  return channel.port2;
}

interface WorkerScope {
  addEventListener(type: string, listener: (e: MessageEvent) => void): void;
}
const scope = globalThis as unknown as WorkerScope & {
  WorkerGlobalScope?: unknown;
  SharedWorkerGlobalScope?: abstract new () => unknown;
  DedicatedWorkerGlobalScope?: abstract new () => unknown;
};
if (scope.SharedWorkerGlobalScope !== undefined && scope instanceof scope.SharedWorkerGlobalScope) {
  const host = new WorkerHost(deps('shared'));
  scope.addEventListener('connect', (e) => {
    const port = e.ports[0];
    if (port !== undefined) host.addPort(port);
  });
} else if (
  scope.DedicatedWorkerGlobalScope !== undefined &&
  scope instanceof scope.DedicatedWorkerGlobalScope
) {
  const host = new WorkerHost(deps('dedicated'));
  host.addPort(scope as unknown as HostPort);
}
