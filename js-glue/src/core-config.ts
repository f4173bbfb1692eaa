// SPDX-License-Identifier: Apache-2.0
// What the connection (connection.ts) hands to the wasm core and reads back from it: the core's
// configuration from ConnectOptions, and the ServerInfo of a `ready` event.
import type { ConnectOptions, ServerInfo } from './connection-types.js';
import type { CoreEvent } from './internal/core-types.js';
import { isRouteId } from './route.js';

/** The core's configuration (ClientSession) from the connect options. */
export function coreConfig(options: ConnectOptions) {
  return {
    ...(options.token !== undefined ? { bearer: options.token } : {}),
    ...(options.window?.initial !== undefined ? { windowInitial: options.window.initial } : {}),
    ...(options.window?.max !== undefined ? { windowMax: options.window.max } : {}),
    ...(options.replayCapacity !== undefined ? { replayCapacity: options.replayCapacity } : {}),
    ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.handshakeTimeoutMs !== undefined
      ? { handshakeTimeoutMs: options.handshakeTimeoutMs }
      : {}),
    resume: options.resume ?? true,
  };
}

/** The server's capabilities from a hello_ok (`ready`); a malformed route id is dropped. */
export function serverInfoOf(ev: Extract<CoreEvent, { type: 'ready' }>): ServerInfo {
  return {
    server: ev.server,
    maxFrame: ev.maxFrame,
    heartbeatMs: ev.heartbeatMs,
    idleTimeoutMs: ev.idleTimeoutMs,
    maxChannels: ev.maxChannels,
    window: ev.window,
    resumeTtlMs: ev.resumeTtlMs,
    route: isRouteId(ev.route) ? ev.route : null,
  };
}
