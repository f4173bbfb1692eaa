// SPDX-License-Identifier: Apache-2.0
// The session worker's entry (shipped bundled as dist/mana-worker.js, `@mana/websocket/worker`):
// in a SharedWorker it serves every connecting page, in a dedicated Worker its one page; imported
// into a page (the last-resort in-page mode of worker/client.ts) it only exports startPageHost().
import { connect } from '../connect.js';
import { WorkerHost, type HostDeps, type HostPort } from './host.js';
import { openHostConnection, openOwnSession } from './open.js';
import { headlessScreen } from './screen.js';

function watchLock(name: string): Promise<void> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks === undefined) return new Promise<void>(() => undefined);
  // Granted only once the page that holds it is gone (it holds it for its whole life).
  return locks.request(name, () => undefined).then(() => undefined);
}

function deps(mode: HostDeps['mode']): HostDeps {
  return {
    mode,
    open: (c, s, ask) => openOwnSession(connect, c, s, ask),
    connect: (c) => openHostConnection(connect, c),
    screen: headlessScreen,
    watchLock,
  };
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
