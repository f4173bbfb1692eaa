// SPDX-License-Identifier: Apache-2.0
// A stand-in for dist/mana-worker.js in ManaWorkerClient's in-page mode (`workerUrl` pointing
// here) with real connections: ONE WorkerHost serves every client started in this process (as a
// SharedWorker serves every page of an origin, so a second client is "the page after a reload"),
// opening lib.connect() connections with the test's options (`config.extra`: the tracked
// WebSocket, no document) through the worker's own open.ts.
import { MessageChannel } from 'node:worker_threads';
import { gatewayConnectOptions, lib } from './helpers.mjs';
import { WorkerHost, headlessScreen } from './worker-helpers.mjs';
import { openHostConnection, openOwnSession } from '../../build/js/package/dist/worker/open.js';

export const config = { extra: {}, hostOptions: {} };

/** The worker's connections take the test gateway's options besides url and token (open.ts). */
export function useGateway(gw) {
  const extra = gatewayConnectOptions(gw.url, '');
  delete extra.url;
  delete extra.token;
  config.extra = extra;
}
const ports = [];
let host;

/** The one host (created on the first startPageHost()). */
export function sharedHost() {
  host ??= new WorkerHost(
    {
      mode: 'page',
      open: (c, s, ask) => openOwnSession(lib.connect, c, s, ask, config.extra),
      connect: (c) => openHostConnection(lib.connect, c, config.extra),
      screen: headlessScreen,
    },
    config.hostOptions,
  );
  return host;
}

export function startPageHost() {
  const channel = new MessageChannel();
  sharedHost().addPort(channel.port1);
  ports.push(channel.port1, channel.port2);
  return channel.port2;
}

/** Closes every port handed out (Node keeps a process alive while one is open). */
export function closeAll() {
  for (const p of ports.splice(0)) p.close();
}
