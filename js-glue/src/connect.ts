// SPDX-License-Identifier: Apache-2.0
// connect() and the public Connection: the connection (connection.ts) with the session layers that
// plug into it. Here the SSH layer (ssh/) meets the connection; the connection itself never
// imports it (ESLint no-restricted-imports, eslint.config.js).
import type { ConnectOptions } from './connection-types.js';
import { ConnectionBase } from './connection.js';
import { loadCoreModule } from './internal/core.js';
import type { CoreModule } from './internal/core-types.js';
import { openSshSession } from './ssh/open.js';
import type { SshSession } from './ssh/session.js';
import type { SshSessionOptions } from './ssh/types.js';
import { claimStoredSession, type StoredClaim } from './stored-session.js';

const internalToken = Symbol('internal');

/**
 * Opens a connection. Resolves once the wasm core is loaded and the WebSocket is created. A
 * session stored by an earlier page of this tab (reload) is resumed when its Web Lock is free
 * (docs/browser-client.md, "Page reload and multiple tabs"). Rejects with ResumeError only with
 * `resumeOnly`.
 */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const module = await loadCoreModule(options.core);
  const claim = await claimStoredSession(options);
  return new Connection(module, options, internalToken, claim);
}

export class Connection extends ConnectionBase {
  /** @internal Use connect(). */
  constructor(module: CoreModule, options: ConnectOptions, token: symbol, claim?: StoredClaim) {
    if (token !== internalToken) throw new TypeError('use connect() to create a Connection');
    super(module, options, claim);
  }

  /**
   * Opens an SSH session over a new channel to `options.target`: SSH runs in this page (libssh2
   * in wasm, loaded on first use), so the gateway never sees credentials or plaintext. Resolves
   * when the shell or command runs; rejects with SshAuthError, HostKeyError or SshError.
   * See docs/ssh-in-browser.md.
   */
  openSession(options: SshSessionOptions): Promise<SshSession> {
    return openSshSession(this, options);
  }
}
